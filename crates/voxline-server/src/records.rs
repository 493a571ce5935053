//! Writing call records from the call handlers: each write is queued off
//! the call's path ([`crate::record_queue`]) and tried again while the
//! store is unavailable; nothing a call does waits for the store.

use crate::record_queue::{RecordQueue, Write};
use crate::webhooks::Webhooks;
use std::sync::Arc;
use voxline_sip::{CallInfo, EndReason, RouteConfig};
use voxline_store::{now_ms, CallDirection, CallEnd, CallStore, NewCall, RtcpSummary, TranscriptLine};

/// The call-record writer shared by all calls.
#[derive(Debug, Clone)]
pub struct Records {
    store: CallStore,
    /// The writes on their way to the store.
    queue: RecordQueue,
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
    /// Queues writes to `store`; a call's answer and end are reported to
    /// `webhooks` once written (to its outbox), and `analyser` is woken when
    /// a call was queued for scoring. Writes waiting for the store are kept
    /// in `spool` (a folder) when given, and what an earlier run left there
    /// is written first.
    pub fn new(
        store: CallStore,
        webhooks: Option<Arc<Webhooks>>,
        analyser: Option<Arc<tokio::sync::Notify>>,
        spool: Option<&std::path::Path>,
    ) -> Result<Records, crate::record_spool::SpoolError> {
        let after = move |w: &Write| match w {
            Write::Answered { id, .. } => {
                if let Some(hooks) = webhooks.clone() {
                    let id = id.clone();
                    tokio::spawn(async move { hooks.call_answered(&id).await });
                }
            }
            Write::Ended { id, .. } => {
                if let Some(hooks) = webhooks.clone() {
                    let id = id.clone();
                    tokio::spawn(async move { hooks.call_ended(&id).await });
                }
            }
            Write::Analysis { .. } | Write::Training { .. } => {
                if let Some(wake) = &analyser {
                    wake.notify_one();
                }
            }
            Write::DoNotCall(number) => tracing::info!(%number, "added to the do-not-call list"),
            _ => {}
        };
        Ok(Records {
            queue: RecordQueue::start(store.clone(), Arc::new(after), spool)?,
            store,
        })
    }

    /// Queues a finished call for scoring against `scorecard` (the
    /// analyser of a `voxline serve` node takes it).
    pub async fn queue_analysis(&self, id: &str, scorecard: &std::path::Path) {
        self.queue.push(Write::Analysis {
            id: id.to_string(),
            scorecard: scorecard.display().to_string(),
        });
    }

    /// Queues a finished training call for its trainee's report on
    /// `scenario` (its name and file).
    pub async fn queue_training(&self, id: &str, trainee: &str, scenario: &str, file: &std::path::Path) {
        self.queue.push(Write::Training {
            id: id.to_string(),
            trainee: trainee.to_string(),
            scenario: scenario.to_string(),
            file: file.display().to_string(),
        });
    }

    /// The write queue (its figures; [`RecordQueue::flush`] at shutdown).
    pub fn queue(&self) -> &RecordQueue {
        &self.queue
    }

    /// Waits for the queued writes (at most `within`, the store may be
    /// down); says how many were left unwritten. Returns that number.
    pub async fn flush(&self, within: std::time::Duration) -> u64 {
        let left = self.queue.flush(within).await;
        match (left, self.queue.spool_dir()) {
            (0, _) => {}
            (left, Some(dir)) => tracing::warn!(
                left,
                waited_s = within.as_secs(),
                spool = %dir.display(),
                "call store unavailable at shutdown: record writes kept in the spool, written at the next start"
            ),
            (left, None) => tracing::error!(
                left,
                waited_s = within.as_secs(),
                "call store unavailable at shutdown: record writes lost"
            ),
        }
        left
    }

    /// Writes what is queued (waiting up to 30 s for the store), then
    /// closes the store (the CLI's end).
    pub async fn close(&self) {
        self.flush(std::time::Duration::from_secs(30)).await;
        self.store.close().await;
    }

    /// Writes the start of an inbound call; returns its record id.
    pub async fn inbound_started(&self, info: &CallInfo, route: &RouteConfig) -> String {
        let call = inbound_call(info, Some(route));
        let id = call.id.clone();
        self.queue.push(Write::Started(call));
        id
    }

    /// Writes the start of an outbound call.
    pub async fn outbound_started(&self, start: &OutboundStart<'_>) {
        self.queue.push(Write::Started(NewCall {
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
            channel: "sip".into(),
        }));
    }

    /// Writes the start of a browser's call (WebRTC) to `route`; returns
    /// the record's id. `caller` names the page's user (its token), `source`
    /// the page's address when known.
    pub async fn browser_started(
        &self,
        call_id: &str,
        caller: &str,
        source: Option<&str>,
        route: &RouteConfig,
    ) -> String {
        let id = new_record_id();
        self.queue.push(Write::Started(NewCall {
            id: id.clone(),
            call_id: call_id.to_string(),
            direction: CallDirection::Inbound,
            from_uri: caller.to_string(),
            to_uri: format!("webrtc:{}", route.name),
            source_addr: source.map(str::to_string),
            trunk: None,
            route: Some(route.name.clone()),
            handler: Some(route.handler.clone()),
            invite_at: now_ms(),
            channel: "webrtc".into(),
        }));
        id
    }

    /// Marks a call answered with its codec and SRTP suite (`None`: plain).
    pub async fn answered(&self, id: &str, codec: &str, srtp: Option<&str>, recording: Option<&str>) {
        self.queue.push(Write::Answered {
            id: id.to_string(),
            codec: codec.to_string(),
            srtp: srtp.map(str::to_string),
            recording: recording.map(str::to_string),
        });
    }

    /// The outcome a call's conversation gave it.
    pub async fn outcome(&self, id: &str, outcome: &str) {
        self.queue.push(Write::Outcome {
            id: id.to_string(),
            outcome: outcome.to_string(),
        });
    }

    /// Who answered an outbound call, decided `at_ms` after the answer.
    pub async fn amd(&self, id: &str, verdict: &str, at_ms: u64) {
        self.queue.push(Write::Amd {
            id: id.to_string(),
            verdict: verdict.to_string(),
            at_ms,
        });
    }

    /// Puts `number` on the do-not-call list of every campaign (the caller
    /// asked not to be called again).
    pub async fn do_not_call(&self, number: &str) {
        self.queue.push(Write::DoNotCall(number.to_string()));
    }

    /// Completes a call's record.
    pub async fn ended(&self, id: &str, end: &CallEnd) {
        self.queue.push(Write::Ended {
            id: id.to_string(),
            end: end.clone(),
        });
    }

    /// Appends a line to a call's transcript.
    pub async fn transcript_line(&self, id: &str, line: &TranscriptLine) {
        self.queue.push(Write::Transcript {
            id: id.to_string(),
            line: line.clone(),
        });
    }

    /// Writes one of the agent's turns with its stage times.
    pub async fn agent_turn(&self, id: &str, turn: &voxline_store::AgentTurn) {
        self.queue.push(Write::Turn {
            id: id.to_string(),
            turn: turn.clone(),
        });
    }

    /// Writes a flow step the call reached.
    pub async fn flow_step(&self, id: &str, step: &voxline_store::FlowStep) {
        self.queue.push(Write::Step {
            id: id.to_string(),
            step: step.clone(),
        });
    }

    /// Writes a tool call the call made.
    pub async fn tool_call(&self, id: &str, tool: &voxline_store::ToolUse) {
        self.queue.push(Write::Tool {
            id: id.to_string(),
            tool: tool.clone(),
        });
    }

    /// Records a routed call refused before it had a dialog.
    pub async fn rejected(&self, info: &CallInfo, route: Option<&RouteConfig>, status: u16, reason: &str) {
        let call = inbound_call(info, route);
        let id = call.id.clone();
        self.queue.push(Write::Started(call));
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
        channel: "sip".into(),
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
