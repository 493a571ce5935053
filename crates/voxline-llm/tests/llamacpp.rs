//! The llama.cpp backend on the default model (SmolLM2-135M-Instruct,
//! CPU): it answers, streams, honours max_tokens and stop strings, reuses
//! the KV of a shared system prompt and of the call's last turn, batches
//! concurrent calls into shared decode steps, a dropped stream frees its
//! sequence within one step, a held reply pauses, a prefilled prompt is
//! not read again, and a prefill waits while urgent work runs elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, LlamaCppConfig, LlamaCppModel, LlmError, Role};

mod common;

use common::{ask, gguf, streamed, two_at_once};

/// The whole reply to `req`, and how many of its prompt tokens were reused
/// from the engine's cache (not read again).
async fn reply_reusing(model: &LlamaCppModel, req: ChatRequest) -> (String, voxline_llm::Usage, u64) {
    let stats = model.stats();
    let before = stats.reused_tokens.load(Ordering::Relaxed);
    let (text, usage) = model.chat(req).await.expect("chat").text().await.expect("text");
    let reused = stats.reused_tokens.load(Ordering::Relaxed) - before;
    (text, usage, reused)
}

/// The default model on llama.cpp with the test system prompt cached, or
/// None when the model is not fetched (the test skips).
async fn warmed_model() -> Option<LlamaCppModel> {
    let path = gguf()?;
    let model = LlamaCppModel::load(&LlamaCppConfig::new(&path)).await.expect("load");
    model.warm(common::SYSTEM).await.expect("warm");
    Some(model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_answers_streams_reuses_the_prompt_and_batches_calls() {
    let Some(model) = warmed_model().await else {
        return;
    };
    let stats = model.stats();

    // A streamed answer: several deltas, then usage; the system prompt's KV
    // (read by the warm-up) is reused, not read again.
    let reused_before = stats.reused_tokens.load(Ordering::Relaxed);
    let (deltas, text, usage) = streamed(&model, ask("What is the capital of France?", 32)).await;
    let reused = stats.reused_tokens.load(Ordering::Relaxed) - reused_before;
    eprintln!(
        "{text:?} {usage:?} {:.1} tok/s, {reused} prompt tokens reused",
        usage.tokens_per_sec()
    );
    assert!(text.contains("Paris"), "{text}");
    assert!(deltas >= 2, "streamed in pieces");
    assert!(
        usage.completion_tokens >= 2 && usage.completion_tokens <= 32,
        "{usage:?}"
    );
    assert!(usage.first_token > Duration::ZERO && usage.first_token < usage.total);
    // Everything up to the user's words was cached by the warm-up.
    assert!(
        reused >= 10 && reused < usage.prompt_tokens as u64,
        "reused {reused} of {}",
        usage.prompt_tokens
    );

    // The next turn of the same call reads only its new words.
    let mut turn2 = ask("What is the capital of France?", 32).messages;
    turn2.push(ChatMessage::new(Role::Assistant, text.clone()));
    turn2.push(ChatMessage::new(Role::User, "And of Spain?"));
    let (reply2, u2, reused2) = reply_reusing(&model, ChatRequest::new(turn2, 24)).await;
    eprintln!(
        "turn 2: {reply2:?}, {reused2} of {} prompt tokens reused",
        u2.prompt_tokens
    );
    assert!(
        u2.prompt_tokens as u64 - reused2 <= 24,
        "turn 2 read {} new tokens",
        u2.prompt_tokens as u64 - reused2
    );

    // max_tokens is a hard bound; stop strings cut the reply.
    let (_, u) = model
        .chat(ask("Tell me a long story about a dragon.", 5))
        .await
        .expect("chat")
        .text()
        .await
        .expect("text");
    assert_eq!(u.completion_tokens, 5, "{u:?}");
    let mut stopped = ask("What is the capital of France?", 32);
    stopped.stop = vec!["Paris".into()];
    let (cut, _) = model.chat(stopped).await.expect("chat").text().await.expect("text");
    assert!(!cut.contains("Paris") && !cut.is_empty(), "{cut:?}");

    // Two calls at once share decode steps and both are answered as they
    // would be alone.
    let batched_before = stats.batched_steps.load(Ordering::Relaxed);
    let (alone_a, _) = model
        .chat(ask("What is the capital of France?", 24))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (alone_b, _) = model
        .chat(ask("What color is the sky on a clear day?", 24))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (a, b) = two_at_once(&model).await;
    let batched = stats.batched_steps.load(Ordering::Relaxed) - batched_before;
    eprintln!("together: {a:?} / {b:?} ({batched} shared steps); alone: {alone_a:?} / {alone_b:?}");
    assert!(a.contains("Paris") && b.to_lowercase().contains("blue"), "{a} / {b}");
    assert!(batched >= 5, "only {batched} decode steps carried both calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_llama_cpp_stream_frees_its_sequence_within_a_step() {
    let Some(model) = warmed_model().await else {
        return;
    };
    let stats = model.stats();

    let mut long = model
        .chat(ask("Tell me a long story about a dragon.", 400))
        .await
        .expect("chat");
    for _ in 0..3 {
        assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    }
    let engine = long.engine_closed_probe().expect("the engine holds the reply");
    let generated_at_drop = stats.generated_tokens.load(Ordering::Relaxed);
    let t = Instant::now();
    drop(long);
    // The engine checks every reply before each step and lets go of a
    // dropped one: at most the step already running finishes.
    while !engine.is_closed() {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the engine still holds the reply 2 s after the drop"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let released = t.elapsed();
    // Let a few steps' worth of time pass: nothing more is generated.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stats.generated_tokens.load(Ordering::Relaxed) - generated_at_drop;
    eprintln!("released {released:?} after the drop; {after} token(s) generated after it");
    assert!(after <= 1, "{after} tokens generated after the drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_reply_generates_nothing_until_released() {
    let Some(model) = warmed_model().await else {
        return;
    };
    let stats = model.stats();

    let mut long = model
        .chat(ask("Tell me a long story about a dragon.", 200))
        .await
        .expect("chat");
    assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    let (while_held, resumed) =
        common::hold_then_release(&mut long, || stats.generated_tokens.load(Ordering::Relaxed)).await;
    eprintln!("{while_held} tokens generated while held; after release: {resumed:?}");
    assert_eq!(while_held, 0, "the held reply went on");
    assert_eq!(resumed, Ok(5), "the released reply did not go on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefilled_prompt_leaves_only_the_rest_of_the_question_to_read() {
    let Some(model) = warmed_model().await else {
        return;
    };
    let facts = "Facts:\n- Our branches open at nine in the morning and close at five in the \
                 afternoon on weekdays, and at noon on Saturdays.\n- The downtown branch is at \
                 twelve Market Street, next to the central library.\n\nQuestion: ";
    let turn = |question: &str| {
        vec![
            ChatMessage::new(Role::System, common::SYSTEM),
            ChatMessage::new(Role::User, format!("{facts}{question}")),
        ]
    };
    // The caller's words so far, read while they still speak.
    model.prefill(turn("When do your branches")).await.expect("prefill");
    let (reply, usage, reused) = reply_reusing(
        &model,
        ChatRequest::new(turn("When do your branches open on Saturdays?"), 24),
    )
    .await;
    let read = usage.prompt_tokens as u64 - reused;
    eprintln!("{reply:?}: read {read} of {} prompt tokens", usage.prompt_tokens);
    assert!(read <= 16, "read {read} prompt tokens; the facts were prefilled");
    assert!(usage.prompt_tokens >= 60, "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefill_waits_while_urgent_work_runs_elsewhere() {
    let Some(path) = gguf() else {
        return;
    };
    // Urgent work elsewhere (a final transcript being decoded) from the start.
    let urgent = Arc::new(AtomicUsize::new(1));
    let mut cfg = LlamaCppConfig::new(&path);
    cfg.yield_to = Some(urgent.clone());
    let model = LlamaCppModel::load(&cfg).await.expect("load");
    model.warm(common::SYSTEM).await.expect("warm");
    let stats = model.stats();
    let facts = "Facts:\n- Our branches open at nine in the morning and close at five in the afternoon on \
                 weekdays, and at noon on Saturdays; they are closed on Sundays and public holidays.\n- The \
                 downtown branch is at twelve Market Street, next to the central library, and the riverside \
                 branch is at forty River Road, opposite the old mill, with parking behind it.\n- A lost \
                 card is blocked at once by phone, day and night, and a new card arrives in three to five \
                 working days by post.\n\nQuestion: When do your branches open on Saturdays?";
    let messages = vec![
        ChatMessage::new(Role::System, common::SYSTEM),
        ChatMessage::new(Role::User, facts),
    ];
    let admitted = stats.requests.load(Ordering::Relaxed);
    let prefill = tokio::spawn({
        let model = model.clone();
        let messages = messages.clone();
        async move { model.prefill(messages).await }
    });
    // The engine has the prefill before the reply below comes.
    tokio::time::timeout(Duration::from_secs(10), async {
        while stats.requests.load(Ordering::Relaxed) == admitted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the prefill reached the engine");
    // A reply goes on meanwhile. Each of its steps would have carried an
    // 8-token chunk of the prefill, which would be read long before the
    // reply's last token if it did not wait.
    let (text, usage) = model
        .chat(ask("Tell me a long story about a dragon.", 64))
        .await
        .expect("chat")
        .text()
        .await
        .expect("text");
    eprintln!("reply while urgent: {text:?} ({} tokens)", usage.completion_tokens);
    let reply_tokens = usage.completion_tokens;
    assert!(reply_tokens >= 8, "too short a reply to tell: {usage:?}");
    assert!(!prefill.is_finished(), "the prefill was read while urgent work ran");
    // The urgent work is over: the prefill is read, and a reply to the same
    // prompt then reads almost nothing.
    urgent.store(0, Ordering::Release);
    let done = tokio::time::timeout(Duration::from_secs(60), prefill).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "the prefill did not finish: {done:?}");
    let (_, usage, reused) = reply_reusing(&model, ChatRequest::new(messages, 8)).await;
    let read = usage.prompt_tokens as u64 - reused;
    assert!(usage.prompt_tokens >= 100, "several chunks to read: {usage:?}");
    assert!(
        reply_tokens * 8 >= usage.prompt_tokens,
        "the reply ({reply_tokens} tokens) was too short to have read the prefill ({usage:?})"
    );
    assert!(read <= 1, "read {read} prompt tokens after the prefill");
}

#[tokio::test]
async fn llama_cpp_names_a_missing_or_broken_model() {
    let e = LlamaCppModel::load(&LlamaCppConfig::new("/nonexistent/model.gguf"))
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Load { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/model.gguf"), "{e}");
    let dir = std::env::temp_dir().join(format!("voxline-llm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("not-a-model.gguf");
    std::fs::write(&bad, b"GGUF but not really").unwrap();
    let e = LlamaCppModel::load(&LlamaCppConfig::new(&bad)).await.unwrap_err();
    assert!(e.to_string().contains("not-a-model.gguf"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_and_no_prefix_cache_still_serve_turn_after_turn() {
    let Some(path) = gguf() else {
        return;
    };
    let mut cfg = LlamaCppConfig::new(&path);
    cfg.max_seqs = 1;
    cfg.prefix_cache = 0;
    let model = LlamaCppModel::load(&cfg).await.expect("load");
    let stats = model.stats();
    for q in [
        "What is the capital of France?",
        "What color is the sky?",
        "Name a fruit.",
    ] {
        let reply = tokio::time::timeout(Duration::from_secs(30), async {
            model.chat(ask(q, 8)).await?.text().await
        })
        .await
        .expect("the engine answers with a single slot")
        .expect("reply");
        assert!(reply.1.completion_tokens > 0, "{reply:?}");
    }
    // The one slot is cut back to the shared system prompt and reused.
    let reused = stats.reused_tokens.load(Ordering::Relaxed);
    assert!(reused >= 20, "reused {reused}");
}

/// With the only sequence busy and `max_waiting` replies waiting, one more
/// reply is refused at once (and counted), a read-ahead is refused once
/// half the room is taken (not counted as a refusal); the replies that
/// waited are served once the sequence frees; the engine marks itself
/// stopped when its last handle is gone (what `/healthz` reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_a_gone_engine_says_it_stopped() {
    let Some(path) = gguf() else {
        return;
    };
    let mut cfg = LlamaCppConfig::new(&path);
    cfg.max_seqs = 1;
    cfg.max_waiting = 2;
    let model = LlamaCppModel::load(&cfg).await.expect("load");
    let stats = model.engine_stats().expect("the engine's counters");

    let mut long = model
        .chat(ask("Tell me a long story about a dragon.", 300))
        .await
        .expect("chat");
    assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    let first = model
        .chat(ask("What is the capital of France?", 8))
        .await
        .expect("waits");
    let read_ahead = model
        .prefill(vec![ChatMessage::new(Role::User, "Hello, I have a question.")])
        .await;
    assert!(matches!(read_ahead, Err(LlmError::Busy(_))), "{read_ahead:?}");
    let second = model.chat(ask("Name a fruit.", 8)).await.expect("waits");
    assert_eq!(stats.waiting.load(Ordering::Relaxed), 2);
    let t = Instant::now();
    let refused = model.chat(ask("Name a colour.", 8)).await;
    eprintln!("refused {:?} after the call", t.elapsed());
    match refused {
        Err(LlmError::Busy(why)) => assert!(why.contains("llm.max_waiting = 2"), "{why}"),
        Err(e) => panic!("not refused as busy: {e}"),
        Ok(_) => panic!("a third waiting reply was taken"),
    }
    assert_eq!(
        stats.refused.load(Ordering::Relaxed),
        1,
        "the read-ahead is not counted"
    );

    drop(long);
    for (stream, what) in [(first, "first"), (second, "second")] {
        let (text, usage) = tokio::time::timeout(Duration::from_secs(60), stream.text())
            .await
            .unwrap_or_else(|_| panic!("the {what} waiting reply was never served"))
            .expect("text");
        assert!(usage.completion_tokens > 0, "{what}: {text:?}");
    }
    assert_eq!(stats.waiting.load(Ordering::Relaxed), 0);
    model
        .chat(ask("Name a colour.", 8))
        .await
        .expect("room again")
        .text()
        .await
        .expect("text");
    assert!(!stats.stopped.load(Ordering::Acquire));

    drop(model);
    let t = Instant::now();
    while !stats.stopped.load(Ordering::Acquire) {
        assert!(t.elapsed() < Duration::from_secs(10), "the engine thread did not end");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
