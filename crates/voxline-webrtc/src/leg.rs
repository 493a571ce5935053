//! A browser call as a leg of the call-leg contract: the RTP session's
//! frames and events (fed by the relay), its playout queue, and the page's
//! signalling: the page hanging up (or its socket closing) and the
//! connection failing end the call; the agent hanging up closes the
//! connection (the page is told by the call's end).
//! A browser call has no SIP dialog: transfer and bridge fail with a reason
//! the conversation hears (the agent then carries on).

use crate::peer::{BrowserPeer, PeerState};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use voxline_media::leg::{BridgeResult, EndedBy, LegEnd, LegFacts, TransferResult};
use voxline_media::{LegAudio, LegControl, LegInput, MediaEvent, MediaPort, Playout, PortInput, RtpSession};

/// What the page's signalling socket tells a browser leg.
#[derive(Debug, Clone, Default)]
pub struct PageSignals {
    /// The page hung up or its socket closed (set by the signalling side).
    pub page_hung_up: CancellationToken,
}

/// An established browser call with its running relay.
pub struct WebRtcLeg {
    peer: BrowserPeer,
    port: MediaPort,
    rtp: RtpSession,
    state: watch::Receiver<PeerState>,
    facts: LegFacts,
    signals: PageSignals,
    media_closed: bool,
    ended: bool,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("call_id", &self.facts.call_id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl WebRtcLeg {
    /// The leg of a connected `peer` whose media runs on `rtp`. Err (why)
    /// when the session's media port cannot be opened.
    pub fn new(peer: BrowserPeer, rtp: RtpSession, facts: LegFacts, signals: PageSignals) -> Result<WebRtcLeg, String> {
        let port = MediaPort::open(&rtp).map_err(|e| e.to_string())?;
        Ok(WebRtcLeg {
            state: peer.state(),
            peer,
            port,
            rtp,
            facts,
            signals,
            media_closed: false,
            ended: false,
        })
    }

    /// The call's RTP session (its counters, DTMF keyed on the page).
    pub fn rtp(&self) -> &RtpSession {
        &self.rtp
    }

    /// Closes the connection and stops the relay (after the conversation).
    pub async fn close(&mut self) {
        self.peer.close().await;
    }

    fn end(&mut self, by: EndedBy, reason: &str) -> LegInput {
        self.ended = true;
        LegInput::Ended(LegEnd {
            by,
            reason: reason.into(),
            status: None,
        })
    }
}

#[async_trait::async_trait]
impl LegAudio for WebRtcLeg {
    async fn recv(&mut self) -> LegInput {
        loop {
            if self.ended {
                return std::future::pending().await;
            }
            tokio::select! {
                _ = self.signals.page_hung_up.cancelled() => return self.end(EndedBy::Remote, "hangup"),
                changed = self.state.changed() => {
                    let state = *self.state.borrow_and_update();
                    match (changed, state) {
                        (Err(_), _) | (_, PeerState::Closed) => return self.end(EndedBy::Remote, "hangup"),
                        (_, PeerState::Failed) => return self.end(EndedBy::Remote, "ice_failed"),
                        // A lost path may come back; the media timeout ends the call if it does not.
                        _ => {}
                    }
                }
                input = self.port.recv(), if !self.media_closed => match input {
                    Some(PortInput::Frame(f)) => return LegInput::Frame(f),
                    Some(PortInput::Event(MediaEvent::Dtmf(d))) => return LegInput::Dtmf(d),
                    Some(PortInput::Event(MediaEvent::Hold)) => return LegInput::Hold,
                    Some(PortInput::Event(MediaEvent::Unhold)) => return LegInput::Unhold,
                    Some(PortInput::Event(MediaEvent::MediaTimeout)) => return LegInput::MediaTimeout,
                    Some(PortInput::Event(MediaEvent::HangUp)) => {}
                    None => self.media_closed = true,
                },
            }
        }
    }

    fn playout(&self) -> Arc<dyn Playout> {
        self.port.playout()
    }
}

#[async_trait::async_trait]
impl LegControl for WebRtcLeg {
    fn facts(&self) -> &LegFacts {
        &self.facts
    }

    async fn hangup(&mut self) -> Result<(), String> {
        // The page hears of it from the call's end (its `ended` message).
        self.ended = true;
        self.peer.close().await;
        Ok(())
    }

    async fn transfer(&mut self, _to: &str, _wait: Duration) -> TransferResult {
        TransferResult::Failed("a browser call has no SIP dialog to transfer".into())
    }

    async fn bridge(&mut self, _to: &str, _ring: Duration, _limit: Duration) -> BridgeResult {
        BridgeResult::Failed("a browser call cannot be bridged to a phone yet".into())
    }
}
