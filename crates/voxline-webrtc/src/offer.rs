//! Checks on the page's SDP offer, before any socket is opened for it: it
//! parses, it is not absurdly large, and it has an audio stream offering
//! Opus at 48 kHz. Also reads the payload types an SDP uses for Opus and
//! telephone-event (the answer mirrors the offer's numbers).

use crate::WebRtcError;
use sdp::description::session::SessionDescription;
use std::io::Cursor;

/// The largest offer taken (a browser's audio offer is ~2-5 KB).
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// What an SDP's audio stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// Opus's payload type.
    pub opus_pt: u8,
    /// telephone-event's payload type and clock rate, when offered.
    pub telephone_event: Option<(u8, u32)>,
}

/// Checks an offer: Err names what is wrong with it.
pub fn check_offer(sdp_text: &str) -> Result<OfferSummary, WebRtcError> {
    if sdp_text.len() > MAX_OFFER_BYTES {
        return Err(WebRtcError::BadOffer(format!(
            "{} bytes (at most {MAX_OFFER_BYTES})",
            sdp_text.len()
        )));
    }
    audio_codecs(sdp_text)
}

/// The Opus and telephone-event payload types of the first audio stream
/// of `sdp_text` (an offer or an answer).
pub fn audio_codecs(sdp_text: &str) -> Result<OfferSummary, WebRtcError> {
    let desc = SessionDescription::unmarshal(&mut Cursor::new(sdp_text.as_bytes()))
        .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let audio = desc
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)
        .ok_or_else(|| WebRtcError::BadOffer("no audio stream".into()))?;
    let mut opus = None;
    let mut events: Vec<(u8, u32)> = Vec::new();
    let mut offered = Vec::new();
    for a in audio.attributes.iter().filter(|a| a.key == "rtpmap") {
        let Some(value) = a.value.as_deref() else { continue };
        let Some((pt, codec)) = value.split_once(' ') else {
            continue;
        };
        let Ok(pt) = pt.trim().parse::<u8>() else { continue };
        let mut parts = codec.trim().split('/');
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let rate = parts.next().and_then(|r| r.parse::<u32>().ok()).unwrap_or(0);
        offered.push(format!("{name}/{rate}"));
        match name.as_str() {
            "opus" if rate == 48_000 && opus.is_none() => opus = Some(pt),
            "telephone-event" => events.push((pt, rate)),
            _ => {}
        }
    }
    let opus_pt = opus.ok_or_else(|| {
        WebRtcError::NoOpus(if offered.is_empty() {
            "nothing".into()
        } else {
            offered.join(", ")
        })
    })?;
    // RFC 4733 at 8 kHz is what keys are read from best; 48 kHz otherwise.
    let telephone_event = events
        .iter()
        .find(|(_, r)| *r == 8000)
        .or_else(|| events.first())
        .copied();
    Ok(OfferSummary {
        opus_pt,
        telephone_event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n";

    #[test]
    fn a_browser_offer_gives_opus_and_the_8_khz_telephone_event() {
        let s = check_offer(CHROME_OFFER).expect("a browser's offer is taken");
        assert_eq!(s.opus_pt, 111);
        assert_eq!(s.telephone_event, Some((126, 8000)));
    }

    #[test]
    fn an_offer_without_opus_names_what_it_offered() {
        let no_opus = CHROME_OFFER
            .replace("a=rtpmap:111 opus/48000/2\r\n", "")
            .replace("a=rtpmap:63 red/48000/2\r\n", "");
        let e = check_offer(&no_opus).expect_err("no Opus");
        let text = e.to_string();
        assert!(matches!(e, WebRtcError::NoOpus(_)), "{text}");
        assert!(text.contains("pcmu/8000"), "{text}");
    }

    #[test]
    fn garbage_too_large_or_video_only_offers_are_bad_offers() {
        for bad in [
            "hello".to_string(),
            String::new(),
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
                .to_string(),
            "x".repeat(MAX_OFFER_BYTES + 1),
        ] {
            let e = check_offer(&bad).expect_err("refused");
            assert!(matches!(e, WebRtcError::BadOffer(_)), "{e}");
        }
    }
}
