//! Silence on the caller's side while the agent waits for them: after
//! `reprompt_ms` the agent asks again (a flow step its question, else the
//! persona's reprompt line); after `hangup_ms` in all it says goodbye and
//! hangs up. A digit entry gets `reprompt_ms` each time it is asked for.

use std::time::Duration;
use tokio::time::Instant;

/// What the agent does when the caller stayed silent too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceStep {
    /// The digit entry being collected timed out (asked again by the flow).
    DigitsTimedOut,
    /// Ask again.
    Reprompt,
    /// Say goodbye and hang up.
    Goodbye,
}

/// The silence policy of one call.
#[derive(Debug, Clone)]
pub struct Silence {
    reprompt: Duration,
    hangup: Duration,
    since: Instant,
    reprompted: bool,
}

impl Silence {
    /// Reprompt after `reprompt_ms`, hang up after `hangup_ms` in all.
    pub fn new(reprompt_ms: u64, hangup_ms: u64) -> Silence {
        Silence {
            reprompt: Duration::from_millis(reprompt_ms),
            hangup: Duration::from_millis(hangup_ms),
            since: Instant::now(),
            reprompted: false,
        }
    }

    /// Something happened (a key, the agent's speech ended): the silence
    /// counts from now.
    pub fn restart(&mut self) {
        self.since = Instant::now();
    }

    /// The caller took a turn: silence counts from now, and the next
    /// silence gets a reprompt again.
    pub fn caller_turn(&mut self) {
        self.since = Instant::now();
        self.reprompted = false;
    }

    /// The silence allowed now (`collecting`: a digit entry is awaited).
    pub fn limit(&self, collecting: bool) -> Duration {
        if self.reprompted && !collecting {
            self.hangup.saturating_sub(self.reprompt)
        } else {
            self.reprompt
        }
    }

    /// Time left before the silence is too long.
    pub fn due_in(&self, collecting: bool) -> Duration {
        self.limit(collecting).saturating_sub(self.since.elapsed())
    }

    /// The silence was too long: what to do (the silence counts again from now).
    pub fn expired(&mut self, collecting: bool) -> SilenceStep {
        self.since = Instant::now();
        if collecting {
            SilenceStep::DigitsTimedOut
        } else if self.reprompted {
            SilenceStep::Goodbye
        } else {
            self.reprompted = true;
            SilenceStep::Reprompt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reprompt_then_goodbye_and_a_turn_starts_over() {
        let mut s = Silence::new(8000, 20000);
        assert_eq!(s.limit(false), Duration::from_secs(8));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(s.due_in(false), Duration::from_secs(5));
        assert_eq!(s.expired(false), SilenceStep::Reprompt);
        assert_eq!(s.limit(false), Duration::from_secs(12), "the rest of hangup_ms");
        assert_eq!(
            s.limit(true),
            Duration::from_secs(8),
            "a digit entry gets the reprompt time"
        );
        assert_eq!(s.expired(true), SilenceStep::DigitsTimedOut);
        assert_eq!(s.expired(false), SilenceStep::Goodbye);
        s.caller_turn();
        assert_eq!(s.expired(false), SilenceStep::Reprompt, "a turn resets it");
    }
}
