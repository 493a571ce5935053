//! Any SDP body: parsing and negotiation must return without panicking, and
//! an answer built from an accepted offer (plain or SRTP) must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxline_sip::sdes::{SrtpLocal, SrtpPolicy};
use voxline_sip::sdp::{self, AudioCodec, LocalSdp};

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = sdp::parse(data) {
        let srtp = SrtpLocal::new(SrtpPolicy::Optional);
        if let Ok(n) = offer.negotiate(&[AudioCodec::Pcmu, AudioCodec::Pcma], None, &srtp) {
            let local = LocalSdp {
                addr: "127.0.0.1".parse().unwrap(),
                port: 20000,
                session_id: 1,
                version: 1,
                srtp,
            };
            let answer = sdp::answer(&local, &offer, &n);
            assert!(sdp::parse(answer.as_bytes()).is_ok(), "our own answer must parse");
        }
    }
});
