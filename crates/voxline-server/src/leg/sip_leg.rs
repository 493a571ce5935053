//! An answered SIP call, inbound or outbound, as a leg of the call-leg
//! contract: its media port's frames and events and the dialog's events on
//! one stream (a re-INVITE moves the media, a SIP INFO key joins the RFC
//! 4733 ones), its playout queue, and hang-up, transfer by REFER and the
//! bridge to a colleague's call as control verbs.

use crate::config::MediaConfig;
use crate::leg::bridge::{bridge, BridgeEnv, Bridged, Dialer};
use crate::leg::{leg_end, rtp_target};
use crate::records::Records;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voxline_media::leg::{BridgeResult, Direction, LegFacts, TransferResult};
use voxline_media::{
    DtmfDigit, DtmfSource, LegAudio, LegControl, LegInput, MediaClock, MediaEvent, MediaPort, Playout, PortInput,
    RtpSession,
};
use voxline_sip::{CallDialog, CallEvent, InboundCall, OutboundCall, TransferOutcome};

/// What a leg needs of the server to call a colleague for a bridge.
#[derive(Clone)]
pub struct BridgeServices {
    /// Where the colleague's leg is recorded.
    pub records: Records,
    /// Places the call.
    pub dialer: Dialer,
    /// RTP ports and addresses.
    pub media: MediaConfig,
    /// The media clock.
    pub clock: MediaClock,
    /// The server's shutdown.
    pub shutdown: CancellationToken,
    /// The route's `transfer_trunk`: the only way a colleague is called
    /// (none: no bridge).
    pub trunk: Option<String>,
}

/// An answered SIP call with its running RTP session.
pub struct SipLeg {
    call: CallDialog,
    rtp: RtpSession,
    port: MediaPort,
    facts: LegFacts,
    services: BridgeServices,
    /// The media stopped (the port gives nothing more).
    media_closed: bool,
    ended: bool,
}

impl SipLeg {
    /// The leg of an answered inbound `call`, on `rtp`. Err (why) when its
    /// media port cannot be opened: the call is then hung up.
    pub fn inbound(call: InboundCall, rtp: RtpSession, services: BridgeServices) -> Result<SipLeg, String> {
        let facts = LegFacts {
            call_id: call.info.call_id.clone(),
            direction: Direction::Inbound,
            caller: call.info.from.clone(),
            callee: call.info.to.clone(),
            channel: "sip",
            variables: BTreeMap::from([
                ("dialled".to_string(), call.info.dialled.clone()),
                ("trunk".to_string(), call.info.trunk.clone()),
            ]),
        };
        SipLeg::new(call.into_dialog(), facts, rtp, services)
    }

    /// The leg of an answered outbound `call` to `callee`; `variables` are
    /// the contact's (a campaign row's columns), the trunk is added. Err as
    /// for [`SipLeg::inbound`].
    pub fn outbound(
        call: OutboundCall,
        callee: &str,
        mut variables: BTreeMap<String, String>,
        rtp: RtpSession,
        services: BridgeServices,
    ) -> Result<SipLeg, String> {
        if let Some(t) = &call.trunk {
            variables.insert("trunk".to_string(), t.clone());
        }
        let facts = LegFacts {
            call_id: call.call_id.clone(),
            direction: Direction::Outbound,
            caller: call.from.clone(),
            callee: callee.to_string(),
            channel: "sip",
            variables,
        };
        SipLeg::new(call.into_dialog(), facts, rtp, services)
    }

    /// Opens the call's media port; when it cannot be, the dialog is
    /// dropped, which hangs the call up (BYE).
    fn new(call: CallDialog, facts: LegFacts, rtp: RtpSession, services: BridgeServices) -> Result<SipLeg, String> {
        let port = MediaPort::open(&rtp).map_err(|e| e.to_string())?;
        Ok(SipLeg {
            call,
            rtp,
            port,
            facts,
            services,
            media_closed: false,
            ended: false,
        })
    }
}

#[async_trait::async_trait]
impl LegAudio for SipLeg {
    async fn recv(&mut self) -> LegInput {
        loop {
            if self.ended {
                return std::future::pending().await;
            }
            tokio::select! {
                ev = self.call.next_event() => match ev {
                    CallEvent::Ended(e) => {
                        self.ended = true;
                        return LegInput::Ended(leg_end(e));
                    }
                    CallEvent::MediaChanged(n) => self.rtp.set_target(rtp_target(&n)),
                    CallEvent::Dtmf { digit, duration_ms } => self.rtp.inject_dtmf(DtmfDigit {
                        digit,
                        duration_ms: duration_ms.unwrap_or(0),
                        source: DtmfSource::SipInfo,
                    }),
                },
                input = self.port.recv(), if !self.media_closed => match input {
                    Some(PortInput::Frame(f)) => return LegInput::Frame(f),
                    Some(PortInput::Event(MediaEvent::Dtmf(d))) => return LegInput::Dtmf(d),
                    Some(PortInput::Event(MediaEvent::Hold)) => return LegInput::Hold,
                    Some(PortInput::Event(MediaEvent::Unhold)) => return LegInput::Unhold,
                    Some(PortInput::Event(MediaEvent::MediaTimeout)) => return LegInput::MediaTimeout,
                    // The media stopped: the dialog says how the call ended.
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
impl LegControl for SipLeg {
    fn facts(&self) -> &LegFacts {
        &self.facts
    }

    async fn hangup(&mut self) -> Result<(), String> {
        self.call.hangup().await.map_err(|e| e.to_string())
    }

    async fn transfer(&mut self, to: &str, wait: Duration) -> TransferResult {
        let outcome = {
            let transfer = self.call.transfer(to, wait);
            tokio::pin!(transfer);
            // The caller's audio meanwhile is not listened to.
            loop {
                tokio::select! {
                    o = &mut transfer => break o,
                    Some(_) = self.port.recv() => {}
                }
            }
        };
        match outcome {
            Ok(TransferOutcome::Transferred) => TransferResult::Transferred,
            Ok(TransferOutcome::Ended(e)) => {
                self.ended = true;
                TransferResult::Ended(leg_end(e))
            }
            Ok(failed) => {
                let status = match &failed {
                    TransferOutcome::Refused { status } | TransferOutcome::TargetFailed { status } => *status,
                    _ => None,
                };
                let code = status.map(|s| format!(" ({s})")).unwrap_or_default();
                TransferResult::Failed(format!("{}{code}", failed.name()))
            }
            Err(e) => TransferResult::Failed(e.to_string()),
        }
    }

    async fn bridge(&mut self, to: &str, ring: Duration, limit: Duration) -> BridgeResult {
        let s = &self.services;
        let Some(trunk) = s.trunk.as_deref() else {
            return BridgeResult::Failed("the route names no transfer_trunk to call a colleague through".into());
        };
        let env = BridgeEnv {
            caller_rtp: &self.rtp,
            trunk,
            limit,
            records: &s.records,
            dialer: &s.dialer,
            media: &s.media,
            clock: &s.clock,
            shutdown: &s.shutdown,
        };
        match bridge(&mut self.call, &mut self.port, to, ring, env).await {
            Ok(Bridged { end, joined }) => {
                self.ended = true;
                if joined {
                    BridgeResult::Joined(leg_end(end))
                } else {
                    BridgeResult::Abandoned(leg_end(end))
                }
            }
            Err(why) => BridgeResult::Failed(why),
        }
    }
}
