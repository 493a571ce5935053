//! `/healthz`: whether this node takes calls, for a load balancer.
//!
//! 503 names each fault (the store does not answer, the node is draining,
//! the local model engine or every speech-recognition worker has stopped);
//! 200 says `ok`, or `degraded` with a line per `[[llm.server]]` that is
//! passed over (its replies go to the next server or the local engine, so
//! the node still answers calls).

use super::AppState;
use crate::handlers::CallCounters;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the store may take to answer a ping.
const STORE_PING: Duration = Duration::from_secs(2);

/// What the engines say: faults (the node cannot take calls) and degraded
/// parts (it can, with less).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EngineHealth {
    /// Each a reason the node cannot serve an agent call.
    pub faults: Vec<String>,
    /// Each a part that is down while the node still serves.
    pub degraded: Vec<String>,
}

/// Reads the engines' state from the live counters.
pub(crate) fn engine_health(counters: &CallCounters) -> EngineHealth {
    let mut h = EngineHealth::default();
    if counters.llm.as_ref().is_some_and(|s| s.stopped.load(Ordering::Acquire)) {
        h.faults
            .push("llm: the local model engine has stopped: no reply can be generated".into());
    }
    if counters
        .asr
        .as_ref()
        .is_some_and(|s| s.workers.load(Ordering::Acquire) == 0)
    {
        h.faults
            .push("asr: no speech-recognition worker is running: callers cannot be heard".into());
    }
    if let Some(pool) = &counters.llm_pool {
        for s in pool.status().into_iter().filter(|s| !s.healthy) {
            h.degraded.push(format!(
                "llm server {}: down, its replies go to the next server or the local engine",
                s.url
            ));
        }
    }
    h
}

/// `GET /healthz`: 200 "ok" when the node takes calls (or "degraded" and
/// what is down, when it takes them with less); else 503 with a line per
/// fault.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let ctx = &state.ctx;
    let mut faults = Vec::new();
    match tokio::time::timeout(STORE_PING, ctx.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => faults.push(format!("store: {e}")),
        Err(_) => faults.push(format!("store: no answer within {} s", STORE_PING.as_secs())),
    }
    if ctx.outbound.endpoint.is_draining() {
        faults.push("draining: the node is stopping, new calls get 503".to_string());
    }
    let engines = engine_health(&ctx.counters);
    faults.extend(engines.faults);
    if !faults.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", faults.join("\n"))).into_response();
    }
    if engines.degraded.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::OK, format!("degraded\n{}\n", engines.degraded.join("\n"))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_stopped_engine_or_no_recogniser_is_a_fault() {
        let llm = Arc::new(voxline_llm::EngineStats::default());
        let asr = Arc::new(voxline_asr::PoolStats::default());
        asr.workers.store(2, Ordering::Release);
        let counters = CallCounters {
            llm: Some(llm.clone()),
            asr: Some(asr.clone()),
            ..CallCounters::default()
        };
        assert_eq!(engine_health(&counters), EngineHealth::default());
        llm.stopped.store(true, Ordering::Release);
        asr.workers.store(0, Ordering::Release);
        let h = engine_health(&counters);
        assert_eq!(h.faults.len(), 2, "{h:?}");
        assert!(h.faults[0].starts_with("llm: "), "{h:?}");
        assert!(h.faults[1].starts_with("asr: "), "{h:?}");
        // A node without a talking route has no engines to report.
        assert_eq!(engine_health(&CallCounters::default()), EngineHealth::default());
    }
}
