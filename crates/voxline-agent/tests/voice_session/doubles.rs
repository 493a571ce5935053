//! Test doubles for the voice session's engines, for timing logic only: a
//! recogniser that hears voice by its loudness and reads its words from a
//! script, a voice that makes 60 ms of tone per word, a model that streams
//! a scripted reply, and a sink that keeps what it is given. None of these
//! ships: the product runs Whisper, Piper and llama.cpp behind the same traits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use voxline_agent::voice::{Recognizer, SessionObserver, SessionSink, Voice};
use voxline_asr::{AsrEvent, Confidence, Transcript as Decoded};
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, LlmError, Usage};
use voxline_store::{AgentTurn, FlowStep, ToolUse, TranscriptLine};

/// Voice of at least this many ms is speech.
const MIN_SPEECH_MS: u64 = 60;
/// The early final comes after this much silence (before the hang-over ends).
const EARLY_MS: u64 = 100;

/// The words of the caller's next utterances, and the hang-over each one ended on.
#[derive(Debug, Clone, Default)]
pub struct Script {
    texts: Arc<Mutex<VecDeque<String>>>,
    /// The hang-over in force when each utterance ended, ms.
    pub hangovers: Arc<Mutex<Vec<u32>>>,
}

impl Script {
    /// The next utterance will be heard as `text`.
    pub fn next_says(&self, text: &str) {
        self.texts.lock().unwrap().push_back(text.into());
    }
}

/// A recogniser double: voice is a loud frame; speech is 60 ms of voice; an
/// utterance ends after the hang-over of silence; its text is the script's next.
pub struct ScriptedRecognizer {
    script: Script,
    now_ms: u64,
    hangover_ms: u32,
    voice_since: Option<u64>,
    last_voice_end: u64,
    utterance: u64,
    in_speech: bool,
    text: String,
    early_sent: bool,
    events: VecDeque<AsrEvent>,
}

impl ScriptedRecognizer {
    /// A recogniser whose configured hang-over is `hangover_ms`.
    pub fn new(script: Script, hangover_ms: u32) -> ScriptedRecognizer {
        ScriptedRecognizer {
            script,
            now_ms: 0,
            hangover_ms,
            voice_since: None,
            last_voice_end: 0,
            utterance: 0,
            in_speech: false,
            text: String::new(),
            early_sent: false,
            events: VecDeque::new(),
        }
    }
}

#[async_trait::async_trait]
impl Recognizer for ScriptedRecognizer {
    fn push(&mut self, samples: &[i16]) -> Result<(), String> {
        let loud = samples.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 1000;
        self.now_ms += (samples.len() / 16) as u64;
        if loud {
            let since = *self.voice_since.get_or_insert(self.now_ms - 20);
            self.last_voice_end = self.now_ms;
            if !self.in_speech && self.now_ms - since >= MIN_SPEECH_MS {
                self.in_speech = true;
                self.early_sent = false;
                self.utterance += 1;
                self.text = self.script.texts.lock().unwrap().pop_front().unwrap_or_default();
                self.events.push_back(AsrEvent::SpeechStart {
                    utterance: self.utterance,
                    at_ms: since,
                });
            } else if self.in_speech && self.early_sent {
                // The caller went on after the early final.
                self.early_sent = false;
            }
            return Ok(());
        }
        self.voice_since = None;
        if !self.in_speech {
            return Ok(());
        }
        let silent = self.now_ms - self.last_voice_end;
        if silent >= EARLY_MS && !self.early_sent {
            self.early_sent = true;
            self.events.push_back(AsrEvent::Tentative {
                utterance: self.utterance,
                text: self.text.clone(),
                confidence: Confidence::CERTAIN,
            });
        }
        if silent >= u64::from(self.hangover_ms) {
            self.in_speech = false;
            self.script.hangovers.lock().unwrap().push(self.hangover_ms);
            self.events.push_back(AsrEvent::SpeechEnd {
                utterance: self.utterance,
                at_ms: self.last_voice_end,
                duration_ms: 0,
            });
            self.events.push_back(AsrEvent::Final {
                utterance: self.utterance,
                text: self.text.clone(),
                latency: Duration::ZERO,
                after_speech_ms: EARLY_MS,
                cut: false,
                cost: Decoded {
                    text: self.text.clone(),
                    confidence: Confidence::CERTAIN,
                    queue_wait: Duration::ZERO,
                    decode: Duration::ZERO,
                    audio_secs: 0.0,
                },
            });
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Option<AsrEvent> {
        match self.events.pop_front() {
            Some(e) => Some(e),
            None => std::future::pending().await,
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn voice_since(&self) -> Option<u64> {
        self.voice_since
    }

    fn hangover_ms(&self) -> u32 {
        self.hangover_ms
    }

    fn set_hangover_ms(&mut self, ms: u32) {
        self.hangover_ms = ms;
    }

    fn close(&mut self) {}
}

/// A voice double: 60 ms of a 300 Hz tone per word, at 16 kHz.
pub struct ToneVoice;

/// Ms of audio per word the voice double makes.
pub const MS_PER_WORD: u64 = 60;

fn tone(text: &str) -> Vec<i16> {
    let n = text.split_whitespace().count().max(1) * (MS_PER_WORD as usize) * 16;
    (0..n)
        .map(|i| ((i as f32 * 300.0 * std::f32::consts::TAU / 16_000.0).sin() * 6000.0) as i16)
        .collect()
}

#[async_trait::async_trait]
impl Voice for ToneVoice {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    async fn line(&self, text: &str) -> Result<Arc<[i16]>, String> {
        Ok(tone(text).into())
    }

    async fn synthesize(&self, phrase: &str) -> Result<Vec<i16>, String> {
        Ok(tone(phrase))
    }
}

/// How the model double behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Streams its reply and ends it.
    Answers,
    /// Streams its reply, then sends nothing more, never ending it (a model
    /// server hung mid-reply).
    Stalls,
    /// Refuses every reply at once, as an engine with a full queue does.
    Refuses,
}

/// A model double: streams `reply` word by word after `first_token`, and
/// keeps every request's messages; `behaviour` says how it ends.
pub struct ScriptedModel {
    pub reply: String,
    pub first_token: Duration,
    pub requests: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
    pub behaviour: Behaviour,
}

#[async_trait::async_trait]
impl ChatModel for ScriptedModel {
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.requests.lock().unwrap().push(request.messages.clone());
        if self.behaviour == Behaviour::Refuses {
            return Err(LlmError::Busy("16 replies are waiting for the model already".into()));
        }
        let (tx, rx) = mpsc::channel(64);
        let words: Vec<String> = self.reply.split_inclusive(' ').map(str::to_string).collect();
        let wait = self.first_token;
        let stalls = self.behaviour == Behaviour::Stalls;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            for w in words {
                if tx.send(Ok(ChatEvent::Delta(w))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if stalls {
                // Hung: the reply stays open until the caller lets go.
                tx.closed().await;
                return;
            }
            tx.send(Ok(ChatEvent::Done(Usage::default()))).await.ok();
        });
        Ok(ChatStream::new(rx, std::time::Instant::now()))
    }

    fn name(&self) -> String {
        "scripted".into()
    }
}

/// A sink keeping the transcript, flow steps and turns.
#[derive(Default)]
pub struct KeptRecords {
    pub lines: Mutex<Vec<TranscriptLine>>,
    pub turns: Mutex<Vec<AgentTurn>>,
    pub outcomes: Mutex<Vec<String>>,
    pub tools: Mutex<Vec<ToolUse>>,
}

impl KeptRecords {
    /// (speaker, text) of every transcript line so far.
    pub fn said(&self) -> Vec<(String, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| (l.speaker.clone(), l.text.clone()))
            .collect()
    }

    /// The agent's lines so far.
    pub fn agent_lines(&self) -> Vec<String> {
        self.said()
            .into_iter()
            .filter(|(who, _)| who == "agent")
            .map(|(_, t)| t)
            .collect()
    }

    /// Whether the agent said a line containing `text`.
    pub fn agent_said(&self, text: &str) -> bool {
        self.said().iter().any(|(who, t)| who == "agent" && t.contains(text))
    }
}

#[async_trait::async_trait]
impl SessionSink for KeptRecords {
    async fn transcript_line(&self, line: TranscriptLine) {
        self.lines.lock().unwrap().push(line);
    }

    async fn flow_step(&self, _step: FlowStep) {}

    async fn tool_call(&self, tool: ToolUse) {
        self.tools.lock().unwrap().push(tool);
    }

    async fn agent_turn(&self, turn: AgentTurn) {
        self.turns.lock().unwrap().push(turn);
    }

    async fn outcome(&self, outcome: &str) {
        self.outcomes.lock().unwrap().push(outcome.to_string());
    }
}

/// Counts what the session reports.
#[derive(Default)]
pub struct Counts {
    pub barge_ins: Mutex<Vec<Duration>>,
    pub false_interruptions: Mutex<u32>,
}

impl SessionObserver for Counts {
    fn barge_in(&self, onset_to_stop: Duration) {
        self.barge_ins.lock().unwrap().push(onset_to_stop);
    }

    fn false_interruption(&self) {
        *self.false_interruptions.lock().unwrap() += 1;
    }
}
