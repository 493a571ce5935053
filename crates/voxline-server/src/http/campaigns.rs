//! Campaigns and the do-not-call lists over HTTP, on the same operations
//! as `voxline campaign` (`crate::ops::campaigns`).

use super::error::{bad_query, body_bytes, list_limit, ApiError, JsonBody};
use super::{json_with, AppState};
use crate::http::auth::Caller;
use crate::ops::campaigns::{self as ops, CampaignView, ContactsInput, Move};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use voxline_campaign::CampaignSettings;

/// `GET /api/campaigns`: every campaign, oldest first.
pub async fn list(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(ops::list(&s.ctx.store).await?).into_response())
}

/// `POST /api/campaigns`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Its unique name.
    name: String,
    /// The agent route its calls run on.
    route: String,
    /// Time zone, windows, trunk, pacing, retries, AMD.
    settings: CampaignSettings,
}

/// `POST /api/campaigns`: creates a campaign (draft); 201.
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(c): JsonBody<NewCampaign>,
) -> Result<Response, ApiError> {
    let row = ops::create(&s.ctx.cfg, &s.ctx.store, &c.name, &c.route, c.settings.clone()).await?;
    tracing::info!(campaign = %row.name, token = %caller.0, "campaign created through the API");
    Ok(json_with(StatusCode::CREATED, CampaignView::of(&row, &c.settings)))
}

/// `GET /api/campaigns/{campaign}` (its id or name).
pub async fn show(State(s): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let (row, settings) = ops::find(&s.ctx.store, &key).await?;
    Ok(Json(CampaignView::of(&row, &settings)).into_response())
}

/// `?all_or_nothing=true`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    #[serde(default)]
    all_or_nothing: bool,
}

/// A row not taken.
#[derive(Serialize)]
struct Rejected {
    line: usize,
    why: String,
}

/// A row merged into an earlier one with the same number.
#[derive(Serialize)]
struct Merged {
    line: usize,
    into: usize,
}

/// What an upload read and stored.
#[derive(Serialize)]
struct UploadReport {
    contacts: usize,
    merged: Vec<Merged>,
    rejected: Vec<Rejected>,
    stored: bool,
    added: u64,
    already_there: u64,
}

/// `POST /api/campaigns/{campaign}/contacts`: a CSV (`text/csv`) or JSON
/// array (`application/json`) of contacts. 200 with what was read and
/// stored (bad rows by line); with `?all_or_nothing=true` and a bad row,
/// 422 and nothing stored.
pub async fn upload(State(s): State<AppState>, Path(key): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let Query(q) = Query::<UploadQuery>::from_request_parts(&mut parts, &s)
        .await
        .map_err(bad_query)?;
    let caller = parts
        .extensions
        .get::<Caller>()
        .map_or_else(String::new, |c| c.0.clone());
    let kind = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_json = kind.starts_with("application/json");
    if !is_json && !kind.starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send contacts as text/csv or application/json",
        ));
    }
    let bytes = body_bytes(Request::from_parts(parts, body), &s).await?;
    let (row, settings) = ops::find(&s.ctx.store, &key).await?;
    let text;
    let input = if is_json {
        text = std::str::from_utf8(&bytes).map_err(|e| ApiError::invalid("body", format!("not UTF-8: {e}")))?;
        ContactsInput::Json(text)
    } else {
        ContactsInput::Csv(&bytes)
    };
    let done = ops::import(&s.ctx.store, &row, &settings, input, q.all_or_nothing, &ops::Quiet).await?;
    let report = UploadReport {
        contacts: done.report.contacts.len(),
        merged: done
            .report
            .merged
            .iter()
            .map(|&(line, into)| Merged { line, into })
            .collect(),
        rejected: done
            .report
            .rejected
            .iter()
            .map(|r| Rejected {
                line: r.line,
                why: r.why.clone(),
            })
            .collect(),
        stored: done.stored.is_some(),
        added: done.stored.as_ref().map_or(0, |s| s.added),
        already_there: done.stored.as_ref().map_or(0, |s| s.already_there),
    };
    tracing::info!(campaign = %row.name, token = %caller, added = report.added, rejected = report.rejected.len(), "contacts uploaded through the API");
    let status = if report.stored {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(json_with(status, report))
}

/// The campaign after a change of state.
async fn changed(s: &AppState, key: &str, caller: &Caller, what: &str) -> Result<Response, ApiError> {
    let (row, settings) = ops::find(&s.ctx.store, key).await?;
    tracing::info!(campaign = %row.name, token = %caller.0, "campaign {what} through the API");
    Ok(Json(CampaignView::of(&row, &settings)).into_response())
}

/// `POST /api/campaigns/{campaign}/start`: 422 naming what is missing
/// (`trunk`, `contacts`), 409 when its state does not allow it.
pub async fn start(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let (row, settings) = ops::find(&s.ctx.store, &key).await?;
    ops::start(&s.ctx.cfg, &s.ctx.store, &row, &settings).await?;
    changed(&s, &key, &caller, "started").await
}

async fn change(s: AppState, caller: Caller, key: String, m: Move, what: &str) -> Result<Response, ApiError> {
    let (row, _) = ops::find(&s.ctx.store, &key).await?;
    ops::change(&s.ctx.store, &row, m).await?;
    changed(&s, &key, &caller, what).await
}

/// `POST /api/campaigns/{campaign}/pause`.
pub async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    change(s, caller, key, Move::Pause, "paused").await
}

/// `POST /api/campaigns/{campaign}/resume`.
pub async fn resume(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    change(s, caller, key, Move::Resume, "resumed").await
}

/// `POST /api/campaigns/{campaign}/stop`.
pub async fn stop(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    change(s, caller, key, Move::Stop, "stopped").await
}

/// `GET /api/campaigns/{campaign}/progress`: contacts by state and
/// disposition, the rate of the last minute, the time left at that rate.
pub async fn progress(State(s): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let (row, _) = ops::find(&s.ctx.store, &key).await?;
    Ok(Json(ops::progress(&s.ctx.store, &row).await?).into_response())
}

/// `?bucket_s=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    bucket_s: Option<i64>,
}

/// `GET /api/campaigns/{campaign}/timeline?bucket_s=N` (60 unless told; 1
/// to 86400): its attempts over time, `{bucket_s, spans: [{at, results:
/// {result: count}}]}`, oldest first; a result is the conversation's
/// outcome when it gave one, else how the call ended (`under_way` while
/// it lasts).
pub async fn timeline(
    State(s): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let bucket_s = list_limit(q.bucket_s, 60, 86_400).map_err(|_| ApiError::invalid("bucket_s", "1 to 86400"))?;
    let (row, _) = ops::find(&s.ctx.store, &key).await?;
    let rows = s.ctx.store.attempts_over_time(&row.id, bucket_s * 1000).await?;
    let mut spans: Vec<serde_json::Value> = Vec::new();
    for (at, result, n) in rows {
        if spans.last().is_none_or(|s| s["at"] != at) {
            spans.push(serde_json::json!({ "at": at, "results": {} }));
        }
        if let Some(last) = spans.last_mut() {
            last["results"][result] = n.into();
        }
    }
    Ok(Json(serde_json::json!({ "bucket_s": bucket_s, "spans": spans })).into_response())
}

/// `GET /api/campaigns/{campaign}/results.csv`: every contact with its outcome.
pub async fn results(State(s): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let (row, _) = ops::find(&s.ctx.store, &key).await?;
    let mut csv = Vec::new();
    ops::export_csv(&s.ctx.store, &row, &mut csv).await?;
    let name: String = row
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-results.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// `?after=NUMBER&limit=N` on a do-not-call list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DncQuery {
    #[serde(default)]
    after: String,
    limit: Option<i64>,
}

/// Numbers to add to a do-not-call list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DncNumbers {
    /// E.164, or national with `country`.
    numbers: Vec<String>,
    /// ISO 3166 country of numbers written without a country code.
    #[serde(default)]
    country: Option<String>,
}

async fn dnc_page(s: &AppState, scope: &str, q: Result<Query<DncQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = super::error::list_limit(q.limit, 1000, 10_000)?;
    let page = s.ctx.store.dnc_page(scope, &q.after, limit).await?;
    let numbers: Vec<serde_json::Value> = page
        .into_iter()
        .map(|(number, added_at)| serde_json::json!({ "number": number, "added_at": added_at }))
        .collect();
    Ok(Json(numbers).into_response())
}

async fn dnc_add(s: &AppState, scope: &str, caller: &Caller, body: DncNumbers) -> Result<Response, ApiError> {
    const MAX: usize = 100_000;
    if body.numbers.len() > MAX {
        return Err(ApiError::invalid("numbers", format!("at most {MAX} at once")));
    }
    let numbers = ops::normalise_numbers(&body.numbers, body.country.as_deref())?;
    let added = s.ctx.store.add_dnc(scope, &numbers).await?;
    tracing::info!(scope, token = %caller.0, added, "do-not-call numbers added through the API");
    Ok(Json(serde_json::json!({
        "added": added,
        "already_there": numbers.len() as u64 - added,
        "numbers": numbers,
    }))
    .into_response())
}

async fn dnc_remove(s: &AppState, scope: &str, caller: &Caller, number: &str) -> Result<Response, ApiError> {
    let numbers = ops::normalise_numbers(&[number.to_string()], None).map_err(|_| {
        ApiError::invalid(
            "number",
            format!("{number:?} is not a number in E.164 (+ and the country code)"),
        )
    })?;
    if s.ctx.store.remove_dnc(scope, &numbers).await? == 0 {
        return Err(ApiError::not_found(format!("{} is not on the list", numbers[0])));
    }
    tracing::info!(scope, token = %caller.0, number = %numbers[0], "do-not-call number removed through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/dnc`: the global do-not-call list, in pages.
pub async fn global_dnc(
    State(s): State<AppState>,
    q: Result<Query<DncQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    dnc_page(&s, "", q).await
}

/// `POST /api/dnc`: numbers onto the global list (every campaign checks it).
pub async fn add_global_dnc(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<DncNumbers>,
) -> Result<Response, ApiError> {
    dnc_add(&s, "", &caller, body).await
}

/// `DELETE /api/dnc/{number}`: a number off the global list.
pub async fn remove_global_dnc(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    dnc_remove(&s, "", &caller, &number).await
}

/// `GET /api/campaigns/{campaign}/dnc`: the campaign's own list.
pub async fn campaign_dnc(
    State(s): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<DncQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = ops::dnc_scope(&s.ctx.store, Some(&key)).await?;
    dnc_page(&s, &scope, q).await
}

/// `POST /api/campaigns/{campaign}/dnc`: numbers onto the campaign's list.
pub async fn add_campaign_dnc(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<DncNumbers>,
) -> Result<Response, ApiError> {
    let scope = ops::dnc_scope(&s.ctx.store, Some(&key)).await?;
    dnc_add(&s, &scope, &caller, body).await
}

/// `DELETE /api/campaigns/{campaign}/dnc/{number}`.
pub async fn remove_campaign_dnc(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, number)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let scope = ops::dnc_scope(&s.ctx.store, Some(&key)).await?;
    dnc_remove(&s, &scope, &caller, &number).await
}
