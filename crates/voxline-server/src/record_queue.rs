//! Call-record writes queued off the calls' path (decision 0069): a call
//! hands each write to a lane and goes on; the lane's task writes them in
//! order, and a write the store cannot take now (it is down, restarting,
//! locked) is tried again, with growing pauses, until it can. A write the
//! store refuses for what it holds (a constraint) is logged and dropped.
//! Writes of one call always share a lane, so they land in the order the
//! call made them; lanes let calls' writes go on side by side. While a lane
//! waits for the store, what it holds is also on disk
//! ([`crate::record_spool`]), so a node stopped or crashed during an outage
//! writes it at its next start.

use crate::record_spool::LaneSpool;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use voxline_store::{AgentTurn, CallEnd, CallStore, FlowStep, NewCall, StoreError, ToolUse, TranscriptLine};

/// Lanes (writer tasks) of the queue.
const LANES: usize = 4;
/// The first pause before a write is tried again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between tries of one write.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// One write of a call record.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Write {
    /// A call's record begins.
    Started(NewCall),
    /// The call was answered.
    Answered {
        /// Record id.
        id: String,
        /// The codec agreed.
        codec: String,
        /// The SRTP suite, `None` for plain RTP.
        srtp: Option<String>,
        /// Its recording's file.
        recording: Option<String>,
    },
    /// The outcome its conversation gave it.
    Outcome {
        /// Record id.
        id: String,
        /// The outcome.
        outcome: String,
    },
    /// Who answered an outbound call.
    Amd {
        /// Record id.
        id: String,
        /// human / machine / unsure.
        verdict: String,
        /// Decided this long after the answer.
        at_ms: u64,
    },
    /// A number on every campaign's do-not-call list.
    DoNotCall(String),
    /// The call ended.
    Ended {
        /// Record id.
        id: String,
        /// How.
        end: CallEnd,
    },
    /// A transcript line.
    Transcript {
        /// Record id.
        id: String,
        /// The line.
        line: TranscriptLine,
    },
    /// An agent turn with its stage times.
    Turn {
        /// Record id.
        id: String,
        /// The turn.
        turn: AgentTurn,
    },
    /// A flow step reached.
    Step {
        /// Record id.
        id: String,
        /// The step.
        step: FlowStep,
    },
    /// A tool the call called, answered or failed.
    Tool {
        /// Record id.
        id: String,
        /// The call.
        tool: ToolUse,
    },
    /// The call queued for quality inspection against a scorecard.
    Analysis {
        /// Record id.
        id: String,
        /// The scorecard's path.
        scorecard: String,
    },
    /// A training call queued for its trainee's report.
    Training {
        /// Record id.
        id: String,
        /// Who was trained.
        trainee: String,
        /// The scenario's name.
        scenario: String,
        /// The scenario's file.
        file: String,
    },
}

impl Write {
    /// The record the write belongs to (its lane).
    fn record(&self) -> &str {
        match self {
            Write::Started(c) => &c.id,
            Write::DoNotCall(_) => "",
            Write::Answered { id, .. }
            | Write::Outcome { id, .. }
            | Write::Amd { id, .. }
            | Write::Ended { id, .. }
            | Write::Transcript { id, .. }
            | Write::Turn { id, .. }
            | Write::Step { id, .. }
            | Write::Tool { id, .. }
            | Write::Analysis { id, .. }
            | Write::Training { id, .. } => id,
        }
    }

    /// What it writes, for logs.
    fn what(&self) -> &'static str {
        match self {
            Write::Started(_) => "call record",
            Write::Answered { .. } => "call answer",
            Write::Outcome { .. } => "call outcome",
            Write::Amd { .. } => "answering-machine detection",
            Write::DoNotCall(_) => "do-not-call entry",
            Write::Ended { .. } => "call end",
            Write::Transcript { .. } => "transcript line",
            Write::Turn { .. } => "agent turn",
            Write::Step { .. } => "flow step",
            Write::Tool { .. } => "tool call",
            Write::Analysis { .. } => "quality inspection request",
            Write::Training { .. } => "training report request",
        }
    }

    async fn apply(&self, store: &CallStore) -> Result<(), StoreError> {
        match self {
            Write::Started(c) => store.call_started(c).await,
            Write::Answered {
                id,
                codec,
                srtp,
                recording,
            } => {
                store
                    .call_answered(id, codec, srtp.as_deref(), recording.as_deref())
                    .await
            }
            Write::Outcome { id, outcome } => store.call_outcome(id, outcome).await,
            Write::Amd { id, verdict, at_ms } => store.call_amd(id, verdict, *at_ms).await,
            Write::DoNotCall(number) => store.add_dnc("", std::slice::from_ref(number)).await.map(|_| ()),
            Write::Ended { id, end } => store.call_ended(id, end).await,
            Write::Transcript { id, line } => store.transcript_line(id, line).await,
            Write::Turn { id, turn } => store.agent_turn(id, turn).await,
            Write::Step { id, step } => store.flow_step(id, step).await,
            Write::Tool { id, tool } => store.tool_call(id, tool).await,
            Write::Analysis { id, scorecard } => store.queue_analysis(id, scorecard).await,
            Write::Training {
                id,
                trainee,
                scenario,
                file,
            } => store.queue_training(id, trainee, scenario, file).await,
        }
    }
}

/// Whether a failed write may succeed later as it is: the store could not
/// be reached or was busy, not a refusal of the data.
pub fn worth_retrying(e: &StoreError) -> bool {
    match e {
        StoreError::Query(sqlx::Error::Database(db)) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), shutting down or
            // starting up (57P01-57P03); SQLite: busy, locked.
            code.starts_with("08") || code.starts_with("57P0") || code == "5" || code == "6"
        }
        StoreError::Query(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed,
        ) => true,
        StoreError::Open { .. } => true,
        _ => false,
    }
}

/// What follows a write once it is in the store.
pub type AfterWrite = Arc<dyn Fn(&Write) + Send + Sync>;

/// Figures of the queue (for `/metrics` and the shutdown).
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Writes handed to the queue and not written (or dropped) yet.
    pub pending: AtomicU64,
    /// Writes tried again after the store could not take them.
    pub retries: AtomicU64,
    /// Writes the store refused (logged, dropped).
    pub refused: AtomicU64,
    /// Writes kept in the spool (on disk) while the store was away.
    pub spooled: AtomicU64,
}

/// The queue: lanes of ordered writes with their writer tasks.
#[derive(Clone)]
pub struct RecordQueue {
    lanes: Vec<mpsc::UnboundedSender<Write>>,
    stats: Arc<QueueStats>,
    /// The spool folder, when writes that wait are kept on disk.
    spool: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RecordQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordQueue")
            .field("pending", &self.stats.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl RecordQueue {
    /// Starts the lanes writing to `store`; `after` runs after each write
    /// lands (webhooks, the analyser's wake-up). With `spool`, the lanes
    /// keep what waits for the store in that folder and first write what
    /// an earlier run left there; without, it waits in memory only.
    pub fn start(
        store: CallStore,
        after: AfterWrite,
        spool: Option<&Path>,
    ) -> Result<RecordQueue, crate::record_spool::SpoolError> {
        let stats = Arc::new(QueueStats::default());
        let mut lanes = Vec::with_capacity(LANES);
        for lane in 0..LANES {
            let (spool, left) = match spool {
                Some(dir) => {
                    let (s, left) = LaneSpool::open(dir, lane)?;
                    if !left.is_empty() {
                        tracing::info!(
                            lane,
                            writes = left.len(),
                            file = %s.path().display(),
                            "record writes left by an earlier run (the store was away): written first"
                        );
                    }
                    (Some(s), left)
                }
                None => (None, Vec::new()),
            };
            stats.pending.fetch_add(left.len() as u64, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            let writer = LaneWriter {
                lane,
                store: store.clone(),
                after: after.clone(),
                stats: stats.clone(),
                spool,
            };
            tokio::spawn(writer.run(rx, left.into_iter().map(|w| (w, true)).collect()));
            lanes.push(tx);
        }
        Ok(RecordQueue {
            lanes,
            stats,
            spool: spool.map(Path::to_path_buf),
        })
    }

    /// Queues `write` (never waits).
    pub fn push(&self, write: Write) {
        let lane = lane_of(write.record());
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.lanes[lane].send(write) {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(
                what = e.0.what(),
                record = e.0.record(),
                "record write lost: the writer stopped"
            );
        }
    }

    /// The queue's figures.
    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// The spool folder, when writes that wait are kept on disk.
    pub fn spool_dir(&self) -> Option<&Path> {
        self.spool.as_deref()
    }

    /// Waits until every queued write is written (or refused), at most
    /// `within`; returns how many were still waiting.
    pub async fn flush(&self, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let pending = self.stats.pending.load(Ordering::Relaxed);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The lane of a record id (a call's writes stay in one lane, in order).
fn lane_of(record: &str) -> usize {
    record
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)))
        % LANES
}

/// One lane's writer task.
struct LaneWriter {
    lane: usize,
    store: CallStore,
    after: AfterWrite,
    stats: Arc<QueueStats>,
    spool: Option<LaneSpool>,
}

/// What became of one try of a write.
enum Tried {
    Landed,
    Wait(StoreError),
    Refused,
}

/// The writes a lane waits to write, each with whether it is in the spool
/// file (only those count in the file's progress).
type Backlog = VecDeque<(Write, bool)>;

impl LaneWriter {
    /// Writes what comes in, in order; `backlog` (what an earlier run
    /// spooled) first.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Write>, mut backlog: Backlog) {
        loop {
            if backlog.is_empty() {
                let Some(write) = rx.recv().await else { return };
                match self.try_write(&write, false).await {
                    Tried::Landed | Tried::Refused => {
                        self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                        continue;
                    }
                    Tried::Wait(e) => {
                        tracing::warn!(
                            lane = self.lane,
                            what = write.what(),
                            error = %e,
                            pending = self.stats.pending.load(Ordering::Relaxed),
                            "call store unavailable: record writes wait and are tried again"
                        );
                        let spooled = self.keep(&write).await;
                        backlog.push_back((write, spooled));
                    }
                }
            }
            self.catch_up(&mut rx, &mut backlog).await;
        }
    }

    /// Writes the backlog in order, waiting with growing pauses while the
    /// store cannot take its head, and spooling what comes in meanwhile.
    async fn catch_up(&mut self, rx: &mut mpsc::UnboundedReceiver<Write>, backlog: &mut Backlog) {
        let since = std::time::Instant::now();
        let mut pause = FIRST_PAUSE;
        let mut written = 0u64;
        let mut open = true;
        while let Some((head, _)) = backlog.front() {
            match self.try_write(head, true).await {
                Tried::Landed | Tried::Refused => {
                    let spooled = backlog.pop_front().is_some_and(|(_, spooled)| spooled);
                    written += 1;
                    self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    pause = FIRST_PAUSE;
                    if let Some(spool) = self.spool.as_mut().filter(|_| spooled) {
                        if let Err(e) = spool.landed().await {
                            tracing::warn!(error = %e, "record spool progress not written: a write may be written twice");
                        }
                    }
                }
                Tried::Wait(_) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let until = tokio::time::Instant::now() + pause;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => break,
                            w = rx.recv(), if open => match w {
                                Some(w) => {
                                    let spooled = self.keep(&w).await;
                                    backlog.push_back((w, spooled));
                                }
                                None => open = false,
                            },
                        }
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
        if let Some(spool) = self.spool.as_mut() {
            spool.clear();
        }
        tracing::info!(
            lane = self.lane,
            writes = written,
            waited_ms = since.elapsed().as_millis() as u64,
            "call store back: queued record writes written"
        );
    }

    /// Puts a write that must wait into the spool (when there is one);
    /// whether it is there.
    async fn keep(&mut self, write: &Write) -> bool {
        let Some(spool) = self.spool.as_mut() else { return false };
        match spool.append(write).await {
            Ok(()) => {
                self.stats.spooled.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::error!(
                    what = write.what(),
                    record = write.record(),
                    error = %e,
                    "record write not spooled: it waits in memory only"
                );
                false
            }
        }
    }

    /// One try of `write`. `again`: it may have landed before (a spooled
    /// write of an earlier run, or tried before a crash), so a duplicate
    /// row means it is already there.
    async fn try_write(&self, write: &Write, again: bool) -> Tried {
        match write.apply(&self.store).await {
            Ok(()) => {
                (self.after)(write);
                Tried::Landed
            }
            Err(e) if worth_retrying(&e) => Tried::Wait(e),
            Err(e) if again && is_duplicate(&e) => {
                tracing::debug!(
                    what = write.what(),
                    record = write.record(),
                    "spooled record write already in the store"
                );
                Tried::Refused
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(what = write.what(), record = write.record(), error = %e, "record write refused by the store");
                Tried::Refused
            }
        }
    }
}

/// Whether the store refused a row because it already holds one with its key.
fn is_duplicate(e: &StoreError) -> bool {
    matches!(e, StoreError::Query(sqlx::Error::Database(db)) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_writes_share_a_lane() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(lane_of(id), lane_of(id));
        let lanes: std::collections::HashSet<usize> = (0..64).map(|i| lane_of(&format!("{i:032x}"))).collect();
        assert_eq!(lanes.len(), LANES, "ids spread over every lane");
    }

    #[tokio::test]
    async fn writes_land_in_order_and_a_refused_one_is_dropped() {
        let dir = std::env::temp_dir().join(format!("voxline-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("q.db").display());
        let store = CallStore::open(&url, "queue-test").await.expect("store");
        let landed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = landed.clone();
        let queue = RecordQueue::start(
            store.clone(),
            Arc::new(move |w: &Write| seen.lock().expect("lock").push(w.what())),
            None,
        )
        .expect("queue");
        let call = NewCall {
            id: "q1".into(),
            call_id: "q1@test".into(),
            direction: voxline_store::CallDirection::Inbound,
            from_uri: "sip:a@b".into(),
            to_uri: "sip:c@d".into(),
            source_addr: None,
            trunk: None,
            route: None,
            handler: None,
            invite_at: voxline_store::now_ms(),
            channel: "sip".into(),
        };
        let again = NewCall { ..call.clone() };
        queue.push(Write::Started(call));
        queue.push(Write::Outcome {
            id: "q1".into(),
            outcome: "resolved".into(),
        });
        // The same id again: the store refuses it (a constraint), the
        // queue goes on.
        queue.push(Write::Started(again));
        assert_eq!(queue.flush(Duration::from_secs(10)).await, 0);
        assert_eq!(*landed.lock().expect("lock"), vec!["call record", "call outcome"]);
        assert_eq!(queue.stats().refused.load(Ordering::Relaxed), 1);
        let rec = store.record("q1").await.expect("read").expect("the record");
        assert_eq!(rec.outcome.as_deref(), Some("resolved"));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
