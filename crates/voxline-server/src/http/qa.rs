//! Quality inspection results: a call's score with each item's verdict and
//! evidence, and the scored calls listed by verdict, score and failed item.

use super::error::{bad_query, list_limit, ApiError};
use super::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use voxline_store::{AnalysisFilter, AnalysisRow};

/// Calls listed at most.
const MAX_LIST: i64 = 1000;

fn analysis_json(a: &AnalysisRow, whole: bool) -> Value {
    let mut v = json!({
        "state": a.state,
        "scorecard": a.scorecard,
        "queued_at": a.queued_at,
        "attempts": a.attempts,
        "analyzed_at": a.analyzed_at,
        "score": a.score,
        "passed": a.passed,
        "failed_items": crate::analysis::failed_items(a.result.as_deref()),
        "error": a.error,
    });
    if whole {
        v["result"] = a
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
    }
    v
}

/// `GET /api/calls/{call_id}/qa`: per record `{id, state, score, passed,
/// failed_items, result: {items: [{id, kind, verdict, why, evidence}]}}`;
/// `state` is `none` for a call that was not queued (no scorecard, not
/// answered), else pending, running, done or failed.
pub async fn call(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    let store = &s.ctx.store;
    let records = super::calls::records_of(store, &call_id).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut v = match store.analysis(&r.id).await? {
            Some(a) => analysis_json(&a, true),
            None => json!({ "state": "none" }),
        };
        v["id"] = json!(r.id);
        out.push(v);
    }
    Ok(Json(out).into_response())
}

/// `GET /api/calls/{call_id}/summary`: per record `{id, state, summary:
/// {summary, intent, outcome, follow_ups, fields, written_by}}`; `summary`
/// is null until the call is analysed (`state` as for `/qa`).
pub async fn summary(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    let store = &s.ctx.store;
    let records = super::calls::records_of(store, &call_id).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let a = store.analysis(&r.id).await?;
        let summary = a
            .as_ref()
            .and_then(|a| a.summary.as_deref())
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null);
        out.push(json!({
            "id": r.id,
            "state": a.as_ref().map_or("none", |a| a.state.as_str()),
            "summary": summary,
        }));
    }
    Ok(Json(out).into_response())
}

/// `?passed=&min_score=&max_score=&failed_item=&since=&until=&limit=&order=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    passed: Option<bool>,
    min_score: Option<f64>,
    max_score: Option<f64>,
    failed_item: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<i64>,
    order: Option<String>,
}

/// `GET /api/qa`: scored calls, newest first, filtered by verdict
/// (`passed`), score range, an item that failed, and the time they were
/// scored (ms since the epoch); 50 unless `limit` (1 to 1000) says;
/// `order=worst`: lowest score first.
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = list_limit(q.limit, 50, MAX_LIST)?;
    for (field, v) in [("min_score", q.min_score), ("max_score", q.max_score)] {
        if v.is_some_and(|v| !(0.0..=100.0).contains(&v)) {
            return Err(ApiError::invalid(field, "0 to 100"));
        }
    }
    let worst_first = match q.order.as_deref() {
        None | Some("newest") => false,
        Some("worst") => true,
        Some(_) => return Err(ApiError::invalid("order", "newest or worst")),
    };
    let filter = AnalysisFilter {
        worst_first,
        passed: q.passed,
        min_score: q.min_score,
        max_score: q.max_score,
        failed_item: q.failed_item.filter(|i| !i.is_empty()),
        since: q.since,
        until: q.until,
        limit,
    };
    let store = &s.ctx.store;
    let rows = store.analyses(&filter).await?;
    let mut out = Vec::with_capacity(rows.len());
    for listed in rows {
        let mut v = analysis_json(&listed.analysis, false);
        v["record_id"] = json!(listed.analysis.record_id);
        v["call_id"] = json!(listed.call_id);
        v["route"] = json!(listed.route);
        out.push(v);
    }
    Ok(Json(out).into_response())
}
