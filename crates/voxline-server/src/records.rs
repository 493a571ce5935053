//! Writing call records from the call handlers. A failed write is logged and
//! never ends a call.

use crate::webhooks::Webhooks;
use std::sync::Arc;
use voxline_sip::{CallInfo, EndReason, RouteConfig};
use voxline_store::{now_ms, CallDirection, CallEnd, CallStore, NewCall, RtcpSummary, TranscriptLine};

/// The call-record writer shared by all calls.
#[derive(Debug, Clone)]
pub struct Records {
    store: CallStore,
    /// Where a call's answer and end are reported (`[[webhook]]`, campaigns').
    webhooks: Option<Arc<Webhooks>>,
    /// Wakes this node's analyser when a call is queued for scoring.
    analysis: Option<Arc<tokio::sync::Notify>>,
}

/// A fresh record id.
pub fn new_record_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A fresh SIP Call-ID for a call this server places.
pub fn new_call_id() -> String {
    format!("{:032x}@voxline", rand::random::<u128>())
}

impl Records {
    /// Wraps an open store.
    pub fn new(store: CallStore) -> Records {
        Records {
            store,
            webhooks: None,
            analysis: None,
        }
    }

    /// The same, waking `analyser` when a call is queued for scoring.
    pub fn with_analysis(self, analyser: Arc<tokio::sync::Notify>) -> Records {
        Records {
            analysis: Some(analyser),
            ..self
        }
    }

    /// Queues a finished call for scoring against `scorecard` (the
    /// analyser of a `voxline serve` node takes it).
    pub async fn queue_analysis(&self, id: &str, scorecard: &std::path::Path) {
        match self.store.queue_analysis(id, &scorecard.display().to_string()).await {
            Ok(()) => {
                if let Some(wake) = &self.analysis {
                    wake.notify_one();
                }
            }
            Err(e) => tracing::error!(error = %e, "call not queued for quality inspection"),
        }
    }

    /// The same, reporting calls answered and ended to `webhooks` (written
    /// to its outbox off the call's path).
    pub fn with_webhooks(self, webhooks: Arc<Webhooks>) -> Records {
        Records {
            webhooks: Some(webhooks),
            ..self
        }
    }

    /// The store.
    pub fn store(&self) -> &CallStore {
        &self.store
    }

    /// Writes the start of an inbound call; returns its record id.
    pub async fn inbound_started(&self, info: &CallInfo, route: &RouteConfig) -> String {
        let call = inbound_call(info, Some(route));
        if let Err(e) = self.store.call_started(&call).await {
            tracing::error!(error = %e, "call record not written");
        }
        call.id
    }

    /// Writes the start of an outbound call.
    pub async fn outbound_started(&self, start: &OutboundStart<'_>) {
        let call = NewCall {
            id: start.id.to_string(),
            call_id: start.call_id.to_string(),
            direction: CallDirection::Outbound,
            from_uri: start.from.to_string(),
            to_uri: start.to.to_string(),
            source_addr: None,
            trunk: start.trunk.map(str::to_string),
            route: start.route.map(str::to_string),
            handler: Some(start.handler.into()),
            invite_at: now_ms(),
        };
        if let Err(e) = self.store.call_started(&call).await {
            tracing::error!(error = %e, "call record not written");
        }
    }

    /// Marks a call answered.
    pub async fn answered(&self, id: &str, codec: &str, recording: Option<&str>) {
        if let Err(e) = self.store.call_answered(id, codec, recording).await {
            tracing::error!(error = %e, "call record not updated (answer)");
        }
        if let Some(w) = self.webhooks.clone() {
            let id = id.to_string();
            tokio::spawn(async move { w.call_answered(&id).await });
        }
    }

    /// The outcome a call's conversation gave it.
    pub async fn outcome(&self, id: &str, outcome: &str) {
        if let Err(e) = self.store.call_outcome(id, outcome).await {
            tracing::warn!(error = %e, "call outcome not stored");
        }
    }

    /// Who answered an outbound call, decided `at_ms` after the answer.
    pub async fn amd(&self, id: &str, verdict: &str, at_ms: u64) {
        if let Err(e) = self.store.call_amd(id, verdict, at_ms).await {
            tracing::warn!(error = %e, "answering-machine detection not stored");
        }
    }

    /// Puts `number` on the do-not-call list of every campaign (the caller
    /// asked not to be called again).
    pub async fn do_not_call(&self, number: &str) {
        match self.store.add_dnc("", &[number.to_string()]).await {
            Ok(_) => tracing::info!(%number, "added to the do-not-call list"),
            Err(e) => tracing::error!(error = %e, %number, "do-not-call entry not stored"),
        }
    }

    /// Completes a call's record.
    pub async fn ended(&self, id: &str, end: &CallEnd) {
        if let Err(e) = self.store.call_ended(id, end).await {
            tracing::error!(error = %e, "call record not completed");
        }
        if let Some(w) = self.webhooks.clone() {
            let id = id.to_string();
            tokio::spawn(async move { w.call_ended(&id).await });
        }
    }

    /// Appends a line to a call's transcript.
    pub async fn transcript_line(&self, id: &str, line: &TranscriptLine) {
        if let Err(e) = self.store.transcript_line(id, line).await {
            tracing::error!(error = %e, "transcript line not written");
        }
    }

    /// Writes one of the agent's turns with its stage times.
    pub async fn agent_turn(&self, id: &str, turn: &voxline_store::AgentTurn) {
        if let Err(e) = self.store.agent_turn(id, turn).await {
            tracing::error!(error = %e, "agent turn not written");
        }
    }

    /// Writes a flow step the call reached.
    pub async fn flow_step(&self, id: &str, step: &voxline_store::FlowStep) {
        if let Err(e) = self.store.flow_step(id, step).await {
            tracing::error!(error = %e, "flow step not written");
        }
    }

    /// Records a routed call refused before it had a dialog.
    pub async fn rejected(&self, info: &CallInfo, route: Option<&RouteConfig>, status: u16, reason: &str) {
        let call = inbound_call(info, route);
        let id = call.id.clone();
        if let Err(e) = self.store.call_started(&call).await {
            tracing::error!(error = %e, "call record not written");
            return;
        }
        let end = CallEnd {
            answered: false,
            reason: reason.to_string(),
            hangup_by: "voxline".into(),
            sip_status: Some(status),
            packets_sent: 0,
            packets_received: 0,
            packets_lost: 0,
            jitter_ms: 0.0,
            rtcp: None,
            detail: None,
        };
        self.ended(&id, &end).await;
    }
}

/// The start of an inbound call's record, with a fresh id.
fn inbound_call(info: &CallInfo, route: Option<&RouteConfig>) -> NewCall {
    NewCall {
        id: new_record_id(),
        call_id: info.call_id.clone(),
        direction: CallDirection::Inbound,
        from_uri: info.from.clone(),
        to_uri: info.to.clone(),
        source_addr: Some(info.remote.to_string()),
        trunk: Some(info.trunk.clone()),
        route: route.map(|r| r.name.clone()),
        handler: route.map(|r| r.handler.clone()),
        invite_at: now_ms(),
    }
}

/// The start of an outbound call's record.
pub struct OutboundStart<'a> {
    /// The record's id.
    pub id: &'a str,
    /// The SIP Call-ID the INVITE will carry.
    pub call_id: &'a str,
    /// voxline's From ("" when the trunk's caller-ID decides).
    pub from: &'a str,
    /// Who is called.
    pub to: &'a str,
    /// The trunk it leaves by.
    pub trunk: Option<&'a str>,
    /// The route whose handler talks on it (an agent's outbound call).
    pub route: Option<&'a str>,
    /// Who placed it: `call` (`voxline call`), `bridge` (an agent's transfer
    /// to a colleague), `agent` (an agent's own call).
    pub handler: &'a str,
}

/// Builds the end of a call record from an end reason and the media counters.
pub fn call_end(
    answered: bool,
    reason: &EndReason,
    inbound: bool,
    media: Option<&voxline_media::MediaStats>,
    detail: Option<String>,
) -> CallEnd {
    use std::sync::atomic::Ordering::Relaxed;
    let get = |f: fn(&voxline_media::MediaStats) -> &std::sync::atomic::AtomicU64| {
        media.map(|m| f(m).load(Relaxed) as i64).unwrap_or(0)
    };
    CallEnd {
        answered,
        reason: reason.reason.clone(),
        hangup_by: if inbound {
            reason.by.inbound_name()
        } else {
            reason.by.outbound_name()
        }
        .to_string(),
        sip_status: reason.status.or(if answered { Some(200) } else { None }),
        packets_sent: get(|m| &m.packets_sent),
        packets_received: get(|m| &m.packets_received),
        packets_lost: get(|m| &m.packets_lost),
        jitter_ms: get(|m| &m.jitter_us) as f64 / 1000.0,
        rtcp: (get(|m| &m.rtcp_reports) > 0).then(|| RtcpSummary {
            rtt_ms: Some(get(|m| &m.rtt_us))
                .filter(|&us| us > 0)
                .map(|us| us as f64 / 1000.0),
            remote_lost: get(|m| &m.remote_lost),
            remote_jitter_ms: get(|m| &m.remote_jitter_us) as f64 / 1000.0,
        }),
        detail,
    }
}
