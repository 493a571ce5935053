//! The HTTP API: health, call records, trunk registration state, and
//! Prometheus metrics.

use crate::handlers::CallCounters;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use voxline_sip::registration::RegistrationState;
use voxline_store::CallStore;

#[derive(Clone)]
struct AppState {
    store: CallStore,
    counters: Arc<CallCounters>,
    router: Arc<voxline_sip::routing::Router>,
    registrations: Arc<Vec<(String, watch::Receiver<RegistrationState>)>>,
}

/// Binds `bind` and serves the API until `shutdown`.
pub async fn start(
    bind: SocketAddr,
    store: CallStore,
    counters: Arc<CallCounters>,
    router: Arc<voxline_sip::routing::Router>,
    registrations: Vec<(String, watch::Receiver<RegistrationState>)>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState {
        store,
        counters,
        router,
        registrations: Arc::new(registrations),
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/calls", get(list_calls))
        .route("/api/calls/{call_id}", get(get_call))
        .route("/api/calls/{call_id}/transcript", get(get_transcript))
        .route("/api/calls/{call_id}/turns", get(get_turns))
        .route("/api/calls/{call_id}/flow", get(get_flow))
        .route("/api/trunks", get(trunks))
        .route("/metrics", get(metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(addr = %bind, "HTTP API listening");
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "HTTP API stopped");
        }
    });
    Ok(())
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

async fn list_calls(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match s.store.recent(limit).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => internal(e),
    }
}

async fn get_call(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    match s.store.find_by_call_id(&call_id).await {
        Ok(rows) if rows.is_empty() => (StatusCode::NOT_FOUND, "no such call\n").into_response(),
        Ok(rows) => Json(rows).into_response(),
        Err(e) => internal(e),
    }
}

/// The transcript of each record with this Call-ID: `[{"id", "lines"}]`.
async fn get_transcript(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    per_record(
        &s,
        &call_id,
        "lines",
        |store, id| async move { store.transcript(&id).await },
    )
    .await
}

/// The agent turns (stage times) of each record with this Call-ID: `[{"id", "turns"}]`.
async fn get_turns(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    per_record(&s, &call_id, "turns", |store, id| async move {
        store.agent_turns(&id).await
    })
    .await
}

/// The flow steps each record with this Call-ID reached: `[{"id", "steps"}]`.
async fn get_flow(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    per_record(
        &s,
        &call_id,
        "steps",
        |store, id| async move { store.flow_steps(&id).await },
    )
    .await
}

/// `[{"id": record id, key: rows}]` for each record with this Call-ID.
async fn per_record<T, F, Fut>(s: &AppState, call_id: &str, key: &str, rows_of: F) -> Response
where
    T: serde::Serialize,
    F: Fn(CallStore, String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, voxline_store::StoreError>>,
{
    let records = match s.store.find_by_call_id(call_id).await {
        Ok(rows) if rows.is_empty() => return (StatusCode::NOT_FOUND, "no such call\n").into_response(),
        Ok(rows) => rows,
        Err(e) => return internal(e),
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        match rows_of(s.store.clone(), r.id.clone()).await {
            Ok(rows) => out.push(serde_json::json!({ "id": r.id, key: rows })),
            Err(e) => return internal(e),
        }
    }
    Json(out).into_response()
}

async fn trunks(State(s): State<AppState>) -> Response {
    let list: Vec<serde_json::Value> = s
        .router
        .trunks()
        .iter()
        .map(|t| {
            let reg = s
                .registrations
                .iter()
                .find(|(n, _)| n == &t.config.name)
                .map(|(_, rx)| format!("{:?}", *rx.borrow()));
            serde_json::json!({
                "name": t.config.name,
                "kind": format!("{:?}", t.config.kind).to_lowercase(),
                "active_calls": t.active_calls(),
                "registration": reg,
            })
        })
        .collect();
    Json(list).into_response()
}

/// The language model engine's work: what it read, generated and how long
/// its decode steps took (decode / wall time = how busy the model is).
fn register_llm(registry: &mut Registry, llm: &voxline_llm::EngineStats) {
    for (name, help, value) in [
        ("llm_replies", "Replies (and prefills) the model started", &llm.requests),
        (
            "llm_prompt_tokens",
            "Prompt tokens of those replies",
            &llm.prompt_tokens,
        ),
        (
            "llm_reused_prompt_tokens",
            "Prompt tokens whose KV was reused from the cache, not read again",
            &llm.reused_tokens,
        ),
        ("llm_generated_tokens", "Tokens generated", &llm.generated_tokens),
        ("llm_decode_steps", "Decode steps run", &llm.steps),
        (
            "llm_batched_decode_steps",
            "Decode steps that carried more than one reply",
            &llm.batched_steps,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
    }
    registry.register(
        "llm_decode_seconds",
        "Time the model spent in decode steps, summed",
        ConstCounter::new(llm.decode_us.load(Ordering::Relaxed) as f64 / 1e6),
    );
    registry.register(
        "llm_replies_waiting",
        "Replies waiting for a free sequence now",
        ConstGauge::new(llm.waiting.load(Ordering::Relaxed) as i64),
    );
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut registry = Registry::with_prefix("voxline");
    registry.register(
        "calls_active",
        "Calls up now",
        ConstGauge::new(s.counters.active.load(Ordering::Relaxed) as i64),
    );
    registry.register(
        "calls_routed",
        "Calls routed to a handler since start",
        ConstCounter::new(s.counters.total.load(Ordering::Relaxed)),
    );
    registry.register(
        "calls_rejected",
        "Routed calls refused (404, 488, 503...) since start",
        ConstCounter::new(s.counters.rejected.load(Ordering::Relaxed)),
    );
    let clock = &s.counters.media_clock;
    for (name, help, value) in [
        (
            "media_clock_slots",
            "Media clock slots run (10 per 20 ms frame per shard)",
            &clock.passes,
        ),
        (
            "media_clock_late_slots",
            "Media clock slots started over 1 ms late",
            &clock.late_passes,
        ),
        (
            "media_clock_skipped_frames",
            "Frames skipped by an overloaded media clock shard",
            &clock.skipped_frames,
        ),
        (
            "media_sessions_panicked",
            "Media sessions removed after a panic in their frame work",
            &clock.panicked_tasks,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
    }
    registry.register(
        "media_clock_max_slot_us",
        "Longest run of one media clock slot, microseconds",
        ConstGauge::new(clock.max_pass_us.load(Ordering::Relaxed) as i64),
    );
    if let Some(asr) = &s.counters.asr {
        for (name, help, value) in [
            (
                "asr_decodes",
                "Whisper decodes finished (partials and finals)",
                &asr.decoded,
            ),
            (
                "asr_decodes_cancelled",
                "Whisper decodes cancelled (call ended, speech resumed)",
                &asr.aborted,
            ),
            ("asr_decodes_failed", "Whisper decodes that failed", &asr.failed),
            (
                "asr_partials_skipped",
                "Partial decodes skipped because the pool was busy",
                &asr.skipped_full,
            ),
        ] {
            registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
        }
        let secs = |v: &std::sync::atomic::AtomicU64, unit: f64| v.load(Ordering::Relaxed) as f64 / unit;
        registry.register(
            "asr_queue_wait_seconds",
            "Time decodes waited for a Whisper worker, summed",
            ConstCounter::new(secs(&asr.queue_wait_us_sum, 1e6)),
        );
        registry.register(
            "asr_decode_seconds",
            "Time Whisper workers spent decoding, summed",
            ConstCounter::new(secs(&asr.decode_us_sum, 1e6)),
        );
        registry.register(
            "asr_audio_seconds",
            "Audio decoded by Whisper, summed (decode / audio = real-time factor)",
            ConstCounter::new(secs(&asr.audio_ms_sum, 1e3)),
        );
        registry.register(
            "asr_queue_wait_max_seconds",
            "Longest wait of a decode for a Whisper worker",
            ConstGauge::new(secs(&asr.queue_wait_us_max, 1e6)),
        );
        registry.register(
            "asr_workers_busy",
            "Whisper workers decoding now",
            ConstGauge::new(asr.busy.load(Ordering::Relaxed) as i64),
        );
    }
    if let Some(llm) = &s.counters.llm {
        register_llm(&mut registry, llm);
    }
    for t in s.router.trunks() {
        let sub = registry.sub_registry_with_label(("trunk".into(), t.config.name.clone().into()));
        sub.register(
            "trunk_calls_active",
            "Calls up on the trunk",
            ConstGauge::new(t.active_calls() as i64),
        );
    }
    let mut body = String::new();
    if let Some(agent) = &s.counters.agent {
        agent.register(&mut registry);
    }
    match encode(&mut body, &registry) {
        Ok(()) => (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => internal(e),
    }
}
