//! How long an agent route's answers take to be ready, from the start of
//! the model's answer to its first phrase's audio, and how many are being
//! prepared at once. Answers share the CPU: each one prepared at the same
//! time makes the others later. From the recent answers the pace learns
//! what one more answer in preparation costs; times the answers being
//! prepared now, that is what a caller waiting now should expect. When it
//! is more than the hold line's wait (the model under load), the hold line
//! is said early, while the answer is prepared, instead of after `hold_ms`
//! of silence (decision 0028).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Answers remembered.
const KEEP: usize = 16;
/// Answers needed before the pace predicts anything.
const ENOUGH: usize = 3;
/// An answer older than this no longer tells the pace.
const FRESH: Duration = Duration::from_secs(300);

/// The answers of one route: those being prepared, and what the recent
/// ones cost.
#[derive(Debug, Default)]
pub struct ReplyPace {
    in_flight: AtomicUsize,
    /// When each recent answer was ready, and its wait divided by the
    /// answers prepared with it.
    recent: Mutex<VecDeque<(Instant, Duration)>>,
}

/// One answer being prepared: counted until its audio is ready or it is
/// dropped (cancelled, failed).
#[derive(Debug)]
pub struct PaceTicket {
    pace: Arc<ReplyPace>,
    started: Instant,
    /// Answers in preparation when it started, itself included.
    crowd: usize,
    open: bool,
}

impl ReplyPace {
    /// A model answer starts being prepared.
    pub fn start(self: &Arc<Self>) -> PaceTicket {
        let crowd = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        PaceTicket {
            pace: Arc::clone(self),
            started: Instant::now(),
            crowd,
            open: true,
        }
    }

    fn observe_at(&self, now: Instant, cost: Duration) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        recent.push_back((now, cost));
        while recent.len() > KEEP {
            recent.pop_front();
        }
    }

    /// What a caller waiting for an answer now should expect: the recent
    /// cost of one answer (upper quartile) times the answers in
    /// preparation; none before three answers were ready in the last five
    /// minutes.
    pub fn expected(&self) -> Option<Duration> {
        self.expected_at(Instant::now())
    }

    fn expected_at(&self, now: Instant) -> Option<Duration> {
        let recent = self.recent.lock().ok()?;
        let mut fresh: Vec<Duration> = recent
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= FRESH)
            .map(|&(_, cost)| cost)
            .collect();
        if fresh.len() < ENOUGH {
            return None;
        }
        fresh.sort_unstable();
        let n = self.in_flight.load(Ordering::Relaxed).max(1);
        // The upper quartile: answers cost more each as more share the CPU,
        // and costs learned at a lighter load would promise too much.
        let cost = fresh[fresh.len() * 3 / 4];
        Some(cost * u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Model answers being prepared now.
    pub fn in_preparation(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn finish(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl PaceTicket {
    /// The answer's first audio is ready: its wait, shared among the
    /// answers prepared with it, teaches the pace.
    pub fn ready(&mut self) {
        self.ready_at(Instant::now());
    }

    fn ready_at(&mut self, now: Instant) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let with = self.crowd.max(self.pace.in_flight.load(Ordering::Relaxed)).max(1);
        let wait = now.saturating_duration_since(self.started);
        self.pace
            .observe_at(now, wait / u32::try_from(with).unwrap_or(u32::MAX));
        self.pace.finish();
    }
}

impl Drop for PaceTicket {
    fn drop(&mut self) {
        if self.open {
            self.pace.finish();
        }
    }
}

/// How long a caller waiting for a reply hears silence before the hold
/// line: `hold` (the persona's `hold_ms`), or `early` when the reply is the
/// model's and the wait `expected` ([`ReplyPace::expected`]) is longer
/// than `hold` (zero `hold`: never; zero `early`: always `hold`).
pub fn hold_wait(hold: Duration, early: Duration, model_reply: bool, expected: Option<Duration>) -> Duration {
    let slow = model_reply && expected.is_some_and(|e| e > hold);
    if slow && !early.is_zero() {
        early.min(hold)
    } else {
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_expected_wait_grows_with_the_answers_in_preparation() {
        let pace = Arc::new(ReplyPace::default());
        let t0 = Instant::now();
        // Three lone answers ready in 250 ms each.
        for _ in 0..ENOUGH - 1 {
            let mut t = pace.start();
            t.ready_at(t.started + MS(250));
        }
        assert_eq!(pace.expected_at(t0), None, "two answers predict nothing");
        let mut t = pace.start();
        t.ready_at(t.started + MS(250));
        assert_eq!(
            pace.expected_at(Instant::now()),
            Some(MS(250)),
            "no answer in preparation counts as one"
        );
        // Eight answers in preparation at once: eight times one.
        let tickets: Vec<PaceTicket> = (0..8).map(|_| pace.start()).collect();
        assert_eq!(pace.expected_at(Instant::now()), Some(MS(2000)));
        // A cancelled answer is no longer counted.
        drop(tickets);
        assert_eq!(pace.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(
            pace.expected_at(Instant::now() + Duration::from_secs(301)),
            None,
            "stale answers are forgotten"
        );
    }

    #[test]
    fn an_answer_prepared_with_others_teaches_its_share() {
        let pace = Arc::new(ReplyPace::default());
        let mut crowd: Vec<PaceTicket> = (0..4).map(|_| pace.start()).collect();
        let now = Instant::now();
        for t in &mut crowd {
            t.ready_at(now + MS(2000));
        }
        // Each wait of ~2 s is shared by the most answers seen in
        // preparation at its start or its end: 4, 3, 3 and 4.
        let cost = pace.expected_at(now + MS(2000)).expect("four answers");
        assert!(cost >= MS(500) && cost <= MS(670), "{cost:?}");
    }

    #[test]
    fn the_hold_line_comes_early_only_for_a_slow_model() {
        let (hold, early) = (MS(1500), MS(300));
        assert_eq!(hold_wait(hold, early, true, Some(MS(2600))), early);
        assert_eq!(hold_wait(hold, early, true, Some(MS(900))), hold, "answers are quick");
        assert_eq!(hold_wait(hold, early, true, None), hold, "nothing known yet");
        assert_eq!(
            hold_wait(hold, early, false, Some(MS(2600))),
            hold,
            "a tool's wait is not the model's"
        );
        assert_eq!(
            hold_wait(hold, MS(0), true, Some(MS(2600))),
            hold,
            "early hold line turned off"
        );
        assert_eq!(
            hold_wait(MS(200), early, true, Some(MS(2600))),
            MS(200),
            "never later than hold_ms"
        );
    }
}
