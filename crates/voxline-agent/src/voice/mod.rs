//! The voice session: one domain conversation spoken on a call leg.
//!
//! A [`VoiceSession`] drives a [`Conversation`](crate::Conversation) on any
//! [`CallLeg`](voxline_media::CallLeg) (an inbound or outbound phone call, a
//! browser, an in-memory leg in tests). It listens through a [`Recognizer`],
//! speaks through a [`Voice`], and reacts to explicit events: a frame or
//! key from the leg, a recogniser event, a phrase synthesised, the playout
//! drained, a tool finished, a timer. The turn-taking policies are named
//! types of their own, each unit-tested:
//!
//! | policy | module |
//! |---|---|
//! | end of turn (owns the recogniser's hang-over) | [`end_of_turn`] |
//! | interruption: barge-in, backchannel, resume | [`interruption`] |
//! | the speech handle: one interruptible reply and what of it was heard | [`speech`] |
//! | the hold line and the reply pace | [`pace`] |
//! | digit collection and type-ahead | [`digits`] |
//! | reprompt on silence, then goodbye | [`silence`] |
//!
//! What the session produces leaves through two traits: a [`SessionSink`]
//! for the transcript, flow steps and turn records, and a
//! [`SessionObserver`] for live figures (the server's Prometheus metrics).

pub mod digits;
pub mod end_of_turn;
mod engines;
pub mod interruption;
pub mod pace;
mod preempt;
mod session;
mod session_events;
pub mod silence;
pub mod speech;
mod tool_run;
mod transcript;
pub mod turn_times;

pub use pace::ReplyPace;
pub use session::{SessionEnd, VoiceConfig, VoiceSession, OPERATOR};

use std::sync::Arc;
use std::time::Duration;
use voxline_asr::AsrEvent;
use voxline_store::{AgentTurn, FlowStep, ToolUse, TranscriptLine};

/// Streaming speech recognition of the caller's side of one call.
#[async_trait::async_trait]
pub trait Recognizer: Send {
    /// Takes the next 16 kHz samples (a 20 ms frame).
    fn push(&mut self, samples: &[i16]) -> Result<(), String>;
    /// The next event (speech start and end, partial, early and final
    /// text). Cancel-safe; pends while there is none.
    async fn next_event(&mut self) -> Option<AsrEvent>;
    /// Stream time of the audio pushed so far, ms.
    fn now_ms(&self) -> u64;
    /// Stream ms where the current run of voice began (its first voiced
    /// window, before speech is declared), while there is voice now.
    fn voice_since(&self) -> Option<u64>;
    /// The silence that ends an utterance now, ms.
    fn hangover_ms(&self) -> u32;
    /// Changes the silence that ends the current utterance.
    fn set_hangover_ms(&mut self, ms: u32);
    /// Whether it reports the audio end-of-turn model's verdicts
    /// ([`AsrEvent::TurnAudio`]).
    fn hears_turn_audio(&self) -> bool {
        false
    }
    /// Stops every decode in flight (the call ended).
    fn close(&mut self);
}

/// The agent's voice: fixed lines (cached) and the phrases of answers.
#[async_trait::async_trait]
pub trait Voice: Send + Sync {
    /// The sample rate of the audio it makes.
    fn sample_rate(&self) -> u32;
    /// A fixed line's audio (cached when it was pinned).
    async fn line(&self, text: &str) -> Result<Arc<[i16]>, String>;
    /// One phrase of an answer.
    async fn synthesize(&self, phrase: &str) -> Result<Vec<i16>, String>;
}

/// Where a session's records go (the call store, in the server).
#[async_trait::async_trait]
pub trait SessionSink: Send + Sync {
    /// A transcript line (caller, agent or system note).
    async fn transcript_line(&self, line: TranscriptLine);
    /// A flow step reached.
    async fn flow_step(&self, step: FlowStep);
    /// A business tool called, once it answered or failed.
    async fn tool_call(&self, tool: ToolUse);
    /// A caller turn's reply is over (played, cut or dropped): its stages.
    async fn agent_turn(&self, turn: AgentTurn);
    /// The conversation gave the call an outcome (a flow step's
    /// `disposition`; `opted_out` when the caller asked not to be called
    /// again, which a campaign's store acts on at once).
    async fn outcome(&self, _outcome: &str) {}
}

/// Live figures of the sessions (the server's `/metrics`). Every method
/// has an empty default.
pub trait SessionObserver: Send + Sync {
    /// A turn's first reply audio was queued: from the final transcript and
    /// from the declared end of speech.
    fn first_audio(&self, _after_final: Duration, _after_speech_end: Option<Duration>) {}
    /// The caller stopped the agent, this long after their onset.
    fn barge_in(&self, _onset_to_stop: Duration) {}
    /// A reply started on the early final was kept.
    fn preempted(&self) {}
    /// A barge-in turned out to be no words: the agent went on.
    fn false_interruption(&self) {}
    /// One stage of a turn (`end_declared`, `asr_final`, `llm_first_token`,
    /// `first_phrase`, `tts_first_audio`, `first_rtp`), from the caller's
    /// last voiced audio.
    fn stage(&self, _stage: &str, _after_caller: Duration) {}
}

/// An observer that keeps nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl SessionObserver for NoObserver {}
