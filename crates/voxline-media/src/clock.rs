//! One media clock for all calls: a few shard threads (one per core), each a
//! small timer wheel. A shard splits the 20 ms frame into ten 2 ms slots and
//! puts each session in the least-loaded slot; every 2 ms, at absolute
//! deadlines, it runs that slot's sessions. So each session is served every
//! 20 ms at a steady point of the frame, a slot's work (not the whole
//! frame's) is all that can shift it, and the load is spread evenly instead
//! of arriving as one burst per frame. The frame work never blocks
//! (non-blocking sockets, try-sends), so the shards are plain OS threads,
//! away from the async runtime, woken by the kernel's high-resolution
//! timers. A session leaves the clock by returning `false`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The frame period.
pub const FRAME: Duration = Duration::from_millis(20);
/// Slots per frame in a shard's wheel.
const SLOTS: usize = 10;
/// One slot.
const SLOT: Duration = Duration::from_millis(2);

/// A shard that falls this many frames behind skips ahead instead of
/// sending the missed frames in a burst.
const MAX_CATCH_UP_FRAMES: u32 = 5;

/// Work done once per frame for one session.
pub trait ClockTask: Send + Sync + 'static {
    /// Does one frame's work, due at `due` (the slot's deadline: the tick
    /// may run a little after it); `false` removes the task from the clock.
    fn tick(&self, due: Instant) -> bool;
}

impl std::fmt::Debug for dyn ClockTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClockTask")
    }
}

/// Counters of the clock, for metrics.
#[derive(Debug, Default)]
pub struct ClockStats {
    /// Slots run (all shards; ten per frame per shard).
    pub passes: AtomicU64,
    /// Slots that started late by more than a millisecond.
    pub late_passes: AtomicU64,
    /// Frames skipped because a shard fell too far behind.
    pub skipped_frames: AtomicU64,
    /// Longest run of one slot's sessions, microseconds.
    pub max_pass_us: AtomicU64,
    /// Sessions removed because their frame work panicked.
    pub panicked_tasks: AtomicU64,
}

/// The shared clock.
#[derive(Debug, Clone)]
pub struct MediaClock {
    shards: Arc<Vec<mpsc::Sender<Arc<dyn ClockTask>>>>,
    next: Arc<AtomicUsize>,
    stats: Arc<ClockStats>,
}

impl MediaClock {
    /// Starts a clock with `shards` shard threads (at least one). The
    /// threads end once the clock is dropped and their sessions have left.
    pub fn start(shards: usize) -> MediaClock {
        let stats = Arc::new(ClockStats::default());
        let senders = (0..shards.max(1))
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel();
                let stats = stats.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("voxline-media-{i}"))
                    .spawn(move || run_shard(rx, &stats));
                match spawned {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        tracing::error!(error = %e, "could not start a media clock thread");
                        None
                    }
                }
            })
            .collect();
        MediaClock {
            shards: Arc::new(senders),
            next: Arc::default(),
            stats,
        }
    }

    /// A clock with one shard per available core.
    pub fn per_core() -> MediaClock {
        MediaClock::start(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    /// Adds a task; it ticks from the next frame on.
    pub fn register(&self, task: Arc<dyn ClockTask>) {
        if self.shards.is_empty() {
            tracing::error!("no media clock thread: a session will not be paced");
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        if self.shards[i].send(task).is_err() {
            tracing::error!("media clock shard stopped: a session will not be paced");
        }
    }

    /// The clock's counters.
    pub fn stats(&self) -> Arc<ClockStats> {
        self.stats.clone()
    }
}

/// Puts the calling shard thread under the real-time FIFO policy (low RT
/// priority 10), as telephony media servers do: no ordinary thread on the
/// same core (SIP, HTTP, the database) can preempt a pass half-way and
/// delay the sessions after it. The shard sleeps between passes and never
/// runs more than a few frames back to back, and the kernel keeps 5% of
/// each second for other threads whatever happens. Falls back to a high
/// nice priority, then to normal, when the process lacks CAP_SYS_NICE
/// (root, or `AmbientCapabilities=CAP_SYS_NICE` in the systemd unit).
fn raise_priority() {
    use thread_priority::{
        set_current_thread_priority, set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    };
    let value = |v: u8| ThreadPriorityValue::try_from(v).map(ThreadPriority::Crossplatform);
    let fifo = value(10).map_err(|e| e.to_string()).and_then(|p| {
        set_thread_priority_and_policy(
            thread_native_id(),
            p,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        )
        .map_err(|e| format!("{e:?}"))
    });
    let Err(rt_error) = fifo else {
        return;
    };
    let nice = value(75)
        .map_err(|e| e.to_string())
        .and_then(|p| set_current_thread_priority(p).map_err(|e| format!("{e:?}")));
    match nice {
        Ok(()) => tracing::info!(error = %rt_error, "media clock not real-time; raised nice priority instead"),
        Err(e) => tracing::info!(error = %e, "media clock at normal priority (no CAP_SYS_NICE)"),
    }
}

fn run_shard(rx: mpsc::Receiver<Arc<dyn ClockTask>>, stats: &ClockStats) {
    raise_priority();
    let mut wheel: Vec<Vec<Arc<dyn ClockTask>>> = (0..SLOTS).map(|_| Vec::new()).collect();
    let mut slot = 0;
    let mut deadline = Instant::now();
    loop {
        loop {
            match rx.try_recv() {
                Ok(t) => {
                    // The least-loaded slot, so every slot holds about the same work.
                    if let Some(least) = wheel.iter_mut().min_by_key(|s| s.len()) {
                        least.push(t);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if wheel.iter().all(Vec::is_empty) {
                        return;
                    }
                    break;
                }
            }
        }
        let start = Instant::now();
        if start.saturating_duration_since(deadline) > Duration::from_millis(1) {
            stats.late_passes.fetch_add(1, Ordering::Relaxed);
        }
        let due = deadline;
        let tasks = &mut wheel[slot];
        let mut i = 0;
        while i < tasks.len() {
            // A session that panics (a bug meeting odd input) leaves the
            // clock alone; the other calls on this shard go on.
            let task = &tasks[i];
            let keep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.tick(due))).unwrap_or_else(|_| {
                stats.panicked_tasks.fetch_add(1, Ordering::Relaxed);
                tracing::error!("a media session panicked and was removed from the clock");
                false
            });
            if keep {
                i += 1;
            } else {
                // Keep the others' order (and so their send times) stable.
                tasks.remove(i);
            }
        }
        stats.passes.fetch_add(1, Ordering::Relaxed);
        stats
            .max_pass_us
            .fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        slot = (slot + 1) % SLOTS;
        deadline += SLOT;
        let now = Instant::now();
        if now > deadline + FRAME * MAX_CATCH_UP_FRAMES {
            // Far behind (the machine stalled): skip ahead rather than burst.
            let behind = (now - deadline).as_micros() / FRAME.as_micros();
            stats.skipped_frames.fetch_add(behind as u64, Ordering::Relaxed);
            deadline = now;
        } else if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Counter(AtomicU32, u32);
    impl ClockTask for Counter {
        fn tick(&self, _due: Instant) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) + 1 < self.1
        }
    }

    /// Whether `what` holds within 10 s (polled every 5 ms).
    fn until(what: &dyn Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        what()
    }

    struct Bomb;
    impl ClockTask for Bomb {
        fn tick(&self, _due: Instant) -> bool {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_session_is_dropped_and_the_others_keep_ticking() {
        let clock = MediaClock::start(1);
        let a = Arc::new(Counter(AtomicU32::new(0), 1000));
        clock.register(Arc::new(Bomb));
        clock.register(a.clone());
        // Wait for the panic (printing its backtrace can take a while on a
        // cold machine), then for the other session to tick on after it.
        assert!(
            until(&|| clock.stats().panicked_tasks.load(Ordering::Relaxed) == 1),
            "the panic is counted"
        );
        let after_panic = a.0.load(Ordering::Relaxed);
        assert!(
            until(&|| a.0.load(Ordering::Relaxed) >= after_panic + 4),
            "the other session still ticks"
        );
        assert_eq!(clock.stats().panicked_tasks.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn tasks_tick_every_frame_until_they_leave() {
        let clock = MediaClock::start(2);
        let a = Arc::new(Counter(AtomicU32::new(0), 5));
        let b = Arc::new(Counter(AtomicU32::new(0), 1000));
        let started = Instant::now();
        clock.register(a.clone());
        clock.register(b.clone());
        let ticks = |c: &Counter| c.0.load(Ordering::Relaxed);
        // a leaves after its fifth tick and is not ticked again while b goes on.
        assert!(until(&|| ticks(&a) == 5), "a ticked {} times", ticks(&a));
        let b_then = ticks(&b);
        assert!(until(&|| ticks(&b) >= b_then + 5), "b stopped at {}", ticks(&b));
        assert_eq!(ticks(&a), 5, "a was ticked after it left");
        // Deadlines are absolute: at most one tick per frame gone by (plus
        // the first and a catch-up burst), however loaded the machine is.
        let n = ticks(&b);
        let frames = (started.elapsed().as_millis() / FRAME.as_millis()) as u32;
        assert!(
            n <= frames + 2 + MAX_CATCH_UP_FRAMES,
            "b ticked {n} times in {frames} frames"
        );
        // Ten slots run per frame on b's shard between its ticks.
        assert!(clock.stats().passes.load(Ordering::Relaxed) >= u64::from(SLOTS as u32 * (n - 1)));
    }
}
