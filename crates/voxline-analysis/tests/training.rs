//! Training scenarios: the demo bank pack's scenario loads with its
//! scorecard and facts; a scenario without a scorecard, one whose scorecard
//! is broken and one with a bad field are refused with the file and field
//! named, each on its own.

use std::path::{Path, PathBuf};
use voxline_analysis::training::{load_scenarios, Mood, Scenario};

fn demo_bank() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/training")
        .join(name)
}

#[test]
fn the_demo_scenario_loads_with_its_scorecard_and_facts() {
    let all = load_scenarios(&demo_bank()).expect("the training folder reads");
    assert!(!all.is_empty());
    let s = all
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|s| s.name == "overdraft-fee")
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(s.customer.mood, Mood::Angry);
    assert_eq!(s.customer.objection.len(), 2);
    assert!(s.scorecard.item("recording_notice").is_some());
    assert_eq!(
        s.facts.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["unarranged_fee", "arranged_rate"]
    );
    assert!(all.iter().all(Result::is_ok), "{all:?}");
}

#[test]
fn a_broken_scenario_is_refused_with_its_file_and_field() {
    let e = Scenario::load(&fixture("no-scorecard.toml")).expect_err("no scorecard");
    assert_eq!(e.field.as_deref(), Some("scorecard"), "{e}");
    assert!(e.to_string().contains("no-scorecard.toml: scorecard: missing"), "{e}");

    let dir = std::env::temp_dir().join(format!("voxline-training-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("training")).expect("dir");
    let good = std::fs::read_to_string(demo_bank().join("training/overdraft-fee.toml")).expect("scenario");
    std::fs::copy(demo_bank().join("qa.toml"), dir.join("qa.toml")).expect("qa");
    // A bad field, a broken scorecard (named: its own file and field), and
    // the good one beside them still loading.
    std::fs::write(
        dir.join("training/a-mood.toml"),
        good.replace("mood = \"angry\"", "mood = \"furious\""),
    )
    .expect("w");
    std::fs::write(
        dir.join("training/b-card.toml"),
        good.replace("scorecard = \"../qa.toml\"", "scorecard = \"../broken-qa.toml\""),
    )
    .expect("w");
    std::fs::write(
        dir.join("broken-qa.toml"),
        "pass_score = 180\n[[item]]\nid = \"x\"\nkind = \"said\"\nwho = \"agent\"\nlines = [\"Hello.\"]\n",
    )
    .expect("w");
    std::fs::write(dir.join("training/c-good.toml"), &good).expect("w");
    std::fs::write(
        dir.join("training/d-facts.toml"),
        good.replace("holds = [\"15|fifteen\"]", "holds = []"),
    )
    .expect("w");
    let all = load_scenarios(&dir).expect("reads");
    let errors: Vec<String> = all
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    eprintln!("{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a-mood.toml: customer.mood:") && e.contains("unknown variant `furious`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("broken-qa.toml: pass_score: must be 0 to 100")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("d-facts.toml: fact[1].holds")),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        all.iter().any(|r| r.as_ref().is_ok_and(|s| s.name == "c-good")),
        "{all:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
