//! Any `Authorization` header on an INVITE from a source with no trunk:
//! the digest checks (header tokens, nonce signature and expiry, nonce and
//! count reuse, the digest uri against the Request-URI, lockouts) must
//! answer with a verdict, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;
use voxline_sip::auth::DigestAuthenticator;
use voxline_sip::config::UserConfig;

static AUTH: LazyLock<DigestAuthenticator> = LazyLock::new(|| {
    DigestAuthenticator::new(
        "voxline",
        &[UserConfig {
            username: "desk".into(),
            password: "correct-horse".into(),
            max_calls: 2,
        }],
    )
});

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if value.contains(['\r', '\n']) {
        return; // one header line
    }
    let msg = format!(
        "INVITE sip:desk@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKf\r\nFrom: <sip:desk@192.0.2.1>;tag=1\r\nTo: <sip:desk@127.0.0.1>\r\nCall-ID: fuzz\r\nCSeq: 1 INVITE\r\nAuthorization: {value}\r\nContent-Length: 0\r\n\r\n"
    );
    if let Ok(rsipstack::sip::SipMessage::Request(req)) = rsipstack::sip::SipMessage::try_from(msg.as_str()) {
        let _ = AUTH.verify(&req, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }
});
