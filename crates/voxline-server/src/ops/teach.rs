//! Teach (decision 0081): an expert marks what the agent said as wrong,
//! giving the right answer, or as good. A correction becomes a curated
//! answer in the pack's `curated.toml` (with the question's wordings) and a
//! case of the pack's question set `eval-taught.toml`; a good turn is kept
//! for the fine-tuning set (`voxline teach export`). The pack is checked
//! with the change before anything is written: a change that would break it
//! is refused and the files stay as they were.

use crate::ops::OpError;
use std::path::Path;
use voxline_agent::curated::{CuratedAnswer, CuratedFile, GoodTurn};
use voxline_agent::DomainPack;
use voxline_store::CallStore;

/// A correction of one answer.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// The question as it was asked (from the turn when one is named).
    #[serde(default)]
    pub asked: String,
    /// The right answer, spoken as written.
    pub answer: String,
    /// Other wordings of the same question.
    #[serde(default)]
    pub also_asked: Vec<String>,
    /// Facts the answer must hold in the question set (else its figures).
    #[serde(default)]
    pub holds: Vec<String>,
    /// Who corrects it.
    #[serde(default)]
    pub by: Option<String>,
}

/// What an expert's mark was made on: a stored call's turn, or a question
/// and answer (from a chat).
#[derive(Debug, Clone)]
pub struct Marked {
    /// What the caller asked.
    pub asked: String,
    /// What the agent said.
    pub said: Option<String>,
    /// `call <call-id> turn <n>`, or `chat`.
    pub source: String,
}

/// The question and answer of turn `turn` (from 1) of call `call_id`: the
/// caller's words of the turn, and what the agent said after them until the
/// next turn. A clear error when the call or the turn does not exist.
pub async fn turn_of_call(store: &CallStore, call_id: &str, turn: i64) -> Result<Marked, OpError> {
    let records = store.find_by_call_id(call_id).await?;
    if records.is_empty() {
        return Err(OpError::NotFound(format!("no call {call_id} in the call records")));
    }
    for r in &records {
        let turns = store.agent_turns(&r.id).await?;
        let Some(i) = turns.iter().position(|t| t.seq == turn) else {
            continue;
        };
        let from = turns[i].caller_end_ms;
        let until = turns.get(i + 1).map_or(i64::MAX, |t| t.caller_end_ms);
        let said: Vec<String> = store
            .transcript(&r.id)
            .await?
            .into_iter()
            .filter(|l| l.speaker == "agent" && l.start_ms >= from && l.start_ms < until)
            .map(|l| l.text)
            .collect();
        return Ok(Marked {
            asked: turns[i].caller_text.clone(),
            said: (!said.is_empty()).then(|| said.join(" ")),
            source: format!("call {call_id} turn {turn}"),
        });
    }
    Err(OpError::invalid(
        "turn",
        format!("call {call_id} has no agent turn {turn}"),
    ))
}

/// Stores `correction` of `marked` in the pack in `pack_dir`: a new curated
/// answer, or the one already holding the question's wording updated (its
/// other wordings kept). Returns the answer's index.
pub fn correct(pack_dir: &Path, marked: &Marked, correction: &Correction) -> Result<usize, OpError> {
    let asked = if correction.asked.trim().is_empty() {
        marked.asked.trim()
    } else {
        correction.asked.trim()
    };
    if asked.is_empty() {
        return Err(OpError::invalid("asked", "the question is empty"));
    }
    if correction.answer.trim().is_empty() {
        return Err(OpError::invalid("answer", "the right answer is empty"));
    }
    let mut file = read(pack_dir)?;
    let same = |q: &String| normal(q) == normal(asked);
    let index = match file.answer.iter().position(|a| a.asked.iter().any(same)) {
        Some(i) => i,
        None => {
            file.answer.push(CuratedAnswer {
                asked: vec![asked.to_string()],
                say: String::new(),
                holds: Vec::new(),
                was: None,
                source: None,
                by: None,
                at: None,
            });
            file.answer.len() - 1
        }
    };
    let a = &mut file.answer[index];
    for q in &correction.also_asked {
        if !q.trim().is_empty() && !a.asked.iter().any(|w| normal(w) == normal(q)) {
            a.asked.push(q.trim().to_string());
        }
    }
    a.say = correction.answer.trim().to_string();
    a.holds = correction
        .holds
        .iter()
        .filter(|h| !h.trim().is_empty())
        .cloned()
        .collect();
    a.was = marked.said.clone().or(a.was.take());
    a.source = Some(marked.source.clone());
    a.by = correction.by.clone();
    a.at = Some(now());
    if a.facts().is_empty() {
        return Err(OpError::invalid(
            "holds",
            "the answer states no figure: name the facts it must hold (holds), so the question set can check it",
        ));
    }
    write_checked(pack_dir, &file)?;
    Ok(index)
}

/// Keeps `marked` (a question and what the agent said) as a good turn.
pub fn mark_good(pack_dir: &Path, marked: &Marked, by: Option<String>) -> Result<(), OpError> {
    let Some(said) = marked.said.clone().filter(|s| !s.trim().is_empty()) else {
        return Err(OpError::invalid("said", "nothing the agent said to mark good"));
    };
    let mut file = read(pack_dir)?;
    let dup = file
        .good
        .iter()
        .any(|g| normal(&g.asked) == normal(&marked.asked) && g.said == said);
    if !dup {
        file.good.push(GoodTurn {
            asked: marked.asked.trim().to_string(),
            said,
            source: Some(marked.source.clone()),
            by,
            at: Some(now()),
        });
    }
    write_checked(pack_dir, &file)
}

/// The pack's curated answers and good turns as a chat-format JSONL
/// fine-tuning set: one `{"messages": [system, user, assistant]}` line per
/// wording of each curated answer and per good turn, the system message the
/// pack's persona prompt. Returns the lines.
pub fn export(pack_dir: &Path) -> Result<Vec<String>, OpError> {
    let pack = DomainPack::load(pack_dir).map_err(pack_error)?;
    let system = voxline_agent::prompt::system_prompt(&pack);
    let file = pack.curated.file();
    let line = |user: &str, assistant: &str| {
        serde_json::json!({
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ]
        })
        .to_string()
    };
    let mut out = Vec::new();
    for a in &file.answer {
        out.extend(a.asked.iter().map(|q| line(q, &a.say)));
    }
    out.extend(file.good.iter().map(|g| line(&g.asked, &g.said)));
    Ok(out)
}

fn read(pack_dir: &Path) -> Result<CuratedFile, OpError> {
    if !pack_dir.join("persona.toml").is_file() {
        return Err(OpError::NotFound(format!(
            "{}: not a domain pack (no persona.toml)",
            pack_dir.display()
        )));
    }
    CuratedFile::read(pack_dir).map_err(pack_error)
}

/// Writes `file` once the pack loads and checks with it (checked on a copy
/// of the pack's own files), so a refused change leaves nothing behind.
fn write_checked(pack_dir: &Path, file: &CuratedFile) -> Result<(), OpError> {
    let rules = DomainPack::load(pack_dir).map_err(pack_error)?.rules;
    file.check(&pack_dir.join(voxline_agent::curated::FILE), &rules.forbidden.phrases)
        .map_err(pack_error)?;
    file.write(pack_dir)
        .map_err(|e| OpError::invalid("pack", format!("{}: writing: {e}", pack_dir.display())))
}

fn pack_error(e: voxline_agent::PackError) -> OpError {
    OpError::invalid("pack", e.to_string())
}

/// A wording compared: lower case, words only.
fn normal(text: &str) -> String {
    voxline_text::words::words(text).trim().to_string()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo bank pack copied into a fresh folder.
    fn pack(name: &str) -> std::path::PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank");
        let dir = std::env::temp_dir().join(format!("voxline-teach-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("knowledge")).expect("dir");
        for f in ["persona.toml", "rules.toml", "tools.toml"] {
            std::fs::copy(src.join(f), dir.join(f)).expect("copy");
        }
        for e in std::fs::read_dir(src.join("knowledge")).expect("knowledge").flatten() {
            std::fs::copy(e.path(), dir.join("knowledge").join(e.file_name())).expect("copy");
        }
        dir
    }

    fn chat(asked: &str) -> Marked {
        Marked {
            asked: asked.into(),
            said: Some("I don't know.".into()),
            source: "chat".into(),
        }
    }

    fn answer(text: &str) -> Correction {
        Correction {
            answer: text.into(),
            ..Correction::default()
        }
    }

    #[test]
    fn a_correction_is_stored_updated_in_place_and_kept_in_the_question_set() {
        let dir = pack("store");
        let q = chat("How much is a safe deposit box?");
        assert_eq!(
            correct(&dir, &q, &answer("It costs 60 dollars a year.")).expect("taken"),
            0
        );
        // The same question again (other case and punctuation): the same
        // answer updated, a new wording added.
        let mut again = answer("It costs 70 dollars a year.");
        again.also_asked = vec!["What does a deposit box cost?".into()];
        assert_eq!(
            correct(&dir, &chat("how much is a safe deposit box"), &again).expect("taken"),
            0
        );
        let file = CuratedFile::read(&dir).expect("read");
        assert_eq!(file.answer.len(), 1);
        assert_eq!(file.answer[0].say, "It costs 70 dollars a year.");
        assert_eq!(file.answer[0].asked.len(), 2);
        assert_eq!(file.answer[0].was.as_deref(), Some("I don't know."));
        let set = std::fs::read_to_string(dir.join(voxline_agent::curated::QUESTION_SET)).expect("set");
        assert_eq!(set.matches("[[case]]").count(), 2, "{set}");
        assert!(set.contains("\"70\""), "{set}");
        // The pack loads with it, and the export has one line per wording.
        let pack = DomainPack::load(&dir).expect("the pack loads");
        assert_eq!(pack.curated.answers().len(), 1);
        assert_eq!(export(&dir).expect("export").len(), 2);
        // A good turn joins the export; one with nothing said is refused.
        let good = Marked {
            asked: "Where is the Downtown branch?".into(),
            said: Some("The Downtown branch is at 12 Harbor Street.".into()),
            source: "call x turn 1".into(),
        };
        mark_good(&dir, &good, Some("expert".into())).expect("good");
        mark_good(&dir, &good, None).expect("the same again: kept once");
        assert_eq!(CuratedFile::read(&dir).expect("read").good.len(), 1);
        assert_eq!(export(&dir).expect("export").len(), 3);
        let silent = Marked { said: None, ..good };
        assert!(mark_good(&dir, &silent, None).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_correction_the_pack_would_refuse_leaves_it_as_it_was() {
        let dir = pack("refuse");
        // No figure and no facts named: the question set could not check it.
        let e = correct(&dir, &chat("Can I bring my dog?"), &answer("Yes, dogs are welcome.")).expect_err("no facts");
        assert!(e.to_string().starts_with("holds:"), "{e}");
        // A phrase the pack forbids.
        let rules = DomainPack::load(&dir).expect("pack").rules;
        let forbidden = rules
            .forbidden
            .phrases
            .first()
            .expect("the demo pack forbids phrases")
            .clone();
        let mut c = answer(&format!("Yes, {forbidden}, 5 dollars."));
        c.holds = vec!["5".into()];
        let e = correct(&dir, &chat("Is it safe?"), &c).expect_err("forbidden");
        assert!(e.to_string().contains("answer[0].say"), "{e}");
        assert!(!dir.join(voxline_agent::curated::FILE).exists(), "nothing written");
        // An empty answer, and a folder that is no pack.
        assert!(correct(&dir, &chat("Is it safe?"), &answer(" ")).is_err());
        let e = correct(&dir.join("knowledge"), &chat("Is it safe?"), &answer("5 dollars.")).expect_err("no pack");
        assert!(matches!(e, OpError::NotFound(_)), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
