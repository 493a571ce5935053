//! An inbound call as its handler sees it: ring, answer (offer/answer in the
//! INVITE/200, or a late offer answered in the ACK), follow re-INVITEs and
//! INFO, hang up.

use crate::call::{end_dialog, next_state, on_info, release_dialog, CallEvent, CallInfo, EndReason, Party};
use crate::routing::CallPermit;
use crate::sdp::{self, AudioCodec, Direction, LocalSdp, Negotiated, RemoteSdp, SdpError};
use crate::transfer::{self, TransferOutcome};
use crate::SipError;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// One inbound call, owned by its handler.
pub struct InboundCall {
    /// What the INVITE said.
    pub info: CallInfo,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    dialog_layer: Arc<DialogLayer>,
    offer: Option<RemoteSdp>,
    codecs: Vec<AudioCodec>,
    _permit: Option<CallPermit>,
    local: Option<LocalSdp>,
    last_sdp: String,
    negotiated: Option<Negotiated>,
    awaiting_ack_answer: bool,
    ended: Option<EndReason>,
    /// Events that happened while a transfer was followed, not yet returned.
    pending: VecDeque<CallEvent>,
    /// A REFER was sent: NOTIFYs are answered with 200.
    referred: bool,
}

impl std::fmt::Debug for InboundCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundCall").field("info", &self.info).finish()
    }
}

pub(crate) fn end_reason(r: &TerminatedReason) -> EndReason {
    let (by, reason, status) = match r {
        TerminatedReason::UacBye => (Party::Remote, "bye", None),
        TerminatedReason::UacCancel => (Party::Remote, "cancel", Some(487)),
        TerminatedReason::UasBye => (Party::Local, "bye", None),
        TerminatedReason::Timeout => (Party::Local, "timeout", Some(408)),
        TerminatedReason::UacBusy => (Party::Remote, "busy", Some(486)),
        TerminatedReason::UasBusy => (Party::Local, "busy", Some(486)),
        TerminatedReason::UasDecline => (Party::Local, "rejected", Some(603)),
        TerminatedReason::ProxyAuthRequired => (Party::Remote, "auth_failed", Some(407)),
        TerminatedReason::ProxyError(c) => (Party::Remote, "rejected", Some(u16::from(c.clone()))),
        TerminatedReason::UacOther(c) => (Party::Remote, "rejected", Some(u16::from(c.clone()))),
        TerminatedReason::UasOther(c) => (Party::Local, "rejected", Some(u16::from(c.clone()))),
    };
    EndReason {
        by,
        reason: reason.to_string(),
        status,
    }
}

fn sdp_headers() -> Vec<Header> {
    vec![Header::ContentType("application/sdp".into())]
}

impl InboundCall {
    pub(crate) fn new(
        info: CallInfo,
        dialog: InviteDialog,
        states: DialogStateReceiver,
        dialog_layer: Arc<DialogLayer>,
        offer: Option<RemoteSdp>,
        codecs: Vec<AudioCodec>,
        permit: Option<CallPermit>,
    ) -> InboundCall {
        InboundCall {
            info,
            dialog,
            states,
            dialog_layer,
            offer,
            codecs,
            _permit: permit,
            local: None,
            last_sdp: String::new(),
            negotiated: None,
            awaiting_ack_answer: false,
            ended: None,
            pending: VecDeque::new(),
            referred: false,
        }
    }

    /// Whether the INVITE carried an SDP offer (false = late offer).
    pub fn has_offer(&self) -> bool {
        self.offer.is_some()
    }

    /// The negotiated media, once answered.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// How the call ended, once it has.
    pub fn ended(&self) -> Option<&EndReason> {
        self.ended.as_ref()
    }

    /// Sends 180 Ringing.
    pub fn ringing(&self) -> Result<(), SipError> {
        self.dialog.ringing(None, None)?;
        Ok(())
    }

    /// Refuses the call with `status` (e.g. 486, 603).
    pub fn reject(&mut self, status: u16) -> Result<(), SipError> {
        self.dialog.reject(Some(StatusCode::from(status)), None)?;
        self.ended = Some(EndReason {
            by: Party::Local,
            reason: "rejected".into(),
            status: Some(status),
        });
        Ok(())
    }

    /// Answers with 200 OK. `media` is voxline's RTP address as the peer
    /// should see it. Returns once the ACK arrived (and, for a late offer,
    /// the answer in it was accepted).
    pub async fn answer(&mut self, media: SocketAddr) -> Result<Negotiated, SipError> {
        let local = LocalSdp {
            addr: media.ip(),
            port: media.port(),
            session_id: u64::from(rand::random::<u32>()),
            version: 1,
        };
        let (body, pending) = match &self.offer {
            Some(offer) => {
                let neg = offer
                    .negotiate(&self.codecs, None)
                    .map_err(|e| SipError::Call(e.to_string()))?;
                (sdp::answer(&local, offer, &neg), Some(neg))
            }
            None => (sdp::offer(&local, &self.codecs, Direction::SendRecv), None),
        };
        self.dialog
            .accept(Some(sdp_headers()), Some(body.clone().into_bytes()))?;
        self.last_sdp = body;
        loop {
            match self.states.recv().await {
                Some(DialogState::Confirmed(..)) => break,
                Some(DialogState::Terminated(_, r)) => {
                    let why = end_reason(&r);
                    self.ended = Some(why.clone());
                    return Err(SipError::Call(format!("call ended before ACK: {}", why.reason)));
                }
                Some(_) => continue,
                None => return Err(SipError::Call("dialog closed".into())),
            }
        }
        let neg = match pending {
            Some(n) => n,
            None => match self.answer_from_ack() {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "late-offer answer in ACK unusable: hanging up");
                    self.hangup().await.ok();
                    self.ended = Some(EndReason {
                        by: Party::Local,
                        reason: "bad_ack_sdp".into(),
                        status: Some(488),
                    });
                    return Err(SipError::Call(e.to_string()));
                }
            },
        };
        self.local = Some(local);
        self.negotiated = Some(neg.clone());
        info!(codec = neg.codec.name(), remote_rtp = %neg.remote_rtp, "call answered");
        Ok(neg)
    }

    fn answer_from_ack(&self) -> Result<Negotiated, SdpError> {
        let ack = self
            .dialog
            .last_remote_ack()
            .ok_or_else(|| SdpError::Malformed("no ACK".into()))?;
        sdp::parse(&ack.body)?.negotiate(&self.codecs, Some(&self.codecs))
    }

    /// Waits for the next thing that happens on the call. Re-INVITEs, UPDATEs,
    /// INFOs and in-dialog OPTIONS are answered here. Cancel-safe between events.
    pub async fn next_event(&mut self) -> CallEvent {
        if let Some(ev) = self.pending.pop_front() {
            return ev;
        }
        loop {
            let state = match next_state(&mut self.states, &mut self.ended).await {
                Ok(s) => s,
                Err(ended) => return ended,
            };
            if let Some(ev) = self.on_state(state).await {
                return ev;
            }
        }
    }

    /// Answers what a dialog state asks for; returns the event it makes, if any.
    async fn on_state(&mut self, state: DialogState) -> Option<CallEvent> {
        match state {
            DialogState::Updated(_, req, handle) => self.on_offer(&req, handle).await.map(CallEvent::MediaChanged),
            DialogState::Confirmed(..) if self.awaiting_ack_answer => {
                self.awaiting_ack_answer = false;
                match self.answer_from_ack() {
                    Ok(neg) => {
                        self.negotiated = Some(neg.clone());
                        Some(CallEvent::MediaChanged(neg))
                    }
                    Err(e) => {
                        warn!(error = %e, "re-INVITE answer in ACK unusable; media unchanged");
                        None
                    }
                }
            }
            DialogState::Info(_, req, handle) => on_info(&req, handle).await,
            DialogState::Options(_, _, handle) => {
                handle
                    .respond(
                        StatusCode::OK,
                        Some(vec![Header::Allow(crate::endpoint::ALLOWED_METHODS.into())]),
                        None,
                    )
                    .await
                    .ok();
                None
            }
            // A late NOTIFY of a transfer already decided is acknowledged.
            DialogState::Notify(_, _, handle) if self.referred => {
                handle.reply(StatusCode::OK).await.ok();
                None
            }
            DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                handle.reply(StatusCode::MethodNotAllowed).await.ok();
                None
            }
            DialogState::Terminated(_, r) => {
                let e = end_reason(&r);
                self.ended = Some(e.clone());
                Some(CallEvent::Ended(e))
            }
            _ => None,
        }
    }

    /// Transfers the call to `target` (a SIP URI) with a REFER, then follows
    /// the far end's new call for up to `wait`: once the target answers,
    /// voxline hangs up its leg. A refused REFER or a failed new call leaves
    /// the call up (events that came meanwhile are returned by
    /// [`InboundCall::next_event`] next). Not cancel-safe: await it to the end.
    pub async fn transfer(&mut self, target: &str, wait: Duration) -> Result<TransferOutcome, SipError> {
        if let Some(e) = &self.ended {
            return Ok(TransferOutcome::Ended(e.clone()));
        }
        if !transfer::valid_target(target) {
            return Err(SipError::Address(
                target.into(),
                "a transfer target must be a SIP URI".into(),
            ));
        }
        let headers = vec![
            Header::ReferTo(format!("<{target}>").into()),
            Header::ReferredBy(format!("<{}>", self.info.to).into()),
        ];
        self.referred = true;
        let deadline = tokio::time::Instant::now() + wait;
        let refer = self.dialog.request(Method::Refer, Some(headers), None);
        let status = match tokio::time::timeout_at(deadline, refer).await {
            Ok(resp) => resp?.map(|r| u16::from(r.status_code)),
            Err(_) => None,
        };
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            info!(target, ?status, "REFER refused");
            return Ok(TransferOutcome::Refused { status });
        }
        info!(target, "REFER accepted: waiting for the target to answer");
        loop {
            let state = match tokio::time::timeout_at(deadline, next_state(&mut self.states, &mut self.ended)).await {
                Err(_) => {
                    info!(target, "no answer from the transfer target in time");
                    return Ok(TransferOutcome::TargetFailed { status: None });
                }
                Ok(Err(CallEvent::Ended(e))) => return Ok(TransferOutcome::Ended(e)),
                Ok(Err(other)) => {
                    self.pending.push_back(other);
                    continue;
                }
                Ok(Ok(s)) => s,
            };
            match state {
                DialogState::Notify(_, req, handle) => {
                    handle.reply(StatusCode::OK).await.ok();
                    let sub_state = req
                        .headers
                        .iter()
                        .find_map(|h| match h {
                            Header::SubscriptionState(s) => Some(s.value().to_string()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    match transfer::sipfrag_status(&req.body) {
                        Some(s) if (200..300).contains(&s) => {
                            info!(target, status = s, "transfer target answered: leaving the call");
                            end_dialog(&self.dialog).await.ok();
                            self.ended = Some(EndReason {
                                by: Party::Local,
                                reason: "transferred".into(),
                                status: None,
                            });
                            return Ok(TransferOutcome::Transferred);
                        }
                        Some(s) if s >= 300 => {
                            info!(target, status = s, "transfer target not reached");
                            return Ok(TransferOutcome::TargetFailed { status: Some(s) });
                        }
                        Some(s) => debug!(target, status = s, "transfer progress"),
                        None if transfer::subscription_terminated(&sub_state) => {
                            return Ok(TransferOutcome::TargetFailed { status: None });
                        }
                        None => debug!(target, "NOTIFY without a status line"),
                    }
                }
                DialogState::Terminated(_, r) => {
                    // The far end took the call over and let our leg go.
                    let mut e = end_reason(&r);
                    if e.by == Party::Remote && e.reason == "bye" {
                        e.reason = "transferred".into();
                        self.ended = Some(e);
                        return Ok(TransferOutcome::Transferred);
                    }
                    self.ended = Some(e.clone());
                    return Ok(TransferOutcome::Ended(e));
                }
                other => {
                    if let Some(ev) = self.on_state(other).await {
                        self.pending.push_back(ev);
                    }
                }
            }
        }
    }

    /// Answers a re-INVITE or UPDATE; returns the new media when it changed.
    async fn on_offer(&mut self, req: &Request, handle: TransactionHandle) -> Option<Negotiated> {
        let Some(local) = self.local.as_mut() else {
            handle.reply(StatusCode::RequestPending).await.ok();
            return None;
        };
        if req.body.iter().all(|b| b.is_ascii_whitespace()) {
            if req.method == Method::Invite {
                // Re-INVITE without SDP: we offer in the 200, the answer comes in the ACK.
                let body = sdp::offer(local, &self.codecs, Direction::SendRecv);
                handle
                    .respond(StatusCode::OK, Some(sdp_headers()), Some(body.into_bytes()))
                    .await
                    .ok();
                self.awaiting_ack_answer = true;
            } else {
                handle.reply(StatusCode::OK).await.ok();
            }
            return None;
        }
        // A re-offer may switch codec, but not between narrowband G.711 and
        // wideband Opus: the call's audio pipeline keeps one rate (488 then).
        let allowed: Vec<AudioCodec> = match self.negotiated.as_ref() {
            Some(cur) => self.codecs.iter().copied().filter(|c| c.same_band(cur.codec)).collect(),
            None => self.codecs.clone(),
        };
        let parsed = sdp::parse(&req.body).and_then(|o| o.negotiate(&allowed, None).map(|n| (o, n)));
        match parsed {
            Ok((offer, neg)) => {
                let mut body = sdp::answer(local, &offer, &neg);
                if body != self.last_sdp {
                    local.version += 1;
                    body = sdp::answer(local, &offer, &neg);
                }
                handle
                    .respond(StatusCode::OK, Some(sdp_headers()), Some(body.clone().into_bytes()))
                    .await
                    .ok();
                self.last_sdp = body;
                let changed = self.negotiated.as_ref() != Some(&neg);
                debug!(direction = neg.local_direction.as_str(), changed, "re-INVITE answered");
                self.negotiated = Some(neg.clone());
                changed.then_some(neg)
            }
            Err(SdpError::Malformed(why)) => {
                debug!(reason = %why, "re-INVITE with bad SDP");
                handle.reply(StatusCode::BadRequest).await.ok();
                None
            }
            Err(SdpError::NotAcceptable(why)) => {
                debug!(reason = %why, "re-INVITE not acceptable");
                handle.reply(StatusCode::NotAcceptableHere).await.ok();
                None
            }
        }
    }

    /// Hangs up: BYE once answered, 480 while still ringing.
    pub async fn hangup(&mut self) -> Result<(), SipError> {
        if self.ended.is_some() {
            return Ok(());
        }
        end_dialog(&self.dialog).await?;
        self.ended = Some(EndReason {
            by: Party::Local,
            reason: "bye".into(),
            status: None,
        });
        Ok(())
    }
}

impl Drop for InboundCall {
    fn drop(&mut self) {
        release_dialog(self.dialog_layer.clone(), self.dialog.clone(), self.ended.is_none());
    }
}
