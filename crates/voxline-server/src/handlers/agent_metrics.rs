//! The agent routes' per-turn figures, exported on `/metrics`: turns,
//! time from the final transcript (and from the declared end of speech) to
//! the first reply audio queued, barge-ins and how long after the caller's
//! onset the agent stopped, replies started on the early final, and each
//! stage of a turn measured from the caller's last voiced audio.

use crate::handlers::load_history::LoadHistory;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Buckets for turn stage times, seconds.
const TURN_BUCKETS: [f64; 12] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0];
/// Buckets for barge-in stop times, seconds.
const BARGE_BUCKETS: [f64; 8] = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6, 1.0];

/// Live counters and histograms shared by every agent route.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    /// Caller turns answered.
    pub turns: Counter,
    /// Final transcript → first reply audio queued.
    pub final_to_audio: Histogram,
    /// Declared end of speech → first reply audio queued.
    pub speech_end_to_audio: Histogram,
    /// Barge-ins.
    pub barge_ins: Counter,
    /// Caller's speech onset → the agent's playout cleared.
    pub barge_in_stop: Histogram,
    /// Replies started on the early final and used.
    pub preempted: Counter,
    /// Barge-ins after which the caller said no words (a backchannel, noise): the agent went on.
    pub false_interruptions: Counter,
    /// Packs reloaded while serving (their files changed, or a correction).
    pub pack_reloads: Counter,
    /// Pack reloads refused (the pack did not load or check): the old one serves on.
    pub pack_reloads_refused: Counter,
    /// Each stage of a turn (`stage` label), from the caller's last voiced audio.
    stages: Family<Vec<(String, String)>, Histogram, TurnHistogram>,
    /// The voice-to-voice times over time (the console's chart).
    load: LoadHistory,
}

/// Makes a histogram with the turn buckets (for the stage family).
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnHistogram;

impl MetricConstructor<Histogram> for TurnHistogram {
    fn new_metric(&self) -> Histogram {
        Histogram::new(TURN_BUCKETS)
    }
}

impl Default for AgentMetrics {
    fn default() -> AgentMetrics {
        AgentMetrics {
            turns: Counter::default(),
            final_to_audio: Histogram::new(TURN_BUCKETS),
            speech_end_to_audio: Histogram::new(TURN_BUCKETS),
            barge_ins: Counter::default(),
            barge_in_stop: Histogram::new(BARGE_BUCKETS),
            preempted: Counter::default(),
            false_interruptions: Counter::default(),
            pack_reloads: Counter::default(),
            pack_reloads_refused: Counter::default(),
            stages: Family::new_with_constructor(TurnHistogram),
            load: LoadHistory::default(),
        }
    }
}

impl AgentMetrics {
    /// Metrics whose turns' voice-to-voice times also go to `load`.
    pub fn feeding(load: LoadHistory) -> AgentMetrics {
        AgentMetrics {
            load,
            ..AgentMetrics::default()
        }
    }

    /// The histogram of one turn stage (`end_declared`, `asr_final`,
    /// `llm_first_token`, `first_phrase`, `tts_first_audio`, `first_rtp`).
    pub fn stage(&self, stage: &str) -> Histogram {
        self.stages
            .get_or_create(&vec![("stage".to_string(), stage.to_string())])
            .clone()
    }

    /// Adds these metrics to a registry being encoded.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("agent_turns", "Caller turns the agent answered", self.turns.clone());
        registry.register(
            "agent_turn_final_to_first_audio_seconds",
            "Final transcript to the first reply audio queued for the caller",
            self.final_to_audio.clone(),
        );
        registry.register(
            "agent_turn_speech_end_to_first_audio_seconds",
            "Declared end of the caller's speech to the first reply audio queued",
            self.speech_end_to_audio.clone(),
        );
        registry.register(
            "agent_barge_ins",
            "Times the caller talked over the agent and stopped it",
            self.barge_ins.clone(),
        );
        registry.register(
            "agent_barge_in_stop_seconds",
            "Caller's speech onset to the agent's playout cleared",
            self.barge_in_stop.clone(),
        );
        registry.register(
            "agent_turn_stage_seconds",
            "Each stage of a caller turn, from the caller's last voiced audio",
            self.stages.clone(),
        );
        registry.register(
            "agent_false_interruptions",
            "Barge-ins after which the caller said no words: the agent played on",
            self.false_interruptions.clone(),
        );
        registry.register(
            "agent_pack_reloads",
            "Domain packs reloaded while serving",
            self.pack_reloads.clone(),
        );
        registry.register(
            "agent_pack_reloads_refused",
            "Domain pack reloads refused (the pack did not load or check; the old one serves on)",
            self.pack_reloads_refused.clone(),
        );
        registry.register(
            "agent_replies_preempted",
            "Replies started on the early final and kept",
            self.preempted.clone(),
        );
    }
}

impl voxline_agent::voice::SessionObserver for AgentMetrics {
    fn first_audio(&self, after_final: Duration, after_speech_end: Option<Duration>) {
        self.turns.inc();
        self.final_to_audio.observe(after_final.as_secs_f64());
        if let Some(d) = after_speech_end {
            self.speech_end_to_audio.observe(d.as_secs_f64());
        }
    }

    fn barge_in(&self, onset_to_stop: Duration) {
        self.barge_ins.inc();
        self.barge_in_stop.observe(onset_to_stop.as_secs_f64());
    }

    fn preempted(&self) {
        self.preempted.inc();
    }

    fn false_interruption(&self) {
        self.false_interruptions.inc();
    }

    fn stage(&self, stage: &str, after_caller: Duration) {
        AgentMetrics::stage(self, stage).observe(after_caller.as_secs_f64());
        if stage == "first_rtp" {
            self.load.turn(after_caller.as_secs_f64() * 1e3);
        }
    }
}
