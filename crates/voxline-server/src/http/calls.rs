//! Calls: the records (with transcript, turns, flow steps), the calls up
//! on this node, placing an agent's call and hanging one up; the trunks.

use super::error::{bad_query, list_limit, ApiError, JsonBody};
use super::{json_with, AppState};
use crate::handlers::agent_route::CallOut;
use crate::handlers::answering::Answering;
use crate::http::auth::Caller;
use crate::ops::campaigns::dialable_trunk;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use voxline_agent::contact::fill_line;
use voxline_campaign::amd::MachineAction;
use voxline_store::{CallFilter, CallStore};

/// Records listed at most.
const MAX_LIST: i64 = 1000;

/// `?limit=&route=&direction=&channel=&end_reason=&party=&q=&since=&until=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    route: Option<String>,
    direction: Option<String>,
    channel: Option<String>,
    end_reason: Option<String>,
    party: Option<String>,
    q: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

/// `GET /api/calls`: the newest records (50 unless told; 1 to 1000) that
/// pass the filters: route, direction, channel, end reason, a party
/// holding `party`, a transcript line holding `q` (any case), started in
/// `since..until` (ms since the epoch).
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = list_limit(q.limit, 50, MAX_LIST)?;
    let one_of = |field: &str, v: Option<String>, allowed: &[&str]| match v.filter(|v| !v.is_empty()) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::invalid(field, format!("one of {allowed:?}"))),
        v => Ok(v),
    };
    let filter = CallFilter {
        route: q.route.filter(|v| !v.is_empty()),
        direction: one_of("direction", q.direction, &["inbound", "outbound"])?,
        channel: one_of("channel", q.channel, &["sip", "webrtc"])?,
        end_reason: q.end_reason.filter(|v| !v.is_empty()),
        party: q.party,
        text: q.q,
        since: q.since,
        until: q.until,
        limit,
    };
    Ok(Json(s.ctx.store.search(&filter).await?).into_response())
}

/// The records with this Call-ID (two when the server called itself); 404 when none.
pub(super) async fn records_of(store: &CallStore, call_id: &str) -> Result<Vec<voxline_store::CallRecord>, ApiError> {
    let rows = store.find_by_call_id(call_id).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no call with Call-ID {call_id:?}")));
    }
    Ok(rows)
}

/// `GET /api/calls/{call_id}`: its records.
pub async fn show(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(records_of(&s.ctx.store, &call_id).await?).into_response())
}

/// `[{"id": record id, key: rows}]` for each record with this Call-ID.
async fn per_record<T, F, Fut>(s: &AppState, call_id: &str, key: &str, rows_of: F) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: Fn(CallStore, String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, voxline_store::StoreError>>,
{
    let records = records_of(&s.ctx.store, call_id).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let rows = rows_of(s.ctx.store.clone(), r.id.clone()).await?;
        out.push(serde_json::json!({ "id": r.id, key: rows }));
    }
    Ok(Json(out).into_response())
}

/// `GET /api/calls/{call_id}/transcript`: `[{"id", "lines"}]`.
pub async fn transcript(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    per_record(
        &s,
        &call_id,
        "lines",
        |store, id| async move { store.transcript(&id).await },
    )
    .await
}

/// `GET /api/calls/{call_id}/turns`: the agent turns' stage times, `[{"id", "turns"}]`.
pub async fn turns(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    per_record(&s, &call_id, "turns", |store, id| async move {
        store.agent_turns(&id).await
    })
    .await
}

/// `GET /api/calls/{call_id}/flow`: the flow steps reached, `[{"id", "steps"}]`.
pub async fn flow(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    per_record(
        &s,
        &call_id,
        "steps",
        |store, id| async move { store.flow_steps(&id).await },
    )
    .await
}

/// `GET /api/calls/{call_id}/tools`: the business tools called, with their
/// arguments (secret digits masked), outcome and time, `[{"id", "tools"}]`.
pub async fn tools(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    per_record(
        &s,
        &call_id,
        "tools",
        |store, id| async move { store.tool_calls(&id).await },
    )
    .await
}

/// `?record=`: which of a call's records (two when the server called itself).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    record: Option<String>,
}

/// `GET /api/calls/{call_id}/recording`: the call's recording (stereo WAV:
/// the caller left, the agent right), streamed; the first record with one
/// unless `record` names it. 404 when the call was not recorded or the file
/// is gone.
pub async fn recording(
    State(s): State<AppState>,
    Path(call_id): Path<String>,
    q: Result<Query<RecordingQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let records = records_of(&s.ctx.store, &call_id).await?;
    let path = records
        .iter()
        .filter(|r| q.record.as_deref().is_none_or(|id| r.id == id))
        .find_map(|r| r.recording_path.clone())
        .ok_or_else(|| ApiError::not_found(format!("call {call_id:?} has no recording")))?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::warn!(call_id = %call_id, path = %path, error = %e, "recording unreadable");
        ApiError::not_found(format!("the recording of call {call_id:?} cannot be read: {e}"))
    })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = ([(axum::http::header::CONTENT_TYPE, "audio/wav")], body).into_response();
    if let Some(len) = len {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_LENGTH, axum::http::HeaderValue::from(len));
    }
    Ok(response)
}

/// `GET /api/live`: the agent calls up on this node.
pub async fn live(State(s): State<AppState>) -> Response {
    Json(s.ctx.live.list()).into_response()
}

/// `POST /api/calls/{call_id}/hangup`: hangs up an agent call up on this
/// node (CANCEL while it rings, BYE once answered). 202; 404 when it is not up here.
pub async fn hang_up(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    if !s.ctx.live.hang_up(&call_id) {
        return Err(ApiError::not_found(format!(
            "no call with Call-ID {call_id:?} is up on this node"
        )));
    }
    tracing::info!(call_id = %call_id, token = %caller.0, "call hung up through the API");
    Ok(json_with(
        StatusCode::ACCEPTED,
        serde_json::json!({ "call_id": call_id, "hanging_up": true }),
    ))
}

/// `POST /api/calls`: an agent's outbound call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// The agent route (`[[route]]` name, handler `agent`).
    route: String,
    /// A number (with `trunk`) or a `sip:` URI.
    to: String,
    /// The trunk the call leaves by.
    #[serde(default)]
    trunk: Option<String>,
    /// The From URI (else the trunk's caller ID).
    #[serde(default)]
    from: Option<String>,
    /// Seconds of ringing before giving up (1 to 300).
    #[serde(default)]
    ring_timeout_s: Option<u64>,
    /// The contact's variables (`{first_name}` in the pack's lines).
    #[serde(default)]
    variables: BTreeMap<String, String>,
    /// Answering-machine detection: off (default), hangup, message.
    #[serde(default)]
    amd: MachineAction,
    /// The message left on a machine with `amd: message`.
    #[serde(default)]
    voicemail: Option<String>,
}

/// Most variables on one call, and the longest value.
const MAX_VARIABLES: usize = 100;
const MAX_VALUE: usize = 1000;

/// Checks a call's input; the number `to` dials, for the do-not-call list.
fn check_call(s: &AppState, c: &PlaceCall) -> Result<String, ApiError> {
    if !s.ctx.outbound.agents.contains_key(&c.route) {
        return Err(ApiError::invalid(
            "route",
            format!("no agent route named {:?} on this node", c.route),
        ));
    }
    let to = c.to.trim();
    if to.is_empty()
        || to.len() > 256
        || !to
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "+-_.:@;=*#".contains(ch))
    {
        return Err(ApiError::invalid(
            "to",
            "a phone number or a sip: URI (letters, digits and + - _ . : @ ; = * # only)",
        ));
    }
    let is_uri = to.starts_with("sip:") || to.starts_with("sips:");
    match &c.trunk {
        Some(t) => dialable_trunk(&s.ctx.cfg, t, "trunk")?,
        None if !is_uri => {
            return Err(ApiError::invalid(
                "trunk",
                "a number is dialled through a trunk: name one, or call a sip: URI",
            ))
        }
        None => {}
    }
    if let Some(from) = &c.from {
        let ok = (from.starts_with("sip:") || from.starts_with("sips:"))
            && from.len() <= 256
            && from
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "+-_.:@;=*#!~%".contains(ch));
        if !ok {
            return Err(ApiError::invalid("from", "a sip: URI (no spaces, quotes or brackets)"));
        }
    }
    if let Some(t) = c.ring_timeout_s {
        if !(1..=300).contains(&t) {
            return Err(ApiError::invalid("ring_timeout_s", "1 to 300 seconds"));
        }
    }
    if c.variables.len() > MAX_VARIABLES {
        return Err(ApiError::invalid(
            "variables",
            format!("at most {MAX_VARIABLES} variables"),
        ));
    }
    if let Some((k, _)) = c.variables.iter().find(|(_, v)| v.len() > MAX_VALUE) {
        return Err(ApiError::invalid(
            format!("variables.{k}"),
            format!("at most {MAX_VALUE} bytes"),
        ));
    }
    if c.amd == MachineAction::Message && c.voicemail.as_deref().is_none_or(|v| v.trim().is_empty()) {
        return Err(ApiError::invalid(
            "voicemail",
            "amd \"message\" needs the message to leave",
        ));
    }
    let number = if is_uri {
        to.split_once(':')
            .map_or(to, |(_, rest)| rest)
            .split(['@', ';'])
            .next()
            .unwrap_or(to)
    } else {
        to
    };
    // As the do-not-call list keeps it: E.164 where it reads as a number.
    Ok(voxline_campaign::contacts::normalise(number, None)
        .map(|(e164, _)| e164)
        .unwrap_or_else(|_| number.to_string()))
}

/// `POST /api/calls`: places an agent's call; 202 with its Call-ID (its
/// record appears under `/api/calls/{call_id}`). 409 when the number is on
/// the global do-not-call list, 503 when the node's outbound calls are all
/// in use.
pub async fn place(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(c): JsonBody<PlaceCall>,
) -> Result<Response, ApiError> {
    let number = check_call(&s, &c)?;
    if s.ctx.store.is_dnc("", &number).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "do_not_call",
            format!("{number} is on the do-not-call list"),
        ));
    }
    let out = &s.ctx.outbound;
    let Ok(slot) = out.slots.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "the node's outbound calls are all in use ([campaigns] max_calls = {})",
                s.ctx.cfg.campaigns.max_calls
            ),
        ));
    };
    let agent = out.agents[&c.route].clone();
    let call_id = crate::records::new_call_id();
    let answering = (c.amd != MachineAction::Off).then(|| Answering {
        action: c.amd,
        message: c.voicemail.as_deref().map(|m| fill_line(m, &c.variables)),
    });
    let call = CallOut {
        target: c.to.trim().to_string(),
        from: c.from.clone(),
        trunk: c.trunk.clone(),
        ring_timeout: c.ring_timeout_s.map(Duration::from_secs),
        variables: c.variables,
        call_id: Some(call_id.clone()),
        answering,
        pace: None,
    };
    tracing::info!(call_id = %call_id, route = %c.route, token = %caller.0, "call placed through the API");
    let (endpoint, records, route) = (out.endpoint.clone(), out.records.clone(), c.route.clone());
    tokio::spawn(async move {
        let _slot = slot;
        let end = agent.call_out(&endpoint, &route, call, &records).await;
        tracing::info!(call_id = %end.call_id, reason = %end.reason, answered = end.answered, "API call ended");
    });
    Ok(json_with(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "call_id": call_id,
            "route": c.route,
            "to": c.to.trim(),
            "record": format!("/api/calls/{call_id}"),
        }),
    ))
}

/// `GET /api/trunks`: each trunk, its calls up and registration state.
pub async fn trunks(State(s): State<AppState>) -> Response {
    let list: Vec<serde_json::Value> = s
        .ctx
        .router
        .trunks()
        .iter()
        .map(|t| {
            let reg = s
                .ctx
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
