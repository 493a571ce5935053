//! The local backend on the default model (SmolLM2-135M-Instruct Q4_1 on
//! mistralrs, CPU): it answers, streams, honours max_tokens, serves
//! concurrent requests from one loaded model, and a dropped stream releases
//! the engine at once.

use std::time::{Duration, Instant};
use voxline_llm::{ChatEvent, ChatModel, LlmError, LocalConfig, LocalModel};

mod common;

use common::{ask, gguf, streamed, two_at_once};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_answers_streams_and_shares_itself() {
    let Some(path) = gguf() else {
        return;
    };
    let model = LocalModel::load(&LocalConfig::new(&path)).await.expect("load");
    model.warm("You are a test.").await.expect("warm");

    // A streamed answer: several deltas, then usage.
    let (deltas, text, usage) = streamed(&model, ask("What is the capital of France?", 32)).await;
    eprintln!("{text:?} {usage:?} {:.1} tok/s", usage.tokens_per_sec());
    assert!(text.contains("Paris"), "{text}");
    assert!(deltas >= 2, "streamed in pieces");
    assert!(
        usage.completion_tokens >= 2 && usage.completion_tokens <= 32,
        "{usage:?}"
    );
    assert!(usage.first_token > Duration::ZERO && usage.first_token < usage.total);

    // max_tokens is a hard bound.
    let (_, u) = model
        .chat(ask("Tell me a long story about a dragon.", 5))
        .await
        .expect("chat")
        .text()
        .await
        .expect("text");
    assert!(u.completion_tokens <= 5, "{u:?}");

    // Two calls at once share the one model; both are answered.
    let (a, b) = two_at_once(&model).await;
    assert!(a.contains("Paris") && b.to_lowercase().contains("blue"), "{a} / {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_frees_the_engine_at_once() {
    let Some(path) = gguf() else {
        return;
    };
    let model = LocalModel::load(&LocalConfig::new(&path)).await.expect("load");
    model.warm("You are a test.").await.expect("warm");
    // Alone: how long a 48-token reply takes.
    let t = Instant::now();
    let (_, alone) = model
        .chat(ask("Tell me a long story about a dragon.", 48))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let alone_time = t.elapsed();

    // A 400-token story, dropped after three pieces.
    let mut long = model
        .chat(ask("Tell me a long story about a dragon.", 400))
        .await
        .expect("chat");
    for _ in 0..3 {
        assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    }
    let step = long.first_token().unwrap_or_default();
    let engine = long.engine_closed_probe().expect("the engine holds the reply");
    drop(long);
    // Our side lets go of the engine's channel at once; the engine's next
    // send fails and it marks the sequence cancelled (mistralrs-core
    // pipeline/sampling.rs), so it stops within one decode step.
    let deadline = Instant::now() + Duration::from_millis(100);
    while !engine.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the engine's channel is still open 100 ms after the drop"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // And the engine is free: the same 48-token reply takes about as long
    // as it did alone (a still-running 400-token sequence would share
    // every step with it).
    let t = Instant::now();
    let (_, after) = model
        .chat(ask("Tell me a long story about a dragon.", 48))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let after_time = t.elapsed();
    eprintln!(
        "alone {alone_time:?} ({alone:?}), after the cancel {after_time:?} ({after:?}); first token was {step:?}"
    );
    assert_eq!(
        after.completion_tokens, alone.completion_tokens,
        "greedy: the same reply"
    );
}

#[tokio::test]
async fn a_missing_model_is_named() {
    let e = LocalModel::load(&LocalConfig::new("/nonexistent/model.gguf"))
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Load { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/model.gguf"), "{e}");
}
