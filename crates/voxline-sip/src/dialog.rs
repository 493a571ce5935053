//! An established call's dialog, the same for either direction: it answers
//! re-INVITEs, UPDATEs, INFOs and OPTIONS, reports media changes, keys and
//! the call's end, transfers by REFER and hangs up. [`InboundCall`] and
//! [`OutboundCall`] each hold one, and give it up with `into_dialog` once
//! answered, so the code above SIP (a media leg, a bridge) has one type for
//! both.
//!
//! [`InboundCall`]: crate::InboundCall
//! [`OutboundCall`]: crate::OutboundCall

use crate::call::{end_dialog, next_state, on_info, release_dialog, CallEvent, EndReason, Party};
use crate::routing::CallPermit;
use crate::sdes::{SrtpLocal, SrtpPolicy};
use crate::sdp::{self, AudioCodec, Direction, LocalSdp, Negotiated, SdpError};
use crate::transfer::{self, TransferOutcome};
use crate::SipError;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Which side of the INVITE voxline was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// voxline answered the INVITE (UAS).
    Inbound,
    /// voxline sent the INVITE (UAC).
    Outbound,
}

/// One call's dialog, owned by whoever handles the call. Dropping it ends
/// what is left of the call (BYE, or 480 while it still rings).
pub struct CallDialog {
    call_id: String,
    role: Role,
    /// voxline's own URI in this call (To on inbound, From on outbound):
    /// the Referred-By of a transfer.
    local_uri: String,
    pub(crate) invite: InviteDialog,
    pub(crate) states: DialogStateReceiver,
    dialog_layer: Arc<DialogLayer>,
    pub(crate) codecs: Vec<AudioCodec>,
    /// How this call takes encrypted media.
    pub(crate) srtp: SrtpPolicy,
    /// Our SDP origin once answered (a re-offer is answered from it).
    pub(crate) local: Option<LocalSdp>,
    /// The SDP body we last sent.
    pub(crate) last_sdp: String,
    pub(crate) negotiated: Option<Negotiated>,
    /// A re-INVITE without SDP was answered with our offer: its answer comes in the ACK.
    awaiting_ack_answer: bool,
    pub(crate) ended: Option<EndReason>,
    /// Events that happened while a transfer was followed, not yet returned.
    pending: VecDeque<CallEvent>,
    /// A REFER was sent: NOTIFYs are answered with 200.
    referred: bool,
    _permit: Option<CallPermit>,
}

impl std::fmt::Debug for CallDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallDialog")
            .field("call_id", &self.call_id)
            .field("role", &self.role)
            .finish()
    }
}

/// How a terminated dialog ended, as rsipstack reports it from the UAS's side.
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

/// The Content-Type header of an SDP body.
pub(crate) fn sdp_headers() -> Vec<Header> {
    vec![Header::ContentType("application/sdp".into())]
}

/// What a new [`CallDialog`] starts from.
pub(crate) struct DialogParts {
    pub role: Role,
    pub local_uri: String,
    pub invite: InviteDialog,
    pub states: DialogStateReceiver,
    pub dialog_layer: Arc<DialogLayer>,
    pub codecs: Vec<AudioCodec>,
    pub srtp: SrtpPolicy,
    pub permit: Option<CallPermit>,
}

impl CallDialog {
    pub(crate) fn new(p: DialogParts) -> CallDialog {
        CallDialog {
            call_id: p.invite.id().call_id.clone(),
            role: p.role,
            local_uri: p.local_uri,
            invite: p.invite,
            states: p.states,
            dialog_layer: p.dialog_layer,
            codecs: p.codecs,
            srtp: p.srtp,
            local: None,
            last_sdp: String::new(),
            negotiated: None,
            awaiting_ack_answer: false,
            ended: None,
            pending: VecDeque::new(),
            referred: false,
            _permit: p.permit,
        }
    }

    /// Records the media agreed at the answer: our SDP origin and body, the result.
    pub(crate) fn set_answered(&mut self, local: LocalSdp, sent: String, negotiated: Negotiated) {
        self.local = Some(local);
        self.last_sdp = sent;
        self.negotiated = Some(negotiated);
    }

    /// SIP Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Whether voxline answered or placed the call.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The media as last negotiated (after the answer and any re-INVITE).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// How the call ended, once it has.
    pub fn ended(&self) -> Option<&EndReason> {
        self.ended.as_ref()
    }

    /// The end a terminated dialog reports, seen from voxline's side: for a
    /// call voxline placed, a BYE received is the far end's.
    fn end_of(&self, r: &TerminatedReason) -> EndReason {
        let mut e = end_reason(r);
        if self.role == Role::Outbound && e.reason == "bye" {
            e.by = Party::Remote;
        }
        e
    }

    /// The answer carried in the last ACK (a late offer, or a re-INVITE we
    /// offered in), read with `srtp`: the side (and key) of the offer it answers.
    pub(crate) fn answer_from_ack(&self, srtp: &SrtpLocal) -> Result<Negotiated, SdpError> {
        let ack = self
            .invite
            .last_remote_ack()
            .ok_or_else(|| SdpError::Malformed("no ACK".into()))?;
        sdp::parse(&ack.body)?.negotiate(&self.codecs, Some(&self.codecs), srtp)
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
                let srtp = self.local.as_ref()?.srtp.clone();
                match self.answer_from_ack(&srtp) {
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
            // voxline does not take transfers or messages from the far end.
            DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                handle.reply(StatusCode::MethodNotAllowed).await.ok();
                None
            }
            DialogState::Terminated(_, r) => {
                let e = self.end_of(&r);
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
    /// [`CallDialog::next_event`] next). Not cancel-safe: await it to the end.
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
            Header::ReferredBy(format!("<{}>", self.local_uri).into()),
        ];
        self.referred = true;
        let deadline = tokio::time::Instant::now() + wait;
        let refer = self.invite.request(Method::Refer, Some(headers), None);
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
                    if let Some(outcome) = self.on_transfer_notify(target, &req).await {
                        return Ok(outcome);
                    }
                }
                DialogState::Terminated(_, r) => {
                    // The far end took the call over and let our leg go.
                    let mut e = self.end_of(&r);
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

    /// What a NOTIFY about the transferred call decides, if anything.
    async fn on_transfer_notify(&mut self, target: &str, req: &Request) -> Option<TransferOutcome> {
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
                end_dialog(&self.invite).await.ok();
                self.ended = Some(EndReason {
                    by: Party::Local,
                    reason: "transferred".into(),
                    status: None,
                });
                Some(TransferOutcome::Transferred)
            }
            Some(s) if s >= 300 => {
                info!(target, status = s, "transfer target not reached");
                Some(TransferOutcome::TargetFailed { status: Some(s) })
            }
            Some(s) => {
                debug!(target, status = s, "transfer progress");
                None
            }
            None if transfer::subscription_terminated(&sub_state) => {
                Some(TransferOutcome::TargetFailed { status: None })
            }
            None => {
                debug!(target, "NOTIFY without a status line");
                None
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
                // Re-INVITE without SDP: we offer in the 200, the answer comes
                // in the ACK; an encrypted call is offered encrypted again.
                let secure = self.negotiated.as_ref().is_some_and(|n| n.srtp.is_some());
                local.srtp.offers_secure = secure || self.srtp == SrtpPolicy::Required;
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
        let was_secure = self.negotiated.as_ref().is_some_and(|n| n.srtp.is_some());
        let parsed = sdp::parse(&req.body)
            .and_then(|o| o.negotiate(&allowed, None, &local.srtp).map(|n| (o, n)))
            .and_then(|(o, n)| {
                // An encrypted call is not turned into a plain one.
                if was_secure && n.srtp.is_none() {
                    return Err(SdpError::Encryption("plain RTP offered on an encrypted call".into()));
                }
                Ok((o, n))
            });
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
            Err(e) => {
                debug!(reason = %e, "re-INVITE not acceptable");
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
        end_dialog(&self.invite).await?;
        self.ended = Some(EndReason {
            by: Party::Local,
            reason: "bye".into(),
            status: None,
        });
        Ok(())
    }
}

impl Drop for CallDialog {
    fn drop(&mut self) {
        release_dialog(self.dialog_layer.clone(), self.invite.clone(), self.ended.is_none());
    }
}
