//! The shapes of call records.

/// Which way a call was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallDirection {
    /// Someone called voxline.
    Inbound,
    /// voxline placed the call.
    Outbound,
}

impl CallDirection {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }
}

/// What is known when a call starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewCall {
    /// voxline's id for the record.
    pub id: String,
    /// The SIP Call-ID.
    pub call_id: String,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The From URI.
    pub from_uri: String,
    /// The To URI.
    pub to_uri: String,
    /// Where the INVITE came from (inbound) or went to (outbound).
    pub source_addr: Option<String>,
    /// The trunk it came in on or went out through.
    pub trunk: Option<String>,
    /// The route that matched.
    pub route: Option<String>,
    /// The handler that took the call.
    pub handler: Option<String>,
    /// INVITE time, ms since the epoch.
    pub invite_at: i64,
    /// What carries it: `sip` or `webrtc`.
    pub channel: String,
}

/// How a call ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CallEnd {
    /// Whether it was ever answered.
    pub answered: bool,
    /// `bye`, `cancel`, `rejected`, `timeout`, `max_duration`, `error`, `shutdown`...
    pub reason: String,
    /// `caller`, `callee`, `voxline`.
    pub hangup_by: String,
    /// The final SIP status of the INVITE (200 when answered).
    pub sip_status: Option<u16>,
    /// RTP packets sent.
    pub packets_sent: i64,
    /// RTP packets received.
    pub packets_received: i64,
    /// RTP packets from the far end never received.
    pub packets_lost: i64,
    /// Interarrival jitter of the far end's stream, ms.
    pub jitter_ms: f64,
    /// What the far end's RTCP reported, when it sent any.
    pub rtcp: Option<RtcpSummary>,
    /// Free text (an error message).
    pub detail: Option<String>,
}

/// What RTCP told about voxline's stream over a call.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RtcpSummary {
    /// Round-trip time, ms (None when the far end sent no usable LSR/DLSR).
    pub rtt_ms: Option<f64>,
    /// Packets of voxline's stream the far end never received.
    pub remote_lost: i64,
    /// Jitter the far end measured on voxline's stream, ms.
    pub remote_jitter_ms: f64,
}

/// A stored call record.
#[derive(Debug, Clone, serde::Serialize)]
#[allow(missing_docs)]
pub struct CallRecord {
    pub id: String,
    pub node: String,
    pub call_id: String,
    pub direction: String,
    pub from_uri: String,
    pub to_uri: String,
    pub source_addr: Option<String>,
    pub trunk: Option<String>,
    pub route: Option<String>,
    pub handler: Option<String>,
    pub codec: Option<String>,
    /// The SRTP suite of the call's media; `None` for plain RTP.
    pub srtp: Option<String>,
    /// What carried it: `sip` or `webrtc`.
    pub channel: String,
    pub status: String,
    pub invite_at: i64,
    pub answer_at: Option<i64>,
    pub end_at: Option<i64>,
    pub end_reason: Option<String>,
    pub hangup_by: Option<String>,
    pub sip_status: Option<i32>,
    pub recording_path: Option<String>,
    pub packets_sent: Option<i64>,
    pub packets_received: Option<i64>,
    pub packets_lost: Option<i64>,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub remote_lost: Option<i64>,
    pub remote_jitter_ms: Option<f64>,
    pub detail: Option<String>,
    /// The conversation's outcome (a flow step's disposition, `opted_out`).
    pub outcome: Option<String>,
    /// Answering-machine detection: `human: why` or `machine: why`.
    pub amd: Option<String>,
    /// When it decided, ms after the answer.
    pub amd_ms: Option<i64>,
}

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TranscriptLine {
    /// Order within the call, from 1.
    pub seq: i64,
    /// Who spoke: "caller" or "agent".
    pub speaker: String,
    /// Start of the speech, ms of call audio from the answer.
    pub start_ms: i64,
    /// End of the speech, ms.
    pub end_ms: i64,
    /// The words.
    pub text: String,
    /// How long after the end of speech was declared the text was ready, ms.
    pub asr_latency_ms: Option<f64>,
}

/// A step of a domain pack's flow that a call reached.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowStep {
    /// Order within the call, from 1.
    pub seq: i64,
    /// The flow's name.
    pub flow: String,
    /// The step's name.
    pub step: String,
    /// How it was reached: `start`, an exit (`yes`, `no`, `said`, `done`,
    /// `failed`), `next` or `otherwise`.
    pub via: String,
    /// When, ms of call audio from the answer.
    pub at_ms: i64,
}

/// A business tool the agent called on a call (`tools.toml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolUse {
    /// Order within the call, from 1.
    pub seq: i64,
    /// The tool's name.
    pub tool: String,
    /// Its arguments as sent, except digits the pack keeps out of
    /// transcripts, which read "(4 digits)".
    pub args: std::collections::BTreeMap<String, String>,
    /// It answered (false: it failed, or the call ended first).
    pub ok: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was called, ms of call audio from the answer.
    pub at_ms: i64,
    /// How long it took, ms (none when the call ended before it answered).
    pub took_ms: Option<i64>,
}

/// One caller turn the agent answered, with its stage times in ms after the
/// caller's last voiced audio (`None`: the stage did not happen, e.g. no
/// model for a fixed line, or was not measurable).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentTurn {
    /// Order within the call, from 1.
    pub seq: i64,
    /// The caller's last voiced audio, ms of call audio from the answer.
    pub caller_end_ms: i64,
    /// What the caller said (the final transcript).
    pub caller_text: String,
    /// How the turn was routed (`question`, `tool`, `escalate`...).
    pub intent: String,
    /// `final` or `early_final` (the reply was started on the early final).
    pub started_on: String,
    /// The recogniser declared the end of speech (VAD hang-over over).
    pub end_declared_ms: Option<f64>,
    /// The final transcript was ready.
    pub asr_final_ms: Option<f64>,
    /// The model's first token.
    pub llm_first_token_ms: Option<f64>,
    /// Prompt tokens the model read for the reply after it was asked (the
    /// rest came from its cache); none for engines that do not say.
    pub llm_prompt_read: Option<i64>,
    /// The first phrase was ready (generated and checked).
    pub first_phrase_ms: Option<f64>,
    /// The first reply audio was synthesised (queued for playout).
    pub tts_first_audio_ms: Option<f64>,
    /// The first RTP packet of the reply was sent.
    pub first_rtp_ms: Option<f64>,
    /// The caller started talking over the reply (a barge-in that stopped it).
    pub barge_in_onset_ms: Option<f64>,
    /// The reply's playout was cleared by that barge-in.
    pub barge_in_stop_ms: Option<f64>,
}
