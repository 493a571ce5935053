//! The call-leg contract: what a conversation sees of a call, whatever
//! carries it (an inbound or outbound SIP call, a browser over WebRTC, an
//! in-memory leg in tests).
//!
//! - [`LegAudio`]: the call's audio in as 16 kHz 20 ms frames, with DTMF
//!   and media events and the call's end, on one ordered stream
//!   ([`LegInput`]); and a [`Playout`] handle for the audio out: a queue that
//!   reports what was actually played (marks, queued frames, drained), can
//!   be cleared at once, and sends DTMF after what is queued.
//! - [`LegControl`]: the call's facts ([`LegFacts`]: direction, caller,
//!   callee, variables) and its control verbs: hang up, transfer, bridge.
//!
//! A leg handles its own signalling meanwhile (a re-INVITE moving the media,
//! DTMF by SIP INFO): the conversation only sees the contract.

use crate::MediaError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which way a call was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The far end called us.
    Inbound,
    /// We called the far end.
    Outbound,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// This side (the agent, a limit, a fault).
    Local,
    /// The far end.
    Remote,
}

/// How a call ended, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegEnd {
    /// Who ended it.
    pub by: EndedBy,
    /// Why (`hangup`, `agent_goodbye`, `transferred`, `media_timeout`...).
    pub reason: String,
    /// A SIP status, where one ended it.
    pub status: Option<u16>,
}

impl LegEnd {
    /// An end decided on this side.
    pub fn local(reason: &str) -> LegEnd {
        LegEnd {
            by: EndedBy::Local,
            reason: reason.into(),
            status: None,
        }
    }

    /// The far end hung up.
    pub fn remote(reason: &str) -> LegEnd {
        LegEnd {
            by: EndedBy::Remote,
            reason: reason.into(),
            status: None,
        }
    }
}

/// The facts of a call: who is on it, which way it went, and the variables
/// it carries (an outbound contact's columns, headers a route copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegFacts {
    /// The call's identifier (the SIP Call-ID).
    pub call_id: String,
    /// Which way it was set up.
    pub direction: Direction,
    /// The caller (a URI or number).
    pub caller: String,
    /// The callee (a URI or number).
    pub callee: String,
    /// What carries it: `sip`, `webrtc`, `memory`.
    pub channel: &'static str,
    /// Variables of the call (for a pack's `{name}` placeholders).
    pub variables: BTreeMap<String, String>,
}

/// What a leg hears, in order: audio, DTMF, media events, the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegInput {
    /// 20 ms of the far end at 16 kHz ([`crate::PORT_FRAME`] samples).
    Frame(Vec<i16>),
    /// A DTMF key (RFC 4733 or SIP INFO).
    Dtmf(crate::DtmfDigit),
    /// The far end put the call on hold.
    Hold,
    /// The far end took the call off hold.
    Unhold,
    /// No media arrived for the configured time.
    MediaTimeout,
    /// The call is over (nothing follows).
    Ended(LegEnd),
}

/// Audio toward the far end: a queue paced by the leg's clock.
pub trait Playout: Send + Sync {
    /// Queues audio at `rate` Hz (8, 16, 22.05, 24 or 48 kHz).
    fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError>;
    /// [`Playout::play`], returning a mark to ask when its first sample went
    /// out ([`Playout::started_at`]); `None` when nothing was queued.
    fn play_marked(&self, samples: &[i16], rate: u32) -> Result<Option<u64>, MediaError>;
    /// When the audio queued with `mark` began to be sent, once it has.
    fn started_at(&self, mark: u64) -> Option<Instant>;
    /// Drops everything queued: the next frame sent is silence.
    fn clear(&self);
    /// Audio still queued, in 20 ms frames.
    fn queued_frames(&self) -> usize;
    /// Sends DTMF keys after what is queued, `duration_ms` each.
    fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError>;
    /// Resolves once everything queued so far has been sent (now, if nothing is).
    fn drained(&self) -> Drained;
}

/// The audio side of a call leg.
#[async_trait::async_trait]
pub trait LegAudio: Send {
    /// The next thing heard. Cancel-safe (for `tokio::select!`); after
    /// [`LegInput::Ended`] it pends forever.
    async fn recv(&mut self) -> LegInput;
    /// The leg's playout queue (a cheap handle, usable while `recv` waits).
    fn playout(&self) -> Arc<dyn Playout>;
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    /// The far end took the call elsewhere: it is over for this side.
    Transferred,
    /// The call ended while the transfer ran.
    Ended(LegEnd),
    /// It failed; the call stays (the reason, for the transcript).
    Failed(String),
}

/// How a bridge (this side calls a third party and joins the calls) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeResult {
    /// The calls were joined until one side hung up: the call's end.
    Joined(LegEnd),
    /// The caller hung up while the third party was being called.
    Abandoned(LegEnd),
    /// The third party could not be joined; the call stays (why).
    Failed(String),
}

/// The control side of a call leg.
#[async_trait::async_trait]
pub trait LegControl: Send {
    /// Who, which way, what variables.
    fn facts(&self) -> &LegFacts;
    /// Ends the call from this side.
    async fn hangup(&mut self) -> Result<(), String>;
    /// Hands the call to `to` (a SIP REFER on a phone call), waiting up to
    /// `wait` for the far end's answer. The caller's audio meanwhile is
    /// not delivered.
    async fn transfer(&mut self, to: &str, wait: Duration) -> TransferResult;
    /// Calls `to` (ringing up to `ring`) and joins it to this call until
    /// either side hangs up, either side's media times out, or `limit`
    /// (the time left of the call's longest duration) passes. The caller's
    /// audio meanwhile goes to `to`.
    async fn bridge(&mut self, to: &str, ring: Duration, limit: Duration) -> BridgeResult;
}

/// A whole call leg: audio and control.
pub trait CallLeg: LegAudio + LegControl {}

impl<T: LegAudio + LegControl> CallLeg for T {}

/// The future [`Playout::drained`] returns.
pub type Drained = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

pub mod memory;
