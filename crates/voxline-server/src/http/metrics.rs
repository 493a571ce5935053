//! `/metrics`: the server's counters in the OpenMetrics text format.

use super::error::ApiError;
use super::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

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
            "llm_replies_refused",
            "Replies refused at once because llm.max_waiting replies were waiting",
            &llm.refused,
        ),
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
    registry.register(
        "llm_engine_up",
        "Whether the local model engine runs (0: it stopped; /healthz says 503)",
        ConstGauge::new(i64::from(!llm.stopped.load(Ordering::Relaxed))),
    );
}

/// The inference pool: each server's state (labelled by its URL) and the
/// replies the local engine took because no server could.
fn register_pool(registry: &mut Registry, servers: &[voxline_llm::EndpointStatus], local_replies: u64) {
    registry.register(
        "llm_pool_local_replies",
        "Replies the local engine took because no server of the pool could",
        ConstCounter::new(local_replies),
    );
    for s in servers {
        let sub = registry.sub_registry_with_label(("server".into(), s.url.clone().into()));
        sub.register(
            "llm_server_up",
            "Whether the pool's server takes replies (1) or is passed over (0)",
            ConstGauge::new(i64::from(s.healthy)),
        );
        sub.register(
            "llm_server_in_flight",
            "Replies the server streams now",
            ConstGauge::new(s.in_flight as i64),
        );
        sub.register(
            "llm_server_replies",
            "Replies the server finished",
            ConstCounter::new(s.served),
        );
        sub.register(
            "llm_server_failed",
            "Replies the server failed (no first text in time, refused, broke off)",
            ConstCounter::new(s.failed),
        );
    }
}

/// The recording writer: frames written and dropped (the disk behind),
/// recordings that failed, frames waiting.
fn register_recordings(registry: &mut Registry, rec: &voxline_media::RecordingStats) {
    for (name, help, value) in [
        (
            "recording_frames_written",
            "Recording frames written to files",
            &rec.frames_written,
        ),
        (
            "recording_frames_dropped",
            "Recording frames dropped because the writer was behind (silence in their place)",
            &rec.frames_dropped,
        ),
        (
            "recordings_failed",
            "Recordings that failed to write (each logged with its file)",
            &rec.failed,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
    }
    registry.register(
        "recording_frames_queued",
        "Recording frames waiting for the writer",
        ConstGauge::new(rec.queued.load(Ordering::Relaxed) as i64),
    );
}

/// `GET /metrics`.
pub async fn metrics(State(s): State<AppState>) -> Response {
    let mut registry = Registry::with_prefix("voxline");
    registry.register(
        "calls_active",
        "Calls up now",
        ConstGauge::new(s.ctx.counters.active.load(Ordering::Relaxed) as i64),
    );
    registry.register(
        "browser_calls_active",
        "Browser calls (WebRTC) up now, their signalling sockets included",
        ConstGauge::new((s.ctx.cfg.webrtc.max_calls - s.ctx.browser_slots.available_permits()) as i64),
    );
    registry.register(
        "runtime_tasks",
        "Tasks alive on the server's async runtime (a leak shows as growth)",
        ConstGauge::new(tokio::runtime::Handle::current().metrics().num_alive_tasks() as i64),
    );
    registry.register(
        "calls_routed",
        "Calls routed to a handler since start",
        ConstCounter::new(s.ctx.counters.total.load(Ordering::Relaxed)),
    );
    registry.register(
        "calls_rejected",
        "Routed calls refused (404, 488, 503...) since start",
        ConstCounter::new(s.ctx.counters.rejected.load(Ordering::Relaxed)),
    );
    if let Some(rec) = voxline_media::recording_stats() {
        register_recordings(&mut registry, &rec);
    }
    let clock = &s.ctx.counters.media_clock;
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
    if let Some(asr) = &s.ctx.counters.asr {
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
        registry.register(
            "asr_workers_running",
            "Whisper worker threads running (0: callers cannot be heard; /healthz says 503)",
            ConstGauge::new(asr.workers.load(Ordering::Relaxed) as i64),
        );
    }
    if let Some(llm) = &s.ctx.counters.llm {
        register_llm(&mut registry, llm);
    }
    if let Some(pool) = &s.ctx.counters.llm_pool {
        register_pool(&mut registry, &pool.status(), pool.local_replies());
    }
    let queue = s.ctx.outbound.records.queue().stats();
    registry.register(
        "records_pending",
        "Call-record writes queued and not in the store yet",
        ConstGauge::new(queue.pending.load(Ordering::Relaxed) as i64),
    );
    registry.register(
        "records_write_retries",
        "Call-record writes tried again because the store could not take them",
        ConstCounter::new(queue.retries.load(Ordering::Relaxed)),
    );
    registry.register(
        "records_spooled",
        "Call-record writes kept on disk (the spool) while the store could not take them",
        ConstCounter::new(queue.spooled.load(Ordering::Relaxed)),
    );
    registry.register(
        "records_write_refused",
        "Call-record writes the store refused (logged and dropped)",
        ConstCounter::new(queue.refused.load(Ordering::Relaxed)),
    );
    let sip = &s.ctx.outbound.endpoint;
    registry.register(
        "sip_calls_active",
        "Calls the SIP endpoint holds now against [sip] max_calls (inbound and outbound)",
        ConstGauge::new(i64::from(sip.active_calls())),
    );
    let streams = sip.stream_stats();
    registry.register(
        "sip_stream_connections",
        "TCP/TLS connections held now (set up or being set up)",
        ConstGauge::new(i64::from(streams.held)),
    );
    for (name, help, value) in [
        (
            "sip_stream_refused",
            "TCP/TLS connections refused at accept: a source or the node held its cap",
            streams.refused,
        ),
        (
            "sip_stream_setup_timeouts",
            "TCP/TLS connections closed: no first byte / no finished handshake in time",
            streams.setup_timeouts,
        ),
        (
            "sip_stream_handshake_failures",
            "TLS handshakes that failed",
            streams.handshake_failures,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value));
    }
    for t in s.ctx.router.trunks() {
        let sub = registry.sub_registry_with_label(("trunk".into(), t.config.name.clone().into()));
        sub.register(
            "trunk_calls_active",
            "Calls up on the trunk",
            ConstGauge::new(t.active_calls() as i64),
        );
    }
    let mut body = String::new();
    if let Some(agent) = &s.ctx.counters.agent {
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
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pool_server_is_a_labelled_series() {
        let mut registry = Registry::with_prefix("voxline");
        let status = |url: &str, healthy, served, failed| voxline_llm::EndpointStatus {
            url: url.into(),
            healthy,
            in_flight: 1,
            served,
            failed,
        };
        register_pool(
            &mut registry,
            &[
                status("http://gpu-1:8000/v1", true, 12, 0),
                status("http://gpu-2:8000/v1", false, 3, 2),
            ],
            4,
        );
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        for line in [
            "voxline_llm_pool_local_replies_total 4",
            "voxline_llm_server_up{server=\"http://gpu-1:8000/v1\"} 1",
            "voxline_llm_server_up{server=\"http://gpu-2:8000/v1\"} 0",
            "voxline_llm_server_replies_total{server=\"http://gpu-1:8000/v1\"} 12",
            "voxline_llm_server_failed_total{server=\"http://gpu-2:8000/v1\"} 2",
            "voxline_llm_server_in_flight{server=\"http://gpu-2:8000/v1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}

/// `?minutes=`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadQuery {
    minutes: Option<i64>,
}

/// `GET /api/load?minutes=N` (60 unless told; 1 to 1440): latency and load
/// over time, `{every_s, samples: [{at, calls, turns, v2v_p50_ms,
/// v2v_p95_ms}], now}`; `now` is the span going on (not kept yet).
pub async fn load(
    State(s): State<AppState>,
    q: Result<axum::extract::Query<LoadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = q.map_err(super::error::bad_query)?;
    let minutes =
        super::error::list_limit(q.minutes, 60, 24 * 60).map_err(|_| ApiError::invalid("minutes", "1 to 1440"))?;
    let since = voxline_store::now_ms() - minutes * 60_000;
    let calls = s.ctx.counters.active.load(Ordering::Relaxed);
    let (samples, now) = s.ctx.counters.load.since(since, calls);
    Ok(axum::Json(serde_json::json!({
        "every_s": crate::handlers::load_history::SAMPLE_EVERY.as_secs(),
        "samples": samples,
        "now": now,
    }))
    .into_response())
}
