//! Any datagram: voxline's raw checks, then (when they pass) the stack's
//! parser, must return without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxline_sip::ingress::{inspect, Ingress};

fuzz_target!(|data: &[u8]| {
    if let Ingress::Pass = inspect(data) {
        let _ = rsipstack::sip::SipMessage::try_from(data);
    }
});
