//! An in-memory call leg, for tests of what runs on a leg (the voice
//! session) without sockets or SIP. Its clock is tokio's: every 20 ms it
//! delivers one frame of the far end (what the test queued, else silence)
//! and takes one frame of the playout queue, noting what was played when.
//! Under `tokio::time::pause()` that clock is virtual and runs as fast as
//! the code under test allows, deterministically.
//!
//! The test holds the [`MemoryPeer`]: it speaks (queues audio), keys DTMF,
//! hangs up, scripts what a transfer or bridge returns, and reads back what
//! the far end heard and which control verbs were used.

use super::{
    BridgeResult, Direction, Drained, LegAudio, LegControl, LegEnd, LegFacts, LegInput, Playout, TransferResult,
};
use crate::dtmf::{DtmfDigit, DtmfSource};
use crate::rtp_session::resample_clip;
use crate::{MediaError, PORT_FRAME, PORT_RATE};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// One 20 ms slot of the leg's clock, as the far end got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayedFrame {
    /// The slot's start on the leg's clock, ms from the leg's start.
    pub at_ms: u64,
    /// Queued audio was played in it (not silence).
    pub audio: bool,
}

/// A control verb the session used on the leg, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// It hung up (at this leg-clock ms).
    HangUp {
        /// When, ms from the leg's start.
        at_ms: u64,
    },
    /// It asked for a transfer.
    Transfer {
        /// The target.
        to: String,
    },
    /// It asked for a bridge.
    Bridge {
        /// The target.
        to: String,
        /// The longest the joined calls may last.
        limit: Duration,
    },
    /// It sent DTMF keys.
    Dtmf {
        /// The keys.
        digits: String,
        /// Audio queued before them, ms.
        after_ms: u64,
    },
}

#[derive(Debug, Default)]
struct Queue {
    samples: VecDeque<i16>,
    /// Samples ever queued / ever played (positions in the whole stream).
    queued_total: u64,
    played_total: u64,
    /// Marks not yet started: mark → stream position of their first sample.
    marks: HashMap<u64, u64>,
    started: HashMap<u64, Instant>,
    next_mark: u64,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    drained: Notify,
    caller: Mutex<VecDeque<i16>>,
    played: Mutex<Vec<PlayedFrame>>,
    verbs: Mutex<Vec<Verb>>,
    transfer: Mutex<Option<TransferResult>>,
    bridge: Mutex<Option<BridgeResult>>,
    ticks: Mutex<u64>,
    ended: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test double: a poisoned lock means a test already panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The playout queue of a [`MemoryLeg`] (16 kHz).
#[derive(Debug, Clone)]
pub struct MemoryPlayout(Arc<Shared>);

impl MemoryPlayout {
    fn at_rate(samples: &[i16], rate: u32) -> Result<Arc<[i16]>, MediaError> {
        if rate == PORT_RATE {
            Ok(samples.into())
        } else {
            resample_clip(samples, rate, PORT_RATE)
        }
    }

    fn push(&self, samples: &[i16], rate: u32, marked: bool) -> Result<Option<u64>, MediaError> {
        let audio = Self::at_rate(samples, rate)?;
        if audio.is_empty() {
            return Ok(None);
        }
        let mut q = lock(&self.0.queue);
        let mark = marked.then(|| {
            q.next_mark += 1;
            let (m, at) = (q.next_mark, q.queued_total);
            q.marks.insert(m, at);
            m
        });
        q.samples.extend(audio.iter());
        q.queued_total += audio.len() as u64;
        Ok(mark)
    }
}

impl Playout for MemoryPlayout {
    fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError> {
        self.push(samples, rate, false).map(|_| ())
    }

    fn play_marked(&self, samples: &[i16], rate: u32) -> Result<Option<u64>, MediaError> {
        self.push(samples, rate, true)
    }

    fn started_at(&self, mark: u64) -> Option<Instant> {
        lock(&self.0.queue).started.get(&mark).copied()
    }

    fn clear(&self) {
        let mut q = lock(&self.0.queue);
        q.samples.clear();
        let played = q.played_total;
        q.queued_total = played;
        q.marks.retain(|_, at| *at < played);
        drop(q);
        self.0.drained.notify_waiters();
    }

    fn queued_frames(&self) -> usize {
        lock(&self.0.queue).samples.len().div_ceil(PORT_FRAME)
    }

    fn send_dtmf(&self, digits: &str, _duration_ms: u32) -> Result<(), MediaError> {
        if let Some(c) = digits.chars().find(|c| crate::dtmf::digit_event(*c).is_none()) {
            return Err(MediaError::Dtmf(format!("{c:?} is not a DTMF digit")));
        }
        let after_ms = lock(&self.0.queue).samples.len() as u64 * 1000 / u64::from(PORT_RATE);
        lock(&self.0.verbs).push(Verb::Dtmf {
            digits: digits.into(),
            after_ms,
        });
        Ok(())
    }

    fn drained(&self) -> Drained {
        let shared = self.0.clone();
        Box::pin(async move {
            loop {
                let notified = shared.drained.notified();
                if lock(&shared.queue).samples.is_empty() {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// An in-memory call leg (see the module).
#[derive(Debug)]
pub struct MemoryLeg {
    facts: LegFacts,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<LegInput>,
    clock: tokio::task::JoinHandle<()>,
    ended: bool,
}

/// The test's side of a [`MemoryLeg`].
#[derive(Debug, Clone)]
pub struct MemoryPeer {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<LegInput>,
}

impl MemoryLeg {
    /// A leg with these facts, its clock started (call inside a tokio
    /// runtime), and the peer that drives it.
    pub fn start(direction: Direction, variables: BTreeMap<String, String>) -> (MemoryLeg, MemoryPeer) {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let clock = tokio::spawn(run_clock(shared.clone(), tx.clone()));
        let facts = LegFacts {
            call_id: "memory-leg".into(),
            direction,
            caller: "sip:caller@memory".into(),
            callee: "sip:agent@memory".into(),
            channel: "memory",
            variables,
        };
        (
            MemoryLeg {
                facts,
                shared: shared.clone(),
                rx,
                clock,
                ended: false,
            },
            MemoryPeer { shared, tx },
        )
    }

    fn end(&mut self) {
        self.ended = true;
        self.clock.abort();
        self.shared.ended.notify_waiters();
    }
}

impl Drop for MemoryLeg {
    fn drop(&mut self) {
        self.clock.abort();
    }
}

/// Every 20 ms: one frame of the far end in, one frame of playout out.
async fn run_clock(shared: Arc<Shared>, tx: mpsc::UnboundedSender<LegInput>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tick.tick().await;
        let at_ms = {
            let mut t = lock(&shared.ticks);
            let at = *t * 20;
            *t += 1;
            at
        };
        // Out: one frame of the queue.
        let audio = {
            let mut q = lock(&shared.queue);
            let n = q.samples.len().min(PORT_FRAME);
            if n > 0 {
                let from = q.played_total;
                q.samples.drain(..n);
                q.played_total += n as u64;
                let to = q.played_total;
                let now = tokio::time::Instant::now().into_std();
                let begun: Vec<u64> = q
                    .marks
                    .iter()
                    .filter(|(_, at)| (from..to).contains(*at))
                    .map(|(m, _)| *m)
                    .collect();
                for m in begun {
                    q.marks.remove(&m);
                    q.started.insert(m, now);
                }
            }
            n > 0
        };
        lock(&shared.played).push(PlayedFrame { at_ms, audio });
        if audio && lock(&shared.queue).samples.is_empty() {
            shared.drained.notify_waiters();
        }
        // In: one frame of the far end (silence when it says nothing).
        let frame: Vec<i16> = {
            let mut c = lock(&shared.caller);
            let n = c.len().min(PORT_FRAME);
            let mut f: Vec<i16> = c.drain(..n).collect();
            f.resize(PORT_FRAME, 0);
            f
        };
        if tx.send(LegInput::Frame(frame)).is_err() {
            return;
        }
    }
}

#[async_trait::async_trait]
impl LegAudio for MemoryLeg {
    async fn recv(&mut self) -> LegInput {
        if self.ended {
            return std::future::pending().await;
        }
        match self.rx.recv().await {
            Some(input) => {
                if matches!(input, LegInput::Ended(_)) {
                    self.end();
                }
                input
            }
            None => std::future::pending().await,
        }
    }

    fn playout(&self) -> Arc<dyn Playout> {
        Arc::new(MemoryPlayout(self.shared.clone()))
    }
}

#[async_trait::async_trait]
impl LegControl for MemoryLeg {
    fn facts(&self) -> &LegFacts {
        &self.facts
    }

    async fn hangup(&mut self) -> Result<(), String> {
        if self.ended {
            return Err("the call is over".into());
        }
        let at_ms = *lock(&self.shared.ticks) * 20;
        lock(&self.shared.verbs).push(Verb::HangUp { at_ms });
        self.end();
        Ok(())
    }

    async fn transfer(&mut self, to: &str, _wait: Duration) -> TransferResult {
        lock(&self.shared.verbs).push(Verb::Transfer { to: to.into() });
        let result = lock(&self.shared.transfer)
            .take()
            .unwrap_or_else(|| TransferResult::Failed("the in-memory leg has no transfer target".into()));
        if !matches!(result, TransferResult::Failed(_)) {
            self.end();
        }
        result
    }

    async fn bridge(&mut self, to: &str, _ring: Duration, limit: Duration) -> BridgeResult {
        lock(&self.shared.verbs).push(Verb::Bridge { to: to.into(), limit });
        let result = lock(&self.shared.bridge)
            .take()
            .unwrap_or_else(|| BridgeResult::Failed("the in-memory leg has no bridge target".into()));
        if !matches!(result, BridgeResult::Failed(_)) {
            self.end();
        }
        result
    }
}

impl MemoryPeer {
    /// Queues audio the far end says (16 kHz), after what it already queued.
    pub fn say(&self, samples: &[i16]) {
        lock(&self.shared.caller).extend(samples.iter());
    }

    /// Queues `ms` of a voice-loud 440 Hz tone (speech to an energy-based
    /// recogniser double), after what the far end already queued.
    pub fn speak_for(&self, ms: u64) {
        let n = (ms * u64::from(PORT_RATE) / 1000) as usize;
        let tone: Vec<i16> = (0..n)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / PORT_RATE as f32).sin() * 8000.0) as i16)
            .collect();
        self.say(&tone);
    }

    /// Queues `ms` of silence, after what the far end already queued.
    pub fn pause_for(&self, ms: u64) {
        self.say(&vec![0; (ms * u64::from(PORT_RATE) / 1000) as usize]);
    }

    /// Audio the far end has queued and not yet sent, ms.
    pub fn unsaid_ms(&self) -> u64 {
        lock(&self.shared.caller).len() as u64 * 1000 / u64::from(PORT_RATE)
    }

    /// The far end keys a DTMF digit (delivered before the next frame).
    pub fn key(&self, digit: char) {
        self.tx
            .send(LegInput::Dtmf(DtmfDigit {
                digit,
                duration_ms: 100,
                source: DtmfSource::Rtp,
            }))
            .ok();
    }

    /// The far end hangs up.
    pub fn hang_up(&self) {
        self.tx.send(LegInput::Ended(LegEnd::remote("hangup"))).ok();
    }

    /// What the next transfer returns (once; else it fails).
    pub fn on_transfer(&self, result: TransferResult) {
        *lock(&self.shared.transfer) = Some(result);
    }

    /// What the next bridge returns (once; else it fails).
    pub fn on_bridge(&self, result: BridgeResult) {
        *lock(&self.shared.bridge) = Some(result);
    }

    /// The leg's clock, ms since it started.
    pub fn now_ms(&self) -> u64 {
        *lock(&self.shared.ticks) * 20
    }

    /// Every slot played so far.
    pub fn played(&self) -> Vec<PlayedFrame> {
        lock(&self.shared.played).clone()
    }

    /// Ms of audio (not silence) the far end heard in `[from_ms, to_ms)`.
    pub fn heard_ms(&self, from_ms: u64, to_ms: u64) -> u64 {
        lock(&self.shared.played)
            .iter()
            .filter(|f| f.audio && f.at_ms >= from_ms && f.at_ms < to_ms)
            .count() as u64
            * 20
    }

    /// Whether the agent's audio is playing now (the last slot had audio).
    pub fn hearing(&self) -> bool {
        lock(&self.shared.played).last().is_some_and(|f| f.audio)
    }

    /// Audio still queued toward the far end, ms.
    pub fn queued_ms(&self) -> u64 {
        lock(&self.shared.queue).samples.len() as u64 * 1000 / u64::from(PORT_RATE)
    }

    /// The control verbs used so far, in order.
    pub fn verbs(&self) -> Vec<Verb> {
        lock(&self.shared.verbs).clone()
    }

    /// Waits (on the leg's clock) until `cond` holds, checking every 20 ms;
    /// `Err` with the leg-clock ms when `limit_ms` passed first.
    pub async fn until(&self, limit_ms: u64, mut cond: impl FnMut(&MemoryPeer) -> bool) -> Result<u64, u64> {
        let deadline = self.now_ms() + limit_ms;
        loop {
            if cond(self) {
                return Ok(self.now_ms());
            }
            if self.now_ms() >= deadline {
                return Err(self.now_ms());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn frames_come_every_20_ms_and_playout_is_paced_and_cleared() {
        let (mut leg, peer) = MemoryLeg::start(Direction::Inbound, BTreeMap::new());
        let playout = leg.playout();
        peer.speak_for(100);
        // 200 ms of agent audio, marked.
        let mark = playout
            .play_marked(&vec![1000; 3200], 16_000)
            .expect("queued")
            .expect("a mark");
        assert_eq!(playout.queued_frames(), 10);
        let mut voiced = 0;
        for _ in 0..5 {
            match leg.recv().await {
                LegInput::Frame(f) => {
                    assert_eq!(f.len(), PORT_FRAME);
                    voiced += usize::from(f.iter().any(|&s| s != 0));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(voiced, 5, "the far end's 100 ms came as 5 frames");
        assert!(playout.started_at(mark).is_some());
        assert_eq!(playout.queued_frames(), 5, "one frame played per frame heard");
        playout.clear();
        assert_eq!(playout.queued_frames(), 0);
        playout.drained().await;
        // Silence from the far end once it said nothing more.
        match leg.recv().await {
            LegInput::Frame(f) => assert!(f.iter().all(|&s| s == 0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(peer.heard_ms(0, 1000), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_and_the_end_come_in_order_and_verbs_are_noted() {
        let (mut leg, peer) = MemoryLeg::start(Direction::Outbound, BTreeMap::new());
        assert_eq!(leg.facts().direction, Direction::Outbound);
        peer.key('5');
        assert!(matches!(leg.recv().await, LegInput::Dtmf(d) if d.digit == '5'));
        assert!(matches!(
            leg.transfer("sip:desk@x", Duration::from_secs(1)).await,
            TransferResult::Failed(_)
        ));
        leg.playout().send_dtmf("12#", 100).expect("digits");
        assert!(leg.playout().send_dtmf("x", 100).is_err());
        peer.hang_up();
        loop {
            if let LegInput::Ended(e) = leg.recv().await {
                assert_eq!(e, LegEnd::remote("hangup"));
                break;
            }
        }
        assert!(leg.hangup().await.is_err(), "hanging up an ended call fails");
        assert_eq!(
            peer.verbs(),
            vec![
                Verb::Transfer {
                    to: "sip:desk@x".into()
                },
                Verb::Dtmf {
                    digits: "12#".into(),
                    after_ms: 0
                }
            ]
        );
    }
}
