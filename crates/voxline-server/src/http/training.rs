//! Training sessions: a training call's report (the trainee's scorecard
//! with quotes and times, objections, facts stated or missed), and the
//! sessions listed per trainee and scenario.

use super::error::{bad_query, list_limit, ApiError};
use super::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use voxline_analysis::training_report::TrainingReport;
use voxline_store::{TrainingFilter, TrainingRow};

/// Sessions listed at most.
const MAX_LIST: i64 = 1000;

/// A session as JSON: its state, trainee, scenario, score, verdict and
/// outcome; with `whole`, the report and its printed form.
pub fn session_json(t: &TrainingRow, whole: bool) -> Value {
    let report = t
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str::<TrainingReport>(r).ok());
    let mut v = json!({
        "record_id": t.record_id,
        "state": t.state,
        "trainee": t.trainee,
        "scenario": t.scenario,
        "queued_at": t.queued_at,
        "attempts": t.attempts,
        "reported_at": t.reported_at,
        "score": t.score,
        "passed": t.passed,
        "outcome": t.outcome,
        "missed": report.as_ref().map(TrainingReport::missed),
        "error": t.error,
    });
    if whole {
        v["report"] = report.as_ref().map_or(Value::Null, |r| json!(r));
        v["printed"] = report.as_ref().map_or(Value::Null, |r| json!(r.render()));
    }
    v
}

/// `GET /api/calls/{call_id}/training`: per record `{id, state, trainee,
/// scenario, score, passed, outcome, missed, report, printed}`; `state` is
/// `none` for a call that was not a training call, else pending, running,
/// done or failed.
pub async fn call(State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Response, ApiError> {
    let store = &s.ctx.store;
    let records = super::calls::records_of(store, &call_id).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut v = match store.training_session(&r.id).await? {
            Some(t) => session_json(&t, true),
            None => json!({ "state": "none" }),
        };
        v["id"] = json!(r.id);
        out.push(v);
    }
    Ok(Json(out).into_response())
}

/// `?trainee=&scenario=&limit=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    trainee: Option<String>,
    scenario: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/training`: training sessions, newest first, of one trainee
/// and one scenario when given; 50 unless `limit` (1 to 1000) says.
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let filter = TrainingFilter {
        trainee: q.trainee.filter(|t| !t.is_empty()),
        scenario: q.scenario.filter(|t| !t.is_empty()),
        limit: list_limit(q.limit, 50, MAX_LIST)?,
    };
    let rows = s.ctx.store.training_sessions(&filter).await?;
    let out: Vec<Value> = rows
        .iter()
        .map(|listed| {
            let mut v = session_json(&listed.session, false);
            v["call_id"] = json!(listed.call_id);
            v["route"] = json!(listed.route);
            v["answered_at"] = json!(listed.started_at);
            v
        })
        .collect();
    Ok(Json(out).into_response())
}
