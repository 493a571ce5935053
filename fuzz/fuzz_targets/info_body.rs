//! A SIP INFO carrying a key press: any Content-Type and body
//! (`application/dtmf-relay`, `application/dtmf` or anything else) gives a
//! digit or nothing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The Content-Type up to the first NUL, the body after it.
    let (ct, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"application/dtmf-relay"[..], data),
    };
    if let Some((digit, _)) = voxline_sip::call::parse_dtmf_info(&String::from_utf8_lossy(ct), body) {
        assert!("0123456789*#ABCD".contains(digit), "{digit:?} is not a key");
    }
});
