//! Whatever arrives on a media port: parsed as RTCP, as RTP into the jitter
//! buffer, decoded as PCMU and Opus (with FEC and concealment), and as an
//! RFC 4733 event. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant, SystemTime};
use voxline_media::codec::{Codec, Decoder};
use voxline_media::dtmf::DtmfReceiver;
use voxline_media::jitter::{JitterBuffer, JitterConfig, RtpIn};
use voxline_media::rtcp_report::RtcpState;
use webrtc_util::marshal::Unmarshal;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut rtcp = RtcpState::new(1, "fuzz", now);
    rtcp.on_packet(data, now, SystemTime::now());
    // The same gate as the media clock's receive path.
    if !voxline_media::rtp_guard::rtp_parseable(data) {
        return;
    }
    let mut input = data;
    let Ok(p) = rtp::packet::Packet::unmarshal(&mut input) else {
        return;
    };
    let mut dtmf = DtmfReceiver::new(8000);
    dtmf.on_packet(p.header.timestamp, &p.payload);
    for codec in [Codec::Pcmu, Codec::Opus] {
        let mut jb = JitterBuffer::new(JitterConfig::for_clock(codec.clock_rate()));
        let samples = codec.payload_timestamps(&p.payload);
        for i in 0..3u16 {
            jb.push(RtpIn {
                ssrc: p.header.ssrc,
                seq: p.header.sequence_number.wrapping_add(i * 2),
                timestamp: p.header.timestamp.wrapping_add(u32::from(i) * samples * 2),
                marker: p.header.marker,
                payload: p.payload.clone(),
                samples,
                arrival: Duration::from_millis(u64::from(i) * 40),
            });
        }
        let Ok(mut dec) = Decoder::new(codec) else { return };
        let mut out = Vec::new();
        let _ = dec.decode(&p.payload, &mut out);
        let _ = dec.conceal(Some(&p.payload), codec.frame_samples(), &mut out);
        for _ in 0..8 {
            let _ = jb.pop();
            let _ = jb.fec_source();
        }
        let _ = jb.reception();
    }
});
