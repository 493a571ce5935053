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
    for t in s.router.trunks() {
        let sub = registry.sub_registry_with_label(("trunk".into(), t.config.name.clone().into()));
        sub.register(
            "trunk_calls_active",
            "Calls up on the trunk",
            ConstGauge::new(t.active_calls() as i64),
        );
    }
    let mut body = String::new();
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
