//! Scoring calls against the demo bank's scorecard with the real sentence
//! model (all-MiniLM-L6-v2 from the model cache): each kind of item on a
//! small call written here, with its evidence.

use std::path::Path;
use std::sync::Arc;
use voxline_analysis::{CallTranscript, Inspector, Line, Scorecard, Speaker, Verdict};
use voxline_llm::Embedder;

fn inspector() -> Option<Inspector> {
    let files = voxline_models::fetched_for_test(&["minilm-l6-v2/model.safetensors"])?;
    let dir = files[0].parent().expect("model folder");
    let embedder = Arc::new(Embedder::load(dir).expect("embedding model"));
    let card = Scorecard::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank/qa.toml"))
        .expect("demo scorecard");
    Some(Inspector::new(card, embedder).expect("scorecard embedded"))
}

/// A call from (who, start s, end s, text).
fn call(lines: &[(Speaker, f64, f64, &str)]) -> CallTranscript {
    CallTranscript::new(
        lines
            .iter()
            .map(|&(speaker, s, e, text)| Line {
                speaker,
                start_ms: (s * 1000.0) as u64,
                end_ms: (e * 1000.0) as u64,
                text: text.into(),
                words: Vec::new(),
            })
            .collect(),
        None,
    )
}

use Speaker::{Agent, Customer};

#[test]
fn a_clean_call_passes_with_its_evidence() {
    let Some(qa) = inspector() else { return };
    let c = call(&[
        (
            Agent,
            0.3,
            4.5,
            "Thank you for calling Harbor Bank, this is Ava. How can I help you today?",
        ),
        (Agent, 4.7, 7.6, "This call may be recorded for quality and training."),
        (Customer, 8.2, 11.0, "Hi, I want to know my balance."),
        (
            Agent,
            11.9,
            15.4,
            "Of course. Before I read your balance, can you confirm your date of birth?",
        ),
        (Customer, 16.0, 18.5, "The fourth of March, nineteen eighty two."),
        (
            Agent,
            19.5,
            25.0,
            "Thank you, you are verified. Your balance is one thousand two hundred pounds.",
        ),
        (Customer, 25.6, 27.0, "Great, thank you."),
        (Agent, 27.6, 30.0, "Is there anything else I can help you with?"),
        (Customer, 30.6, 31.5, "No, bye."),
        (Agent, 32.0, 34.5, "Thank you for calling Harbor Bank. Goodbye."),
    ]);
    let s = qa.score(&c).expect("scored");
    for id in [
        "greeting",
        "recording_notice",
        "identity_before_balance",
        "no_forbidden_promise",
        "dead_air",
    ] {
        assert_eq!(
            s.item(id).map(|i| i.verdict),
            Some(Verdict::Pass),
            "{id}: {:#?}",
            s.item(id)
        );
    }
    assert_eq!(
        s.item("escalation_offered").map(|i| i.verdict),
        Some(Verdict::NotApplicable)
    );
    let order = s.item("identity_before_balance").expect("order item");
    assert_eq!(order.evidence.len(), 2);
    // Every quote is found word for word in its line.
    for item in &s.items {
        for e in &item.evidence {
            assert!(c.lines[e.line].text.contains(&e.quote), "{}: {:?}", item.id, e.quote);
        }
    }
    assert!(s.passed, "{s:#?}");
}

#[test]
fn the_faults_are_found_and_quoted() {
    let Some(qa) = inspector() else { return };
    let c = call(&[
        (
            Agent,
            0.3,
            4.5,
            "Thank you for calling Harbor Bank, this is Ava. How can I help you today?",
        ),
        (Customer, 5.0, 8.0, "How much is in my savings account?"),
        (Agent, 9.0, 13.0, "Your balance is eight thousand pounds."),
        (
            Agent,
            13.5,
            16.0,
            "Can you confirm your account number and date of birth?",
        ),
        (
            Customer,
            16.5,
            19.0,
            "You didn't even check who I am. This is ridiculous.",
        ),
        (
            Agent,
            29.0,
            33.0,
            "Don't worry, I can guarantee you will get your money back.",
        ),
        (Customer, 33.5, 35.0, "Forget it, I'm fed up with this."),
    ]);
    let s = qa.score(&c).expect("scored");
    let verdict = |id: &str| s.item(id).map(|i| i.verdict);
    assert_eq!(verdict("recording_notice"), Some(Verdict::Fail));
    assert_eq!(verdict("identity_before_balance"), Some(Verdict::Fail));
    assert_eq!(verdict("no_forbidden_promise"), Some(Verdict::Fail));
    assert_eq!(verdict("dead_air"), Some(Verdict::Fail), "10 s between 19 and 29 s");
    assert_eq!(verdict("customer_mood"), Some(Verdict::Fail));
    assert_eq!(verdict("escalation_offered"), Some(Verdict::Fail));
    assert_eq!(verdict("closing"), Some(Verdict::Fail));
    let promise = s.item("no_forbidden_promise").expect("item");
    assert_eq!(
        promise.evidence[0].quote,
        "Don't worry, I can guarantee you will get your money back."
    );
    assert_eq!(promise.evidence[0].at_ms, 29_000);
    assert!(!s.passed);
}

#[test]
fn a_promise_is_read_with_the_question_it_answers() {
    let Some(qa) = inspector() else { return };
    let verdict_after = |question: &str, answer: &str| {
        let c = call(&[
            (Agent, 0.3, 3.0, "Harbor Bank, Ava speaking. How can I help?"),
            (Customer, 3.5, 6.0, question),
            (Agent, 6.8, 10.0, answer),
        ]);
        let s = qa.score(&c).expect("scored");
        s.item("no_forbidden_promise").map(|i| (i.verdict, i.why.clone()))
    };
    // The loan is named only in the question.
    let (v, why) = verdict_after(
        "Will my loan application go through?",
        "Oh, it'll sail through, I can assure you of that.",
    )
    .expect("item");
    assert_eq!(v, Verdict::Fail, "{why}");
    // A guarantee scheme named in a fact is no promise, even when the
    // question asks for one.
    let (v, why) = verdict_after(
        "Is the fixed bond risk-free?",
        "Our bonds are protected up to eighty five thousand pounds by the deposit guarantee scheme.",
    )
    .expect("item");
    assert_eq!(v, Verdict::Pass, "{why}");
}
