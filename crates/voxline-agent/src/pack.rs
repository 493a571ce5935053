//! A domain pack on disk (`domains/NAME/`): `persona.toml`, `rules.toml`,
//! `tools.toml`, `knowledge/*.md`, `flows.toml` (optional). Loaded and checked at start-up; an
//! error names the file, the field and why.

use crate::flow::Flow;
use crate::knowledge::Knowledge;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A domain pack that failed to load: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {why}", file.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct PackError {
    /// The file (or folder).
    pub file: PathBuf,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// Why.
    pub why: String,
}

impl PackError {
    /// An error about `file` (and `field`).
    pub fn new(file: &Path, field: Option<&str>, why: impl Into<String>) -> PackError {
        PackError {
            file: file.to_path_buf(),
            field: field.map(String::from),
            why: why.into(),
        }
    }
}

/// Who the agent is (`persona.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// The agent's name.
    pub name: String,
    /// The business it answers for.
    pub company: String,
    /// Language (BCP 47, e.g. `en`).
    #[serde(default = "default_language")]
    pub language: String,
    /// A Piper voice under the model cache (default voice when unset).
    #[serde(default)]
    pub voice: Option<String>,
    /// A GGUF language model of the pack's own (e.g. one fine-tuned on its
    /// calls), relative to the pack's folder or absolute; the server's
    /// `[llm] model` when unset. Packs naming the same file share one copy.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// That model's chat template (a file holding a Jinja template or a name
    /// llama.cpp knows); the GGUF's own when unset.
    #[serde(default)]
    pub chat_template: Option<PathBuf>,
    /// Said when the call is answered.
    pub greeting: String,
    /// Said before hanging up.
    pub goodbye: String,
    /// Speaking style, given to the model.
    #[serde(default)]
    pub style: String,
    /// Longest spoken reply, in words.
    #[serde(default = "default_reply_words")]
    pub max_reply_words: usize,
    /// Silence handling and call length.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Words callers say that a general recogniser mishears (names, places,
    /// products: "Downtown branch", "PIN"); with the company's name they
    /// steer the final transcripts of this pack's calls (decision 0035).
    #[serde(default)]
    pub vocabulary: Vec<String>,
}

/// The longest vocabulary, in characters (~150 of Whisper's tokens; its
/// prompt holds at most 224).
pub const MAX_VOCABULARY_CHARS: usize = 600;

impl Persona {
    /// The words that steer the recogniser on this pack's calls: the
    /// company's name, then the vocabulary ("Harbor Bank. Downtown branch,
    /// PIN."); `None` without a vocabulary (a prompt costs decode time
    /// whatever its length, decisions 0034 and 0035).
    pub fn asr_prompt(&self) -> Option<String> {
        if self.vocabulary.is_empty() {
            return None;
        }
        let words: Vec<&str> = self.vocabulary.iter().map(|w| w.trim()).collect();
        let company = self.company.trim().trim_end_matches('.');
        let lead = if company.is_empty() {
            String::new()
        } else {
            format!("{company}. ")
        };
        Some(format!("{lead}{}.", words.join(", ")))
    }

    /// The words that steer the recogniser on this pack's recorded calls
    /// (transcribed after the call, where a prompt's decode time matters
    /// little): the company's name even without a vocabulary, then the
    /// vocabulary; `None` when the pack names neither.
    pub fn recording_prompt(&self) -> Option<String> {
        let company = self.company.trim().trim_end_matches('.');
        match (self.asr_prompt(), company.is_empty()) {
            (Some(p), _) => Some(p),
            (None, false) => Some(format!("{company}.")),
            (None, true) => None,
        }
    }

    /// Reads a pack's `persona.toml` alone; errors name the file and field.
    pub fn load(pack_dir: &Path) -> Result<Persona, PackError> {
        read_toml(&pack_dir.join("persona.toml"))
    }
}

fn default_language() -> String {
    "en".into()
}
fn default_reply_words() -> usize {
    45
}

/// Most `hold_again` lines in one wait (a wait that long ends at the reply
/// deadline or the tool's own timeout).
pub const MAX_HOLD_AGAIN: u32 = 2;

/// Silence and call-length limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Silence after the agent spoke before it asks again (ms).
    pub reprompt_ms: u64,
    /// What it asks.
    pub reprompt: String,
    /// Silence before it says goodbye and hangs up (ms).
    pub hangup_ms: u64,
    /// The longest call (s).
    pub max_call_s: u64,
    /// The caller waiting this long in silence for a reply (a slow tool or
    /// model) hears `hold` (ms; 0: never).
    pub hold_ms: u64,
    /// When the route's recent answers took longer than `hold_ms` (the
    /// model under load), the hold line comes this soon instead (ms; 0:
    /// always after `hold_ms`).
    pub hold_early_ms: u64,
    /// Said when the reply is slow (first in a wait).
    pub hold: String,
    /// Still waiting this long after a hold line ended, the caller hears
    /// `hold_again` (ms; 0: one hold line per wait). Said at most
    /// [`MAX_HOLD_AGAIN`] times in one wait.
    pub hold_again_ms: u64,
    /// Said when the wait goes on after `hold`.
    pub hold_again: String,
    /// The longest the caller waits for the next phrase of a generated
    /// answer (its first one counted from when the answer began); past it
    /// the model is given up for that answer (ms; 0: no limit).
    pub reply_deadline_ms: u64,
    /// Said when the model stalled or failed before an answer was said
    /// (and no knowledge sentence could be read in its place).
    pub fault: String,
    /// After `fault`, the call goes to a colleague as an escalation does
    /// (`escalation.say`, then the transfer to `escalation.transfer_to`).
    pub fault_transfer: bool,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            reprompt_ms: 7000,
            reprompt: "Are you still there?".into(),
            hangup_ms: 14000,
            max_call_s: 600,
            hold_ms: 1500,
            hold_early_ms: 300,
            hold: "One moment, please.".into(),
            hold_again_ms: 4000,
            hold_again: "Thank you for waiting, I'm still on it.".into(),
            reply_deadline_ms: 8000,
            fault: "I'm sorry, I can't answer that right now.".into(),
            fault_transfer: true,
        }
    }
}

/// The domain boundary and the lines that keep the agent inside it (`rules.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// What the agent talks about, and what it says otherwise.
    pub domain: DomainRules,
    /// Phrases never spoken.
    #[serde(default)]
    pub forbidden: Forbidden,
    /// Lines always spoken.
    #[serde(default)]
    pub mandatory: Mandatory,
    /// What goes to a human at once.
    pub escalation: Escalation,
    /// Retrieval settings.
    #[serde(default)]
    pub knowledge: KnowledgeRules,
    /// A caller asking not to be called again.
    #[serde(default)]
    pub opt_out: OptOut,
}

/// A caller asking not to be called again ("stop calling me", "take me off
/// your list"): the built-in phrases of [`crate::router::OPT_OUT`] and the
/// pack's own; the agent says `say`, the number goes on the do-not-call
/// list and the call ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOut {
    /// More phrases (whole words, case-insensitive) than the built-in ones.
    #[serde(default)]
    pub phrases: Vec<String>,
    /// Said before hanging up.
    #[serde(default = "default_opt_out_say")]
    pub say: String,
}

impl Default for OptOut {
    fn default() -> OptOut {
        OptOut {
            phrases: Vec::new(),
            say: default_opt_out_say(),
        }
    }
}

fn default_opt_out_say() -> String {
    "Understood. We won't call you again. Sorry for the trouble, goodbye.".into()
}

/// The domain boundary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRules {
    /// Topics, named in the prompt.
    pub topics: Vec<String>,
    /// Said when a request is outside the domain.
    pub decline: String,
    /// Words or phrases that mark a request as outside the domain.
    #[serde(default)]
    pub off_domain: Vec<String>,
    /// Services the business does not offer (words or phrases): asked about, the agent says it does not know.
    #[serde(default)]
    pub not_offered: Vec<String>,
    /// Said when the knowledge has no answer.
    pub unknown: String,
    /// Said when the agent is not sure what the caller asked (the words
    /// heard match no knowledge well): it asks them to say it again.
    #[serde(default = "default_unclear")]
    pub unclear: String,
    /// Said instead when the caller was asked again twice already: the
    /// agent offers a colleague.
    #[serde(default = "default_unclear_again")]
    pub unclear_again: String,
}

fn default_unclear() -> String {
    "Sorry, I didn't quite catch that. Could you say it again in other words?".into()
}

fn default_unclear_again() -> String {
    "I'm sorry, I still didn't understand. Would you like me to transfer you to a colleague?".into()
}

/// Phrases never spoken.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forbidden {
    /// Case-insensitive phrases.
    #[serde(default)]
    pub phrases: Vec<String>,
    /// Said instead of a sentence holding one.
    #[serde(default)]
    pub replacement: String,
}

/// Lines always spoken.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mandatory {
    /// Said right after the greeting.
    #[serde(default)]
    pub after_greeting: Vec<String>,
}

/// Escalation to a human.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Words or phrases that transfer at once.
    #[serde(default)]
    pub phrases: Vec<String>,
    /// Said before the transfer.
    pub say: String,
    /// Where escalations go (a SIP URI).
    pub transfer_to: String,
    /// Said when the transfer could not be made (the call stays with the agent).
    #[serde(default = "default_transfer_failed")]
    pub failed: String,
}

fn default_transfer_failed() -> String {
    "I'm sorry, I couldn't reach a colleague just now. Is there anything else I can help you with?".into()
}

/// Retrieval settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeRules {
    /// Passages put in the prompt.
    pub passages: usize,
    /// Lowest BM25 score of a passage that counts as relevant.
    pub min_score: f32,
    /// Least share (0–1) of the question's meaning words, weighted by how
    /// rare they are, that the best knowledge sentence must hold for the
    /// agent to answer at all (decision 0040); below it the agent says it
    /// does not know, or asks again when the words look misheard.
    pub min_coverage: f32,
    /// Least share the best sentence must hold to be read as written when
    /// the model's words fail a check; below it the agent says it does not know.
    pub read_coverage: f32,
    /// A sentence whose share is at least this part of the best one's
    /// answers the question too: its facts may be stated.
    pub answering_share: f32,
    /// With the embedding model: the share (0–1) of a sentence's relevance
    /// that comes from how close its meaning is to the question, the rest
    /// from the words' coverage (decision 0041).
    pub meaning_weight: f32,
    /// With the embedding model: a passage whose closest sentence is at
    /// least this similar (cosine) to the question is found by meaning,
    /// and the agent answers it even when few of the question's words are
    /// in the knowledge.
    pub min_similarity: f32,
    /// With the embedding model: the best sentence is read as written
    /// (when the model's words fail a check) also when it is at least this
    /// similar (cosine) to the question, whatever its words' coverage.
    pub read_similarity: f32,
    /// How close a question must be to a curated answer's wording to get
    /// that answer as written (decision 0081): cosine of their embeddings,
    /// or without the embedding model the share of terms they have in common.
    pub curated_match: f32,
}

impl Default for KnowledgeRules {
    fn default() -> KnowledgeRules {
        KnowledgeRules {
            passages: 2,
            min_score: 2.0,
            min_coverage: 0.25,
            read_coverage: 0.5,
            answering_share: 0.6,
            meaning_weight: 0.7,
            min_similarity: 0.5,
            read_similarity: 0.6,
            curated_match: 0.8,
        }
    }
}

/// The built-in tools. (Digits are collected through a tool's
/// `type = "digits"` arguments; `send_dtmf` keys its `digits` argument on
/// the call, e.g. a PBX's feature code or an IVR's menu choice.)
pub const BUILTINS: &[&str] = &["transfer", "hangup", "schedule_callback", "send_dtmf"];

/// Whether `keys` can be sent as DTMF (RFC 4733 events): 0-9, *, #, A-D.
pub fn is_dtmf(keys: &str) -> bool {
    !keys.is_empty() && keys.chars().all(|c| c.is_ascii_digit() || "*#ABCD".contains(c))
}

/// A business tool or a built-in (`tools.toml`, `[[tool]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does (for people and the prompt).
    pub description: String,
    /// Caller phrasings that ask for it.
    pub examples: Vec<String>,
    /// A built-in (no URL).
    #[serde(default)]
    pub builtin: bool,
    /// The HTTP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP method (POST or GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// How long to wait for it (ms).
    #[serde(default = "default_tool_timeout")]
    pub timeout_ms: u64,
    /// Said while it runs.
    #[serde(default)]
    pub say_before: Option<String>,
    /// Said with its result; `{field}` takes a field of the JSON result (or an argument).
    #[serde(default)]
    pub say_result: Option<String>,
    /// Said when it fails.
    #[serde(default)]
    pub say_error: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: BTreeMap<String, ArgSpec>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_tool_timeout() -> u64 {
    3000
}

/// The kind of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    /// A fixed number of digits (said or keyed).
    Digits,
    /// One of a list of values.
    Enum,
}

/// One argument of a tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: ArgType,
    /// Digits: how many.
    #[serde(default)]
    pub length: Option<usize>,
    /// Enum: the values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Said to ask for it.
    pub prompt: String,
    /// Used when the caller gives none.
    #[serde(default)]
    pub default: Option<String>,
    /// Digits: keyed values may be written in clear in transcripts and
    /// logs (a meter reading). By default they are not: an account or card
    /// number shows as "(keyed 8 digits)".
    #[serde(default)]
    pub keep: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default)]
    tool: Vec<ToolSpec>,
}

/// A loaded, checked domain pack.
#[derive(Debug)]
pub struct DomainPack {
    /// Its folder.
    pub dir: PathBuf,
    /// Who the agent is.
    pub persona: Persona,
    /// The boundary and its lines.
    pub rules: Rules,
    /// Tools the agent may call.
    pub tools: Vec<ToolSpec>,
    /// The indexed knowledge.
    pub knowledge: Knowledge,
    /// The scripted flow, when the pack has one.
    pub flow: Option<Flow>,
    /// The tools' examples and escalation phrases by meaning, once
    /// [`DomainPack::understand`] ran.
    pub requests: Option<crate::meaning::Requests>,
    /// Experts' corrections (`curated.toml`), answered as written.
    pub curated: crate::curated::Curated,
}

/// Reads a TOML file; errors name the file and the field.
pub(crate) fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, PackError> {
    let text = std::fs::read_to_string(path).map_err(|e| PackError::new(path, None, format!("reading: {e}")))?;
    let de = toml::Deserializer::parse(&text).map_err(|e| PackError::new(path, None, e.to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        PackError::new(
            path,
            (field != ".").then_some(field.as_str()),
            e.into_inner().to_string(),
        )
    })
}

impl DomainPack {
    /// Loads and checks the pack in `dir`.
    pub fn load(dir: &Path) -> Result<DomainPack, PackError> {
        if !dir.is_dir() {
            return Err(PackError::new(dir, None, "no such domain pack folder"));
        }
        let persona: Persona = read_toml(&dir.join("persona.toml"))?;
        let rules: Rules = read_toml(&dir.join("rules.toml"))?;
        let tools_path = dir.join("tools.toml");
        let tools = if tools_path.exists() {
            read_toml::<ToolsFile>(&tools_path)?.tool
        } else {
            Vec::new()
        };
        let mut persona = persona;
        check_persona(&dir.join("persona.toml"), &persona)?;
        resolve_pack_files(dir, &mut persona)?;
        check_rules(&dir.join("rules.toml"), &rules)?;
        check_tools(&tools_path, &tools)?;
        let flows = dir.join("flows.toml");
        let flow = if flows.exists() {
            Some(Flow::load(&flows, &tools)?)
        } else {
            None
        };
        let knowledge = Knowledge::load(&dir.join("knowledge"))?;
        let curated = crate::curated::CuratedFile::read(dir)?;
        curated.check(&dir.join(crate::curated::FILE), &rules.forbidden.phrases)?;
        let curated = crate::curated::Curated::new(curated, &knowledge);
        Ok(DomainPack {
            dir: dir.to_path_buf(),
            persona,
            rules,
            tools,
            knowledge,
            flow,
            requests: None,
            curated,
        })
    }

    /// Embeds the pack's knowledge with `embedder` so questions find it by
    /// meaning as well as by words; an error names the knowledge folder.
    pub fn understand(mut self, embedder: std::sync::Arc<voxline_llm::Embedder>) -> Result<DomainPack, PackError> {
        let started = std::time::Instant::now();
        let examples: Vec<&[String]> = self.tools.iter().map(|t| t.examples.as_slice()).collect();
        let requests = crate::meaning::Requests::new(&embedder, &examples, &self.rules.escalation.phrases)
            .map_err(|e| PackError::new(&self.dir, None, format!("embedding the tools' examples: {e}")))?;
        self.requests = Some(requests);
        self.curated.understand(&embedder).map_err(|e| {
            PackError::new(
                &self.dir.join(crate::curated::FILE),
                None,
                format!("embedding the wordings: {e}"),
            )
        })?;
        self.knowledge.understand(embedder).map_err(|e| {
            PackError::new(
                &self.dir.join("knowledge"),
                None,
                format!("embedding the sentences: {e}"),
            )
        })?;
        tracing::info!(
            pack = %self.dir.display(),
            sentences = self.knowledge.sentences().all.len(),
            ms = started.elapsed().as_millis() as u64,
            "knowledge embedded"
        );
        Ok(self)
    }
}

/// The pack's own model files, made absolute against its folder; each must
/// be a file (the error names `persona.toml`, the field and the path).
fn resolve_pack_files(dir: &Path, persona: &mut Persona) -> Result<(), PackError> {
    let file = dir.join("persona.toml");
    if persona.chat_template.is_some() && persona.model.is_none() {
        return Err(PackError::new(
            &file,
            Some("chat_template"),
            "a chat template needs the pack's own model (set model too)",
        ));
    }
    for (field, path) in [
        ("model", &mut persona.model),
        ("chat_template", &mut persona.chat_template),
    ] {
        let Some(p) = path.as_mut() else { continue };
        if p.is_relative() {
            *p = dir.join(&*p);
        }
        if !p.is_file() {
            return Err(PackError::new(
                &file,
                Some(field),
                format!("{}: no such file", p.display()),
            ));
        }
    }
    Ok(())
}

fn non_empty(file: &Path, field: &str, value: &str) -> Result<(), PackError> {
    if value.trim().is_empty() {
        return Err(PackError::new(file, Some(field), "must not be empty"));
    }
    Ok(())
}

fn check_persona(file: &Path, p: &Persona) -> Result<(), PackError> {
    non_empty(file, "name", &p.name)?;
    non_empty(file, "greeting", &p.greeting)?;
    non_empty(file, "goodbye", &p.goodbye)?;
    non_empty(file, "timeouts.fault", &p.timeouts.fault)?;
    if p.timeouts.hold_again_ms > 0 {
        non_empty(file, "timeouts.hold_again", &p.timeouts.hold_again)?;
    }
    if p.timeouts.reply_deadline_ms != 0 && p.timeouts.reply_deadline_ms < 1000 {
        return Err(PackError::new(
            file,
            Some("timeouts.reply_deadline_ms"),
            "must be 0 (no limit) or at least 1000",
        ));
    }
    if p.language != "en" && !p.language.starts_with("en-") {
        return Err(PackError::new(
            file,
            Some("language"),
            format!(
                "{:?}: only English (en) packs are supported by the default models",
                p.language
            ),
        ));
    }
    if !(5..=200).contains(&p.max_reply_words) {
        return Err(PackError::new(file, Some("max_reply_words"), "must be 5 to 200"));
    }
    if p.vocabulary.iter().any(|w| w.trim().is_empty()) {
        return Err(PackError::new(file, Some("vocabulary"), "an entry is empty"));
    }
    let chars = p.asr_prompt().map_or(0, |w| w.chars().count());
    if chars > MAX_VOCABULARY_CHARS {
        return Err(PackError::new(
            file,
            Some("vocabulary"),
            format!("{chars} characters with the company's name; at most {MAX_VOCABULARY_CHARS} fit the recogniser's prompt"),
        ));
    }
    let t = &p.timeouts;
    if t.reprompt_ms < 1000 || t.hangup_ms <= t.reprompt_ms {
        return Err(PackError::new(
            file,
            Some("timeouts"),
            "reprompt_ms must be at least 1000 and hangup_ms above it",
        ));
    }
    Ok(())
}

fn check_rules(file: &Path, r: &Rules) -> Result<(), PackError> {
    non_empty(file, "domain.decline", &r.domain.decline)?;
    non_empty(file, "domain.unknown", &r.domain.unknown)?;
    non_empty(file, "escalation.say", &r.escalation.say)?;
    non_empty(file, "opt_out.say", &r.opt_out.say)?;
    non_empty(file, "escalation.failed", &r.escalation.failed)?;
    if !is_sip_uri(&r.escalation.transfer_to) {
        return Err(PackError::new(
            file,
            Some("escalation.transfer_to"),
            "must be a sip: or sips: URI (no spaces or angle brackets)",
        ));
    }
    if !r.forbidden.phrases.is_empty() {
        non_empty(file, "forbidden.replacement", &r.forbidden.replacement)?;
    }
    if r.knowledge.passages == 0 || r.knowledge.passages > 8 {
        return Err(PackError::new(file, Some("knowledge.passages"), "must be 1 to 8"));
    }
    for (field, v) in [
        ("knowledge.min_coverage", r.knowledge.min_coverage),
        ("knowledge.read_coverage", r.knowledge.read_coverage),
        ("knowledge.answering_share", r.knowledge.answering_share),
        ("knowledge.meaning_weight", r.knowledge.meaning_weight),
        ("knowledge.min_similarity", r.knowledge.min_similarity),
        ("knowledge.read_similarity", r.knowledge.read_similarity),
        ("knowledge.curated_match", r.knowledge.curated_match),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(PackError::new(file, Some(field), format!("must be 0 to 1, got {v}")));
        }
    }
    Ok(())
}

/// Whether `to` is a `sip:`/`sips:` URI usable as a transfer target.
pub(crate) fn is_sip_uri(to: &str) -> bool {
    (to.starts_with("sip:") || to.starts_with("sips:"))
        && to.len() > 4
        && !to.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

fn check_tools(file: &Path, tools: &[ToolSpec]) -> Result<(), PackError> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tools.iter().enumerate() {
        let at = |f: &str| format!("tool[{i}].{f}");
        if !seen.insert(t.name.as_str()) {
            return Err(PackError::new(
                file,
                Some(&at("name")),
                format!("{:?} is defined twice", t.name),
            ));
        }
        if t.examples.is_empty() {
            return Err(PackError::new(
                file,
                Some(&at("examples")),
                "give at least one caller phrasing",
            ));
        }
        if t.builtin {
            if !BUILTINS.contains(&t.name.as_str()) {
                return Err(PackError::new(
                    file,
                    Some(&at("name")),
                    format!("{:?} is not a built-in (known: {})", t.name, BUILTINS.join(", ")),
                ));
            }
            if t.name == "send_dtmf" {
                let Some(keys) = t.args.get("digits") else {
                    return Err(PackError::new(
                        file,
                        Some(&at("args")),
                        "send_dtmf needs a \"digits\" argument (the keys to send)",
                    ));
                };
                if let Some(bad) = keys.values.iter().chain(&keys.default).find(|v| !is_dtmf(v)) {
                    return Err(PackError::new(
                        file,
                        Some(&at("args.digits")),
                        format!("{bad:?} is not DTMF (0-9, *, #, A-D)"),
                    ));
                }
            }
        } else {
            let url = t
                .url
                .as_deref()
                .ok_or_else(|| PackError::new(file, Some(&at("url")), "a business tool needs its URL"))?;
            reqwest::Url::parse(url).map_err(|e| PackError::new(file, Some(&at("url")), e.to_string()))?;
            if !matches!(t.method.as_str(), "POST" | "GET") {
                return Err(PackError::new(file, Some(&at("method")), "POST or GET"));
            }
            if !(100..=30_000).contains(&t.timeout_ms) {
                return Err(PackError::new(file, Some(&at("timeout_ms")), "must be 100 to 30000"));
            }
        }
        for (name, a) in &t.args {
            let field = at(&format!("args.{name}"));
            match a.kind {
                ArgType::Digits if !matches!(a.length, Some(1..=32)) => {
                    return Err(PackError::new(file, Some(&field), "digits need a length of 1 to 32"));
                }
                ArgType::Enum if a.values.is_empty() => {
                    return Err(PackError::new(file, Some(&field), "an enum needs its values"));
                }
                _ => {}
            }
            if let (ArgType::Enum, Some(d)) = (a.kind, &a.default) {
                if !a.values.contains(d) {
                    return Err(PackError::new(
                        file,
                        Some(&field),
                        format!("default {d:?} is not one of the values"),
                    ));
                }
            }
            non_empty(file, &field, &a.prompt)?;
        }
    }
    Ok(())
}
