//! Training scenarios (`training/*.toml` in a domain pack): the customer a
//! bot plays for a human trainee (who they are, their mood, what they know
//! and want, their opening line, the objections they raise until the
//! trainee settles them, when they hang up satisfied or angry), the
//! quality scorecard the trainee is judged by, and the facts the trainee
//! should state. Each file is read and checked on its own: a broken one is
//! refused with its file and field, the others (and the pack) are not
//! affected.

use crate::scorecard::Scorecard;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The folder of a pack that holds its scenarios.
pub const DIR: &str = "training";

/// A scenario that failed to load: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {why}", file.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The scenario's file (or its scorecard's, when that is at fault).
    pub file: PathBuf,
    /// The field, when one is to blame (`customer.opening`, `fact[2].holds`).
    pub field: Option<String>,
    /// Why.
    pub why: String,
}

impl ScenarioError {
    fn new(file: &Path, field: Option<&str>, why: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: file.to_path_buf(),
            field: field.map(str::to_string),
            why: why.into(),
        }
    }
}

/// How the customer feels at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mood {
    /// Polite and patient.
    Calm,
    /// In a hurry: short answers, little patience for holds.
    Impatient,
    /// Upset about something that went wrong.
    Angry,
    /// Unsure what they need; asks again.
    Confused,
}

/// An objection the customer raises, in order, until the trainee settles it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objection {
    /// What the customer says.
    pub line: String,
    /// What settles it: lines the trainee may say (most of one line's
    /// content words count; see `voxline_agent::customer`).
    pub settled_by: Vec<String>,
}

/// The customer the bot plays.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Who they are ("Sam Reed, a customer for twelve years").
    pub persona: String,
    /// Their mood at the start.
    pub mood: Mood,
    /// What they know (their account, what happened).
    #[serde(default)]
    pub knows: Vec<String>,
    /// What they want from the call.
    pub wants: String,
    /// Their first words when the trainee answers.
    pub opening: String,
    /// Objections, raised in order.
    #[serde(default)]
    pub objection: Vec<Objection>,
    /// Lines of the trainee (most of one line's content words) after which the customer is
    /// satisfied, thanks them and hangs up.
    pub satisfied_by: Vec<String>,
    /// Said when satisfied.
    #[serde(default = "default_satisfied")]
    pub satisfied_line: String,
    /// Said when they give up.
    #[serde(default = "default_angry")]
    pub angry_line: String,
    /// Seconds they stay on the line without being satisfied before they
    /// hang up angry.
    #[serde(default = "default_patience")]
    pub patience_s: u32,
}

impl Customer {
    /// The script the training bot plays.
    pub fn script(&self) -> voxline_agent::customer::CustomerScript {
        voxline_agent::customer::CustomerScript {
            opening: self.opening.clone(),
            objections: self
                .objection
                .iter()
                .map(|o| (o.line.clone(), o.settled_by.clone()))
                .collect(),
            satisfied_by: self.satisfied_by.clone(),
            satisfied_line: self.satisfied_line.clone(),
            angry_line: self.angry_line.clone(),
            knows: self.knows.clone(),
            wants: self.wants.clone(),
            patience: std::time::Duration::from_secs(u64::from(self.patience_s)),
        }
    }
}

fn default_satisfied() -> String {
    "Thank you, that's all I needed. Goodbye.".into()
}

fn default_angry() -> String {
    "This is getting me nowhere. Goodbye.".into()
}

fn default_patience() -> u32 {
    240
}

/// A fact the trainee should state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// Its name in reports.
    pub id: String,
    /// The fact as the pack's knowledge words it (the better wording the
    /// report suggests when the trainee missed it).
    pub state: String,
    /// Words or figures the trainee's lines must hold for it to count as
    /// stated (each may list alternatives: `25|twenty-five`).
    pub holds: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    title: Option<String>,
    customer: Customer,
    #[serde(default)]
    scorecard: Option<PathBuf>,
    #[serde(default)]
    fact: Vec<Fact>,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name: the file's stem (`overdraft-fee`).
    pub name: String,
    /// Its title (else the name).
    pub title: String,
    /// Its file.
    pub file: PathBuf,
    /// The customer the bot plays.
    pub customer: Customer,
    /// The scorecard the trainee is judged by.
    pub scorecard: Scorecard,
    /// The facts the trainee should state.
    pub facts: Vec<Fact>,
}

impl Scenario {
    /// Reads and checks one scenario file; its `scorecard` is relative to
    /// the file's folder.
    pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(file).map_err(|e| ScenarioError::new(file, None, format!("reading: {e}")))?;
        let de = toml::Deserializer::parse(&text).map_err(|e| ScenarioError::new(file, None, e.to_string()))?;
        let raw: RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ScenarioError::new(
                file,
                (field != ".").then_some(field.as_str()),
                e.into_inner().to_string(),
            )
        })?;
        let Some(card) = raw.scorecard else {
            return Err(ScenarioError::new(
                file,
                Some("scorecard"),
                "missing: a scenario names the scorecard its trainee is judged by (e.g. scorecard = \"../qa.toml\")",
            ));
        };
        let card = file.parent().unwrap_or(Path::new(".")).join(card);
        let scorecard = Scorecard::load(&card).map_err(|e| ScenarioError {
            file: e.file.clone(),
            field: e.field.clone(),
            why: format!("{} (the scorecard of {})", e.why, file.display()),
        })?;
        let c = &raw.customer;
        for (field, value) in [
            ("customer.persona", &c.persona),
            ("customer.wants", &c.wants),
            ("customer.opening", &c.opening),
            ("customer.satisfied_line", &c.satisfied_line),
            ("customer.angry_line", &c.angry_line),
        ] {
            if value.trim().is_empty() {
                return Err(ScenarioError::new(file, Some(field), "must not be empty"));
            }
        }
        if non_empty(&c.satisfied_by) == 0 {
            return Err(ScenarioError::new(
                file,
                Some("customer.satisfied_by"),
                "needs at least one line that satisfies the customer",
            ));
        }
        if c.patience_s < 10 {
            return Err(ScenarioError::new(
                file,
                Some("customer.patience_s"),
                "must be at least 10",
            ));
        }
        for (i, o) in c.objection.iter().enumerate() {
            if o.line.trim().is_empty() {
                let field = format!("customer.objection[{i}].line");
                return Err(ScenarioError::new(file, Some(&field), "must not be empty"));
            }
            if non_empty(&o.settled_by) == 0 {
                let field = format!("customer.objection[{i}].settled_by");
                return Err(ScenarioError::new(
                    file,
                    Some(&field),
                    "needs at least one line that settles it",
                ));
            }
        }
        for (i, f) in raw.fact.iter().enumerate() {
            let field = |name: &str| format!("fact[{i}].{name}");
            if f.id.trim().is_empty() || raw.fact[..i].iter().any(|o| o.id == f.id) {
                return Err(ScenarioError::new(file, Some(&field("id")), "must be given and unique"));
            }
            if f.state.trim().is_empty() {
                return Err(ScenarioError::new(file, Some(&field("state")), "must not be empty"));
            }
            if non_empty(&f.holds) == 0 {
                return Err(ScenarioError::new(
                    file,
                    Some(&field("holds")),
                    "needs the words or figures that show it stated",
                ));
            }
        }
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        Ok(Scenario {
            title: raw
                .title
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| name.clone()),
            name,
            file: file.to_path_buf(),
            customer: raw.customer,
            scorecard,
            facts: raw.fact,
        })
    }
}

fn non_empty(lines: &[String]) -> usize {
    lines.iter().filter(|l| !l.trim().is_empty()).count()
}

/// Every `*.toml` of the pack's `training/` folder, each loaded on its own
/// (in file-name order); none when the pack has no such folder.
pub fn load_scenarios(pack: &Path) -> Result<Vec<Result<Scenario, ScenarioError>>, ScenarioError> {
    let dir = pack.join(DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| ScenarioError::new(&dir, None, format!("reading: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files.iter().map(|f| Scenario::load(f)).collect())
}
