//! The `agent` handler: a domain agent on the call. It greets (cached
//! audio), listens (VAD + streaming Whisper), answers each final caller
//! turn through the dialogue engine (routing, tools, a grounded and guarded
//! model answer spoken phrase by phrase as it is generated), stops talking
//! when the caller talks over it (barge-in) and keeps in the history only
//! what the caller heard, re-prompts on silence and hangs up when the
//! conversation ends. Each turn's stage times are logged and written with
//! the transcript.

use crate::asr_engine::AsrEngine;
use crate::config::{resolve_path, MediaConfig};
use crate::handlers::agent_bridge::{bridge, BridgeEnv, Bridged, Dialer};
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::agent_turns::{ReplyStages, TurnTimes};
use crate::handlers::call_media::{answer_with_media, finish_call, local_end, Answered};
use crate::handlers::reply_pace::{self, ReplyPace};
use crate::records::Records;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use voxline_agent::router::words;
use voxline_agent::turn_end::{self, TurnEnd};
use voxline_agent::{Action, Agent, Conversation, DomainPack};
use voxline_asr::AsrEvent;
use voxline_media::{DtmfDigit, DtmfSource, MediaClock, MediaEvent, MediaPort, PortInput};
use voxline_sip::routing::ParamValue;
use voxline_sip::{CallEvent, EndReason, InboundCall, Party, RouteConfig, TransferOutcome};
use voxline_tts::TtsEngine;

/// Parameters of an agent route (`[route.params]`).
#[derive(Debug, Clone)]
pub struct AgentParams {
    /// The domain pack's folder.
    pub domain: PathBuf,
    /// Hang up after this many seconds (default: the persona's `max_call_s`).
    pub max_seconds: Option<u64>,
    /// Record this route's calls (overrides `media.record`).
    pub record: Option<bool>,
    /// The caller's voice this long (from its first VAD window, before the
    /// VAD reports speech) while the agent talks stops the agent, ms.
    pub barge_in_ms: u64,
    /// How long a transfer may take (REFER answered and the colleague answering), s.
    pub transfer_wait_s: u64,
    /// When the REFER is refused or fails, call the target and join the calls.
    pub transfer_bridge: bool,
    /// Silence that ends the caller's turn when their words are clearly a
    /// finished sentence or question, ms (else `asr.hangover_ms`).
    pub turn_complete_ms: u32,
    /// Silence that ends the caller's turn when their words clearly go on
    /// (a trailing "and", a half-read number), ms.
    pub turn_incomplete_ms: u32,
}

impl AgentParams {
    /// Reads and checks the parameters (the pack is loaded to check it); errors are (field, reason).
    pub fn parse(params: &BTreeMap<String, ParamValue>, base: &Path) -> Result<AgentParams, (String, String)> {
        let mut p = AgentParams {
            domain: PathBuf::new(),
            max_seconds: None,
            record: None,
            barge_in_ms: 100,
            transfer_wait_s: 30,
            transfer_bridge: true,
            turn_complete_ms: 250,
            turn_incomplete_ms: 1200,
        };
        for (k, v) in params {
            let field = format!("params.{k}");
            let bad = |want: &str| (field.clone(), format!("must be {want}"));
            match (k.as_str(), v) {
                ("domain", ParamValue::Str(s)) => p.domain = resolve_path(base, Path::new(s)),
                ("domain", _) => return Err(bad("the path of a domain pack folder")),
                ("max_seconds", ParamValue::Int(n)) if *n > 0 && *n <= 86_400 => p.max_seconds = Some(*n as u64),
                ("max_seconds", _) => return Err(bad("an integer from 1 to 86400")),
                ("record", ParamValue::Bool(b)) => p.record = Some(*b),
                ("record", _) => return Err(bad("true or false")),
                ("barge_in_ms", ParamValue::Int(n)) if (60..=2000).contains(n) => p.barge_in_ms = *n as u64,
                ("barge_in_ms", _) => return Err(bad("an integer from 60 to 2000")),
                ("transfer_wait_s", ParamValue::Int(n)) if (1..=300).contains(n) => p.transfer_wait_s = *n as u64,
                ("transfer_wait_s", _) => return Err(bad("an integer from 1 to 300")),
                ("transfer_bridge", ParamValue::Bool(b)) => p.transfer_bridge = *b,
                ("transfer_bridge", _) => return Err(bad("true or false")),
                ("turn_complete_ms", ParamValue::Int(n)) if (100..=2000).contains(n) => p.turn_complete_ms = *n as u32,
                ("turn_complete_ms", _) => return Err(bad("an integer from 100 to 2000")),
                ("turn_incomplete_ms", ParamValue::Int(n)) if (200..=5000).contains(n) => {
                    p.turn_incomplete_ms = *n as u32
                }
                ("turn_incomplete_ms", _) => return Err(bad("an integer from 200 to 5000")),
                _ => return Err((field, "unknown parameter for the agent handler".into())),
            }
        }
        if p.domain.as_os_str().is_empty() {
            return Err((
                "params.domain".into(),
                "the agent needs a domain pack (e.g. domains/demo-bank)".into(),
            ));
        }
        DomainPack::load(&p.domain).map_err(|e| ("params.domain".to_string(), e.to_string()))?;
        Ok(p)
    }
}

/// A prepared agent route: the pack's engine and the shared speech engines.
pub struct AgentRoute {
    params: AgentParams,
    agent: Arc<Agent>,
    tts: TtsEngine,
    asr: Arc<AsrEngine>,
    clock: MediaClock,
    media: MediaConfig,
    shutdown: CancellationToken,
    metrics: AgentMetrics,
    dialer: Dialer,
    /// How long this route's answers take (an early hold line).
    pace: Arc<ReplyPace>,
}

/// Audio of the agent on its way to the caller.
enum Spoken {
    /// A phrase's audio at the voice's rate, with when its stages happened.
    Audio {
        text: String,
        samples: Arc<[i16]>,
        stages: ReplyStages,
    },
    /// The reply is over (with what it said, for an answer).
    Done,
    /// Synthesis or generation failed.
    Failed(String),
}

/// What is being spoken: one reply of the agent.
struct Speaking {
    cancel: CancellationToken,
    rx: mpsc::Receiver<Spoken>,
    /// For an answer: the user message it answered (the history keeps it).
    answer_of: Option<String>,
    /// Phrases queued for playout.
    queued: Vec<Phrase>,
    /// Phrases heard before a false interruption (the rest was queued again).
    said_before: String,
    /// When the caller's turn ended (for the turn's latency).
    turn: Option<TurnTimes>,
    /// Audio may still come (not Done or Failed yet).
    generating: bool,
}

impl Speaking {
    /// Marks the reply fully generated.
    fn generated(mut self) -> Speaking {
        self.generating = false;
        self
    }

    /// What was heard of it before a false interruption, then `text`.
    fn heard_with(&self, text: &str) -> String {
        [self.said_before.as_str(), text]
            .iter()
            .filter(|t| !t.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One phrase of a reply in the playout queue.
struct Phrase {
    text: String,
    /// Length in port frames (20 ms).
    frames: usize,
    /// Its audio, kept to play it again after a false interruption.
    audio: Arc<[i16]>,
}

/// How far the caller heard one reply when the agent stopped.
struct Heard {
    /// The user message it answered, for an answer.
    answer_of: Option<String>,
    /// Whole phrases played, and the played share of the one cut.
    text: String,
    /// The reply was cut.
    cut: bool,
    /// Index of the first phrase not heard in full.
    resume_from: usize,
}

/// Silence after a voice too short to be speech (no utterance reported)
/// before the agent, stopped by it, goes on (ms).
const NOISE_GONE_MS: u64 = 150;

/// How long each DTMF key the agent sends is held, ms.
const DTMF_KEY_MS: u32 = 100;

/// Stops the prompt read ahead from a partial, if it is still being read:
/// the turn's reply (or the call's end) makes it of no further use. The KV
/// it read stays cached, so a reply that starts with the same words takes
/// it over instead of both reading them.
fn stop_read_ahead(prefilling: &mut Option<tokio::task::JoinHandle<()>>) {
    if let Some(h) = prefilling.take() {
        h.abort();
    }
}

/// One call counted into the engines' crowd counters (see
/// `AsrPool::crowd`) for as long as it lives.
struct Crowd(Vec<Arc<AtomicUsize>>);

impl Crowd {
    fn join(counters: Vec<Arc<AtomicUsize>>) -> Crowd {
        for c in &counters {
            c.fetch_add(1, Ordering::Relaxed);
        }
        Crowd(counters)
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for c in &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The agent's speech, stopped by the caller's speech, held until the
/// caller's words show whether it was an interruption (cancel it) or a
/// backchannel or noise (play on from the phrase that was cut).
struct Paused {
    /// The replies stopped, oldest first; the last may still be generating.
    replies: Vec<Speaking>,
    heard: Vec<Heard>,
    /// The last reply was still being generated.
    was_speaking: bool,
    /// Actions that were waiting behind the replies.
    pending: VecDeque<Action>,
    /// The caller's onset and when the playout was cleared.
    onset_at: Instant,
    stopped_at: Instant,
    /// The caller's voice went on long enough to be speech (an utterance
    /// whose words will decide); else, once the voice is gone, it was noise.
    speech_started: bool,
}

/// A reply started on the early final, not yet heard.
struct Preempt {
    utterance: u64,
    /// The tentative text's words (`router::words`), compared with the final's.
    words: String,
    intent: voxline_agent::Intent,
    /// Its first line or answer, generating (its audio waits).
    first: Option<Speaking>,
    /// What follows it.
    rest: VecDeque<Action>,
    /// The conversation as it was before this turn.
    before: Box<Conversation>,
}

impl Preempt {
    /// Drops the reply (its generation and synthesis stop) and takes the
    /// conversation back to before it.
    fn undo(mut self, conv: &mut Conversation) {
        self.cancel();
        *conv = *self.before;
    }

    /// Drops the reply: its generation and synthesis stop.
    fn cancel(&mut self) {
        self.drop_first();
        self.rest.clear();
    }

    /// Drops its first line or answer (what follows stays).
    fn drop_first(&mut self) {
        if let Some(mut s) = self.first.take() {
            s.cancel.cancel();
            s.rx.close();
        }
    }
}

/// What every agent route shares: the speech engines, the media clock and
/// settings, the shutdown signal and the turn metrics.
#[derive(Clone)]
pub struct AgentShared {
    /// The language model.
    pub llm: Arc<dyn voxline_llm::ChatModel>,
    /// The voice.
    pub tts: TtsEngine,
    /// The recogniser.
    pub asr: Arc<AsrEngine>,
    /// The media clock.
    pub clock: MediaClock,
    /// `[media]`.
    pub media: MediaConfig,
    /// Server shutdown.
    pub shutdown: CancellationToken,
    /// Turn figures for `/metrics`.
    pub metrics: AgentMetrics,
    /// Places the agent's own calls (a transfer when REFER fails).
    pub dialer: Dialer,
}

impl AgentRoute {
    /// Loads the pack and builds its engine.
    pub fn new(params: AgentParams, shared: AgentShared) -> anyhow::Result<AgentRoute> {
        let pack = Arc::new(DomainPack::load(&params.domain)?);
        Ok(AgentRoute {
            agent: Arc::new(Agent::new(pack, shared.llm)),
            params,
            tts: shared.tts,
            asr: shared.asr,
            clock: shared.clock,
            media: shared.media,
            shutdown: shared.shutdown,
            metrics: shared.metrics,
            dialer: shared.dialer,
            pace: Arc::new(ReplyPace::default()),
        })
    }

    /// Warms the model with the pack's prompt and pins the fixed lines' audio
    /// (persona, rules, the tools' prompts and lines, the flow's steps).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        self.agent.warm().await?;
        let pack = self.agent.pack();
        let mut lines = vec![
            pack.persona.greeting.clone(),
            pack.persona.goodbye.clone(),
            pack.persona.timeouts.reprompt.clone(),
            pack.persona.timeouts.hold.clone(),
        ];
        lines.extend(pack.rules.mandatory.after_greeting.iter().cloned());
        lines.push(pack.rules.domain.decline.clone());
        lines.push(pack.rules.domain.unknown.clone());
        lines.push(pack.rules.escalation.say.clone());
        lines.push(pack.rules.escalation.failed.clone());
        // The tools' and the flow's own words, where no value is filled in.
        for tool in &pack.tools {
            lines.extend(tool.say_before.iter().chain(&tool.say_error).cloned());
            lines.extend(tool.args.values().map(|a| a.prompt.clone()));
        }
        for step in pack.flow.iter().flat_map(|f| &f.steps) {
            lines.extend(step.say.iter().chain(&step.reask).cloned());
        }
        for l in lines.iter().filter(|l| !l.contains('{') && !l.trim().is_empty()) {
            self.tts.pin(l).await?;
        }
        Ok(())
    }

    /// Runs one call to its end and completes its record.
    pub async fn run(&self, mut call: InboundCall, route: &RouteConfig, records: &Records) {
        let record_id = records.inbound_started(&call.info, route).await;
        let span = tracing::info_span!("agent", domain = %self.params.domain.display());
        let outcome = self.converse(&mut call, records, &record_id).instrument(span).await;
        finish_call(records, &record_id, outcome).await;
    }

    async fn converse(
        &self,
        call: &mut InboundCall,
        records: &Records,
        record_id: &str,
    ) -> (EndReason, bool, Option<Arc<voxline_media::MediaStats>>, Option<String>) {
        // While this call lasts, the engines know the CPU is shared.
        let _crowd = Crowd::join(vec![self.asr.pool().crowd(), self.tts.crowd()]);
        let record = self.params.record.unwrap_or(self.media.record);
        let Answered { rtp, recorder } = match answer_with_media(call, &self.media, record, 0, records, record_id).await
        {
            Ok(a) => a,
            Err(outcome) => return outcome,
        };
        let mut port = match MediaPort::open(&rtp) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "media port unavailable: the agent cannot hear this call");
                call.hangup().await.ok();
                return (local_end("error"), true, Some(rtp.stats()), Some(e.to_string()));
            }
        };
        let asr = self.asr.clone();
        let vocabulary = self.agent.pack().persona.asr_prompt();
        let mut recognizer = match tokio::task::spawn_blocking(move || asr.recognizer(vocabulary.as_deref())).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                warn!(error = %e, "speech recognition unavailable: hanging up");
                call.hangup().await.ok();
                return (local_end("error"), true, Some(rtp.stats()), Some(e.to_string()));
            }
            Err(e) => {
                call.hangup().await.ok();
                return (local_end("error"), true, Some(rtp.stats()), Some(e.to_string()));
            }
        };
        let media_cancel = CancellationToken::new();
        let media_task = {
            let rtp = rtp.clone();
            let c = media_cancel.clone();
            let clock = self.clock.clone();
            tokio::spawn(async move { rtp.run(&clock, recorder, c).await })
        };
        rtp.set_media_timeout(Duration::from_secs(self.media.timeout_secs));

        let persona = &self.agent.pack().persona;
        let max_call = Duration::from_secs(self.params.max_seconds.unwrap_or(persona.timeouts.max_call_s));
        let deadline = tokio::time::sleep(max_call);
        tokio::pin!(deadline);
        let mut conv = self.agent.conversation();
        let mut transcript = Transcript::new(records.clone(), record_id.to_string(), recognizer.now_ms());
        // Lines waiting to be spoken after the current one.
        let mut pending: VecDeque<Action> = conv.opening().await.into();
        transcript.steps(&mut conv).await;
        let mut speaking: Option<Speaking> = None;
        // Replies fully generated whose audio is still queued, oldest first.
        let mut playing: VecDeque<Speaking> = VecDeque::new();
        let mut tool_run: Option<tokio::task::JoinHandle<(Vec<Action>, bool)>> = None;
        let mut digits = String::new();
        let mut collecting: Option<usize> = None;
        // Digits keyed before the agent asked for them (since the caller last spoke).
        let mut typed_ahead = String::new();
        let mut hang_up_after_speech: Option<&'static str> = None;
        // A transfer to make once the line before it has played.
        let mut transfer_after_speech: Option<String> = None;
        // The caller's speech onset while the agent talks (stream ms), until it is long enough to stop it.
        let mut barge: Option<u64> = None;
        // The end of the caller's last voice window (stream ms).
        let mut last_voice_ms: u64 = 0;
        let mut caller_speaking = false;
        let mut silent_since = Instant::now();
        let mut reprompted = false;
        let mut turn_times = TurnTimes::default();
        let mut turn_seq: i64 = 0;
        // The configured hang-over, restored at each new utterance.
        let hangover_ms = recognizer.segmenter_mut().config().hangover_ms;
        // A reply started on the early final, held until the final confirms it.
        let mut preempt: Option<Preempt> = None;
        // The prompt of the caller's words so far being read into the model's cache.
        let mut prefilling: Option<tokio::task::JoinHandle<()>> = None;
        // Speech stopped by the caller, until their words decide.
        let mut paused: Option<Paused> = None;
        // Since when the caller has waited in silence for a reply being
        // prepared (a tool, the model), and whether the hold line was said.
        let mut working_since: Option<Instant> = None;
        let mut hold_said = false;
        let tts_rate = self.tts.sample_rate();
        // Phrase lengths are kept in 20 ms frames, as the playout queue counts.
        let port_frame_samples = (tts_rate / 50) as usize;

        let end = loop {
            // Start the next reply when nothing is being spoken.
            if speaking.is_none() && tool_run.is_none() {
                while let Some(action) = pending.pop_front() {
                    match action {
                        Action::Say(text) => {
                            // A digit prompt the caller already answered by keying ahead is not said.
                            if let Some(Action::CollectDigits { length }) = pending.front() {
                                if answers_prompt(&typed_ahead, *length) {
                                    info!(prompt = %text, "digits keyed ahead answer the prompt: not said");
                                    continue;
                                }
                            }
                            speaking = Some(self.speak_line(text, std::mem::take(&mut turn_times)));
                            break;
                        }
                        Action::Answer(answer) => {
                            speaking = Some(self.speak_answer(*answer, std::mem::take(&mut turn_times)));
                            break;
                        }
                        Action::CollectDigits { length } => {
                            collecting = Some(length);
                            digits.clear();
                            // Digits keyed ahead of the prompt count (type-ahead).
                            for d in std::mem::take(&mut typed_ahead).chars() {
                                if let Some(done) = collect_digit(&mut digits, d, length) {
                                    collecting = None;
                                    transcript.caller(&format!("(keyed {done})"), None).await;
                                    pending.extend(conv.digits(&done).await);
                                    transcript.steps(&mut conv).await;
                                    break;
                                }
                            }
                        }
                        Action::CallTool(c) => {
                            hold_said = false;
                            let agent = self.agent.clone();
                            tool_run = Some(tokio::spawn(async move { agent.run_tool(c).await }));
                            break;
                        }
                        Action::Transfer { to } => transfer_after_speech = Some(to),
                        Action::ScheduleCallback { when } => {
                            transcript.note(&format!("callback scheduled: {when}")).await;
                        }
                        Action::SendDtmf { digits } => match port.send_dtmf(&digits, DTMF_KEY_MS) {
                            // Queued after the line before it.
                            Ok(()) => {
                                info!(%digits, "keying DTMF");
                                transcript.agent(&format!("(keyed {digits})")).await;
                            }
                            Err(e) => warn!(error = %e, %digits, "DTMF not sent"),
                        },
                        Action::HangUp => hang_up_after_speech = Some("agent_goodbye"),
                    }
                }
                if speaking.is_none() && tool_run.is_none() {
                    if let Some(to) = transfer_after_speech.take() {
                        rtp.wait_drained().await;
                        let played = record_played(&mut playing, &mut conv, &mut transcript).await;
                        self.finish_turns(played, &port, records, record_id, &mut turn_seq)
                            .await;
                        match self
                            .transfer(call, &rtp, &mut port, &to, &mut transcript, records)
                            .await
                        {
                            Some(end) => break end,
                            None => {
                                pending.push_back(Action::Say(self.agent.pack().rules.escalation.failed.clone()));
                                silent_since = Instant::now();
                                continue;
                            }
                        }
                    }
                    if let Some(reason) = hang_up_after_speech {
                        // Let the last words play out before the BYE.
                        rtp.wait_drained().await;
                        let played = record_played(&mut playing, &mut conv, &mut transcript).await;
                        self.finish_turns(played, &port, records, record_id, &mut turn_seq)
                            .await;
                        call.hangup().await.ok();
                        break local_end(reason);
                    }
                }
            }
            // A digit entry gets `reprompt_ms` each time it is asked for.
            let silence_limit = if reprompted && collecting.is_none() {
                Duration::from_millis(persona.timeouts.hangup_ms.saturating_sub(persona.timeouts.reprompt_ms))
            } else {
                Duration::from_millis(persona.timeouts.reprompt_ms)
            };
            let barge_wait = Duration::from_millis(barge.map_or(0, |at| {
                (at + self.params.barge_in_ms).saturating_sub(recognizer.now_ms())
            }));
            let working = paused.is_none()
                && !caller_speaking
                && port.queued_frames() == 0
                && (tool_run.is_some() || speaking.as_ref().is_some_and(|s| s.queued.is_empty()));
            if !working {
                working_since = None;
            } else if working_since.is_none() {
                working_since = Some(Instant::now());
            }
            // The model's answer, expected slow from the recent ones: the hold
            // line comes early. Asked only while a caller waits for one.
            let model_reply = tool_run.is_none() && speaking.as_ref().is_some_and(|s| s.answer_of.is_some());
            let expected = (model_reply && working_since.is_some() && !hold_said)
                .then(|| self.pace.expected())
                .flatten();
            let hold_after = reply_pace::hold_wait(
                Duration::from_millis(persona.timeouts.hold_ms),
                Duration::from_millis(persona.timeouts.hold_early_ms),
                model_reply,
                expected,
            );
            let hold_wait = working_since.map_or(Duration::ZERO, |t| hold_after.saturating_sub(t.elapsed()));
            // No reply being generated, queued or prepared by a tool.
            let agent_quiet = speaking.is_none() && playing.is_empty() && tool_run.is_none();
            let waiting_for_caller = agent_quiet && paused.is_none() && !caller_speaking && port.queued_frames() == 0;
            tokio::select! {
                ev = call.next_event() => match ev {
                    CallEvent::Ended(e) => break e,
                    CallEvent::MediaChanged(n) => rtp.set_target(crate::handlers::playback::rtp_target(&n)),
                    CallEvent::Dtmf { digit, duration_ms } => rtp.inject_dtmf(DtmfDigit {
                        digit,
                        duration_ms: duration_ms.unwrap_or(0),
                        source: DtmfSource::SipInfo,
                    }),
                },
                Some(input) = port.recv() => match input {
                    PortInput::Frame(frame) => {
                        if let Err(e) = recognizer.push(&frame) {
                            warn!(error = %e, "speech recognition stopped: hanging up");
                            call.hangup().await.ok();
                            break local_end("error");
                        }
                        // Barge-in runs on the caller's voice from its first
                        // windows, before the VAD reports speech.
                        let now = recognizer.now_ms();
                        match recognizer.segmenter().voice_since() {
                            Some(at) => {
                                last_voice_ms = now;
                                let agent_talking = speaking.is_some() || !playing.is_empty() || port.queued_frames() > 0;
                                if barge.is_none() && paused.is_none() && agent_talking {
                                    barge = Some(at);
                                }
                            }
                            None if !caller_speaking => {
                                barge = None;
                                // A voice too short to be speech stopped the agent: noise, it goes on.
                                if now.saturating_sub(last_voice_ms) >= NOISE_GONE_MS {
                                    if let Some(p) = paused.take_if(|p| !p.speech_started) {
                                        self.resume(p, &port, &mut playing, &mut speaking, &mut pending);
                                    }
                                }
                            }
                            None => {}
                        }
                    }
                    PortInput::Event(MediaEvent::Dtmf(d)) => {
                        silent_since = Instant::now();
                        match collecting {
                            Some(length) => {
                                if let Some(done) = collect_digit(&mut digits, d.digit, length) {
                                    collecting = None;
                                    transcript.caller(&format!("(keyed {done})"), None).await;
                                    pending.extend(conv.digits(&done).await);
                                    transcript.steps(&mut conv).await;
                                }
                            }
                            None if typed_ahead.len() < 32 => typed_ahead.push(d.digit),
                            None => {}
                        }
                    }
                    PortInput::Event(MediaEvent::MediaTimeout) => {
                        call.hangup().await.ok();
                        break local_end("media_timeout");
                    }
                    PortInput::Event(_) => {}
                },
                Some(ev) = recognizer.next_event() => match ev {
                    AsrEvent::SpeechStart { at_ms, .. } => {
                        caller_speaking = true;
                        if let Some(p) = paused.as_mut() {
                            p.speech_started = true;
                        }
                        typed_ahead.clear();
                        recognizer.segmenter_mut().set_hangover_ms(hangover_ms);
                        // The caller goes on: a reply started early is out of date.
                        if let Some(p) = preempt.take() {
                            p.undo(&mut conv);
                        }
                        if speaking.is_some() || !playing.is_empty() || port.queued_frames() > 0 {
                            barge = Some(at_ms);
                        }
                    }
                    AsrEvent::SpeechEnd { at_ms, .. } => {
                        caller_speaking = false;
                        recognizer.segmenter_mut().set_hangover_ms(hangover_ms);
                        barge = None;
                        turn_times.caller_ended(at_ms, recognizer.now_ms());
                        silent_since = Instant::now();
                    }
                    AsrEvent::Partial { text, .. } => {
                        // The model reads the question's facts while the caller
                        // still speaks (one prefill at a time per call).
                        let free = prefilling.as_ref().is_none_or(|h| h.is_finished());
                        if agent_quiet && free && preempt.is_none() && collecting.is_none() && !conv.is_collecting() {
                            if let Some(read) = conv.prefill(&text) {
                                debug!(%text, "prefilling the prompt from a partial");
                                prefilling = Some(tokio::spawn(
                                    async move {
                                        if let Err(e) = read.await {
                                            debug!(error = %e, "prefill failed");
                                        }
                                    }
                                    .in_current_span(),
                                ));
                            }
                        }
                    }
                    AsrEvent::Tentative { utterance, text } => {
                        // End of turn from the words: answer sooner after a
                        // finished sentence, wait longer for one that goes on.
                        let end = turn_end::assess(&text, &conv.digit_lengths());
                        recognizer.segmenter_mut().set_hangover_ms(match end {
                            TurnEnd::Complete => self.params.turn_complete_ms,
                            TurnEnd::Incomplete => self.params.turn_incomplete_ms,
                            TurnEnd::Unclear => hangover_ms,
                        });
                        debug!(?end, %text, "end of turn from the early final");
                        // Preemptive generation: start the reply now, keep it
                        // only if the final transcript is the same.
                        if agent_quiet && end != TurnEnd::Incomplete && preempt.is_none() && collecting.is_none() && !conv.is_collecting() && !is_backchannel(&text) {
                            let before = Box::new(conv.clone());
                            stop_read_ahead(&mut prefilling);
                            if let Ok((intent, actions)) = conv.turn(&text).await {
                                let mut actions: VecDeque<Action> = actions.into();
                                let times = TurnTimes { asr_final: Some(Instant::now()), early: true, ..TurnTimes::default() };
                                let first = match actions.pop_front() {
                                    Some(Action::Say(t)) => Some(self.speak_line(t, times)),
                                    Some(Action::Answer(a)) => Some(self.speak_answer(*a, times)),
                                    Some(other) => {
                                        actions.push_front(other);
                                        None
                                    }
                                    None => None,
                                };
                                preempt = Some(Preempt { utterance, words: words(&text), intent, first, rest: actions, before });
                            } else {
                                conv = *before;
                            }
                        }
                    }
                    AsrEvent::Final { utterance, text, latency, .. } => {
                        silent_since = Instant::now();
                        reprompted = false;
                        let text = text.trim().to_string();
                        let no_words = !text.chars().any(char::is_alphanumeric);
                        let backchannel = is_backchannel(&text);
                        // A reply started on other words is undone before anything else.
                        if preempt.as_ref().is_some_and(|p| p.utterance != utterance || p.words != words(&text)) {
                            if let Some(p) = preempt.take() {
                                p.undo(&mut conv);
                            }
                        }
                        if let Some(p) = paused.take() {
                            if no_words || backchannel {
                                // A false interruption: the agent goes on.
                                self.resume(p, &port, &mut playing, &mut speaking, &mut pending);
                                continue;
                            }
                            self.interrupted(p, &port, &mut conv, &mut transcript, records, record_id, &mut turn_seq).await;
                        }
                        // "Yeah" answers a question the agent asked; otherwise a
                        // backchannel does not take the turn.
                        if no_words || (backchannel && !conv.awaits_answer()) {
                            if let Some(p) = preempt.take() {
                                p.undo(&mut conv);
                            }
                            continue;
                        }
                        turn_times.asr_final = Some(Instant::now());
                        hold_said = false;
                        transcript.caller(&text, Some(latency)).await;
                        // A new turn replaces anything still queued.
                        pending.clear();
                        if let Some(mut p) = preempt.take() {
                            if p.utterance == utterance && p.words == words(&text) && speaking.is_none() {
                                info!(intent = ?p.intent, said = %text, "caller turn (reply started on the early final)");
                                self.metrics.preempted.inc();
                                // A digit prompt the caller already answered by keying ahead is dropped.
                                if matches!(p.rest.front(), Some(Action::CollectDigits { length }) if answers_prompt(&typed_ahead, *length)) {
                                    info!("digits keyed ahead answer the prompt: not said");
                                    p.drop_first();
                                }
                                turn_times.text = text.clone();
                                turn_times.intent = p.intent.name().to_string();
                                turn_times.early = true;
                                if let Some(mut s) = p.first.take() {
                                    s.turn = Some(std::mem::take(&mut turn_times));
                                    speaking = Some(s);
                                }
                                pending.extend(p.rest.drain(..));
                                transcript.steps(&mut conv).await;
                                continue;
                            }
                            p.undo(&mut conv);
                        }
                        stop_read_ahead(&mut prefilling);
                        match conv.turn(&text).await {
                            Ok((intent, actions)) => {
                                info!(?intent, said = %text, "caller turn");
                                turn_times.text = text.clone();
                                turn_times.intent = intent.name().to_string();
                                pending.extend(actions);
                                transcript.steps(&mut conv).await;
                            }
                            Err(e) => {
                                warn!(error = %e, "the model failed: answering that it does not know");
                                turn_times.text = text.clone();
                                turn_times.intent = "model_failed".into();
                                pending.push_back(Action::Say(self.agent.pack().rules.domain.unknown.clone()));
                            }
                        }
                    }
                    AsrEvent::Failed { error, .. } => {
                        warn!(%error, "caller turn not recognised");
                        if let Some(p) = paused.take() {
                            self.resume(p, &port, &mut playing, &mut speaking, &mut pending);
                        }
                    }
                },
                // The reply is slow (a tool, the model under load): say so once.
                _ = tokio::time::sleep(hold_wait), if working_since.is_some() && !hold_said && !hold_after.is_zero() => {
                    hold_said = true;
                    let line = persona.timeouts.hold.clone();
                    match self.tts.line(&line).await {
                        Ok(audio) => {
                            info!(
                                waited_ms = hold_after.as_millis() as u64,
                                expected_ms = expected.map(|e| e.as_millis() as u64),
                                answers_in_preparation = self.pace.in_preparation(),
                                "reply slow: hold line"
                            );
                            // The reply follows it: no long pause in between.
                            let audio = voxline_tts::without_trailing_silence(&audio, tts_rate);
                            if let Err(e) = port.play(audio, tts_rate) {
                                warn!(error = %e, "agent playout failed");
                            }
                            transcript.agent(&line).await;
                        }
                        Err(e) => warn!(error = %e, "hold line unavailable"),
                    }
                }
                // Barge-in: the caller has talked over the agent long enough.
                _ = tokio::time::sleep(barge_wait), if barge.is_some() => {
                    let onset = barge.take().unwrap_or(0);
                    let mut replies: Vec<Speaking> = playing.drain(..).chain(speaking.take()).collect();
                    let stopped_ms = recognizer.now_ms().saturating_sub(onset);
                    let stopped_at = Instant::now();
                    let onset_at = stopped_at.checked_sub(Duration::from_millis(stopped_ms)).unwrap_or(stopped_at);
                    let was_speaking = replies.last().is_some_and(|r| r.generating);
                    let heard = stop_speaking(&mut replies, &port);
                    self.metrics.barge_ins.inc();
                    self.metrics.barge_in_stop.observe(stopped_ms as f64 / 1e3);
                    info!(
                        stopped_after_onset_ms = stopped_ms,
                        heard = %heard.iter().map(|h| h.text.as_str()).collect::<Vec<_>>().join(" "),
                        "barge-in: the agent stopped"
                    );
                    paused = Some(Paused {
                        replies,
                        heard,
                        was_speaking,
                        pending: std::mem::take(&mut pending),
                        onset_at,
                        stopped_at,
                        speech_started: caller_speaking,
                    });
                }
                Some(spoken) = async { match speaking.as_mut() { Some(s) => s.rx.recv().await, None => None } } => {
                    match spoken {
                        Spoken::Audio { text, mut samples, stages } => {
                            // A turn's first audio is queued marked: when its
                            // first packet leaves is read back for the record.
                            let first_of_turn = speaking
                                .as_ref()
                                .is_some_and(|s| s.turn.as_ref().is_some_and(|t| t.first_audio.is_none()));
                            if first_of_turn {
                                // The reply starts with its first sound, not the voice's lead-in.
                                samples = voxline_tts::without_leading_silence(&samples, tts_rate).into();
                            }
                            let queued = if first_of_turn {
                                port.play_marked(&samples, tts_rate)
                            } else {
                                port.play(&samples, tts_rate).map(|()| None)
                            };
                            let mark = queued.unwrap_or_else(|e| {
                                warn!(error = %e, "agent playout failed");
                                None
                            });
                            if let Some(s) = speaking.as_mut() {
                                if let Some(t) = s.turn.as_mut() {
                                    t.first_audio_queued(stages, mark, &self.metrics);
                                }
                                s.queued.push(Phrase {
                                    frames: samples.len().div_ceil(port_frame_samples),
                                    text,
                                    audio: samples,
                                });
                            }
                        }
                        Spoken::Done => {
                            // Heard in full once it has played (a barge-in may still cut it).
                            playing.extend(speaking.take().map(Speaking::generated));
                        }
                        Spoken::Failed(why) => {
                            warn!(%why, "the agent's reply failed");
                            // What was queued of it still plays.
                            playing.extend(speaking.take().map(Speaking::generated));
                        }
                    }
                }
                _ = rtp.wait_drained(), if !playing.is_empty() && speaking.is_none() => {
                    let played = record_played(&mut playing, &mut conv, &mut transcript).await;
                        self.finish_turns(played, &port, records, record_id, &mut turn_seq).await;
                    silent_since = Instant::now();
                }
                done = async { match tool_run.as_mut() { Some(t) => t.await.ok(), None => std::future::pending().await } } => {
                    tool_run = None;
                    if let Some((actions, failed)) = done {
                        let next = conv.tool_finished(failed).await;
                        transcript.steps(&mut conv).await;
                        // The tool's answer goes first: it follows what was said before it.
                        for a in actions.into_iter().chain(next).rev() {
                            pending.push_front(a);
                        }
                    }
                }
                _ = tokio::time::sleep(silence_limit.saturating_sub(silent_since.elapsed())), if waiting_for_caller => {
                    silent_since = Instant::now();
                    if collecting.take().is_some() {
                        // No complete entry in time: asked again (the third miss offers a colleague).
                        let keyed = std::mem::take(&mut digits);
                        info!(%keyed, "digit entry timed out");
                        transcript.note("digit entry timed out").await;
                        pending.extend(conv.digits(&keyed).await);
                        transcript.steps(&mut conv).await;
                    } else if reprompted {
                        pending.push_back(Action::Say(persona.goodbye.clone()));
                        pending.push_back(Action::HangUp);
                    } else {
                        reprompted = true;
                        // A flow waiting for an answer asks its step again.
                        let again = conv.reprompt().await;
                        pending.push_back(again.unwrap_or_else(|| Action::Say(persona.timeouts.reprompt.clone())));
                    }
                }
                _ = &mut deadline => {
                    call.hangup().await.ok();
                    break local_end("max_duration");
                }
                _ = self.shutdown.cancelled() => {
                    call.hangup().await.ok();
                    break local_end("shutdown");
                }
            }
        };
        if let Some(mut p) = preempt.take() {
            p.cancel();
        }
        stop_read_ahead(&mut prefilling);
        if let Some(p) = paused.take() {
            self.interrupted(p, &port, &mut conv, &mut transcript, records, record_id, &mut turn_seq)
                .await;
        }
        // The call ended while the agent spoke: the transcript and history
        // keep what went out of its last replies (by playout position).
        let mut left: Vec<Speaking> = playing.drain(..).chain(speaking.take()).collect();
        let heard = stop_speaking(&mut left, &port);
        for s in &mut left {
            s.cancel.cancel();
            s.rx.close();
        }
        for h in heard {
            record_heard(h.answer_of.as_deref(), &h.text, h.cut, &mut conv, &mut transcript).await;
        }
        self.finish_turns(left, &port, records, record_id, &mut turn_seq).await;
        if let Some(t) = tool_run.take() {
            t.abort();
        }
        recognizer.close();
        media_cancel.cancel();
        media_task.await.ok();
        (end, true, Some(rtp.stats()), None)
    }

    /// Transfers the call (REFER) once the agent's line has played. Returns
    /// how the call ended, or `None` when the transfer failed and the call
    /// stays with the agent. The caller's audio meanwhile is not listened to.
    async fn transfer(
        &self,
        call: &mut InboundCall,
        rtp: &voxline_media::RtpSession,
        port: &mut MediaPort,
        to: &str,
        transcript: &mut Transcript,
        records: &Records,
    ) -> Option<EndReason> {
        transcript.note(&format!("transferring to {to}")).await;
        let wait = Duration::from_secs(self.params.transfer_wait_s);
        let outcome = {
            let transfer = call.transfer(to, wait);
            tokio::pin!(transfer);
            loop {
                tokio::select! {
                    o = &mut transfer => break Some(o),
                    Some(_) = port.recv() => {}
                    _ = self.shutdown.cancelled() => break None,
                }
            }
        };
        let Some(outcome) = outcome else {
            call.hangup().await.ok();
            return Some(EndReason {
                by: Party::Local,
                reason: "shutdown".into(),
                status: None,
            });
        };
        match outcome {
            Ok(TransferOutcome::Transferred) => {
                info!(to, "call transferred");
                transcript.note(&format!("transferred to {to}")).await;
                Some(EndReason {
                    by: Party::Local,
                    reason: "transferred".into(),
                    status: None,
                })
            }
            Ok(TransferOutcome::Ended(e)) => Some(e),
            Ok(failed) => {
                let status = match &failed {
                    TransferOutcome::Refused { status } | TransferOutcome::TargetFailed { status } => *status,
                    _ => None,
                };
                warn!(to, outcome = failed.name(), ?status, "transfer by REFER failed");
                let code = status.map(|s| format!(" ({s})")).unwrap_or_default();
                transcript
                    .note(&format!("transfer to {to} failed: {}{code}", failed.name()))
                    .await;
                self.bridge_to(call, rtp, port, to, transcript, records).await
            }
            Err(e) => {
                warn!(to, error = %e, "transfer by REFER failed");
                transcript.note(&format!("transfer to {to} failed: {e}")).await;
                self.bridge_to(call, rtp, port, to, transcript, records).await
            }
        }
    }

    /// The transfer's second way (REFER failed): the agent calls `to` and
    /// joins the calls. `None` when that fails too (or is off): the caller
    /// stays with the agent.
    async fn bridge_to(
        &self,
        call: &mut InboundCall,
        rtp: &voxline_media::RtpSession,
        port: &mut MediaPort,
        to: &str,
        transcript: &mut Transcript,
        records: &Records,
    ) -> Option<EndReason> {
        if !self.params.transfer_bridge {
            return None;
        }
        // The caller hears the hold line while the colleague's phone rings.
        if let Ok(audio) = self.tts.line(&self.agent.pack().persona.timeouts.hold).await {
            port.play(&audio, self.tts.sample_rate()).ok();
        }
        transcript.note(&format!("calling {to} to join the call")).await;
        let env = BridgeEnv {
            caller_rtp: rtp,
            records,
            dialer: &self.dialer,
            media: &self.media,
            clock: &self.clock,
            shutdown: &self.shutdown,
        };
        match bridge(call, port, to, Duration::from_secs(self.params.transfer_wait_s), env).await {
            Ok(Bridged { end, joined: true }) => {
                transcript
                    .note(&format!(
                        "joined with {to} until {} ({})",
                        end.reason,
                        end.by.inbound_name()
                    ))
                    .await;
                Some(end)
            }
            Ok(Bridged { end, joined: false }) => {
                transcript
                    .note(&format!("the caller hung up while {to} was called"))
                    .await;
                Some(end)
            }
            Err(why) => {
                warn!(to, %why, "the agent could not join the colleague: it stays on the call");
                transcript.note(&format!("could not join {to}: {why}")).await;
                None
            }
        }
    }

    /// A false interruption: the replies play on from the phrase that was cut.
    fn resume(
        &self,
        p: Paused,
        port: &MediaPort,
        playing: &mut VecDeque<Speaking>,
        speaking: &mut Option<Speaking>,
        pending: &mut VecDeque<Action>,
    ) {
        let Paused {
            mut replies,
            heard,
            was_speaking,
            pending: waiting,
            ..
        } = p;
        let rate = self.tts.sample_rate();
        for (r, h) in replies.iter_mut().zip(&heard) {
            let before: Vec<String> = r.queued.drain(..h.resume_from).map(|ph| ph.text).collect();
            r.said_before = r.heard_with(&before.join(" "));
            for ph in &r.queued {
                if let Err(e) = port.play(&ph.audio, rate) {
                    warn!(error = %e, "agent playout failed");
                }
            }
        }
        self.metrics.false_interruptions.inc();
        info!("false interruption (no words from the caller): the agent goes on");
        if was_speaking {
            *speaking = replies.pop();
        }
        playing.extend(replies);
        *pending = waiting;
    }

    /// A real interruption: the stopped replies are cancelled, what the
    /// caller heard of them goes into the history and the transcript, and
    /// their turns are stored with the barge-in times.
    #[allow(clippy::too_many_arguments)]
    async fn interrupted(
        &self,
        p: Paused,
        port: &MediaPort,
        conv: &mut voxline_agent::Conversation,
        transcript: &mut Transcript,
        records: &Records,
        record_id: &str,
        seq: &mut i64,
    ) {
        let Paused {
            mut replies,
            heard,
            onset_at,
            stopped_at,
            ..
        } = p;
        for r in &mut replies {
            r.cancel.cancel();
            r.rx.close();
            if let Some(t) = r.turn.as_mut() {
                t.barge_in = Some((onset_at, stopped_at));
            }
        }
        for h in heard {
            record_heard(h.answer_of.as_deref(), &h.text, h.cut, conv, transcript).await;
        }
        self.finish_turns(replies, port, records, record_id, seq).await;
    }

    /// Stores the turns of replies that are over (played, cut or dropped).
    async fn finish_turns(
        &self,
        replies: Vec<Speaking>,
        port: &MediaPort,
        records: &Records,
        record_id: &str,
        seq: &mut i64,
    ) {
        for r in replies {
            let Some(t) = r.turn else { continue };
            if let Some(row) = t.record(*seq + 1, port, &self.metrics) {
                *seq += 1;
                records.agent_turn(record_id, &row).await;
            }
        }
    }

    fn speak_line(&self, text: String, turn: TurnTimes) -> Speaking {
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let tts = self.tts.clone();
        let c = cancel.clone();
        let decided = Instant::now();
        tokio::spawn(async move {
            tokio::select! {
                _ = c.cancelled() => {}
                audio = tts.line(&text) => {
                    let msg = match audio {
                        Ok(samples) => Spoken::Audio {
                            text,
                            samples,
                            stages: ReplyStages { llm_first_token: None, first_phrase: decided, audio_ready: Instant::now() },
                        },
                        Err(e) => Spoken::Failed(e.to_string()),
                    };
                    let _ = tx.send(msg).await;
                    let _ = tx.send(Spoken::Done).await;
                }
            }
        });
        Speaking {
            cancel,
            rx,
            answer_of: None,
            queued: Vec::new(),
            said_before: String::new(),
            generating: true,
            turn: turn.asr_final.map(|_| turn),
        }
    }

    fn speak_answer(&self, mut answer: voxline_agent::Answer, turn: TurnTimes) -> Speaking {
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let tts = self.tts.clone();
        let c = cancel.clone();
        let user = answer.history_message().to_string();
        // Counted among the answers in preparation until its first audio is ready.
        let mut pace = self.pace.start();
        tokio::spawn(async move {
            let run = async {
                // Each phrase is synthesised as soon as it is checked; its
                // audio is queued while the next one is generated.
                loop {
                    match answer.next_phrase().await {
                        Ok(Some(phrase)) => {
                            let phrase_at = Instant::now();
                            // The model waits while the voice works: on two
                            // cores they would slow each other, and the
                            // phrase's audio is wanted first.
                            answer.hold(true);
                            let synthesized = tts.synthesize(&phrase).await;
                            answer.hold(false);
                            let samples = match synthesized {
                                Ok(s) => s,
                                Err(e) => {
                                    let _ = tx.send(Spoken::Failed(e.to_string())).await;
                                    return;
                                }
                            };
                            // Only audio that came teaches the pace; a failed
                            // synthesis drops its ticket uncounted.
                            pace.ready();
                            let stages = ReplyStages {
                                llm_first_token: answer.first_token_at(),
                                first_phrase: phrase_at,
                                audio_ready: Instant::now(),
                            };
                            let audio = Spoken::Audio {
                                text: phrase,
                                samples: samples.into(),
                                stages,
                            };
                            if tx.send(audio).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            if let Some(why) = &answer.stopped {
                                info!(%why, "answer stopped early");
                            }
                            let _ = tx.send(Spoken::Done).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Spoken::Failed(e.to_string())).await;
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                _ = c.cancelled() => answer.cancel(),
                _ = run => {}
            }
        });
        Speaking {
            cancel,
            rx,
            answer_of: Some(user),
            queued: Vec::new(),
            said_before: String::new(),
            generating: true,
            turn: turn.asr_final.map(|_| turn),
        }
    }
}

/// Stops the agent's speech now (the replies are not cancelled: see
/// [`Paused`]). For each reply queued (oldest first): how far the caller
/// heard it, computed from the playout queue.
fn stop_speaking(replies: &mut [Speaking], port: &MediaPort) -> Vec<Heard> {
    let still_queued = port.queued_frames();
    port.clear();
    let total: usize = replies.iter().flat_map(|s| s.queued.iter().map(|p| p.frames)).sum();
    // Audio goes out in order: the last `still_queued` frames were never heard.
    let mut heard_frames = total.saturating_sub(still_queued);
    let mut out = Vec::new();
    for s in replies.iter() {
        let mut heard = Vec::new();
        let mut cut = false;
        let mut resume_from = s.queued.len();
        for (i, p) in s.queued.iter().enumerate() {
            if heard_frames >= p.frames {
                heard.push(p.text.clone());
                heard_frames -= p.frames;
            } else {
                cut = true;
                resume_from = i;
                let words: Vec<&str> = p.text.split_whitespace().collect();
                let k = words.len() * heard_frames / p.frames.max(1);
                heard_frames = 0;
                if k > 0 {
                    heard.push(words[..k].join(" "));
                }
                break;
            }
        }
        // A reply still being generated was cut too.
        cut |= s.generating;
        out.push(Heard {
            answer_of: s.answer_of.clone(),
            text: s.heard_with(&heard.join(" ")),
            cut,
            resume_from,
        });
    }
    out
}

/// Replies that played out in full go into the history and the transcript.
async fn record_played(
    playing: &mut VecDeque<Speaking>,
    conv: &mut voxline_agent::Conversation,
    transcript: &mut Transcript,
) -> Vec<Speaking> {
    let played: Vec<Speaking> = playing.drain(..).collect();
    for p in &played {
        let said: Vec<&str> = p.queued.iter().map(|ph| ph.text.as_str()).collect();
        let heard = p.heard_with(&said.join(" "));
        record_heard(p.answer_of.as_deref(), &heard, false, conv, transcript).await;
    }
    played
}

/// What the caller heard of a reply goes into the history (answers) and the transcript.
async fn record_heard(
    answer_of: Option<&str>,
    heard: &str,
    cut: bool,
    conv: &mut voxline_agent::Conversation,
    transcript: &mut Transcript,
) {
    if let Some(user) = answer_of {
        conv.answered_text(user, heard);
    }
    if cut && !heard.trim().is_empty() {
        transcript.agent(&format!("{heard} [cut off by the caller]")).await;
    } else {
        transcript.agent(heard).await;
    }
}

/// Adds a keyed digit to those being collected; returns them once `#` ends
/// them or `length` are there.
fn collect_digit(digits: &mut String, digit: char, length: usize) -> Option<String> {
    if digit != '#' {
        digits.push(digit);
    }
    (digit == '#' || digits.len() >= length).then(|| std::mem::take(digits))
}

/// Whether digits keyed ahead already give a collection of `length` its
/// full answer (not a short entry ended by `#`).
fn answers_prompt(typed_ahead: &str, length: usize) -> bool {
    let mut digits = String::new();
    typed_ahead
        .chars()
        .find_map(|d| collect_digit(&mut digits, d, length))
        .is_some_and(|entry| entry.len() == length)
}

/// Short acknowledgements that do not take the turn (English): "uh-huh",
/// "okay", "yeah", "right", "I see", and hums however the recogniser spells
/// them ("mm", "mmmm", "hmm", "mhm").
pub(crate) fn is_backchannel(text: &str) -> bool {
    const BACKCHANNELS: &[&str] = &[
        "uh huh",
        "uh-huh",
        "mm hmm",
        "mm-hmm",
        "yeah",
        "yep",
        "yes",
        "right",
        "okay",
        "ok",
        "sure",
        "i see",
        "ah",
        "oh",
        "uh",
        "um",
        "aha",
        "alright",
        "all right",
        "got it",
        "okay okay",
        "yeah yeah",
    ];
    let t: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '-')
        .collect();
    let t = t.trim();
    let hum = |w: &str| !w.is_empty() && w.chars().all(|c| matches!(c, 'm' | 'h' | '-'));
    BACKCHANNELS.contains(&t) || (!t.is_empty() && t.split_whitespace().all(hum))
}

/// The call's transcript as it is written, with the flow steps it reached.
struct Transcript {
    records: Records,
    record_id: String,
    seq: i64,
    step_seq: i64,
    started: Instant,
    start_ms: u64,
}

impl Transcript {
    fn new(records: Records, record_id: String, start_ms: u64) -> Transcript {
        Transcript {
            records,
            record_id,
            seq: 0,
            step_seq: 0,
            started: Instant::now(),
            start_ms,
        }
    }

    /// Ms of call audio from the answer, now.
    fn now_ms(&self) -> i64 {
        self.start_ms as i64 + self.started.elapsed().as_millis() as i64
    }

    /// Writes the flow steps the conversation reached since the last call.
    async fn steps(&mut self, conv: &mut Conversation) {
        let Some(flow) = conv.flow_name().map(str::to_string) else {
            return;
        };
        for s in conv.take_reached() {
            self.step_seq += 1;
            let step = voxline_store::FlowStep {
                seq: self.step_seq,
                flow: flow.clone(),
                step: s.step,
                via: s.via,
                at_ms: self.now_ms(),
            };
            self.records.flow_step(&self.record_id, &step).await;
            self.note(&format!("flow step: {} (by {})", step.step, step.via)).await;
        }
    }

    async fn line(&mut self, speaker: &str, text: &str, latency: Option<Duration>) {
        if text.trim().is_empty() {
            return;
        }
        self.seq += 1;
        let at = self.now_ms();
        let line = voxline_store::TranscriptLine {
            seq: self.seq,
            speaker: speaker.into(),
            start_ms: at,
            end_ms: at,
            text: text.trim().to_string(),
            asr_latency_ms: latency.map(|l| l.as_secs_f64() * 1e3),
        };
        self.records.transcript_line(&self.record_id, &line).await;
    }

    async fn caller(&mut self, text: &str, latency: Option<Duration>) {
        self.line("caller", text, latency).await;
    }

    async fn agent(&mut self, text: &str) {
        self.line("agent", text, None).await;
    }

    async fn note(&mut self, text: &str) {
        self.line("system", text, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{answers_prompt, collect_digit, is_backchannel};

    #[test]
    fn digits_end_at_their_length_or_the_hash_key() {
        let mut d = String::new();
        assert_eq!(collect_digit(&mut d, '4', 4), None);
        assert_eq!(collect_digit(&mut d, '3', 4), None);
        assert_eq!(collect_digit(&mut d, '#', 4), Some("43".into()));
        assert!(d.is_empty());
        for c in "123".chars() {
            assert_eq!(collect_digit(&mut d, c, 4), None);
        }
        assert_eq!(collect_digit(&mut d, '4', 4), Some("1234".into()));
        // Keyed ahead: a full entry answers the prompt, a short one does not.
        assert!(answers_prompt("4321#", 4) && answers_prompt("43217", 4));
        assert!(!answers_prompt("43#", 4) && !answers_prompt("432", 4) && !answers_prompt("", 4));
    }

    #[test]
    fn backchannels_and_hums_however_spelled() {
        for t in [
            "Uh-huh.", "Okay.", "Yeah!", "MMMM.", "Mm-hmm.", "Hmm...", "mhm", "Ah.", "I see.", "Got it.",
        ] {
            assert!(is_backchannel(t), "{t}");
        }
        for t in [
            "",
            "Okay, what about fees?",
            "Yeah, block my card.",
            "Hello",
            "My name is Mia.",
        ] {
            assert!(!is_backchannel(t), "{t}");
        }
    }
}
