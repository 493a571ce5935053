//! Call transfer by REFER (RFC 3515; the "transfer with verification" of
//! RFC 5589 §7): voxline asks the far end to call the target, follows the
//! NOTIFYs that report that new call, and ends its own leg only once the
//! target answered. When the REFER is refused, or the new call fails, the
//! call stays up with voxline, so the agent can say so and go on.

use crate::call::EndReason;

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The target answered the far end (a NOTIFY reported 2xx) and voxline
    /// hung up its leg; or the far end ended our leg itself after accepting
    /// the REFER.
    Transferred,
    /// The far end refused the REFER (its status) or never answered it
    /// (`None`). The call is still up.
    Refused {
        /// The final response to the REFER, when one came.
        status: Option<u16>,
    },
    /// The far end accepted the REFER but its call to the target failed
    /// (the status its NOTIFY reported) or did not finish in time (`None`).
    /// The call is still up.
    TargetFailed {
        /// The final status of the new call, when reported.
        status: Option<u16>,
    },
    /// The call ended before the transfer got anywhere.
    Ended(EndReason),
}

impl TransferOutcome {
    /// A short name for call records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            TransferOutcome::Transferred => "transferred",
            TransferOutcome::Refused { .. } => "transfer_refused",
            TransferOutcome::TargetFailed { .. } => "transfer_failed",
            TransferOutcome::Ended(_) => "ended_during_transfer",
        }
    }
}

/// The status line of a `message/sipfrag` NOTIFY body (`SIP/2.0 180 Ringing`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..=699).contains(&code).then_some(code)
}

/// Whether a `Subscription-State` value ends the implicit subscription.
pub fn subscription_terminated(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"))
}

/// Whether `target` is a SIP URI voxline can put in a Refer-To.
pub fn valid_target(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    (lower.starts_with("sip:") || lower.starts_with("sips:"))
        && target.len() > 4
        && !target.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"sip/2.0 486 Busy Here\r\nContact: x\r\n"), Some(486));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(b"\xff\xfe"), None);
    }

    #[test]
    fn subscription_states() {
        assert!(subscription_terminated("terminated;reason=noresource"));
        assert!(subscription_terminated(" Terminated"));
        assert!(!subscription_terminated("active;expires=60"));
    }

    #[test]
    fn refer_targets() {
        assert!(valid_target("sip:advisor@10.0.0.5:5070"));
        assert!(valid_target("sips:queue@pbx.example.com"));
        assert!(!valid_target("tel:+15551234"));
        assert!(!valid_target("sip:"));
        assert!(!valid_target("sip:a b@host"));
        assert!(!valid_target("sip:a@host>;x=<y"));
    }
}
