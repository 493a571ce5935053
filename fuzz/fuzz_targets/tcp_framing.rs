//! Bytes arriving on a SIP TCP or TLS connection, in pieces of any size:
//! the stack's stream framing (Content-Length, keep-alives, the size cap)
//! and, for each framed message, voxline's raw checks. Nothing may panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rsipstack::transport::stream::{SipCodec, SipCodecType};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the size of the pieces the stream arrives in.
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut codec = SipCodec::new();
    let mut buf = BytesMut::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(SipCodecType::Message(msg))) => {
                    let _ = voxline_sip::ingress::inspect(msg.to_string().as_bytes());
                }
                Ok(Some(_)) => {}
                // Incomplete, or an error that closes the connection.
                Ok(None) | Err(_) => break,
            }
        }
    }
});
