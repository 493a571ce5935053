//! An inbound call as its handler sees it: ring, answer (offer/answer in the
//! INVITE/200, or a late offer answered in the ACK); once answered, its
//! [`CallDialog`] follows re-INVITEs and INFO, transfers and hangs up.

use crate::call::{CallEvent, CallInfo, EndReason, Party};
use crate::dialog::{end_reason, sdp_headers, CallDialog};
use crate::sdes::SrtpLocal;
use crate::sdp::{self, Direction, LocalSdp, Negotiated, RemoteSdp};
use crate::transfer::TransferOutcome;
use crate::SipError;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::StatusCode;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::{info, warn};

/// One inbound call, owned by its handler.
pub struct InboundCall {
    /// What the INVITE said.
    pub info: CallInfo,
    offer: Option<RemoteSdp>,
    dialog: CallDialog,
}

impl std::fmt::Debug for InboundCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundCall").field("info", &self.info).finish()
    }
}

impl InboundCall {
    pub(crate) fn new(info: CallInfo, offer: Option<RemoteSdp>, dialog: CallDialog) -> InboundCall {
        InboundCall { info, offer, dialog }
    }

    /// Whether the INVITE carried an SDP offer (false = late offer).
    pub fn has_offer(&self) -> bool {
        self.offer.is_some()
    }

    /// The negotiated media, once answered.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.dialog.negotiated()
    }

    /// How the call ended, once it has.
    pub fn ended(&self) -> Option<&EndReason> {
        self.dialog.ended()
    }

    /// The call's dialog, for what follows the answer (a leg, a bridge).
    pub fn into_dialog(self) -> CallDialog {
        self.dialog
    }

    /// Sends 180 Ringing.
    pub fn ringing(&self) -> Result<(), SipError> {
        self.dialog.invite.ringing(None, None)?;
        Ok(())
    }

    /// Refuses the call with `status` (e.g. 486, 603).
    pub fn reject(&mut self, status: u16) -> Result<(), SipError> {
        self.dialog.invite.reject(Some(StatusCode::from(status)), None)?;
        self.dialog.ended = Some(EndReason {
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
            srtp: SrtpLocal::new(self.dialog.srtp),
        };
        let codecs = &self.dialog.codecs;
        let (body, pending) = match &self.offer {
            Some(offer) => {
                let neg = offer
                    .negotiate(codecs, None, &local.srtp)
                    .map_err(|e| SipError::Call(e.to_string()))?;
                (sdp::answer(&local, offer, &neg), Some(neg))
            }
            None => (sdp::offer(&local, codecs, Direction::SendRecv), None),
        };
        self.dialog
            .invite
            .accept(Some(sdp_headers()), Some(body.clone().into_bytes()))?;
        self.dialog.last_sdp = body.clone();
        loop {
            match self.dialog.states.recv().await {
                Some(DialogState::Confirmed(..)) => break,
                Some(DialogState::Terminated(_, r)) => {
                    let why = end_reason(&r);
                    self.dialog.ended = Some(why.clone());
                    return Err(SipError::Call(format!("call ended before ACK: {}", why.reason)));
                }
                Some(_) => continue,
                None => return Err(SipError::Call("dialog closed".into())),
            }
        }
        let neg = match pending {
            Some(n) => n,
            // Read with the key our offer in the 200 carried.
            None => match self.dialog.answer_from_ack(&local.srtp) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "late-offer answer in ACK unusable: hanging up");
                    self.hangup().await.ok();
                    self.dialog.ended = Some(EndReason {
                        by: Party::Local,
                        reason: "bad_ack_sdp".into(),
                        status: Some(488),
                    });
                    return Err(SipError::Call(e.to_string()));
                }
            },
        };
        self.dialog.set_answered(local, body, neg.clone());
        info!(codec = neg.codec.name(), remote_rtp = %neg.remote_rtp, "call answered");
        Ok(neg)
    }

    /// Waits for the next thing that happens on the call (see [`CallDialog::next_event`]).
    pub async fn next_event(&mut self) -> CallEvent {
        self.dialog.next_event().await
    }

    /// Transfers the call by REFER (see [`CallDialog::transfer`]).
    pub async fn transfer(&mut self, target: &str, wait: Duration) -> Result<TransferOutcome, SipError> {
        self.dialog.transfer(target, wait).await
    }

    /// Hangs up: BYE once answered, 480 while still ringing.
    pub async fn hangup(&mut self) -> Result<(), SipError> {
        self.dialog.hangup().await
    }
}
