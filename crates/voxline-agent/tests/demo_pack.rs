//! The demo bank pack on the real engine (default model on llama.cpp):
//! its question set's shares stay at what was measured, and a broken pack
//! is refused with the file and field named.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use voxline_agent::eval::{self, Expect};
use voxline_agent::{Action, Agent, DomainPack, Intent};
use voxline_llm::{ChatEvent, ChatModel, ChatRequest, ChatStream, LlmError, Usage};

const GGUF: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf";
const EMBEDDING: &str = "minilm-l6-v2/model.safetensors";

/// The pack in `dir` with its knowledge embedded by the default embedding
/// model, as the server and `voxline chat` load it; None when the model is
/// not fetched (and models are not required).
fn understood(dir: &Path) -> Option<DomainPack> {
    let files = voxline_models::fetched_for_test(&[EMBEDDING])?;
    let embedder = voxline_llm::Embedder::load(files[0].parent()?).expect("embedding model");
    Some(
        DomainPack::load(dir)
            .expect("pack loads")
            .understand(Arc::new(embedder))
            .expect("knowledge embedded"),
    )
}

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pack_answers_declines_and_calls_tools_as_measured() {
    let Some(files) = voxline_models::fetched_for_test(&[GGUF]) else {
        return;
    };
    let Some(pack) = understood(&pack_dir()) else {
        return;
    };
    let pack = Arc::new(pack);
    let llm = voxline_llm::load_local(voxline_llm::LocalEngine::LlamaCpp, &files[0], Default::default())
        .await
        .expect("model");
    let agent = Arc::new(Agent::new(pack, llm));
    agent.warm().await.expect("warm");

    // Routing before any generation.
    assert!(matches!(agent.route("What's the weather like?"), Intent::OffDomain));
    assert!(matches!(agent.route("Do you offer mortgages?"), Intent::Unknown));
    assert!(matches!(
        agent.route("I want to talk to a real person"),
        Intent::Escalate
    ));
    assert!(matches!(
        agent.route("When do branches open on Saturday?"),
        Intent::Question { .. }
    ));

    let cases = eval::load_cases(&pack_dir().join("eval.toml")).expect("question set");
    assert!(cases.len() >= 30);
    let outcomes = eval::run(&agent, &cases).await;
    for o in outcomes.iter().filter(|o| !o.ok()) {
        eprintln!("miss: {:?} {:?} -> {} | {}", o.case.expect, o.case.ask, o.got, o.said);
    }
    let share = |kinds: &[Expect]| {
        let of: Vec<_> = outcomes.iter().filter(|o| kinds.contains(&o.case.expect)).collect();
        (of.iter().filter(|o| o.ok()).count(), of.len())
    };
    let answers = share(&[Expect::Answer]);
    let declines = share(&[Expect::Decline, Expect::Unknown]);
    let tools = share(&[Expect::Tool]);
    let routing = share(&[Expect::Transfer, Expect::Goodbye]);
    eprintln!("answers {answers:?}, declines {declines:?}, tools {tools:?}, transfers/goodbyes {routing:?}");
    // Measured at commit time: 17/20 (with two answers also checked for a wrong
    // fact, `lacks`), 8/8, 5/5, 3/3 (greedy decoding is repeatable).
    assert!(answers.0 >= 13, "answers {answers:?}");
    assert_eq!(declines.0, declines.1, "declines {declines:?}");
    assert_eq!(tools.0, tools.1, "tools {tools:?}");
    assert_eq!(routing.0, routing.1, "routing {routing:?}");
}

/// By meaning (no language model involved): a question put in other words
/// finds its passage; a question about a tool's or an escalation's topic
/// is answered, while the request itself still starts the tool or the
/// transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_find_knowledge_by_meaning_and_are_told_from_requests() {
    let energy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-energy");
    let (Some(bank), Some(energy)) = (understood(&pack_dir()), understood(&energy)) else {
        return;
    };
    let model = Arc::new(FixedModel { reply: "" });
    let bank = Arc::new(Agent::new(Arc::new(bank), model.clone()));
    let energy = Arc::new(Agent::new(Arc::new(energy), model));
    let route = |agent: &Arc<Agent>, said: &'static str| {
        let agent = Arc::clone(agent);
        async move {
            let meaning = agent.understand(said).await;
            assert!(meaning.is_some(), "{said}: not embedded");
            (agent.route(said), agent.route_with(said, meaning.as_deref()))
        }
    };
    // Few words in common with the ATM passage: by words nothing clear; by
    // meaning its sentence comes first.
    let (_, by_meaning) = route(&bank, "What is the most cash I can take out in one day?").await;
    let Intent::Question {
        hits,
        sentences,
        similarity,
    } = &by_meaning
    else {
        panic!("{by_meaning:?}");
    };
    assert!(hits[0].passage.title.ends_with("ATMs"), "{hits:?}");
    let first = &bank.pack().knowledge.sentences().all[sentences[0].index];
    assert!(first.text.contains("1,000"), "{}", first.text);
    assert!(similarity.is_some_and(|s| s > 0.5), "{similarity:?}");
    // Asked about a tool's topic: answered; asked for the tool: the tool.
    let (by_words, by_meaning) = route(&bank, "Is there a charge for blocking my card?").await;
    assert!(matches!(by_words, Intent::Tool { .. }), "{by_words:?}");
    assert!(matches!(by_meaning, Intent::Question { .. }), "{by_meaning:?}");
    let (_, by_meaning) = route(&bank, "I lost my card, please block it.").await;
    assert!(matches!(by_meaning, Intent::Tool { .. }), "{by_meaning:?}");
    let (_, by_meaning) = route(&energy, "My power is off, can you report it?").await;
    assert!(matches!(by_meaning, Intent::Tool { .. }), "{by_meaning:?}");
    // Asked about complaints: answered; a complaint: a colleague.
    let (by_words, by_meaning) = route(&energy, "How long do you take to reply to a complaint?").await;
    assert_eq!(by_words, Intent::Escalate);
    assert!(matches!(by_meaning, Intent::Question { .. }), "{by_meaning:?}");
    let (_, by_meaning) = route(&energy, "I want to make a complaint about my bill.").await;
    assert_eq!(by_meaning, Intent::Escalate);
    let (_, by_meaning) = route(&bank, "Can I speak to a real person?").await;
    assert_eq!(by_meaning, Intent::Escalate);
    // Off the domain stays off it.
    let (_, by_meaning) = route(&bank, "Can you tell me a joke?").await;
    assert_eq!(by_meaning, Intent::OffDomain);
}

/// A model double for the evaluator's own test: every reply is `reply`
/// (empty: the model writes nothing).
struct FixedModel {
    reply: &'static str,
}

#[async_trait::async_trait]
impl ChatModel for FixedModel {
    async fn chat(&self, _request: ChatRequest) -> Result<ChatStream, LlmError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        if !self.reply.is_empty() {
            tx.send(Ok(ChatEvent::Delta(self.reply.to_string()))).await.ok();
        }
        tx.send(Ok(ChatEvent::Done(Usage::default()))).await.ok();
        Ok(ChatStream::new(rx, std::time::Instant::now()))
    }

    fn name(&self) -> String {
        "fixed".into()
    }
}

/// The question set judges the model, not only the engine around it: with
/// a model that writes nothing, or nonsense, every answer the caller gets is
/// read from the knowledge (or "I don't know"), the evaluator says so, no
/// answer counts as the model's, and the set does not pass. No wrong fact
/// gets through either way: the guard stops the nonsense's made-up figures.
#[tokio::test]
async fn a_model_that_writes_nothing_or_nonsense_fails_the_question_set() {
    let cases = eval::load_cases(&pack_dir().join("eval.toml")).expect("question set");
    for reply in [
        "",
        "Purple elephants dance at 7 on the 45th moon. The fee is 99 dollars.",
    ] {
        let pack = Arc::new(DomainPack::load(&pack_dir()).expect("demo pack loads"));
        let agent = Arc::new(Agent::new(pack, Arc::new(FixedModel { reply })));
        let outcomes = eval::run(&agent, &cases).await;
        let answers: Vec<_> = outcomes.iter().filter(|o| o.got.starts_with("answer")).collect();
        assert!(!answers.is_empty(), "{reply:?}: no case reached the model");
        for o in &answers {
            assert!(
                o.read || !o.ok(),
                "{reply:?}: {:?} counted as the model's: {}",
                o.case.ask,
                o.said
            );
            assert!(
                !o.said.contains("elephants") && !o.said.contains("99"),
                "{reply:?}: {}",
                o.said
            );
        }
        let facts = eval::summary(&outcomes).remove(0);
        assert_eq!(facts.right, facts.right_read, "{reply:?}: {facts:?}");
        let why = eval::passes(&outcomes, eval::Bar::default()).expect_err("the set must not pass");
        assert!(
            why.iter().any(|w| w.starts_with("0/") && w.contains("model's words")),
            "{reply:?}: {why:?}"
        );
    }
}

/// A model that only says the question back says nothing the caller can
/// use: its words are dropped and the knowledge is read, never silence.
#[tokio::test]
async fn a_question_said_back_is_replaced_by_the_knowledge() {
    let pack = Arc::new(DomainPack::load(&pack_dir()).expect("demo pack loads"));
    let reply = "You forgot your online banking password.";
    let agent = Arc::new(Agent::new(pack, Arc::new(FixedModel { reply })));
    let mut conv = agent.conversation();
    let (_, actions) = conv.turn("I forgot my online banking password.").await.expect("turn");
    let mut said = Vec::new();
    for a in actions {
        if let Action::Answer(mut ans) = a {
            while let Some(p) = ans.next_phrase().await.expect("phrase") {
                said.push(p);
            }
            assert!(ans.read_from_knowledge(), "{said:?}");
        }
    }
    let said = said.join(" ");
    assert!(said.contains("Forgot password"), "{said:?}");
    assert!(!said.contains(reply), "{said:?}");
}

/// Words that look misheard are asked again, twice at most; the third time
/// a colleague is offered, and a "yes" transfers. A question the knowledge
/// covers in between starts the count again.
#[tokio::test]
async fn misheard_words_are_asked_again_twice_then_a_colleague_is_offered() {
    let pack = Arc::new(DomainPack::load(&pack_dir()).expect("demo pack loads"));
    let rules = pack.rules.domain.clone();
    let agent = Arc::new(Agent::new(pack, Arc::new(FixedModel { reply: "" })));
    // What espeak-ng's "What time do your branches open on weekdays?" was heard as.
    let garbled = "I'm who you're wrenchin' over the next week, then";
    assert_eq!(agent.route(garbled), Intent::Unclear);
    let mut conv = agent.conversation();
    let said = |actions: &[Action]| -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Say(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    for _ in 0..2 {
        let (intent, actions) = conv.turn(garbled).await.expect("turn");
        assert_eq!(intent, Intent::Unclear);
        assert_eq!(said(&actions), std::slice::from_ref(&rules.unclear));
    }
    let (_, actions) = conv.turn(garbled).await.expect("turn");
    assert_eq!(said(&actions), std::slice::from_ref(&rules.unclear_again));
    let (intent, actions) = conv.turn("Yes please").await.expect("turn");
    assert_eq!(intent, Intent::Escalate, "{actions:?}");
    assert!(actions.iter().any(|a| matches!(a, Action::Transfer { .. })));
}

/// A turn the recogniser was unsure of (decision 0043): a goodbye, a
/// decline or "I don't know" is not acted on, the caller is asked again; a
/// question whose words match a knowledge sentence strongly is still
/// answered, a request for a colleague still transfers, a tool still asks
/// for its arguments.
#[tokio::test]
async fn a_doubtful_turn_is_asked_again_unless_its_words_match_strongly() {
    let pack = Arc::new(DomainPack::load(&pack_dir()).expect("demo pack loads"));
    let agent = Arc::new(Agent::new(pack, Arc::new(FixedModel { reply: "" })));
    let intent = |said: &'static str, doubtful: bool| {
        let agent = agent.clone();
        async move {
            let mut conv = agent.conversation();
            conv.turn_heard(said, doubtful).await.expect("turn").0
        }
    };
    for said in ["Goodbye", "What's the weather like?", "Do you offer mortgages?"] {
        let sure = intent(said, false).await;
        assert!(
            matches!(sure, Intent::Goodbye | Intent::OffDomain | Intent::Unknown),
            "{said}: {sure:?}"
        );
        assert_eq!(intent(said, true).await, Intent::Unclear, "{said}");
    }
    assert!(matches!(
        intent("When do branches open on Saturday?", true).await,
        Intent::Question { .. }
    ));
    assert_eq!(intent("I want to talk to a real person", true).await, Intent::Escalate);
    // A tool asks for its arguments before it acts: a doubtful request
    // still reaches it (keys pressed while speaking make Whisper unsure).
    assert!(matches!(
        intent("My card was stolen, puke, bucket.", true).await,
        Intent::Tool { .. }
    ));
}

#[test]
fn a_broken_pack_is_refused_with_its_file_and_field() {
    let dir = std::env::temp_dir().join(format!("voxline-pack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("knowledge")).unwrap();
    for f in ["persona.toml", "rules.toml", "tools.toml"] {
        std::fs::copy(pack_dir().join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(pack_dir().join("knowledge/cards.md"), dir.join("knowledge/cards.md")).unwrap();
    assert!(DomainPack::load(&dir).is_ok());

    let persona = std::fs::read_to_string(dir.join("persona.toml")).unwrap();
    std::fs::write(
        dir.join("persona.toml"),
        persona.replace("max_reply_words = 45", "max_reply_words = \"many\""),
    )
    .unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("persona.toml") && e.contains("max_reply_words"), "{e}");
    std::fs::write(dir.join("persona.toml"), &persona).unwrap();

    // Without a vocabulary the recogniser gets no prompt; with one, the
    // company and the words. An empty entry or one too long is named.
    let pack = DomainPack::load(&dir).unwrap();
    assert_eq!(pack.persona.asr_prompt(), None);
    let with_vocabulary = |words: &str| {
        persona.replace(
            "company = \"Harbor Bank\"\n",
            &format!("company = \"Harbor Bank\"\nvocabulary = [{words}\"Downtown branch\", \"ATM\"]\n"),
        )
    };
    std::fs::write(dir.join("persona.toml"), with_vocabulary("")).unwrap();
    let pack = DomainPack::load(&dir).unwrap();
    assert_eq!(
        pack.persona.asr_prompt().as_deref(),
        Some("Harbor Bank. Downtown branch, ATM.")
    );
    std::fs::write(dir.join("persona.toml"), with_vocabulary("\" \", ")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("persona.toml: vocabulary: an entry is empty"), "{e}");
    let long = format!("\"{}\", ", "Harbor ".repeat(90));
    std::fs::write(dir.join("persona.toml"), with_vocabulary(&long)).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("vocabulary") && e.contains("at most 600"), "{e}");
    std::fs::write(dir.join("persona.toml"), &persona).unwrap();

    // A pack's own model: a file named relative to the pack is found there;
    // a missing one is named with its field; a template needs a model.
    let own = |fields: &str| {
        persona.replace(
            "company = \"Harbor Bank\"\n",
            &format!("company = \"Harbor Bank\"\n{fields}"),
        )
    };
    std::fs::write(dir.join("own.gguf"), b"GGUF").unwrap();
    std::fs::write(dir.join("persona.toml"), own("model = \"own.gguf\"\n")).unwrap();
    let pack = DomainPack::load(&dir).unwrap();
    assert_eq!(pack.persona.model.as_deref(), Some(dir.join("own.gguf").as_path()));
    std::fs::write(dir.join("persona.toml"), own("model = \"missing.gguf\"\n")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("persona.toml: model:") && e.contains("missing.gguf: no such file"),
        "{e}"
    );
    std::fs::write(dir.join("persona.toml"), own("chat_template = \"t.jinja\"\n")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("persona.toml: chat_template:"), "{e}");
    std::fs::write(dir.join("persona.toml"), &persona).unwrap();

    let tools = std::fs::read_to_string(dir.join("tools.toml")).unwrap();
    std::fs::write(dir.join("tools.toml"), tools.replace("length = 8", "length = 0")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("tools.toml") && e.contains("tool[0].args.account"), "{e}");
    std::fs::write(dir.join("tools.toml"), &tools).unwrap();

    // A send_dtmf built-in must key DTMF, and must say which keys.
    let keys = |values: &str| {
        format!(
            "{tools}\n[[tool]]\nname = \"send_dtmf\"\nbuiltin = true\ndescription = \"Key reception.\"\n\
             examples = [\"reception please\"]\n{values}"
        )
    };
    let ok = "[tool.args.digits]\ntype = \"enum\"\nvalues = [\"200#\"]\nprompt = \"Which desk?\"\n";
    std::fs::write(dir.join("tools.toml"), keys(ok)).unwrap();
    assert!(DomainPack::load(&dir).is_ok());
    std::fs::write(dir.join("tools.toml"), keys(&ok.replace("200#", "2x0"))).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("args.digits") && e.contains("\"2x0\" is not DTMF"), "{e}");
    std::fs::write(dir.join("tools.toml"), keys("")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("send_dtmf needs a \"digits\" argument"), "{e}");
    std::fs::write(dir.join("tools.toml"), &tools).unwrap();

    std::fs::remove_file(dir.join("knowledge/cards.md")).unwrap();
    let e = DomainPack::load(&dir).unwrap_err().to_string();
    assert!(e.contains("knowledge") && e.contains("no passages"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every pack under `domains/` loads, and every question set in it
/// (`eval*.toml`) reads, with enough cases of each kind to judge the pack:
/// a pack or a set with a typo fails here, without a model.
#[test]
fn every_pack_and_its_question_sets_load() {
    let domains = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains");
    let mut packs = 0;
    for entry in std::fs::read_dir(&domains).expect("domains folder").flatten() {
        let dir = entry.path();
        if !dir.join("persona.toml").exists() {
            continue;
        }
        DomainPack::load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        packs += 1;
        let sets = std::fs::read_dir(&dir)
            .expect("pack folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.starts_with("eval") && name.ends_with(".toml")
            });
        for set in sets {
            let cases = eval::load_cases(&set).unwrap_or_else(|e| panic!("{e}"));
            let answers = cases.iter().filter(|c| c.expect == Expect::Answer).count();
            assert!(cases.len() >= 20, "{}: {} cases", set.display(), cases.len());
            assert!(answers >= 15, "{}: {answers} fact questions", set.display());
            for c in cases.iter().filter(|c| c.expect == Expect::Answer) {
                assert!(!c.contains.is_empty(), "{}: {:?} checks nothing", set.display(), c.ask);
            }
        }
    }
    assert!(packs >= 3, "packs found: {packs}");
}
