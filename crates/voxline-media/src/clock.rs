//! One media clock for all calls: a few shard tasks (one per core) wake every
//! 20 ms and run every registered session's frame work in turn, instead of
//! one timer per call. A session leaves the clock by returning `false`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The frame period.
pub const FRAME: Duration = Duration::from_millis(20);

/// Work done once per frame for one session.
pub trait ClockTask: Send + Sync + 'static {
    /// Does one frame's work; `false` removes the task from the clock.
    fn tick(&self) -> bool;
}

/// The shared clock.
#[derive(Debug, Clone)]
pub struct MediaClock {
    shards: Arc<Vec<mpsc::UnboundedSender<Arc<dyn ClockTask>>>>,
    next: Arc<AtomicUsize>,
}

impl std::fmt::Debug for dyn ClockTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClockTask")
    }
}

impl MediaClock {
    /// Starts a clock with `shards` shard tasks (at least one) on the current
    /// tokio runtime.
    pub fn start(shards: usize) -> MediaClock {
        let senders = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_shard(rx));
                tx
            })
            .collect();
        MediaClock {
            shards: Arc::new(senders),
            next: Arc::default(),
        }
    }

    /// A clock with one shard per available core.
    pub fn per_core() -> MediaClock {
        MediaClock::start(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    /// Adds a task; it ticks from the next frame on.
    pub fn register(&self, task: Arc<dyn ClockTask>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        if self.shards[i].send(task).is_err() {
            tracing::error!("media clock shard stopped: a session will not be paced");
        }
    }
}

async fn run_shard(mut rx: mpsc::UnboundedReceiver<Arc<dyn ClockTask>>) {
    let mut tasks: Vec<Arc<dyn ClockTask>> = Vec::new();
    let mut interval = tokio::time::interval(FRAME);
    loop {
        interval.tick().await;
        loop {
            match rx.try_recv() {
                Ok(t) => tasks.push(t),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    if tasks.is_empty() {
                        return;
                    }
                    break;
                }
            }
        }
        // Yield every few sessions so SIP and receive tasks on this worker are
        // not held up for the whole pass.
        let mut i = 0;
        let mut since_yield = 0;
        while i < tasks.len() {
            if tasks[i].tick() {
                i += 1;
            } else {
                tasks.swap_remove(i);
            }
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Sessions ticked between two yields to the scheduler.
const YIELD_EVERY: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Counter(AtomicU32, u32);
    impl ClockTask for Counter {
        fn tick(&self) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) + 1 < self.1
        }
    }

    #[tokio::test]
    async fn tasks_tick_every_frame_until_they_leave() {
        let clock = MediaClock::start(2);
        let a = Arc::new(Counter(AtomicU32::new(0), 5));
        let b = Arc::new(Counter(AtomicU32::new(0), 1000));
        clock.register(a.clone());
        clock.register(b.clone());
        tokio::time::sleep(Duration::from_millis(210)).await;
        assert_eq!(a.0.load(Ordering::Relaxed), 5, "a left after 5 ticks");
        let n = b.0.load(Ordering::Relaxed);
        assert!((8..=12).contains(&n), "b ticked {n} times in 210 ms");
    }
}
