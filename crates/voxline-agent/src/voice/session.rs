//! The voice session's state and its loop: start the next reply when the
//! agent is free, wait for the next event, handle it (`session_events`),
//! until the call ends; then keep what the caller heard.

use super::digits::DigitCollector;
use super::end_of_turn::{EndOfTurn, TurnSilences};
use super::interruption::{BargeIn, Paused};
use super::pace::{self, ReplyPace};
use super::preempt::Preempt;
use super::silence::Silence;
use super::speech::{stop_speaking, Heard, SpeechHandle, Spoken};
use super::tool_run::RunningTool;
use super::transcript::Transcript;
use super::turn_times::TurnTimes;
use super::{Recognizer, SessionObserver, SessionSink, Voice};
use crate::dialogue::ToolOutcome;
use crate::{Action, Agent, Conversation};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_asr::AsrEvent;
use voxline_media::leg::{BridgeResult, Direction, EndedBy, TransferResult};
use voxline_media::{CallLeg, LegEnd, LegInput, Playout};

/// How long each DTMF key the agent sends is held, ms.
const DTMF_KEY_MS: u32 = 100;

/// A voice session's settings (an agent route's parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// The caller's voice this long (from its first voiced window) while
    /// the agent talks stops the agent, ms.
    pub barge_in_ms: u64,
    /// The silences that end the caller's turn, by what the words and the
    /// voice say.
    pub turn_silences: TurnSilences,
    /// How long a transfer (or the colleague's phone ringing) may take.
    pub transfer_wait: Duration,
    /// When a transfer fails, call the target and join the calls.
    pub transfer_bridge: bool,
    /// The call's longest duration.
    pub max_call: Duration,
    /// When the recogniser is too unsure of a turn's words to act on them.
    pub doubt: voxline_asr::Doubt,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// The call's end.
    pub end: LegEnd,
    /// What went wrong, when something did.
    pub detail: Option<String>,
    /// The call's outcome, when the conversation gave one (a flow step's
    /// `disposition`, `opted_out`).
    pub outcome: Option<String>,
}

/// One call's voice session: what it runs with. Build one per call and
/// [`VoiceSession::run`] it on the call's leg.
pub struct VoiceSession {
    /// The domain pack's engine.
    pub agent: Arc<Agent>,
    /// The agent's voice.
    pub voice: Arc<dyn Voice>,
    /// How long the route's answers take (an early hold line).
    pub pace: Arc<ReplyPace>,
    /// The route's settings.
    pub config: VoiceConfig,
    /// Where the transcript, flow steps and turns go.
    pub sink: Arc<dyn SessionSink>,
    /// Live figures.
    pub observer: Arc<dyn SessionObserver>,
    /// The server's shutdown.
    pub shutdown: CancellationToken,
    /// This call's hang-up by an operator (the API): the call ends with
    /// reason `operator`.
    pub hangup: CancellationToken,
}

impl VoiceSession {
    /// Holds the conversation on `leg` until the call ends; `recognizer`
    /// hears the leg's audio. The agent speaks first (its opening).
    pub async fn run(&self, leg: &mut dyn CallLeg, recognizer: &mut dyn Recognizer) -> SessionEnd {
        let mut call = Call::new(self, leg, recognizer);
        let deadline = tokio::time::sleep_until(call.ends_at);
        tokio::pin!(deadline);
        call.pending = call.conv.opening().await.into();
        call.transcript.steps(&mut call.conv).await;
        let end = loop {
            if let Some(end) = call.start_next().await {
                break end;
            }
            let event = call.next_event(deadline.as_mut()).await;
            if let Some(end) = call.handle(event).await {
                break end;
            }
        };
        call.finish().await;
        SessionEnd {
            end,
            detail: call.detail.take(),
            outcome: call.outcome.take(),
        }
    }
}

/// What woke the session.
pub(super) enum Event {
    /// The leg: a frame, a key, a media event, the end.
    Leg(LegInput),
    /// The recogniser.
    Asr(AsrEvent),
    /// The reply being made: a phrase's audio, its end.
    Spoken(Spoken),
    /// Everything queued has played.
    Drained,
    /// A tool finished (what follows and why it failed; `None` if its task died).
    ToolDone(Option<ToolOutcome>),
    /// The reply is slow: time for the hold line.
    HoldDue {
        /// The wait that was allowed.
        after: Duration,
        /// The wait the route's pace expected.
        expected: Option<Duration>,
    },
    /// The caller has talked over the agent long enough.
    BargeDue,
    /// The caller has been silent too long.
    SilenceDue,
    /// The call's longest duration passed.
    Deadline,
    /// The server shuts down.
    Shutdown,
    /// An operator hung the call up.
    HungUp,
}

/// The end reason of a call an operator hung up (the API).
pub const OPERATOR: &str = "operator";

/// One call's live state.
pub(super) struct Call<'a> {
    pub s: &'a VoiceSession,
    pub leg: &'a mut dyn CallLeg,
    pub rec: &'a mut dyn Recognizer,
    pub playout: Arc<dyn Playout>,
    pub conv: Conversation,
    pub transcript: Transcript,
    /// Lines waiting to be spoken after the current one.
    pub pending: VecDeque<Action>,
    pub speaking: Option<SpeechHandle>,
    /// Replies fully generated whose audio is still queued, oldest first.
    pub playing: VecDeque<SpeechHandle>,
    pub tool_run: Option<RunningTool>,
    pub digits: DigitCollector,
    pub hang_up_after_speech: Option<&'static str>,
    /// A transfer to make once the line before it has played.
    pub transfer_after_speech: Option<String>,
    pub barge: BargeIn,
    pub caller_speaking: bool,
    /// The caller's latest utterance: its number, speech start and end
    /// (stream ms), for its transcript line's times.
    pub caller_span: Option<(u64, u64, Option<u64>)>,
    pub silence: Silence,
    pub turn_times: TurnTimes,
    pub turn_seq: i64,
    pub end_of_turn: EndOfTurn,
    /// A reply started on the early final, held until the final confirms it.
    pub preempt: Option<Preempt>,
    /// The prompt of the caller's words so far being read into the model's cache.
    pub prefilling: Option<JoinHandle<()>>,
    /// Speech stopped by the caller, until their words decide.
    pub paused: Option<Paused>,
    /// Since when the caller has waited in silence for a reply being
    /// prepared (a tool, the model), and whether the hold line was said.
    pub working_since: Option<Instant>,
    /// Hold lines said in this wait (the first `hold`, then `hold_again`).
    pub holds_said: u32,
    pub tts_rate: u32,
    /// What went wrong, when the session ends on a fault.
    pub detail: Option<String>,
    /// The call's outcome so far ([`Action::Outcome`]).
    pub outcome: Option<String>,
    /// Samples of the voice in one 20 ms frame (phrase lengths are kept in frames).
    pub frame_samples: usize,
    /// When the call's longest duration is reached.
    pub ends_at: Instant,
}

impl<'a> Call<'a> {
    fn new(s: &'a VoiceSession, leg: &'a mut dyn CallLeg, rec: &'a mut dyn Recognizer) -> Call<'a> {
        let persona = &s.agent.pack().persona;
        let tts_rate = s.voice.sample_rate();
        let end_of_turn = EndOfTurn::new(rec.hangover_ms(), s.config.turn_silences, rec.hears_turn_audio());
        let start_ms = rec.now_ms();
        let mut conv = s.agent.conversation();
        conv.set_variables(leg.facts().variables.clone());
        conv.set_placed(leg.facts().direction == Direction::Outbound);
        Call {
            playout: leg.playout(),
            conv,
            transcript: Transcript::new(s.sink.clone(), start_ms),
            pending: VecDeque::new(),
            speaking: None,
            playing: VecDeque::new(),
            tool_run: None,
            digits: DigitCollector::default(),
            hang_up_after_speech: None,
            transfer_after_speech: None,
            barge: BargeIn::new(s.config.barge_in_ms),
            caller_speaking: false,
            caller_span: None,
            silence: Silence::new(persona.timeouts.reprompt_ms, persona.timeouts.hangup_ms),
            turn_times: TurnTimes::default(),
            turn_seq: 0,
            end_of_turn,
            preempt: None,
            prefilling: None,
            paused: None,
            working_since: None,
            holds_said: 0,
            tts_rate,
            detail: None,
            outcome: None,
            frame_samples: (tts_rate / 50) as usize,
            ends_at: Instant::now() + s.config.max_call,
            s,
            leg,
            rec,
        }
    }

    /// Speaks a fixed line.
    pub fn speak_line(&self, text: String, turn: TurnTimes) -> SpeechHandle {
        SpeechHandle::line(self.s.voice.clone(), text, turn)
    }

    /// Speaks a generated answer.
    pub fn speak_answer(&self, answer: crate::Answer, turn: TurnTimes) -> SpeechHandle {
        let deadline = self.s.agent.pack().persona.timeouts.reply_deadline_ms;
        let deadline = (deadline > 0).then(|| Duration::from_millis(deadline));
        SpeechHandle::answer(self.s.voice.clone(), &self.s.pace, answer, turn, deadline)
    }

    /// The agent's audio is queued or coming.
    pub fn agent_talking(&self) -> bool {
        self.speaking.is_some() || !self.playing.is_empty() || self.playout.queued_frames() > 0
    }

    /// No reply is being generated, queued or prepared by a tool.
    pub fn agent_quiet(&self) -> bool {
        self.speaking.is_none() && self.playing.is_empty() && self.tool_run.is_none()
    }

    /// When nothing is being spoken: starts the next action waiting, and
    /// once none is left makes the transfer or hang-up that was asked for.
    /// `Some` when the call ended.
    async fn start_next(&mut self) -> Option<LegEnd> {
        loop {
            if self.speaking.is_some() || self.tool_run.is_some() {
                return None;
            }
            while let Some(action) = self.pending.pop_front() {
                if self.start(action).await {
                    break;
                }
            }
            if self.speaking.is_some() || self.tool_run.is_some() {
                return None;
            }
            if let Some(to) = self.transfer_after_speech.take() {
                self.playout.drained().await;
                let played = self.record_played().await;
                self.finish_turns(played).await;
                match self.transfer(&to).await {
                    Some(end) => return Some(end),
                    None => {
                        let failed = self.s.agent.pack().rules.escalation.failed.clone();
                        self.pending.push_back(Action::Say(failed));
                        self.silence.restart();
                        continue;
                    }
                }
            }
            if let Some(reason) = self.hang_up_after_speech {
                // Let the last words play out before the BYE.
                self.playout.drained().await;
                let played = self.record_played().await;
                self.finish_turns(played).await;
                self.leg.hangup().await.ok();
                return Some(LegEnd::local(reason));
            }
            return None;
        }
    }

    /// Starts one action; true when it occupies the agent (a reply, a tool).
    async fn start(&mut self, action: Action) -> bool {
        match action {
            Action::Say(text) => {
                let text = self.conv.fill(&text);
                // A digit prompt the caller already answered by keying ahead is not said.
                if let Some(Action::CollectDigits { length, .. }) = self.pending.front() {
                    if self.digits.answers_prompt(*length) {
                        info!(prompt = %text, "digits keyed ahead answer the prompt: not said");
                        return false;
                    }
                }
                let turn = std::mem::take(&mut self.turn_times);
                self.speaking = Some(self.speak_line(text, turn));
                true
            }
            Action::Answer(answer) => {
                let turn = std::mem::take(&mut self.turn_times);
                self.speaking = Some(self.speak_answer(*answer, turn));
                true
            }
            Action::CollectDigits { length, keep } => {
                // Digits keyed ahead of the prompt count (type-ahead).
                if let Some(done) = self.digits.start(length, keep) {
                    self.keyed(&done).await;
                }
                false
            }
            Action::CallTool(c) => {
                self.holds_said = 0;
                let at_ms = self.transcript.now_ms();
                self.tool_run = Some(RunningTool::start(self.s.agent.clone(), c, at_ms));
                true
            }
            Action::Transfer { to } => {
                self.transfer_after_speech = Some(to);
                false
            }
            Action::ScheduleCallback { when } => {
                self.transcript.note(&format!("callback scheduled: {when}")).await;
                false
            }
            Action::SendDtmf { digits } => {
                // Queued after the line before it.
                match self.playout.send_dtmf(&digits, DTMF_KEY_MS) {
                    Ok(()) => {
                        info!(%digits, "keying DTMF");
                        self.transcript.agent(&format!("(keyed {digits})")).await;
                    }
                    Err(e) => warn!(error = %e, %digits, "DTMF not sent"),
                }
                false
            }
            Action::Outcome(outcome) => {
                info!(%outcome, "call outcome");
                self.transcript.note(&format!("outcome: {outcome}")).await;
                self.s.sink.outcome(&outcome).await;
                self.outcome = Some(outcome);
                false
            }
            Action::HangUp => {
                self.hang_up_after_speech = Some("agent_goodbye");
                false
            }
        }
    }

    /// A complete digit entry: into the transcript (masked unless the pack
    /// keeps it) and, in clear, the conversation.
    pub async fn keyed(&mut self, entry: &str) {
        self.transcript
            .caller(&format!("(keyed {})", self.digits.shown(entry)), None, None)
            .await;
        let next = self.conv.digits(entry).await;
        self.pending.extend(next);
        self.transcript.steps(&mut self.conv).await;
    }

    /// Waits for what happens next.
    async fn next_event(&mut self, deadline: std::pin::Pin<&mut tokio::time::Sleep>) -> Event {
        let collecting = self.digits.is_collecting();
        let barge_wait = self.barge.due_in(self.rec.now_ms());
        let working = self.paused.is_none()
            && !self.caller_speaking
            && self.playout.queued_frames() == 0
            && (self.tool_run.is_some() || self.speaking.as_ref().is_some_and(|s| s.queued.is_empty()));
        if !working {
            self.working_since = None;
        } else if self.working_since.is_none() {
            self.working_since = Some(Instant::now());
        }
        // The model's answer, expected slow from the recent ones: the hold
        // line comes early. Asked only while a caller waits for one.
        let s = self.s;
        let persona = &s.agent.pack().persona;
        let model_reply = self.tool_run.is_none() && self.speaking.as_ref().is_some_and(|s| s.answer_of.is_some());
        let timeouts = &persona.timeouts;
        let expected = (model_reply && self.working_since.is_some() && self.holds_said == 0)
            .then(|| s.pace.expected())
            .flatten();
        // The first hold line after the pace's wait; while the wait goes on
        // (counted again from when a hold line ended), the next ones.
        let hold_after = if self.holds_said == 0 {
            pace::hold_wait(
                Duration::from_millis(timeouts.hold_ms),
                Duration::from_millis(timeouts.hold_early_ms),
                model_reply,
                expected,
            )
        } else if timeouts.hold_ms > 0 && self.holds_said <= crate::pack::MAX_HOLD_AGAIN {
            Duration::from_millis(timeouts.hold_again_ms)
        } else {
            Duration::ZERO
        };
        let hold_due = self.working_since.is_some() && !hold_after.is_zero();
        let hold_wait = self
            .working_since
            .map_or(Duration::ZERO, |t| hold_after.saturating_sub(t.elapsed()));
        let waiting_for_caller =
            self.agent_quiet() && self.paused.is_none() && !self.caller_speaking && self.playout.queued_frames() == 0;
        let silence_wait = self.silence.due_in(collecting);
        // Made only when it can fire: not a boxed future per frame.
        let drained = (!self.playing.is_empty() && self.speaking.is_none()).then(|| self.playout.drained());
        let drain_due = drained.is_some();
        tokio::select! {
            input = self.leg.recv() => Event::Leg(input),
            Some(ev) = self.rec.next_event() => Event::Asr(ev),
            _ = tokio::time::sleep(hold_wait), if hold_due => Event::HoldDue { after: hold_after, expected },
            _ = tokio::time::sleep(barge_wait.unwrap_or_default()), if barge_wait.is_some() => Event::BargeDue,
            Some(spoken) = async { match self.speaking.as_mut() { Some(s) => s.rx.recv().await, None => None } } => Event::Spoken(spoken),
            _ = async { match drained { Some(d) => d.await, None => std::future::pending().await } }, if drain_due => Event::Drained,
            done = async { match self.tool_run.as_mut() { Some(t) => t.done().await, None => std::future::pending().await } } => Event::ToolDone(done),
            _ = tokio::time::sleep(silence_wait), if waiting_for_caller => Event::SilenceDue,
            _ = deadline => Event::Deadline,
            _ = self.s.shutdown.cancelled() => Event::Shutdown,
            _ = self.s.hangup.cancelled() => Event::HungUp,
        }
    }

    /// The call is over: what was being said is settled (the history and
    /// transcript keep what went out), the rest stops.
    async fn finish(&mut self) {
        if let Some(mut p) = self.preempt.take() {
            p.cancel();
        }
        self.stop_read_ahead();
        if let Some(p) = self.paused.take() {
            self.interrupted(p).await;
        }
        // The call ended while the agent spoke: the transcript and history
        // keep what went out of its last replies (by playout position).
        let mut left: Vec<SpeechHandle> = self.playing.drain(..).chain(self.speaking.take()).collect();
        let heard = stop_speaking(&mut left, self.playout.as_ref());
        for s in &mut left {
            s.cancel();
        }
        self.record_heard(heard).await;
        self.finish_turns(left).await;
        if let Some(t) = self.tool_run.take() {
            t.abort();
            let left = "the call ended before the tool answered".to_string();
            self.transcript.tool(&t, Some(left), false).await;
        }
        self.rec.close();
    }

    /// Stops the prompt read ahead from a partial, if it is still being read:
    /// the turn's reply (or the call's end) makes it of no further use. The KV
    /// it read stays cached, so a reply that starts with the same words takes
    /// it over instead of both reading them.
    pub fn stop_read_ahead(&mut self) {
        if let Some(h) = self.prefilling.take() {
            h.abort();
        }
    }

    /// Transfers the call once the agent's line has played. Returns how the
    /// call ended, or `None` when the transfer failed and the call stays
    /// with the agent.
    async fn transfer(&mut self, to: &str) -> Option<LegEnd> {
        self.transcript.note(&format!("transferring to {to}")).await;
        let wait = self.s.config.transfer_wait;
        let outcome = tokio::select! {
            o = self.leg.transfer(to, wait) => Some(o),
            _ = self.s.shutdown.cancelled() => None,
            _ = self.s.hangup.cancelled() => None,
        };
        match outcome {
            None => {
                self.leg.hangup().await.ok();
                Some(LegEnd::local(if self.s.hangup.is_cancelled() {
                    OPERATOR
                } else {
                    "shutdown"
                }))
            }
            Some(TransferResult::Transferred) => {
                info!(to, "call transferred");
                self.transcript.note(&format!("transferred to {to}")).await;
                Some(LegEnd::local("transferred"))
            }
            Some(TransferResult::Ended(e)) => Some(e),
            Some(TransferResult::Failed(why)) => {
                warn!(to, %why, "transfer failed");
                self.transcript.note(&format!("transfer to {to} failed: {why}")).await;
                self.bridge_to(to).await
            }
        }
    }

    /// The transfer's second way: the agent calls `to` and joins the calls.
    /// `None` when that fails too (or is off): the caller stays with the agent.
    async fn bridge_to(&mut self, to: &str) -> Option<LegEnd> {
        if !self.s.config.transfer_bridge {
            return None;
        }
        // The caller hears the hold line while the colleague's phone rings.
        if let Ok(audio) = self.s.voice.line(&self.s.agent.pack().persona.timeouts.hold).await {
            self.playout.play(&audio, self.tts_rate).ok();
        }
        self.transcript.note(&format!("calling {to} to join the call")).await;
        let direction = self.leg.facts().direction;
        // The joined calls end at the call's longest duration too.
        let limit = self.ends_at.saturating_duration_since(Instant::now());
        match self.leg.bridge(to, self.s.config.transfer_wait, limit).await {
            BridgeResult::Joined(end) => {
                let by = party_name(end.by, direction);
                self.transcript
                    .note(&format!("joined with {to} until {} ({by})", end.reason))
                    .await;
                Some(end)
            }
            BridgeResult::Abandoned(end) => {
                self.transcript
                    .note(&format!("the caller hung up while {to} was called"))
                    .await;
                Some(end)
            }
            BridgeResult::Failed(why) => {
                warn!(to, %why, "the agent could not join the colleague: it stays on the call");
                self.transcript.note(&format!("could not join {to}: {why}")).await;
                None
            }
        }
    }

    /// A false interruption: the replies play on from the phrase that was cut.
    pub fn resume(&mut self, p: Paused) {
        let Paused {
            mut replies,
            heard,
            was_speaking,
            pending: waiting,
            ..
        } = p;
        for (r, h) in replies.iter_mut().zip(&heard) {
            let before: Vec<String> = r.queued.drain(..h.resume_from).map(|ph| ph.text).collect();
            r.said_before = r.heard_with(&before.join(" "));
            for ph in &r.queued {
                if let Err(e) = self.playout.play(&ph.audio, self.tts_rate) {
                    warn!(error = %e, "agent playout failed");
                }
            }
        }
        self.s.observer.false_interruption();
        info!("false interruption (no words from the caller): the agent goes on");
        if was_speaking {
            self.speaking = replies.pop();
        }
        self.playing.extend(replies);
        self.pending = waiting;
    }

    /// A real interruption: the stopped replies are cancelled, what the
    /// caller heard of them goes into the history and the transcript, and
    /// their turns are stored with the barge-in times.
    pub async fn interrupted(&mut self, p: Paused) {
        let Paused {
            mut replies,
            heard,
            onset_at,
            stopped_at,
            ..
        } = p;
        for r in &mut replies {
            r.cancel();
            if let Some(t) = r.turn.as_mut() {
                t.barge_in = Some((onset_at, stopped_at));
            }
        }
        self.record_heard(heard).await;
        self.finish_turns(replies).await;
    }

    /// What the caller heard of stopped replies goes into the history and
    /// the transcript.
    async fn record_heard(&mut self, heard: Vec<Heard>) {
        // Played back to back, the last ending now.
        let mut after: usize = heard.iter().map(|h| h.frames).sum();
        for h in heard {
            after -= h.frames;
            self.transcript
                .heard(
                    &mut self.conv,
                    h.answer_of.as_deref(),
                    &h.text,
                    h.cut,
                    frames(h.frames),
                    frames(after),
                )
                .await;
        }
    }

    /// Replies that played out in full go into the history and the transcript.
    pub async fn record_played(&mut self) -> Vec<SpeechHandle> {
        let played: Vec<SpeechHandle> = self.playing.drain(..).collect();
        // Played back to back, the last ending now.
        let mut after: usize = played.iter().map(SpeechHandle::queued_frames).sum();
        for p in &played {
            let heard = p.played_text();
            after -= p.queued_frames();
            self.transcript
                .heard(
                    &mut self.conv,
                    p.answer_of.as_deref(),
                    &heard,
                    false,
                    frames(p.queued_frames()),
                    frames(after),
                )
                .await;
        }
        played
    }

    /// Stores the turns of replies that are over (played, cut or dropped).
    pub async fn finish_turns(&mut self, replies: Vec<SpeechHandle>) {
        for r in replies {
            let Some(t) = r.turn else { continue };
            if let Some(row) = t.record(self.turn_seq + 1, self.playout.as_ref(), self.s.observer.as_ref()) {
                self.turn_seq += 1;
                self.s.sink.agent_turn(row).await;
            }
        }
    }
}

/// The name the records give the side that ended a call.
fn party_name(by: EndedBy, direction: Direction) -> &'static str {
    match (by, direction) {
        (EndedBy::Local, _) => "voxline",
        (EndedBy::Remote, Direction::Inbound) => "caller",
        (EndedBy::Remote, Direction::Outbound) => "callee",
    }
}

/// How long `n` 20 ms frames last.
fn frames(n: usize) -> Duration {
    Duration::from_millis(20 * n as u64)
}
