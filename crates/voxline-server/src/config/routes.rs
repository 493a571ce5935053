//! What a route's `[route.params]` may hold, per handler, read and checked
//! with the configuration (`config` validates every route through
//! [`validate_route`]); the handlers take the parsed parameters.

use crate::config::resolve_path;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use voxline_agent::voice::end_of_turn::TurnSilences;
use voxline_agent::DomainPack;
use voxline_sip::routing::ParamValue;
use voxline_sip::RouteConfig;

/// Handler names a route may use.
pub const HANDLERS: &[&str] = &["playback", "echo", "transcribe", "agent"];

/// Handlers that listen to the caller (they need the `[asr]` models).
pub const LISTENING: &[&str] = &["transcribe", "agent"];

/// Handlers that talk (they need the `[llm]` and `[tts]` models).
pub const TALKING: &[&str] = &["agent"];

/// Checks a route's handler name and parameters; errors are (field, reason).
pub fn validate_route(r: &RouteConfig, base: &Path) -> Result<(), (String, String)> {
    match r.handler.as_str() {
        "playback" | "echo" | "transcribe" => PlaybackParams::parse(&r.params, base).map(|_| ()),
        "agent" => AgentParams::parse(&r.params, base).map(|_| ()),
        other => Err((
            "handler".into(),
            format!("unknown handler {other:?} (known: {})", HANDLERS.join(", ")),
        )),
    }
}

/// Parameters of a playback route (`[route.params]`).
#[derive(Debug, Clone)]
pub struct PlaybackParams {
    /// WAV played after answering (16-bit, 8/16/22.05/24/48 kHz); none = silence.
    pub greeting: Option<PathBuf>,
    /// Hang up after this many seconds.
    pub max_seconds: u64,
    /// Hang up as soon as the greeting has been played.
    pub hangup_after_greeting: bool,
    /// Ring this long (180) before answering, ms.
    pub ring_ms: u64,
    /// Record this route's calls (overrides `media.record`).
    pub record: Option<bool>,
    /// Log each keyed digit in clear (default: the log says a key came,
    /// not which: keyed digits are often account numbers and PINs).
    pub log_digits: bool,
}

impl PlaybackParams {
    /// Reads and checks the parameters; errors are (field, reason).
    pub fn parse(params: &BTreeMap<String, ParamValue>, base: &Path) -> Result<PlaybackParams, (String, String)> {
        let mut p = PlaybackParams {
            greeting: None,
            max_seconds: 30,
            hangup_after_greeting: false,
            ring_ms: 0,
            record: None,
            log_digits: false,
        };
        for (k, v) in params {
            let field = format!("params.{k}");
            let bad = |want: &str| (field.clone(), format!("must be {want}"));
            match (k.as_str(), v) {
                ("greeting", ParamValue::Str(s)) => {
                    let path = resolve_path(base, Path::new(s));
                    voxline_media::load_wav_mono(&path).map_err(|e| (field.clone(), e.to_string()))?;
                    p.greeting = Some(path);
                }
                ("greeting", _) => return Err(bad("a path to a WAV file")),
                ("max_seconds", ParamValue::Int(n)) if *n > 0 && *n <= 86_400 => p.max_seconds = *n as u64,
                ("max_seconds", _) => return Err(bad("an integer from 1 to 86400")),
                ("hangup_after_greeting", ParamValue::Bool(b)) => p.hangup_after_greeting = *b,
                ("hangup_after_greeting", _) => return Err(bad("true or false")),
                ("ring_ms", ParamValue::Int(n)) if *n >= 0 && *n <= 120_000 => p.ring_ms = *n as u64,
                ("ring_ms", _) => return Err(bad("an integer from 0 to 120000")),
                ("record", ParamValue::Bool(b)) => p.record = Some(*b),
                ("record", _) => return Err(bad("true or false")),
                ("log_digits", ParamValue::Bool(b)) => p.log_digits = *b,
                ("log_digits", _) => return Err(bad("true or false")),
                _ => return Err((field, "unknown parameter for the playback handler".into())),
            }
        }
        Ok(p)
    }
}

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
    /// When the REFER is refused or fails, call the target and join the calls
    /// (only with a `transfer_trunk`).
    pub transfer_bridge: bool,
    /// The trunk a bridged colleague is called through (its host, credentials
    /// and limits); without one a refused REFER is not bridged.
    pub transfer_trunk: Option<String>,
    /// The silences that end the caller's turn (`turn_complete_ms`: words
    /// and voice agree it is finished; `turn_incomplete_ms`: the words stop
    /// mid-sentence, a trailing "and", a half-read number;
    /// `turn_voice_incomplete_ms`: only the voice sounds unfinished; else
    /// `asr.hangover_ms`).
    pub turn_silences: TurnSilences,
    /// A training route: the pack's scenario (`training/NAME.toml`) whose
    /// customer the bot plays for the trainee who calls it.
    pub training: Option<String>,
}

impl AgentParams {
    /// The training scenario's file, for a training route.
    pub fn scenario_file(&self) -> Option<PathBuf> {
        self.training.as_ref().map(|name| {
            self.domain
                .join(voxline_analysis::training::DIR)
                .join(format!("{name}.toml"))
        })
    }

    /// Reads and checks the parameters (the pack is loaded to check it); errors are (field, reason).
    pub fn parse(params: &BTreeMap<String, ParamValue>, base: &Path) -> Result<AgentParams, (String, String)> {
        let mut p = AgentParams {
            domain: PathBuf::new(),
            max_seconds: None,
            record: None,
            barge_in_ms: 100,
            transfer_wait_s: 30,
            transfer_bridge: true,
            transfer_trunk: None,
            turn_silences: TurnSilences::default(),
            training: None,
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
                ("transfer_trunk", ParamValue::Str(s)) if !s.is_empty() => p.transfer_trunk = Some(s.clone()),
                ("transfer_trunk", _) => return Err(bad("the name of a [[trunk]]")),
                ("turn_complete_ms", ParamValue::Int(n)) if (100..=2000).contains(n) => {
                    p.turn_silences.complete_ms = *n as u32
                }
                ("turn_complete_ms", _) => return Err(bad("an integer from 100 to 2000")),
                ("turn_incomplete_ms", ParamValue::Int(n)) if (200..=5000).contains(n) => {
                    p.turn_silences.incomplete_ms = *n as u32
                }
                ("turn_incomplete_ms", _) => return Err(bad("an integer from 200 to 5000")),
                ("turn_voice_incomplete_ms", ParamValue::Int(n)) if (200..=5000).contains(n) => {
                    p.turn_silences.voice_incomplete_ms = *n as u32
                }
                ("turn_voice_incomplete_ms", _) => return Err(bad("an integer from 200 to 5000")),
                ("training", ParamValue::Str(s)) if !s.is_empty() && !s.contains(['/', '\\']) => {
                    p.training = Some(s.clone())
                }
                ("training", _) => return Err(bad("the name of a scenario in the pack's training/ folder")),
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
        if let Some(file) = p.scenario_file() {
            voxline_analysis::training::Scenario::load(&file)
                .map_err(|e| ("params.training".to_string(), e.to_string()))?;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_mistyped_params_are_named() {
        let mut m = BTreeMap::new();
        m.insert("max_secs".to_string(), ParamValue::Int(3));
        assert_eq!(
            PlaybackParams::parse(&m, Path::new(".")).unwrap_err().0,
            "params.max_secs"
        );
        let mut m = BTreeMap::new();
        m.insert("max_seconds".to_string(), ParamValue::Str("3".into()));
        assert_eq!(
            PlaybackParams::parse(&m, Path::new(".")).unwrap_err().0,
            "params.max_seconds"
        );
        let mut m = BTreeMap::new();
        m.insert("greeting".to_string(), ParamValue::Str("/nonexistent.wav".into()));
        let e = PlaybackParams::parse(&m, Path::new(".")).unwrap_err();
        assert!(e.1.contains("/nonexistent.wav"), "{e:?}");
    }

    #[test]
    fn an_agent_route_sets_each_turn_silence_and_names_a_bad_one() {
        let domains = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains");
        let mut m = BTreeMap::new();
        m.insert("domain".to_string(), ParamValue::Str("demo-bank".into()));
        let p = AgentParams::parse(&m, &domains).expect("defaults");
        assert_eq!(p.turn_silences, TurnSilences::default());
        m.insert("turn_incomplete_ms".to_string(), ParamValue::Int(2500));
        m.insert("turn_voice_incomplete_ms".to_string(), ParamValue::Int(900));
        m.insert("turn_complete_ms".to_string(), ParamValue::Int(300));
        let s = AgentParams::parse(&m, &domains).expect("set").turn_silences;
        assert_eq!(
            (s.complete_ms, s.incomplete_ms, s.voice_incomplete_ms),
            (300, 2500, 900)
        );
        m.insert("turn_voice_incomplete_ms".to_string(), ParamValue::Int(50));
        let e = AgentParams::parse(&m, &domains).unwrap_err();
        assert_eq!(e.0, "params.turn_voice_incomplete_ms", "{e:?}");
    }
}
