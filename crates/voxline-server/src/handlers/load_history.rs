//! Latency and load over time, kept in memory for the console: every
//! [`SAMPLE_EVERY`] the calls up and the voice-to-voice times of the turns
//! answered in that span (the caller's last voiced audio → the reply's
//! first packet), as p50 and p95, for the last [`KEPT`] samples (a day).

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voxline_store::now_ms;

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: a day of them.
pub const KEPT: usize = 24 * 60 * 6;
/// Turns kept per span for its percentiles (a busier span keeps the first ones).
const TURNS_PER_SPAN: usize = 10_000;

/// One span's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSample {
    /// The span's end (ms since the epoch).
    pub at: i64,
    /// Calls up at its end.
    pub calls: u64,
    /// Agent turns answered in it.
    pub turns: usize,
    /// Median voice-to-voice time of those turns, ms.
    pub v2v_p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub v2v_p95_ms: Option<f64>,
}

#[derive(Debug, Default)]
struct Inner {
    span: Vec<f64>,
    samples: VecDeque<LoadSample>,
}

/// The node's latency and load history (shared by the agent routes, which
/// feed it, and the API, which reads it).
#[derive(Debug, Clone, Default)]
pub struct LoadHistory(Arc<Mutex<Inner>>);

/// The `q` quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some((sorted[rank - 1] * 10.0).round() / 10.0)
}

impl LoadHistory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A turn answered now, `ms` from the caller's end to the first packet.
    pub fn turn(&self, ms: f64) {
        let mut inner = self.lock();
        if inner.span.len() < TURNS_PER_SPAN {
            inner.span.push(ms);
        }
    }

    fn figures(span: &[f64], calls: u64, at: i64) -> LoadSample {
        let mut sorted = span.to_vec();
        sorted.sort_by(f64::total_cmp);
        LoadSample {
            at,
            calls,
            turns: sorted.len(),
            v2v_p50_ms: quantile(&sorted, 0.5),
            v2v_p95_ms: quantile(&sorted, 0.95),
        }
    }

    /// Closes the span: its sample is kept (the oldest dropped past [`KEPT`]).
    pub fn sample(&self, calls: u64, at: i64) {
        let mut inner = self.lock();
        let s = Self::figures(&inner.span, calls, at);
        inner.span.clear();
        if inner.samples.len() == KEPT {
            inner.samples.pop_front();
        }
        inner.samples.push_back(s);
    }

    /// The samples at or after `since`, oldest first, and the span going
    /// on now (not kept yet) as of `calls` up now.
    pub fn since(&self, since: i64, calls: u64) -> (Vec<LoadSample>, LoadSample) {
        let inner = self.lock();
        let kept = inner.samples.iter().filter(|s| s.at >= since).cloned().collect();
        (kept, Self::figures(&inner.span, calls, now_ms()))
    }

    /// Takes a sample every [`SAMPLE_EVERY`] of the calls up in `counters`
    /// until `shutdown`.
    pub async fn run(self, counters: Arc<super::CallCounters>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => self.sample(counters.active.load(Ordering::Relaxed), now_ms()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_s_turns_give_its_percentiles_and_a_sample_closes_it() {
        let h = LoadHistory::default();
        for ms in [900.0, 700.0, 800.0, 1000.0, 2000.0, 600.0, 750.0, 850.0, 950.0, 1100.0] {
            h.turn(ms);
        }
        let (kept, now) = h.since(0, 3);
        assert!(kept.is_empty());
        assert_eq!((now.turns, now.calls), (10, 3));
        assert_eq!(now.v2v_p50_ms, Some(850.0));
        assert_eq!(now.v2v_p95_ms, Some(2000.0));
        h.sample(2, 1_000);
        h.sample(1, 2_000);
        let (kept, now) = h.since(1_500, 0);
        assert_eq!(kept.len(), 1, "only the samples since");
        assert_eq!((kept[0].at, kept[0].calls, kept[0].turns), (2_000, 1, 0));
        assert_eq!(kept[0].v2v_p50_ms, None, "a span without turns has no latency");
        let (all, _) = h.since(0, 0);
        assert_eq!(all[0].turns, 10);
        assert_eq!(now.turns, 0, "the span was closed");
    }

    #[test]
    fn a_day_of_samples_is_kept() {
        let h = LoadHistory::default();
        for i in 0..(KEPT as i64 + 3) {
            h.sample(0, i);
        }
        let (kept, _) = h.since(0, 0);
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].at, 3);
    }
}
