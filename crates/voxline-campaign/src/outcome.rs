//! How an attempt ended and what follows for the contact: a final
//! disposition, or another attempt after the campaign's delay for that
//! kind of outcome.

use crate::settings::RetryPolicy;
use voxline_store::{AttemptEnd, NextStep};

/// Dispositions the dialer gives on its own (a pack's flow adds its own,
/// such as `completed` or `declined`; the built-in opt-out is `opted_out`).
pub mod disposition {
    /// Answered; the conversation gave no outcome.
    pub const ANSWERED: &str = "answered";
    /// Busy (486, 600) and not retried.
    pub const BUSY: &str = "busy";
    /// Not answered before the ring timeout (or 408, 480) and not retried.
    pub const NO_ANSWER: &str = "no_answer";
    /// An answering machine, no message left.
    pub const MACHINE: &str = "machine";
    /// An answering machine, the campaign's message left after its beep.
    pub const VOICEMAIL_LEFT: &str = "voicemail_left";
    /// Refused by the callee or the network (403, 603): final.
    pub const REJECTED: &str = "rejected";
    /// The call failed (5xx, no response, an error) and is not retried.
    pub const FAILED: &str = "failed";
    /// Not a number in service (404, 410, 484, 485, 604).
    pub const INVALID_NUMBER: &str = "invalid_number";
    /// On a do-not-call list at dial time.
    pub const DNC: &str = "dnc";
    /// Its calling window does not open again before the campaign's last day.
    pub const WINDOW_EXPIRED: &str = "window_expired";
    /// Retried up to the campaign's maximum attempts.
    pub const ATTEMPTS_EXHAUSTED: &str = "attempts_exhausted";
    /// Answered, and the node stopped during the call before any outcome.
    pub const INTERRUPTED: &str = "interrupted";
    /// The caller asked not to be called again.
    pub const OPTED_OUT: &str = "opted_out";
}

/// The placer's reason for a call it never sent (the node shut down
/// before its INVITE left): the attempt is taken back, not counted.
pub const NOT_PLACED: &str = "not_placed";

/// How one attempt went, as the call's placer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// It was answered.
    pub answered: bool,
    /// Why it ended or did not connect (`bye`, `busy`, `no_answer`,
    /// `rejected`, `abandoned`, `error: …`).
    pub reason: String,
    /// The final SIP status of a call that did not connect.
    pub status: Option<u16>,
    /// The conversation's outcome on an answered call.
    pub outcome: Option<String>,
    /// The far end was an answering machine.
    pub machine: bool,
}

/// Outcomes that may be tried again, each after its own delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// Busy.
    Busy,
    /// No answer.
    NoAnswer,
    /// An answering machine.
    Machine,
    /// A failure.
    Failed,
}

impl Retryable {
    /// The attempt's result and the final disposition when not retried.
    pub fn name(self) -> &'static str {
        match self {
            Retryable::Busy => disposition::BUSY,
            Retryable::NoAnswer => disposition::NO_ANSWER,
            Retryable::Machine => disposition::MACHINE,
            Retryable::Failed => disposition::FAILED,
        }
    }

    fn delay_s(self, policy: &RetryPolicy) -> Option<u64> {
        match self {
            Retryable::Busy => policy.busy_s,
            Retryable::NoAnswer => policy.no_answer_s,
            Retryable::Machine => policy.machine_s,
            Retryable::Failed => policy.failed_s,
        }
    }
}

/// What an attempt's end means: final, or worth another attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Final: the contact's disposition, and the attempt's result.
    Final {
        /// The disposition.
        disposition: String,
        /// The attempt's result.
        result: &'static str,
    },
    /// Worth trying again.
    Retry(Retryable),
}

/// Reads an attempt's end.
pub fn verdict(p: &Placed) -> Verdict {
    if p.answered && p.machine {
        if p.outcome.as_deref() == Some(disposition::VOICEMAIL_LEFT) {
            return Verdict::Final {
                disposition: disposition::VOICEMAIL_LEFT.into(),
                result: "machine",
            };
        }
        return Verdict::Retry(Retryable::Machine);
    }
    if p.answered {
        return Verdict::Final {
            disposition: p.outcome.clone().unwrap_or_else(|| disposition::ANSWERED.into()),
            result: "answered",
        };
    }
    let fin = |d: &str, result: &'static str| Verdict::Final {
        disposition: d.into(),
        result,
    };
    match (p.reason.as_str(), p.status) {
        (_, Some(404 | 410 | 484 | 485 | 604)) => fin(disposition::INVALID_NUMBER, "invalid_number"),
        (_, Some(403 | 603)) => fin(disposition::REJECTED, "rejected"),
        ("busy", _) | (_, Some(486 | 600)) => Verdict::Retry(Retryable::Busy),
        ("no_answer", _) | (_, Some(408 | 480)) => Verdict::Retry(Retryable::NoAnswer),
        _ => Verdict::Retry(Retryable::Failed),
    }
}

/// The attempt's record and the contact's next step after attempt number
/// `attempt` ended as `p`, at `now_ms`.
pub fn after_attempt(p: &Placed, attempt: u32, policy: &RetryPolicy, now_ms: i64) -> (AttemptEnd, NextStep) {
    let (result, next) = match verdict(p) {
        Verdict::Final { disposition, result } => (result, NextStep::Final { disposition }),
        Verdict::Retry(kind) => {
            let next = match kind.delay_s(policy) {
                None => NextStep::Final {
                    disposition: kind.name().into(),
                },
                Some(_) if attempt >= policy.max_attempts => NextStep::Final {
                    disposition: disposition::ATTEMPTS_EXHAUSTED.into(),
                },
                Some(delay) => NextStep::Retry {
                    at: now_ms.saturating_add((delay as i64).saturating_mul(1000)),
                },
            };
            (kind.name(), next)
        }
    };
    let end = AttemptEnd {
        result: result.into(),
        sip_status: p.status,
        outcome: p.outcome.clone(),
    };
    (end, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str, status: Option<u16>) -> Placed {
        Placed {
            answered: false,
            reason: reason.into(),
            status,
            outcome: None,
            machine: false,
        }
    }

    fn final_of(p: &Placed, attempt: u32) -> Option<String> {
        match after_attempt(p, attempt, &RetryPolicy::default(), 0).1 {
            NextStep::Final { disposition } => Some(disposition),
            NextStep::Retry { .. } => None,
        }
    }

    #[test]
    fn sip_outcomes_map_to_dispositions_or_retries() {
        assert_eq!(
            final_of(&failed("rejected", Some(404)), 1).as_deref(),
            Some("invalid_number")
        );
        assert_eq!(
            final_of(&failed("rejected", Some(604)), 1).as_deref(),
            Some("invalid_number")
        );
        assert_eq!(final_of(&failed("rejected", Some(603)), 1).as_deref(), Some("rejected"));
        assert_eq!(verdict(&failed("busy", Some(486))), Verdict::Retry(Retryable::Busy));
        assert_eq!(verdict(&failed("no_answer", None)), Verdict::Retry(Retryable::NoAnswer));
        assert_eq!(
            verdict(&failed("rejected", Some(480))),
            Verdict::Retry(Retryable::NoAnswer)
        );
        assert_eq!(
            verdict(&failed("rejected", Some(503))),
            Verdict::Retry(Retryable::Failed)
        );
        assert_eq!(verdict(&failed("no_response", None)), Verdict::Retry(Retryable::Failed));
    }

    #[test]
    fn an_answered_call_takes_the_conversation_s_outcome() {
        let mut p = Placed {
            answered: true,
            reason: "bye".into(),
            status: None,
            outcome: Some("completed".into()),
            machine: false,
        };
        assert_eq!(final_of(&p, 1).as_deref(), Some("completed"));
        p.outcome = None;
        assert_eq!(final_of(&p, 1).as_deref(), Some("answered"));
        // A machine is final unless the campaign retries machines; a
        // message left is final.
        p.machine = true;
        assert_eq!(final_of(&p, 1).as_deref(), Some("machine"));
        p.outcome = Some("voicemail_left".into());
        assert_eq!(final_of(&p, 1).as_deref(), Some("voicemail_left"));
    }

    #[test]
    fn retries_wait_their_delay_up_to_the_last_attempt() {
        let busy = failed("busy", Some(486));
        let (end, next) = after_attempt(&busy, 1, &RetryPolicy::default(), 1_000);
        assert_eq!(end.result, "busy");
        assert_eq!(end.sip_status, Some(486));
        assert_eq!(next, NextStep::Retry { at: 601_000 });
        assert_eq!(final_of(&busy, 3).as_deref(), Some("attempts_exhausted"));
        let policy = RetryPolicy {
            busy_s: None,
            ..RetryPolicy::default()
        };
        let (_, next) = after_attempt(&busy, 1, &policy, 0);
        assert_eq!(
            next,
            NextStep::Final {
                disposition: "busy".into()
            }
        );
    }
}
