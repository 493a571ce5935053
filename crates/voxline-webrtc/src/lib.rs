//! A browser call leg over WebRTC, implementing the call-leg contract of
//! `voxline_media::leg` like a SIP call does.
//!
//! The `webrtc` crate does the browser's side of the wire: ICE (host
//! candidates, optional STUN/TURN), DTLS-SRTP and the RTP streams. What it
//! receives (decrypted Opus RTP) is relayed over loopback UDP into an
//! ordinary [`voxline_media::RtpSession`], and what that session sends
//! (paced Opus RTP, 20 ms) is relayed back into the browser's track. So a
//! browser call gets the same jitter buffer, Opus decoding to 16 kHz
//! frames, paced playout with marks, barge-in clearing, RFC 4733 keys,
//! recording and media counters as every phone call: the voice session
//! cannot tell them apart.
//!
//! - [`settings`]: where ICE binds, the public address, STUN/TURN servers.
//! - [`offer`]: checks on the page's SDP offer before any socket is opened.
//! - [`peer`]: the peer connection, its answer and the relay.
//! - [`leg`]: [`WebRtcLeg`], the leg the voice session runs on.

#![warn(missing_docs)]

pub mod leg;
pub mod offer;
pub mod peer;
pub mod settings;

pub use leg::{PageSignals, WebRtcLeg};
pub use offer::{check_offer, OfferSummary};
pub use peer::{BrowserPeer, PeerState};
pub use settings::{IceServer, WebRtcSettings};

/// What went wrong setting up or running a browser call.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The page's offer is not an SDP offer we can answer (why).
    #[error("bad SDP offer: {0}")]
    BadOffer(String),
    /// The offer has no audio stream with Opus at 48 kHz.
    #[error("the offer has no audio with Opus/48000 (offered: {0})")]
    NoOpus(String),
    /// The `webrtc` stack refused something (what was being done, its error).
    #[error("{context}: {reason}")]
    Stack {
        /// What was being done.
        context: &'static str,
        /// The stack's error.
        reason: String,
    },
    /// ICE and DTLS did not complete in time.
    #[error("the connection was not established within {0} s (ICE or DTLS did not complete)")]
    ConnectTimeout(u64),
    /// The connection failed or was closed before it was established.
    #[error("the connection {0} before it was established")]
    ConnectFailed(&'static str),
    /// A socket of the relay could not be opened.
    #[error("relay socket: {0}")]
    Relay(#[from] std::io::Error),
}

impl WebRtcError {
    pub(crate) fn stack(context: &'static str, e: impl std::fmt::Display) -> WebRtcError {
        WebRtcError::Stack {
            context,
            reason: e.to_string(),
        }
    }
}
