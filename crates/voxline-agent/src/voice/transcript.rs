//! The call's transcript as it is written (through the session's sink),
//! with the flow steps the conversation reached.

use super::tool_run::RunningTool;
use super::SessionSink;
use crate::Conversation;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use voxline_store::{FlowStep, TranscriptLine};

/// The transcript of one call.
pub(crate) struct Transcript {
    sink: Arc<dyn SessionSink>,
    seq: i64,
    step_seq: i64,
    tool_seq: i64,
    started: Instant,
    start_ms: u64,
}

impl Transcript {
    /// A transcript whose times count from `start_ms` of call audio, now.
    pub fn new(sink: Arc<dyn SessionSink>, start_ms: u64) -> Transcript {
        Transcript {
            sink,
            seq: 0,
            step_seq: 0,
            tool_seq: 0,
            started: Instant::now(),
            start_ms,
        }
    }

    /// Ms of call audio from the answer, now.
    pub fn now_ms(&self) -> i64 {
        self.start_ms as i64 + self.started.elapsed().as_millis() as i64
    }

    /// Writes the flow steps the conversation reached since the last call.
    pub async fn steps(&mut self, conv: &mut Conversation) {
        let Some(flow) = conv.flow_name().map(str::to_string) else {
            return;
        };
        for s in conv.take_reached() {
            self.step_seq += 1;
            let step = FlowStep {
                seq: self.step_seq,
                flow: flow.clone(),
                step: s.step,
                via: s.via,
                at_ms: self.now_ms(),
            };
            let note = format!("flow step: {} (by {})", step.step, step.via);
            self.sink.flow_step(step).await;
            self.note(&note).await;
        }
    }

    /// Writes a tool call that came back (`answered`) or was left when the
    /// call ended, with a note in the transcript.
    pub async fn tool(&mut self, run: &RunningTool, error: Option<String>, answered: bool) {
        self.tool_seq += 1;
        let t = run.record(self.tool_seq, error, answered);
        let args: Vec<String> = t.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let how = match (&t.error, t.took_ms) {
            (None, Some(ms)) => format!("answered in {ms} ms"),
            (None, None) => "answered".to_string(),
            (Some(e), _) => format!("failed: {e}"),
        };
        let note = format!("tool {}({}): {how}", t.tool, args.join(", "));
        self.sink.tool_call(t).await;
        self.note(&note).await;
    }

    /// Writes a line; `span`: when it was said (ms of call audio), else now.
    async fn line(&mut self, speaker: &str, text: &str, latency: Option<Duration>, span: Option<(i64, i64)>) {
        if text.trim().is_empty() {
            return;
        }
        self.seq += 1;
        let at = self.now_ms();
        let (start_ms, end_ms) = span.map_or((at, at), |(s, e)| (s.min(e).max(0), e.max(0)));
        let line = TranscriptLine {
            seq: self.seq,
            speaker: speaker.into(),
            start_ms,
            end_ms,
            text: text.trim().to_string(),
            asr_latency_ms: latency.map(|l| l.as_secs_f64() * 1e3),
        };
        self.sink.transcript_line(line).await;
    }

    /// What the caller said (with the recogniser's latency), from `span`
    /// (their speech's start and end, ms of call audio) when known.
    pub async fn caller(&mut self, text: &str, latency: Option<Duration>, span: Option<(u64, u64)>) {
        let span = span.map(|(s, e)| (s as i64, e as i64));
        self.line("caller", text, latency, span).await;
    }

    /// What the agent said (as heard), now.
    pub async fn agent(&mut self, text: &str) {
        self.line("agent", text, None, None).await;
    }

    /// A note of what happened (a transfer, a tool, a timeout).
    pub async fn note(&mut self, text: &str) {
        self.line("system", text, None, None).await;
    }

    /// What the caller heard of a reply goes into the history (answers,
    /// for the user message `answer_of`) and the transcript: `played` is
    /// how long its heard audio lasted, ending `ended_ago` before now.
    pub async fn heard(
        &mut self,
        conv: &mut Conversation,
        answer_of: Option<&str>,
        heard: &str,
        cut: bool,
        played: Duration,
        ended_ago: Duration,
    ) {
        if let Some(user) = answer_of {
            conv.answered_text(user, heard);
        }
        let end = self.now_ms() - ended_ago.as_millis() as i64;
        let span = Some((end - played.as_millis() as i64, end));
        if cut && !heard.trim().is_empty() {
            let text = format!("{heard} [cut off by the caller]");
            self.line("agent", &text, None, span).await;
        } else {
            self.line("agent", heard, None, span).await;
        }
    }
}
