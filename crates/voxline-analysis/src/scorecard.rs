//! A pack's quality scorecard (`qa.toml`): the items every call is scored
//! against, their weights and which of them fail a call on their own.
//! Read with errors that name the file, the item and the field.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A scorecard that failed to load: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {why}", file.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct ScorecardError {
    /// The file.
    pub file: PathBuf,
    /// The field (`item[3].max_s`), when one is to blame.
    pub field: Option<String>,
    /// Why.
    pub why: String,
}

impl ScorecardError {
    fn new(file: &Path, field: Option<String>, why: impl Into<String>) -> ScorecardError {
        ScorecardError {
            file: file.to_path_buf(),
            field,
            why: why.into(),
        }
    }
}

/// Who speaks on a two-sided call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The agent: voxline's own, or a human agent on a recording.
    Agent,
    /// The caller or the called contact.
    Customer,
}

impl Speaker {
    /// The other side.
    pub fn other(self) -> Speaker {
        match self {
            Speaker::Agent => Speaker::Customer,
            Speaker::Customer => Speaker::Agent,
        }
    }

    /// Its name as written in files and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
        }
    }
}

/// A scorecard: its items and when a call passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    /// The file it was read from.
    pub file: PathBuf,
    /// A call passes with this score (0–100) or more and no critical item failed.
    pub pass_score: f64,
    /// The items, in the file's order.
    pub items: Vec<Item>,
    /// The fields every call's summary names (`[[field]]`).
    pub fields: Vec<SummaryField>,
}

/// A field the pack wants read from every call for its summary (the
/// card's last four digits, a booking reference), masked when it is
/// sensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryField {
    /// Its name in the summary.
    pub name: String,
    /// Whose lines it is read from (`None`: either side's).
    pub who: Option<Speaker>,
    /// A regular expression over a line as normalised for reading (lower
    /// case, numbers in digits, spoken digits joined); its first group, or
    /// the whole match, is the value.
    pub pattern: String,
    /// Show only this many of the value's last characters, the others as
    /// `*` (`None`: the value as read).
    pub mask_keep: Option<usize>,
}

/// One scorecard item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its id (unique in the scorecard).
    pub id: String,
    /// Its share of the score.
    pub weight: u32,
    /// A failed critical item fails the call whatever the score.
    pub critical: bool,
    /// What is checked.
    pub check: Check,
}

/// What an item checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `who` says one of `lines` (or its meaning), within `within_s` of
    /// the call's start or `last_s` before its end (and in its second
    /// half) when given.
    Said {
        /// The speaker.
        who: Speaker,
        /// The lines, any of which will do.
        lines: Vec<String>,
        /// Said this soon after the call starts, s.
        within_s: Option<f64>,
        /// Said this close to the call's end, s.
        last_s: Option<f64>,
    },
    /// `who` never says any of `lines` (or their meaning).
    NotSaid {
        /// The speaker.
        who: Speaker,
        /// The forbidden lines.
        lines: Vec<String>,
    },
    /// `who` says a line of `first` before any line of `then`; applies only
    /// when a `then` line is said.
    Order {
        /// The speaker.
        who: Speaker,
        /// What must come first.
        first: Vec<String>,
        /// What must come after.
        then: Vec<String>,
    },
    /// No gap with nobody speaking longer than `max_s`; after a `hold_lines`
    /// line the gap may last `hold_max_s`.
    Silence {
        /// The longest dead air, s.
        max_s: f64,
        /// The agent's lines that announce a hold.
        hold_lines: Vec<String>,
        /// The longest announced hold, s.
        hold_max_s: f64,
    },
    /// `who` starts talking while the other side speaks, for more than
    /// `min_ms`, at most `max_count` times.
    Overlap {
        /// Who must not talk over the other.
        who: Speaker,
        /// The shortest overlap counted, ms.
        min_ms: u64,
        /// How many are allowed.
        max_count: u32,
    },
    /// `who`'s share of the talking time is within `min..=max`.
    TalkRatio {
        /// The speaker.
        who: Speaker,
        /// Lowest share, 0–1.
        min: f64,
        /// Highest share, 0–1.
        max: f64,
    },
    /// `who`'s words per minute of their own speech within the range.
    SpeakingRate {
        /// The speaker.
        who: Speaker,
        /// Slowest, words per minute.
        min_wpm: f64,
        /// Fastest, words per minute.
        max_wpm: f64,
    },
    /// `who`'s mood at the end is not negative, or better than at the start.
    Sentiment {
        /// Whose mood (the customer's, usually).
        who: Speaker,
    },
    /// When the customer asks for a person (`asks`) or ends unhappy, the
    /// agent offers or makes a transfer (`offers`).
    Escalation {
        /// The customer's requests for a person.
        asks: Vec<String>,
        /// The agent's offers or transfers.
        offers: Vec<String>,
    },
    /// A yes/no question about the call, judged by the language model with
    /// a quote as evidence.
    Outcome {
        /// The question; "yes" passes.
        question: String,
    },
}

impl Check {
    /// The lists of lines the check looks for, in a fixed order: `lines`;
    /// `first`, `then`; `hold_lines`; `asks`, `offers`; none for the kinds
    /// measured on the clock or asked of a model.
    pub fn line_lists(&self) -> Vec<&Vec<String>> {
        match self {
            Check::Said { lines, .. } | Check::NotSaid { lines, .. } => vec![lines],
            Check::Order { first, then, .. } => vec![first, then],
            Check::Silence { hold_lines, .. } => vec![hold_lines],
            Check::Escalation { asks, offers } => vec![asks, offers],
            _ => vec![],
        }
    }

    /// The kind's name as written in `qa.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Said { .. } => "said",
            Check::NotSaid { .. } => "not_said",
            Check::Order { .. } => "order",
            Check::Silence { .. } => "silence",
            Check::Overlap { .. } => "overlap",
            Check::TalkRatio { .. } => "talk_ratio",
            Check::SpeakingRate { .. } => "speaking_rate",
            Check::Sentiment { .. } => "sentiment",
            Check::Escalation { .. } => "escalation",
            Check::Outcome { .. } => "outcome",
        }
    }
}

/// The kinds an item may have.
pub const KINDS: &[&str] = &[
    "said",
    "not_said",
    "order",
    "silence",
    "overlap",
    "talk_ratio",
    "speaking_rate",
    "sentiment",
    "escalation",
    "outcome",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    pass_score: Option<f64>,
    #[serde(default)]
    item: Vec<RawItem>,
    #[serde(default)]
    field: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    who: Option<Speaker>,
    pattern: String,
    mask_keep: Option<usize>,
}

/// An item as written: every field any kind takes; [`Item::check`] keeps
/// the ones its kind uses and refuses the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    kind: String,
    weight: Option<u32>,
    critical: Option<bool>,
    who: Option<Speaker>,
    lines: Option<Vec<String>>,
    within_s: Option<f64>,
    last_s: Option<f64>,
    first: Option<Vec<String>>,
    then: Option<Vec<String>>,
    max_s: Option<f64>,
    hold_lines: Option<Vec<String>>,
    hold_max_s: Option<f64>,
    min_ms: Option<u64>,
    max_count: Option<u32>,
    min: Option<f64>,
    max: Option<f64>,
    min_wpm: Option<f64>,
    max_wpm: Option<f64>,
    asks: Option<Vec<String>>,
    offers: Option<Vec<String>>,
    question: Option<String>,
}

impl RawItem {
    /// The fields given, by name (for "not used by this kind").
    fn given(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let mut add = |name: &'static str, set: bool| {
            if set {
                f.push(name)
            }
        };
        add("who", self.who.is_some());
        add("lines", self.lines.is_some());
        add("within_s", self.within_s.is_some());
        add("last_s", self.last_s.is_some());
        add("first", self.first.is_some());
        add("then", self.then.is_some());
        add("max_s", self.max_s.is_some());
        add("hold_lines", self.hold_lines.is_some());
        add("hold_max_s", self.hold_max_s.is_some());
        add("min_ms", self.min_ms.is_some());
        add("max_count", self.max_count.is_some());
        add("min", self.min.is_some());
        add("max", self.max.is_some());
        add("min_wpm", self.min_wpm.is_some());
        add("max_wpm", self.max_wpm.is_some());
        add("asks", self.asks.is_some());
        add("offers", self.offers.is_some());
        add("question", self.question.is_some());
        f
    }
}

/// Checks one item's fields as its kind wants them.
struct ItemReader<'a> {
    file: &'a Path,
    at: String,
}

impl ItemReader<'_> {
    fn err(&self, field: &str, why: impl Into<String>) -> ScorecardError {
        ScorecardError::new(self.file, Some(format!("{}.{field}", self.at)), why)
    }

    fn lines(&self, field: &str, v: Option<Vec<String>>) -> Result<Vec<String>, ScorecardError> {
        let v = v.ok_or_else(|| self.err(field, "missing (a list of lines)"))?;
        if v.is_empty() || v.iter().any(|l| l.trim().is_empty()) {
            return Err(self.err(field, "must hold at least one line, none empty"));
        }
        Ok(v)
    }

    fn seconds(&self, field: &str, v: Option<f64>) -> Result<Option<f64>, ScorecardError> {
        match v {
            Some(s) if !(s > 0.0 && s <= 86_400.0) => Err(self.err(field, format!("must be 0 to 86400 s, got {s}"))),
            v => Ok(v),
        }
    }

    fn share(&self, field: &str, v: Option<f64>, default: f64) -> Result<f64, ScorecardError> {
        let v = v.unwrap_or(default);
        if !(0.0..=1.0).contains(&v) {
            return Err(self.err(field, format!("must be 0 to 1, got {v}")));
        }
        Ok(v)
    }
}

impl Item {
    fn check(index: usize, raw: RawItem, file: &Path) -> Result<Item, ScorecardError> {
        let r = ItemReader {
            file,
            at: format!("item[{index}]"),
        };
        if raw.id.trim().is_empty() {
            return Err(r.err("id", "must not be empty"));
        }
        let r = ItemReader {
            file,
            at: format!("item[{index}] ({:?})", raw.id),
        };
        let uses: &[&str] = match raw.kind.as_str() {
            "said" => &["who", "lines", "within_s", "last_s"],
            "not_said" => &["who", "lines"],
            "order" => &["who", "first", "then"],
            "silence" => &["max_s", "hold_lines", "hold_max_s"],
            "overlap" => &["who", "min_ms", "max_count"],
            "talk_ratio" => &["who", "min", "max"],
            "speaking_rate" => &["who", "min_wpm", "max_wpm"],
            "sentiment" => &["who"],
            "escalation" => &["asks", "offers"],
            "outcome" => &["question"],
            other => return Err(r.err("kind", format!("unknown kind {other:?} (one of {})", KINDS.join(", ")))),
        };
        if let Some(extra) = raw.given().into_iter().find(|f| !uses.contains(f)) {
            return Err(r.err(
                extra,
                format!("not used by kind {:?} (it takes {})", raw.kind, uses.join(", ")),
            ));
        }
        let who = raw.who.unwrap_or(Speaker::Agent);
        let check = match raw.kind.as_str() {
            "said" => {
                let within_s = r.seconds("within_s", raw.within_s)?;
                let last_s = r.seconds("last_s", raw.last_s)?;
                Check::Said {
                    who,
                    lines: r.lines("lines", raw.lines)?,
                    within_s,
                    last_s,
                }
            }
            "not_said" => Check::NotSaid {
                who,
                lines: r.lines("lines", raw.lines)?,
            },
            "order" => Check::Order {
                who,
                first: r.lines("first", raw.first)?,
                then: r.lines("then", raw.then)?,
            },
            "silence" => {
                let max_s = r
                    .seconds("max_s", raw.max_s)?
                    .ok_or_else(|| r.err("max_s", "missing (the longest dead air, s)"))?;
                let hold_max_s = r.seconds("hold_max_s", raw.hold_max_s)?.unwrap_or(max_s);
                if hold_max_s < max_s {
                    return Err(r.err("hold_max_s", "must not be shorter than max_s"));
                }
                let hold_lines = match raw.hold_lines {
                    Some(l) => r.lines("hold_lines", Some(l))?,
                    None => Vec::new(),
                };
                Check::Silence {
                    max_s,
                    hold_lines,
                    hold_max_s,
                }
            }
            "overlap" => Check::Overlap {
                who,
                min_ms: raw.min_ms.unwrap_or(500),
                max_count: raw.max_count.unwrap_or(0),
            },
            "talk_ratio" => {
                let min = r.share("min", raw.min, 0.0)?;
                let max = r.share("max", raw.max, 1.0)?;
                if min > max {
                    return Err(r.err("min", "must not be above max"));
                }
                Check::TalkRatio { who, min, max }
            }
            "speaking_rate" => {
                let min_wpm = raw.min_wpm.unwrap_or(0.0);
                let max_wpm = raw.max_wpm.unwrap_or(1000.0);
                if !(0.0..=1000.0).contains(&min_wpm) || !(0.0..=1000.0).contains(&max_wpm) || min_wpm > max_wpm {
                    return Err(r.err("min_wpm", "min_wpm and max_wpm must be 0 to 1000, min not above max"));
                }
                Check::SpeakingRate { who, min_wpm, max_wpm }
            }
            "sentiment" => Check::Sentiment {
                who: raw.who.unwrap_or(Speaker::Customer),
            },
            "escalation" => Check::Escalation {
                asks: r.lines("asks", raw.asks)?,
                offers: r.lines("offers", raw.offers)?,
            },
            "outcome" => {
                let question = raw.question.unwrap_or_default();
                if question.trim().is_empty() {
                    return Err(r.err("question", "missing (a yes/no question about the call)"));
                }
                Check::Outcome { question }
            }
            _ => unreachable!("kinds checked above"),
        };
        let weight = raw.weight.unwrap_or(1);
        if weight > 1000 {
            return Err(r.err("weight", "must be 0 to 1000"));
        }
        Ok(Item {
            id: raw.id,
            weight,
            critical: raw.critical.unwrap_or(false),
            check,
        })
    }
}

impl Scorecard {
    /// Reads and checks a scorecard file.
    pub fn load(path: &Path) -> Result<Scorecard, ScorecardError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ScorecardError::new(path, None, format!("reading: {e}")))?;
        Scorecard::parse(&text, path)
    }

    /// Checks a scorecard's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scorecard, ScorecardError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ScorecardError::new(path, None, e.to_string()))?;
        let raw: RawCard = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ScorecardError::new(path, (field != ".").then_some(field), e.into_inner().to_string())
        })?;
        let pass_score = raw.pass_score.unwrap_or(80.0);
        if !(0.0..=100.0).contains(&pass_score) {
            return Err(ScorecardError::new(path, Some("pass_score".into()), "must be 0 to 100"));
        }
        if raw.item.is_empty() {
            return Err(ScorecardError::new(
                path,
                Some("item".into()),
                "a scorecard needs at least one item",
            ));
        }
        let mut items: Vec<Item> = Vec::with_capacity(raw.item.len());
        for (i, r) in raw.item.into_iter().enumerate() {
            let item = Item::check(i, r, path)?;
            if items.iter().any(|o| o.id == item.id) {
                return Err(ScorecardError::new(
                    path,
                    Some(format!("item[{i}].id")),
                    format!("{:?} is used by an earlier item", item.id),
                ));
            }
            items.push(item);
        }
        if items.iter().all(|i| i.weight == 0) {
            return Err(ScorecardError::new(
                path,
                Some("item".into()),
                "every item has weight 0",
            ));
        }
        let mut fields: Vec<SummaryField> = Vec::with_capacity(raw.field.len());
        for (i, f) in raw.field.into_iter().enumerate() {
            let at = |name: &str| Some(format!("field[{i}].{name}"));
            if f.name.trim().is_empty() {
                return Err(ScorecardError::new(path, at("name"), "must not be empty"));
            }
            if fields.iter().any(|o| o.name == f.name) {
                return Err(ScorecardError::new(
                    path,
                    at("name"),
                    format!("{:?} is used by an earlier field", f.name),
                ));
            }
            if let Err(e) = regex::Regex::new(&f.pattern) {
                return Err(ScorecardError::new(
                    path,
                    at("pattern"),
                    format!("not a regular expression: {e}"),
                ));
            }
            fields.push(SummaryField {
                name: f.name,
                who: f.who,
                pattern: f.pattern,
                mask_keep: f.mask_keep,
            });
        }
        Ok(Scorecard {
            file: path.to_path_buf(),
            pass_score,
            items,
            fields,
        })
    }

    /// The item with id `id`.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The names its lines say ("Harbor Bank", "Ava"): runs of capitalised
    /// words inside a sentence, each once, in order. A recogniser told them
    /// hears them (a general model hears "Ava speaking" as "I was speaking").
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in &self.items {
            for line in item.check.line_lists().into_iter().flatten() {
                for name in names_in(line) {
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
        out
    }
}

/// Runs of capitalised words inside a sentence (not its first word, not "I").
fn names_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let mut starts = true;
    for raw in line.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let capital = word.chars().next().is_some_and(char::is_uppercase);
        let name = capital && !starts && word != "I" && !word.starts_with("I'");
        if name {
            run.push(word);
        }
        // A name ends at a word that is not one, or at its own punctuation.
        if (!name || raw.ends_with([',', '.', '!', '?', ';', ':'])) && !run.is_empty() {
            out.push(run.join(" "));
            run.clear();
        }
        starts = raw.ends_with(['.', '!', '?']);
    }
    if !run.is_empty() {
        out.push(run.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scorecard, ScorecardError> {
        Scorecard::parse(text, Path::new("qa.toml"))
    }

    #[test]
    fn the_demo_bank_scorecard_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank/qa.toml");
        let card = Scorecard::load(&path).expect("demo scorecard");
        assert_eq!(card.pass_score, 80.0);
        assert_eq!(card.items.len(), 12);
        assert_eq!(card.items.iter().map(|i| i.weight).sum::<u32>(), 100);
        let notice = card.item("recording_notice").expect("notice item");
        assert!(notice.critical);
        assert!(matches!(&notice.check, Check::Said { who: Speaker::Agent, within_s: Some(s), .. } if *s == 30.0));
        assert!(matches!(
            card.item("customer_mood").map(|i| &i.check),
            Some(Check::Sentiment { who: Speaker::Customer })
        ));
        assert_eq!(card.names(), ["Harbor Bank", "Ava"]);
        assert_eq!(card.fields.len(), 1);
        assert_eq!(
            (
                card.fields[0].name.as_str(),
                card.fields[0].who,
                card.fields[0].mask_keep
            ),
            ("card_last_four", Some(Speaker::Customer), Some(2))
        );
    }

    #[test]
    fn an_unknown_kind_names_the_item_and_the_kinds() {
        let e =
            parse("[[item]]\nid = \"a\"\nkind = \"said\"\nlines = [\"hi\"]\n[[item]]\nid = \"b\"\nkind = \"vibes\"\n")
                .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("qa.toml: item[1] (\"b\").kind: unknown kind \"vibes\""),
            "{text}"
        );
        assert!(text.contains("speaking_rate"), "{text}");
    }

    #[test]
    fn a_field_another_kind_takes_is_refused() {
        let e = parse("[[item]]\nid = \"quiet\"\nkind = \"silence\"\nmax_s = 8\nlines = [\"x\"]\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("item[0] (\"quiet\").lines"), "{e}");
        assert!(e.why.contains("not used by kind \"silence\""), "{e}");
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let e = parse("[[item]]\nid = \"n\"\nkind = \"said\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("item[0] (\"n\").lines"), "{e}");
        let e = parse("[[item]]\nid = \"r\"\nkind = \"talk_ratio\"\nmin = 0.9\nmax = 0.2\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("item[0] (\"r\").min"), "{e}");
        let e = parse("[[item]]\nid = \"s\"\nkind = \"silence\"\n").unwrap_err();
        assert!(e.why.contains("missing"), "{e}");
        // A typo in a field name: serde names it.
        let e = parse("[[item]]\nid = \"t\"\nkind = \"said\"\nlines = [\"x\"]\nwithin = 3\n").unwrap_err();
        assert!(
            e.to_string().contains("item[0]") && e.to_string().contains("within"),
            "{e}"
        );
        // The speaker must be agent or customer.
        let e = parse("[[item]]\nid = \"w\"\nkind = \"said\"\nwho = \"robot\"\nlines = [\"x\"]\n").unwrap_err();
        assert!(e.to_string().contains("item[0].who"), "{e}");
        let e = parse("[[item]]\nid = \"d\"\nkind = \"sentiment\"\n[[item]]\nid = \"d\"\nkind = \"sentiment\"\n")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("item[1].id"), "{e}");
    }

    #[test]
    fn a_summary_field_with_a_bad_pattern_is_named() {
        let item = "[[item]]\nid = \"m\"\nkind = \"sentiment\"\n";
        let e = parse(&format!(
            "{item}[[field]]\nname = \"card\"\npattern = \"(\\\\d{{4}}\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("field[0].pattern"), "{e}");
        let e = parse(&format!(
            "{item}[[field]]\nname = \"a\"\npattern = \"x\"\n[[field]]\nname = \"a\"\npattern = \"y\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("field[1].name"), "{e}");
        let e = parse(&format!("{item}[[field]]\nname = \"a\"\n")).unwrap_err();
        assert!(e.to_string().contains("pattern"), "{e}");
    }
}
