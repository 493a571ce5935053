//! Webhooks. An event is written to the store's outbox in the call's or
//! campaign's own path (one INSERT per event: a slow or failing receiver
//! never delays a call); a sender on every node leases due deliveries,
//! POSTs them signed (HMAC-SHA256 over `timestamp.body`), and retries a
//! failure with a growing delay until it is taken or given up. Deliveries
//! survive a restart (a lease left by a stopped node runs out).
//!
//! Events: `call.answered` and `call.ended` of every call (a campaign's
//! call ends with its attempt and the contact's disposition, sent once the
//! dialer has written them), `campaign.finished`, `call.analyzed` (a
//! finished call scored against its pack's scorecard). Receivers: `[[webhook]]`
//! of the configuration, and a campaign's own (`settings.webhooks`).

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_campaign::webhook::{WebhookTarget, CALL_ANALYZED, CALL_ANSWERED, CALL_ENDED, CAMPAIGN_FINISHED};
use voxline_campaign::AttemptReport;
use voxline_store::{now_ms, CallRecord, CallStore, Delivery, NewDelivery};

/// Tries of one delivery before it is given up.
pub const MAX_ATTEMPTS: i32 = 12;
/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries in flight at once on a node.
const IN_FLIGHT: usize = 8;
/// Deliveries in flight to one receiver at once (all nodes): a slow one
/// holds up no other.
const PER_RECEIVER: i64 = 2;
/// The header of the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
pub const SIGNATURE_HEADER: &str = "x-voxline-signature";

/// Writes events into the outbox.
pub struct Webhooks {
    store: CallStore,
    global: Vec<WebhookTarget>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        let urls: Vec<&str> = self.global.iter().map(|t| t.url.as_str()).collect();
        f.debug_struct("Webhooks").field("receivers", &urls).finish()
    }
}

/// The signature header's value for `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before try number `attempts + 1`: 5 s doubling, at most an hour.
fn backoff_ms(attempts: i32) -> i64 {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    (5_000i64 << exp.min(10)).min(3_600_000)
}

/// A call record as an event carries it.
fn call_json(r: &CallRecord) -> Value {
    let duration_s = match (r.answer_at, r.end_at) {
        (Some(a), Some(e)) => Some((e - a) as f64 / 1000.0),
        _ => None,
    };
    json!({
        "call_id": r.call_id,
        "record_id": r.id,
        "node": r.node,
        "direction": r.direction,
        "from": r.from_uri,
        "to": r.to_uri,
        "trunk": r.trunk,
        "route": r.route,
        "status": r.status,
        "invite_at": r.invite_at,
        "answer_at": r.answer_at,
        "end_at": r.end_at,
        "duration_s": duration_s,
        "end_reason": r.end_reason,
        "hangup_by": r.hangup_by,
        "sip_status": r.sip_status,
        "srtp": r.srtp,
        "outcome": r.outcome,
        "amd": r.amd,
        "transcript_url": format!("/api/calls/{}/transcript", r.call_id),
    })
}

impl Webhooks {
    /// The server's receivers (`[[webhook]]`) over `store`.
    pub fn new(store: CallStore, global: Vec<WebhookTarget>) -> Arc<Webhooks> {
        Arc::new(Webhooks {
            store,
            global,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The receivers of `event` (owner, target): the server's and, for a
    /// campaign's event, the campaign's own.
    async fn receivers(&self, event: &str, campaign_id: Option<&str>) -> Vec<(String, WebhookTarget)> {
        let mut out: Vec<(String, WebhookTarget)> = self
            .global
            .iter()
            .filter(|t| t.wants(event))
            .map(|t| (String::new(), t.clone()))
            .collect();
        if let Some(id) = campaign_id {
            match self.campaign_targets(id).await {
                Ok(ts) => out.extend(ts.into_iter().filter(|t| t.wants(event)).map(|t| (id.to_string(), t))),
                Err(e) => warn!(campaign = %id, error = %e, "campaign's webhooks not read"),
            }
        }
        out
    }

    async fn campaign_targets(&self, id: &str) -> Result<Vec<WebhookTarget>, String> {
        let row = self.store.campaign_by_id(id).await.map_err(|e| e.to_string())?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let settings = crate::ops::campaigns::settings_of(&row).map_err(|e| e.to_string())?;
        Ok(settings.webhooks)
    }

    /// Writes `event` with `payload` for each of its receivers.
    async fn emit(&self, event: &str, campaign_id: Option<&str>, payload: Value) {
        let receivers = self.receivers(event, campaign_id).await;
        if receivers.is_empty() {
            return;
        }
        let at = now_ms();
        let deliveries: Vec<NewDelivery> = receivers
            .into_iter()
            .map(|(owner, t)| {
                let id = format!("{:032x}", rand::random::<u128>());
                let mut body = json!({ "id": id, "event": event, "at": at });
                if let (Some(b), Some(p)) = (body.as_object_mut(), payload.as_object()) {
                    b.extend(p.clone());
                }
                NewDelivery {
                    id,
                    owner,
                    url: t.url,
                    event: event.to_string(),
                    body: body.to_string(),
                }
            })
            .collect();
        match self.store.enqueue_webhooks(&deliveries).await {
            Ok(()) => self.wake.notify_one(),
            Err(e) => warn!(event, error = %e, "webhook event not written"),
        }
    }

    /// A call was answered (record `record_id`).
    pub async fn call_answered(&self, record_id: &str) {
        let Some(record) = self.record(record_id).await else {
            return;
        };
        let campaign = self.campaign_of(&record.call_id).await;
        let mut payload = json!({ "call": call_json(&record) });
        if let Some((id, _, attempt)) = &campaign {
            payload["campaign"] = json!({ "id": id });
            payload["attempt"] = json!(attempt);
        }
        self.emit(CALL_ANSWERED, campaign.as_ref().map(|c| c.0.as_str()), payload)
            .await;
    }

    /// A call ended (record `record_id`). A campaign's call is reported
    /// by [`Webhooks::attempt_done`] instead, with its disposition.
    pub async fn call_ended(&self, record_id: &str) {
        let Some(record) = self.record(record_id).await else {
            return;
        };
        if self.campaign_of(&record.call_id).await.is_some() {
            return;
        }
        self.emit(CALL_ENDED, None, json!({ "call": call_json(&record) })).await;
    }

    /// A finished call was scored (record `record_id`): its score, verdict
    /// and failed items (the whole result at `qa_url`).
    pub async fn call_analyzed(&self, record_id: &str) {
        let Some(record) = self.record(record_id).await else {
            return;
        };
        let analysis = match self.store.analysis(record_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "analysis not read for its webhook");
                return;
            }
        };
        let failed = crate::analysis::failed_items(analysis.result.as_deref());
        let campaign = self.campaign_of(&record.call_id).await;
        let payload = json!({
            "call": call_json(&record),
            "score": analysis.score,
            "passed": analysis.passed,
            "failed_items": failed,
            "summary": analysis
                .summary
                .as_deref()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| v.get("summary").cloned()),
            "qa_url": format!("/api/calls/{}/qa", record.call_id),
            "summary_url": format!("/api/calls/{}/summary", record.call_id),
        });
        self.emit(CALL_ANALYZED, campaign.as_ref().map(|c| c.0.as_str()), payload)
            .await;
    }

    /// A campaign call's attempt ended and its contact moved on.
    pub async fn attempt_done(&self, r: &AttemptReport) {
        let record = match self.store.find_by_call_id(&r.call_id).await {
            Ok(rows) => rows.into_iter().find(|c| c.direction == "outbound"),
            Err(e) => {
                warn!(error = %e, "call record not read for its webhook");
                None
            }
        };
        let name = self
            .store
            .campaign_by_id(&r.campaign_id)
            .await
            .ok()
            .flatten()
            .map(|c| c.name);
        let payload = json!({
            "call": record.as_ref().map(call_json),
            "campaign": { "id": r.campaign_id, "name": name },
            "contact": { "number": r.number, "variables": r.variables },
            "attempt": r.attempt,
            "result": r.result,
            "sip_status": r.sip_status,
            "outcome": r.outcome,
            "disposition": r.disposition,
            "retry_at": r.retry_at,
        });
        self.emit(CALL_ENDED, Some(&r.campaign_id), payload).await;
    }

    /// A campaign finished: its contacts by disposition.
    pub async fn campaign_finished(&self, campaign_id: &str) {
        let Ok(Some(row)) = self.store.campaign_by_id(campaign_id).await else {
            return;
        };
        let counts = self.store.contact_counts(campaign_id).await.unwrap_or_default();
        let by_disposition: serde_json::Map<String, Value> =
            counts.by_disposition.into_iter().map(|(k, n)| (k, json!(n))).collect();
        let payload = json!({
            "campaign": { "id": row.id, "name": row.name, "route": row.route, "state": row.state },
            "by_disposition": by_disposition,
        });
        self.emit(CAMPAIGN_FINISHED, Some(campaign_id), payload).await;
    }

    async fn record(&self, id: &str) -> Option<CallRecord> {
        match self.store.record(id).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "call record not read for its webhook");
                None
            }
        }
    }

    async fn campaign_of(&self, call_id: &str) -> Option<(String, i64, i32)> {
        self.store.attempt_of_call(call_id).await.ok().flatten()
    }

    /// Sends due deliveries until `shutdown` (at most [`IN_FLIGHT`] at once).
    pub async fn send(self: Arc<Self>, shutdown: CancellationToken) {
        let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "webhooks cannot be sent: no HTTP client");
                return;
            }
        };
        let mut flying: JoinSet<()> = JoinSet::new();
        loop {
            while flying.try_join_next().is_some() {}
            if shutdown.is_cancelled() {
                break;
            }
            let leased = if flying.len() < IN_FLIGHT {
                // A lease outlasts the receiver's time to answer.
                let until = now_ms() + 2 * TIMEOUT.as_millis() as i64 + 5_000;
                match self.store.lease_webhook(until, PER_RECEIVER).await {
                    Ok(d) => d,
                    Err(e) => {
                        warn!(error = %e, "webhook outbox not read");
                        None
                    }
                }
            } else {
                None
            };
            match leased {
                Some(d) => {
                    let (me, http) = (self.clone(), http.clone());
                    flying.spawn(async move { me.deliver(&http, d).await });
                }
                None => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        Some(_) = flying.join_next(), if !flying.is_empty() => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        // What is in flight gets 2 s more; a lease left is taken again
        // after a restart (delivery is at least once: receivers drop a
        // repeated `x-voxline-delivery`).
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while flying.join_next().await.is_some() {}
        })
        .await;
    }

    /// The secret of a delivery's receiver as configured now.
    async fn secret_of(&self, d: &Delivery) -> Option<String> {
        if d.owner.is_empty() {
            return self.global.iter().find(|t| t.url == d.url).map(|t| t.secret.clone());
        }
        self.campaign_targets(&d.owner)
            .await
            .ok()?
            .into_iter()
            .find(|t| t.url == d.url)
            .map(|t| t.secret)
    }

    /// One try of one delivery.
    async fn deliver(&self, http: &reqwest::Client, d: Delivery) {
        let Some(secret) = self.secret_of(&d).await else {
            let why = "its receiver is no longer configured";
            warn!(delivery = %d.id, url = %d.url, "webhook given up: {why}");
            self.failed(&d, None, why, false).await;
            return;
        };
        let t = now_ms() / 1000;
        let sent = http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("voxline/", env!("CARGO_PKG_VERSION")))
            .header("x-voxline-event", &d.event)
            .header("x-voxline-delivery", &d.id)
            .header(SIGNATURE_HEADER, signature(&secret, t, &d.body))
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                let status = resp.status().as_u16();
                if let Err(e) = self.store.webhook_delivered(&d.id, status).await {
                    warn!(delivery = %d.id, error = %e, "webhook delivered but not marked: it may be sent again");
                }
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                self.failed(&d, Some(status), &format!("HTTP {status}"), true).await;
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else {
                    format!("not sent: {e}")
                };
                self.failed(&d, None, &why, true).await;
            }
        }
    }

    async fn failed(&self, d: &Delivery, status: Option<u16>, why: &str, retry: bool) {
        let retry_at = (retry && d.attempts < MAX_ATTEMPTS).then(|| now_ms() + backoff_ms(d.attempts));
        match retry_at {
            Some(_) => {
                info!(delivery = %d.id, url = %d.url, attempts = d.attempts, why, "webhook not taken: tried again later")
            }
            None => warn!(delivery = %d.id, url = %d.url, attempts = d.attempts, why, "webhook given up"),
        }
        if let Err(e) = self.store.webhook_failed(&d.id, status, why, retry_at).await {
            warn!(delivery = %d.id, error = %e, "webhook try not written: tried again when its lease runs out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_time_and_body() {
        // Known answer, from Python's hmac: hmac.new(key, b'1765000000.{"a":1}', sha256).
        assert_eq!(
            signature("0123456789abcdef", 1_765_000_000, "{\"a\":1}"),
            "t=1765000000,v1=7788c91cdad67ce871050c332a12599eaad2581fde3b41fb9d4db7b694a43a67"
        );
        let later = signature("0123456789abcdef", 1_765_000_001, "{\"a\":1}");
        assert!(
            !later.ends_with("7788c91cdad67ce871050c332a12599eaad2581fde3b41fb9d4db7b694a43a67"),
            "the time is signed"
        );
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 5_000);
        assert_eq!(backoff_ms(2), 10_000);
        assert_eq!(backoff_ms(5), 80_000);
        assert_eq!(backoff_ms(11), 3_600_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
