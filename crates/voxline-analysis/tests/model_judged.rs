//! What the language model adds after a call, on the real default model
//! (SmolLM2-135M on llama.cpp): the outcome item's answer counts only with
//! a quote found in the transcript, and a summary is the model's only when
//! every sentence of it holds against the call, else the extractive one
//! with why. The pack's fields are read and masked either way.

use std::path::Path;
use std::sync::Arc;
use voxline_analysis::summary::{check_draft, WrittenBy};
use voxline_analysis::{
    judge_outcomes, quote, summarize, CallTranscript, Inspector, Line, Scorecard, Speaker, SummaryField, Verdict,
};
use voxline_llm::{ChatModel, Embedder};

const GGUF: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf";
const EMBEDDING: &str = "minilm-l6-v2/model.safetensors";

use Speaker::{Agent, Customer};

fn lost_card() -> CallTranscript {
    let lines = [
        (
            Agent,
            "Thank you for calling Harbor Bank, this is Ava. How can I help you today?",
        ),
        (Agent, "This call may be recorded for quality and training."),
        (Customer, "Hi. I lost my debit card yesterday and I need to block it."),
        (
            Agent,
            "I'm sorry to hear that. Can you confirm the last four digits of the card?",
        ),
        (Customer, "Yes, it ends in four eight two one."),
        (
            Agent,
            "Thank you. I have blocked the card ending 4821. A new card will arrive within five working days.",
        ),
        (Customer, "Great, thanks a lot."),
        (
            Agent,
            "Is there anything else I can help you with? Thank you for calling Harbor Bank. Goodbye.",
        ),
    ];
    CallTranscript::new(
        lines
            .iter()
            .enumerate()
            .map(|(i, (who, text))| Line {
                speaker: *who,
                start_ms: i as u64 * 4000 + 300,
                end_ms: i as u64 * 4000 + 3600,
                text: text.to_string(),
                words: Vec::new(),
            })
            .collect(),
        None,
    )
}

async fn model() -> Option<Arc<dyn ChatModel>> {
    let files = voxline_models::fetched_for_test(&[GGUF])?;
    let llm = voxline_llm::load_local(voxline_llm::LocalEngine::LlamaCpp, &files[0], Default::default())
        .await
        .expect("default model");
    llm.warm("You check calls.").await.expect("warm");
    Some(llm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_s_summary_is_used_only_when_the_call_holds_it() {
    let Some(llm) = model().await else { return };
    let call = lost_card();
    let card = SummaryField {
        name: "card_last_four".into(),
        who: Some(Customer),
        pattern: r"(?:ends in|ending) (\d{4})\b".into(),
        mask_keep: Some(2),
    };
    let s = summarize(&call, std::slice::from_ref(&card), Some(llm.as_ref())).await;
    let json = serde_json::to_string_pretty(&s).expect("json");
    println!("{json}");
    assert!(!json.contains("4821"), "the card's digits in clear: {json}");
    assert_eq!(s.fields.len(), 1, "{json}");
    assert_eq!(s.fields[0].value, "**21");
    assert!(s.intent.is_some() && s.outcome.is_some(), "{json}");
    match &s.written_by {
        WrittenBy::Model { model } => {
            assert!(!model.is_empty());
            // Every sentence the model wrote holds against the call.
            let draft = voxline_analysis::summary::Draft {
                summary: s.summary.clone(),
                intent: s.intent.as_ref().map(|p| p.text.clone()).unwrap_or_default(),
                outcome: s.outcome.as_ref().map(|p| p.text.clone()).unwrap_or_default(),
                follow_up: s.follow_ups.first().map(|p| p.text.clone()).unwrap_or_default(),
            };
            // The masked value stands where the digits were.
            let unmasked = |t: &str| t.replace("**21", "4821");
            let draft = voxline_analysis::summary::Draft {
                summary: unmasked(&draft.summary),
                intent: unmasked(&draft.intent),
                outcome: unmasked(&draft.outcome),
                follow_up: unmasked(&draft.follow_up),
            };
            check_draft(&draft, &call).expect("a model summary that holds");
        }
        WrittenBy::Extractive { model_refused } => {
            // The model was asked: why its draft was refused is told.
            let why = model_refused.as_deref().expect("why the model's draft was refused");
            assert!(!why.is_empty());
            // The extractive points quote the call.
            for p in s.intent.iter().chain(&s.outcome).chain(&s.follow_ups) {
                let ev = p.evidence.as_ref().expect("an extractive point quotes its line");
                assert!(ev.quote.contains(&p.text), "{:?} not in {:?}", p.text, ev.quote);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_item_is_judged_only_with_a_quote_from_the_call() {
    let Some(llm) = model().await else { return };
    let Some(files) = voxline_models::fetched_for_test(&[EMBEDDING]) else {
        return;
    };
    let embedder = Arc::new(Embedder::load(files[0].parent().expect("folder")).expect("embedding model"));
    let card = Scorecard::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank/qa.toml"))
        .expect("demo scorecard");
    let pass_score = card.pass_score;
    let inspector = Inspector::new(card, embedder).expect("scorecard embedded");
    let call = lost_card();
    let mut score = inspector.score(&call).expect("scored");
    let before = score.item("resolved").expect("outcome item").clone();
    assert_eq!(before.verdict, Verdict::Unsure, "no model judged it yet");
    judge_outcomes(&mut score, inspector.scorecard(), &call, llm.as_ref()).await;
    let after = score.item("resolved").expect("outcome item");
    println!("{}: {:?} {}", after.id, after.verdict, after.why);
    match after.verdict {
        Verdict::Pass | Verdict::Fail => {
            let ev = after.evidence.first().expect("a judged outcome carries its quote");
            assert!(call.lines[ev.line].text == ev.quote);
            assert!(quote::find_quote(&call, &ev.quote).is_some());
        }
        Verdict::Unsure => assert!(
            after.why.contains("the model") && !after.why.contains("no model judged it"),
            "{}",
            after.why
        ),
        Verdict::NotApplicable => panic!("an outcome question always applies"),
    }
    // The score is tallied again with the new verdict.
    let mut again = score.clone();
    again.tally(pass_score);
    assert_eq!(again, score);
}
