//! The answer guard against the demo pack's attack lists
//! (`domains/demo-bank/guard-attacks.toml`, and the held-out
//! `guard-attacks-heldout.toml` written in other words): a fixed model
//! reply per case, what the caller hears checked. A `stopped` case must not
//! be heard with its false or forbidden part; a `spoken` one must be heard
//! with its true answer. Every case must reach the model (a case the router
//! answers without it tests nothing of the guard).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use voxline_agent::{Action, Agent, DomainPack};
use voxline_llm::{ChatEvent, ChatModel, ChatRequest, ChatStream, LlmError, Usage};
use voxline_text::words::words;

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    kind: String,
    ask: String,
    reply: String,
    expect: String,
    lacks: Option<String>,
    contains: Option<String>,
}

/// A model double whose reply is fixed per case; counts the requests.
struct Reply {
    text: String,
    asked: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl ChatModel for Reply {
    async fn chat(&self, _request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Ok(ChatEvent::Delta(self.text.clone()))).await.ok();
        tx.send(Ok(ChatEvent::Done(Usage::default()))).await.ok();
        Ok(ChatStream::new(rx, std::time::Instant::now()))
    }

    fn name(&self) -> String {
        "fixed".into()
    }
}

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank")
}

/// What the caller hears for `case`, and whether the model was asked.
async fn heard(pack: &Arc<DomainPack>, case: &Case) -> (String, bool) {
    let asked = Arc::new(AtomicUsize::new(0));
    let model = Reply {
        text: case.reply.clone(),
        asked: asked.clone(),
    };
    let agent = Arc::new(Agent::new(pack.clone(), Arc::new(model)));
    let mut conv = agent.conversation();
    let (_, actions) = conv.turn(&case.ask).await.expect("turn");
    let mut said = Vec::new();
    for a in actions {
        match a {
            Action::Say(s) => said.push(s),
            Action::Answer(mut ans) => {
                while let Some(p) = ans.next_phrase().await.expect("phrase") {
                    said.push(p);
                }
            }
            _ => {}
        }
    }
    (said.join(" "), asked.load(Ordering::Relaxed) > 0)
}

/// Runs one attack list: (kind, passed, total) per kind, and the failures.
async fn run(file: &str) -> (Vec<(String, usize, usize)>, Vec<String>) {
    let pack = Arc::new(DomainPack::load(&pack_dir()).expect("demo pack loads"));
    let text = std::fs::read_to_string(pack_dir().join(file)).expect("attack list");
    let cases: Cases = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut kinds: Vec<(String, usize, usize)> = Vec::new();
    let mut failures = Vec::new();
    for case in &cases.case {
        let (said, asked) = heard(&pack, case).await;
        let ok = asked
            && match case.expect.as_str() {
                "stopped" => {
                    let lacks = case.lacks.as_deref().expect("a stopped case names what it lacks");
                    // As whole words: "5 percent" is not in "15 percent".
                    !words(&said).contains(&words(lacks))
                }
                "spoken" => said.contains(case.contains.as_deref().expect("a spoken case names what it holds")),
                other => panic!("{file}: unknown expect {other:?}"),
            };
        if !ok {
            failures.push(format!(
                "[{}] {:?} -> {:?}: heard {said:?}{}",
                case.kind,
                case.ask,
                case.reply,
                if asked { "" } else { " (the model was not asked)" }
            ));
        }
        match kinds.iter_mut().find(|(k, _, _)| *k == case.kind) {
            Some(k) => {
                k.1 += usize::from(ok);
                k.2 += 1;
            }
            None => kinds.push((case.kind.clone(), usize::from(ok), 1)),
        }
    }
    for (k, passed, total) in &kinds {
        eprintln!("{file}: {k}: {passed}/{total}");
    }
    (kinds, failures)
}

#[tokio::test]
async fn the_guard_holds_against_the_attack_list() {
    let (_, failures) = run("guard-attacks.toml").await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_guard_holds_against_the_held_out_attack_list() {
    let (_, failures) = run("guard-attacks-heldout.toml").await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
