//! Outbound calls: INVITE with our offer (directly or via a trunk), digest
//! challenges answered, provisional and early media reported, CANCEL when the
//! ring timeout passes, BYE at the end.

use crate::call::{CallEvent, EndReason};
use crate::dialog::{CallDialog, DialogParts, Role};
use crate::endpoint::{parse_host_port, SipEndpoint};
use crate::sdes::SrtpLocal;
use crate::sdp::{self, AudioCodec, Direction, LocalSdp, Negotiated};
use crate::transfer::TransferOutcome;
use crate::SipError;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::Uri;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::{debug, info, warn};

/// What to call and how.
#[derive(Debug, Clone)]
pub struct PlaceCall {
    /// `sip:user@host[:port]`, or a bare number when a trunk is given.
    pub target: String,
    /// From URI (else the trunk's caller-ID, else `sip:voxline@<local>`).
    pub from: Option<String>,
    /// Send through this trunk (its host, proxy, credentials, limits).
    pub trunk: Option<String>,
    /// voxline's RTP address for the offer.
    pub media: SocketAddr,
    /// CANCEL after this long without an answer (else the endpoint's default).
    pub ring_timeout: Option<Duration>,
    /// Call-ID to use (else a random one), so a record can be written first.
    pub call_id: Option<String>,
    /// Abandons the call while it rings (CANCEL, as at the ring timeout):
    /// e.g. the caller it was placed for hung up.
    pub abandon: Option<tokio_util::sync::CancellationToken>,
}

/// An answered outbound call.
pub struct OutboundCall {
    /// SIP Call-ID.
    pub call_id: String,
    /// Where the INVITE went.
    pub destination: String,
    /// The trunk used, if any.
    pub trunk: Option<String>,
    /// The answer's negotiated media.
    pub negotiated: Negotiated,
    /// Whether early media (SDP in a 18x) was seen before the answer.
    pub early_media: bool,
    /// voxline's From URI.
    pub from: String,
    dialog: CallDialog,
}

impl std::fmt::Debug for OutboundCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundCall").field("call_id", &self.call_id).finish()
    }
}

/// Why an outbound call did not connect.
#[derive(Debug, Clone)]
pub struct CallFailure {
    /// SIP Call-ID (for the record).
    pub call_id: String,
    /// The final status (487 after our CANCEL, 486 busy, 404...).
    pub status: Option<u16>,
    /// `no_answer`, `rejected`, `auth_failed`, `error`...
    pub reason: String,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({s})", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// How long the final response to a cancelled INVITE is waited for (64*T1).
const CANCEL_WAIT: Duration = Duration::from_secs(32);

fn uri(s: &str) -> Result<Uri, SipError> {
    Uri::try_from(s).map_err(|e| SipError::Address(s.to_string(), e.to_string()))
}

impl SipEndpoint {
    /// Places a call and waits until it is answered, rejected, or the ring
    /// timeout passes (then CANCEL). `on_progress` sees each 18x status.
    pub async fn place_call(
        &self,
        req: PlaceCall,
        on_progress: impl Fn(u16, Option<&Negotiated>) + Send,
    ) -> Result<Result<OutboundCall, CallFailure>, SipError> {
        let router = self.router();
        let trunk = match &req.trunk {
            Some(name) => Some(
                router
                    .trunk(name)
                    .ok_or_else(|| SipError::Call(format!("no trunk named {name:?}")))?,
            ),
            None => None,
        };
        let local = self
            .first_socket_addr()
            .ok_or_else(|| SipError::Call("no SIP listener".into()))?;
        if self.is_draining() {
            return Err(SipError::Call("the node is stopping: no call placed".into()));
        }
        let mut permit = self
            .node_calls
            .take()
            .ok_or_else(|| SipError::Call("the node's calls are all up ([sip] max_calls): no call placed".into()))?;
        if let Some(t) = &trunk {
            permit = permit.with(
                t.admit()
                    .map_err(|l| SipError::Call(format!("trunk {} limit reached: {l:?}", t.config.name)))?,
            );
        }
        let permit = Some(permit);

        // Target URI and where the request is physically sent.
        let (callee, destination) = match &trunk {
            Some(t) => {
                let host =
                    t.config.host.clone().ok_or_else(|| {
                        SipError::Call(format!("trunk {} has no host to send calls to", t.config.name))
                    })?;
                let target = if req.target.starts_with("sip:") || req.target.starts_with("sips:") {
                    req.target.clone()
                } else {
                    format!("sip:{}@{host}", req.target)
                };
                let via = t.config.outbound_proxy.clone().unwrap_or(host);
                (uri(&target)?, Some(via))
            }
            None => (uri(&req.target)?, None),
        };
        let destination = match destination {
            Some(d) => {
                let hp = parse_host_port(&d).map_err(|e| SipError::Address(d.clone(), e))?;
                let transport = match trunk.as_ref().map(|t| t.config.transport) {
                    Some(crate::config::TransportKind::Tcp) => rsipstack::sip::Transport::Tcp,
                    Some(crate::config::TransportKind::Tls) => rsipstack::sip::Transport::Tls,
                    _ => rsipstack::sip::Transport::Udp,
                };
                Some(SipAddr::new(transport, hp))
            }
            None => None,
        };
        let from = req
            .from
            .clone()
            .or_else(|| trunk.as_ref().and_then(|t| t.config.caller_id.clone()))
            .map(|f| {
                if f.starts_with("sip:") || f.starts_with("sips:") {
                    f
                } else {
                    format!("sip:{f}@{}", local.ip())
                }
            })
            .unwrap_or_else(|| format!("sip:voxline@{local}"));
        let credential = trunk.as_ref().and_then(|t| {
            let c = &t.config;
            c.username.as_ref().map(|u| Credential {
                username: u.clone(),
                password: c.password.clone().unwrap_or_default(),
                realm: None,
                auth_username: c.auth_username.clone(),
            })
        });

        let codecs: Vec<AudioCodec> = self.codecs().to_vec();
        let local_sdp = LocalSdp {
            addr: req.media.ip(),
            port: req.media.port(),
            session_id: u64::from(rand::random::<u32>()),
            version: 1,
            srtp: SrtpLocal::new(self.srtp_policy()),
        };
        let offer = sdp::offer(&local_sdp, &codecs, Direction::SendRecv);
        let contact = uri(&format!("sip:voxline@{local}"))?;
        let opt = InviteOption {
            caller: uri(&from)?,
            callee,
            destination: destination.clone(),
            content_type: Some("application/sdp".into()),
            offer: Some(offer.clone().into_bytes()),
            contact,
            credential,
            call_id: req.call_id.clone(),
            ..Default::default()
        };
        let dialog_layer = self.dialog_layer();
        let (state_tx, mut states) = dialog_layer.new_dialog_state_channel();
        let (dialog, mut join) = dialog_layer.do_invite_async(opt, state_tx)?;
        let call_id = dialog.id().call_id.clone();
        let dest_text = destination.map(|d| d.to_string()).unwrap_or_else(|| req.target.clone());
        info!(call_id = %call_id, target = %req.target, destination = %dest_text, "placing call");

        let ring = tokio::time::sleep(req.ring_timeout.unwrap_or(self.ring_timeout()));
        tokio::pin!(ring);
        // After a CANCEL the INVITE's final response (487) is waited for
        // 64*T1 at most (RFC 3261 9.1): a far end that never sends one
        // does not hold the call, its media port and its trunk slot.
        let gone = tokio::time::sleep(Duration::MAX);
        tokio::pin!(gone);
        let abandon = req.abandon.clone().unwrap_or_default();
        let mut early: Option<Negotiated> = None;
        let mut cancelled = false;
        let mut abandoned = false;
        let result = loop {
            tokio::select! {
                r = &mut join => break r,
                _ = &mut ring, if !cancelled => {
                    info!(call_id = %call_id, "no answer before the ring timeout: CANCEL");
                    cancelled = true;
                    gone.as_mut().reset(tokio::time::Instant::now() + CANCEL_WAIT);
                    if let Err(e) = dialog.cancel().await {
                        warn!(error = %e, "CANCEL failed");
                    }
                }
                _ = abandon.cancelled(), if !cancelled => {
                    info!(call_id = %call_id, "call abandoned while ringing: CANCEL");
                    cancelled = true;
                    abandoned = true;
                    gone.as_mut().reset(tokio::time::Instant::now() + CANCEL_WAIT);
                    if let Err(e) = dialog.cancel().await {
                        warn!(error = %e, "CANCEL failed");
                    }
                }
                _ = &mut gone, if cancelled => {
                    warn!(call_id = %call_id, "no final response to the cancelled INVITE: giving it up");
                    dialog_layer.remove_dialog(&dialog.id());
                    let reason = if abandoned { "abandoned" } else { "no_answer" };
                    return Ok(Err(CallFailure {
                        call_id: call_id.clone(),
                        status: None,
                        reason: reason.to_string(),
                    }));
                }
                Some(state) = states.recv() => {
                    if let DialogState::Early(_, resp) = state {
                        let status = u16::from(resp.status_code.clone());
                        if !resp.body.is_empty() {
                            if let Ok(n) = sdp::parse(&resp.body).and_then(|s| s.negotiate(&codecs, Some(&codecs), &local_sdp.srtp)) {
                                early = Some(n);
                            }
                        }
                        debug!(status, early_media = early.is_some(), "progress");
                        on_progress(status, early.as_ref());
                    }
                }
            }
        };
        let failure = |status: Option<u16>, reason: &str| CallFailure {
            call_id: call_id.clone(),
            status,
            reason: reason.to_string(),
        };
        let (_, resp) = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Ok(Err(failure(None, &format!("error: {e}"))));
            }
            Err(e) => return Ok(Err(failure(None, &format!("error: {e}")))),
        };
        let Some(resp) = resp else {
            let reason = match (abandoned, cancelled) {
                (true, _) => "abandoned",
                (false, true) => "no_answer",
                (false, false) => "no_response",
            };
            return Ok(Err(failure(None, reason)));
        };
        let status = u16::from(resp.status_code.clone());
        if !(200..300).contains(&status) {
            let reason = match status {
                487 if abandoned => "abandoned",
                487 if cancelled => "no_answer",
                401 | 407 => "auth_failed",
                486 | 600 => "busy",
                _ => "rejected",
            };
            return Ok(Err(failure(Some(status), reason)));
        }
        let negotiated = match sdp::parse(&resp.body).and_then(|s| s.negotiate(&codecs, Some(&codecs), &local_sdp.srtp))
        {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "answer SDP unusable: BYE");
                dialog.bye().await.ok();
                dialog_layer.remove_dialog(&dialog.id());
                return Ok(Err(failure(Some(488), "bad_answer_sdp")));
            }
        };
        info!(call_id = %call_id, codec = negotiated.codec.name(), "call answered");
        let mut dialog = CallDialog::new(DialogParts {
            role: Role::Outbound,
            local_uri: from.clone(),
            invite: dialog,
            states,
            dialog_layer,
            codecs,
            srtp: self.srtp_policy(),
            permit,
        });
        dialog.set_answered(local_sdp, offer, negotiated.clone());
        Ok(Ok(OutboundCall {
            call_id,
            destination: dest_text,
            trunk: req.trunk.clone(),
            negotiated,
            early_media: early.is_some(),
            from,
            dialog,
        }))
    }
}

impl OutboundCall {
    /// Waits for the next event (the far end hanging up, DTMF by INFO, a
    /// re-INVITE: see [`CallDialog::next_event`]).
    pub async fn next_event(&mut self) -> CallEvent {
        self.dialog.next_event().await
    }

    /// Transfers the call by REFER (see [`CallDialog::transfer`]).
    pub async fn transfer(&mut self, target: &str, wait: Duration) -> Result<TransferOutcome, SipError> {
        self.dialog.transfer(target, wait).await
    }

    /// Sends BYE.
    pub async fn hangup(&mut self) -> Result<(), SipError> {
        self.dialog.hangup().await
    }

    /// How the call ended, once it has.
    pub fn ended(&self) -> Option<&EndReason> {
        self.dialog.ended()
    }

    /// The call's dialog, for what follows the answer (a leg, a bridge).
    pub fn into_dialog(self) -> CallDialog {
        self.dialog
    }
}
