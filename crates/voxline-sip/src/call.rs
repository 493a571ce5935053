//! Types shared by inbound and outbound calls.

use crate::sdp::Negotiated;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TransactionHandle};
use rsipstack::sip::{Header, Request, StatusCode};
use std::net::SocketAddr;

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The far end (the caller on inbound calls, the callee on outbound).
    Remote,
    /// voxline.
    Local,
}

impl Party {
    /// Name stored in call records for an inbound call.
    pub fn inbound_name(self) -> &'static str {
        match self {
            Party::Remote => "caller",
            Party::Local => "voxline",
        }
    }
    /// Name stored in call records for an outbound call.
    pub fn outbound_name(self) -> &'static str {
        match self {
            Party::Remote => "callee",
            Party::Local => "voxline",
        }
    }
}

/// How and why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReason {
    /// Who ended it.
    pub by: Party,
    /// `bye`, `cancel`, `rejected`, `ack_timeout`, `no_answer`, `error`...
    pub reason: String,
    /// The SIP status that ended it, when one did.
    pub status: Option<u16>,
}

/// Something that happened on an established (or ringing) call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A re-INVITE or UPDATE changed the media (hold, unhold, new address).
    MediaChanged(Negotiated),
    /// A DTMF digit arrived in a SIP INFO.
    Dtmf {
        /// The digit (0-9, *, #, A-D).
        digit: char,
        /// Duration in ms, when given.
        duration_ms: Option<u32>,
    },
    /// The call ended.
    Ended(EndReason),
}

/// What is known about a call from its INVITE.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// SIP Call-ID.
    pub call_id: String,
    /// From URI.
    pub from: String,
    /// To URI.
    pub to: String,
    /// The dialled user part (R-URI user, else To user).
    pub dialled: String,
    /// Where the request came from (inbound) or went to (outbound).
    pub remote: SocketAddr,
    /// Trunk name (`users` for authenticated phones).
    pub trunk: String,
}

/// Ends what is left of a dialog when its call object is dropped: BYE when
/// it is up, 480 while it still rings, nothing when it is over; then removes
/// it from the dialog layer.
pub(crate) fn release_dialog(
    layer: std::sync::Arc<rsipstack::dialog::dialog_layer::DialogLayer>,
    dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    still_up: bool,
) {
    let id = dialog.id();
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        layer.remove_dialog(&id);
        return;
    };
    rt.spawn(async move {
        if still_up {
            end_dialog(&dialog).await.ok();
        }
        layer.remove_dialog(&id);
    });
}

/// Ends a dialog from our side: nothing when it is over, 480 while it still
/// rings, BYE once it is up.
pub(crate) async fn end_dialog(dialog: &rsipstack::dialog::invite_dialog::InviteDialog) -> rsipstack::Result<()> {
    match dialog.state() {
        DialogState::Terminated(..) => Ok(()),
        DialogState::Calling(..) | DialogState::Trying(..) | DialogState::Early(..) => {
            dialog.reject(Some(StatusCode::TemporarilyUnavailable), None)
        }
        _ => dialog.bye().await,
    }
}

/// The request's Content-Type value ("" when absent).
pub(crate) fn content_type(req: &Request) -> String {
    req.headers
        .iter()
        .find_map(|h| match h {
            Header::ContentType(c) => Some(c.value().to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The next state of a call's dialog. A closed channel ends the call (with
/// an `error` reason); a call already ended returns its end again.
pub(crate) async fn next_state(
    states: &mut DialogStateReceiver,
    ended: &mut Option<EndReason>,
) -> Result<DialogState, CallEvent> {
    if let Some(e) = ended {
        return Err(CallEvent::Ended(e.clone()));
    }
    match states.recv().await {
        Some(s) => Ok(s),
        None => {
            let e = EndReason {
                by: Party::Local,
                reason: "error".into(),
                status: None,
            };
            *ended = Some(e.clone());
            Err(CallEvent::Ended(e))
        }
    }
}

/// Answers an in-dialog INFO with 200; a DTMF body becomes an event.
pub(crate) async fn on_info(req: &Request, handle: TransactionHandle) -> Option<CallEvent> {
    handle.reply(StatusCode::OK).await.ok();
    parse_dtmf_info(&content_type(req), &req.body).map(|(digit, duration_ms)| CallEvent::Dtmf { digit, duration_ms })
}

/// Parses a DTMF digit out of a SIP INFO body
/// (`application/dtmf-relay` `Signal=5\r\nDuration=160` or `application/dtmf` `5`).
pub fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    let valid = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else { continue };
            match k.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = v.trim().chars().next().map(|c| c.to_ascii_uppercase()),
                "duration" => duration = v.trim().parse().ok(),
                _ => {}
            }
        }
        digit.filter(|&c| valid(c)).map(|d| (d, duration))
    } else if ct.starts_with("application/dtmf") {
        let t = text.trim();
        // RFC 2833 event codes 10/11 are * and #.
        let d = match t {
            "10" => '*',
            "11" => '#',
            _ => t.chars().next()?.to_ascii_uppercase(),
        };
        (valid(d) && (t.len() == 1 || t == "10" || t == "11")).then_some((d, None))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_and_plain_dtmf_bodies() {
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal= #\r\n"),
            Some(('#', None))
        );
        assert_eq!(parse_dtmf_info("application/dtmf", b"11"), Some(('#', None)));
        assert_eq!(parse_dtmf_info("application/dtmf", b"7\r\n"), Some(('7', None)));
        assert_eq!(parse_dtmf_info("application/dtmf-relay", b"Signal=X\r\n"), None);
        assert_eq!(parse_dtmf_info("text/plain", b"5"), None);
        assert_eq!(parse_dtmf_info("application/dtmf", b"\xff"), None);
    }
}
