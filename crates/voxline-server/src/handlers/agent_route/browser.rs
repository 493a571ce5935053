//! A browser's call to an agent route (WebRTC): the call's record from the
//! page's offer on, an RTP session on loopback for the relay, the answer
//! to the page, the wait for ICE and DTLS, then the same voice session as
//! a phone call on a [`WebRtcLeg`]. What the page is told goes through a
//! [`PageFeed`] (the signalling socket writes it out): the answer, the
//! connection, each transcript line as it is said, the end, or the error
//! that stopped the call.

use super::{AgentRoute, StoreSink};
use crate::handlers::live::{LiveCall, LiveGuard};
use crate::leg::call_media::{finish_call, local_end, open_recorder, Outcome};
use crate::records::{new_call_id, Records};
use std::collections::BTreeMap;
use std::net::IpAddr;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};
use voxline_media::leg::{Direction, LegFacts};
use voxline_media::RtpSession;
use voxline_sip::{EndReason, Party, RouteConfig};
use voxline_store::TranscriptLine;
use voxline_webrtc::{BrowserPeer, PageSignals, WebRtcError, WebRtcLeg, WebRtcSettings};

/// What the page is told, as JSON messages on its socket
/// (`{"type": "answer", ...}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToPage {
    /// The SDP answer to the page's offer, and the call's id.
    Answer {
        /// The SDP answer.
        sdp: String,
        /// The call's id (its record's `call_id`).
        call_id: String,
    },
    /// ICE and DTLS completed: the agent is on the line.
    Connected,
    /// A transcript line, as it is said.
    Line {
        /// `caller` or `agent` (or `system` for notes).
        speaker: String,
        /// What was said.
        text: String,
        /// When, ms from the call's start.
        at_ms: i64,
    },
    /// The call is over.
    Ended {
        /// Why (`hangup`, `agent_goodbye`, `max_duration`...).
        reason: String,
        /// Who ended it (`caller`, `voxline`).
        by: String,
    },
    /// Something stopped the call (a bad offer, ICE that never completed).
    Error {
        /// What, for a person.
        message: String,
    },
}

/// Messages queued for the page at most (a page that does not read loses
/// the newest transcript lines, never stalls the call).
pub const PAGE_BACKLOG: usize = 256;

/// The way to the page's socket.
#[derive(Debug, Clone)]
pub struct PageFeed(mpsc::Sender<ToPage>);

impl PageFeed {
    /// A feed and the receiver the socket writes from.
    pub fn new() -> (PageFeed, mpsc::Receiver<ToPage>) {
        let (tx, rx) = mpsc::channel(PAGE_BACKLOG);
        (PageFeed(tx), rx)
    }

    /// Queues a message (dropped when the page is gone or far behind).
    pub fn send(&self, m: ToPage) {
        self.0.try_send(m).ok();
    }

    /// Queues a transcript line.
    pub fn line(&self, line: &TranscriptLine) {
        self.send(ToPage::Line {
            speaker: line.speaker.clone(),
            text: line.text.clone(),
            at_ms: line.start_ms,
        });
    }
}

/// A browser's call, as its signalling socket hands it over.
#[derive(Debug)]
pub struct BrowserCall {
    /// The page's SDP offer.
    pub offer: String,
    /// Who calls: `webrtc:<token name>`.
    pub caller: String,
    /// The page's address, when known.
    pub source: Option<String>,
    /// The way to the page.
    pub feed: PageFeed,
    /// The page's hang-up.
    pub signals: PageSignals,
}

impl AgentRoute {
    /// Runs a browser's call on this route to its end and completes its
    /// record (channel `webrtc`). Every way it can fail is told to the
    /// page and kept in the record.
    pub async fn browser_call(
        &self,
        route: &RouteConfig,
        call: BrowserCall,
        settings: &WebRtcSettings,
        records: &Records,
    ) {
        let call_id = new_call_id();
        let record_id = records
            .browser_started(&call_id, &call.caller, call.source.as_deref(), route)
            .await;
        let live = self.live.join(
            LiveCall::new(&call_id, "inbound", &route.name, &call.caller, "webrtc"),
            &self.shutdown,
        );
        let span = tracing::info_span!("agent", call_id = %call_id, channel = "webrtc", domain = %self.params.domain.display());
        let feed = call.feed.clone();
        let caller = call.caller.clone();
        let outcome = self
            .browser_answer(call, &call_id, settings, records, &record_id, &live)
            .instrument(span)
            .await;
        drop(live);
        feed.send(ToPage::Ended {
            reason: outcome.end.reason.clone(),
            by: outcome.end.by.inbound_name().to_string(),
        });
        let answered = outcome.answered;
        finish_call(records, &record_id, outcome, Direction::Inbound).await;
        self.queue_analysis(records, &record_id, answered, &caller).await;
    }

    /// Answers the page, waits for the connection, and talks on it.
    async fn browser_answer(
        &self,
        call: BrowserCall,
        call_id: &str,
        settings: &WebRtcSettings,
        records: &Records,
        record_id: &str,
        live: &LiveGuard,
    ) -> Outcome {
        let hangup = live.hangup.clone();
        let BrowserCall {
            offer,
            caller,
            feed,
            signals,
            ..
        } = call;
        let fail = |reason: &str, by: Party, message: String| {
            feed.send(ToPage::Error {
                message: message.clone(),
            });
            let end = EndReason {
                by,
                reason: reason.into(),
                status: None,
            };
            Outcome::unanswered(end, Some(message))
        };
        // The relay's session: plain RTP on loopback, never on the network.
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let rtp = match RtpSession::bind(loopback, self.media.rtp_port_min, self.media.rtp_port_max).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "no RTP port for a browser call");
                return fail(
                    "no_media_port",
                    Party::Local,
                    format!("the server has no media port free: {e}"),
                );
            }
        };
        let mut peer = match BrowserPeer::answer(&offer, settings, &rtp).await {
            Ok(p) => p,
            Err(e) => {
                let reason = match e {
                    WebRtcError::BadOffer(_) | WebRtcError::NoOpus(_) => "bad_offer",
                    _ => "error",
                };
                warn!(error = %e, "browser offer not answered");
                let by = if reason == "bad_offer" {
                    Party::Remote
                } else {
                    Party::Local
                };
                return fail(reason, by, e.to_string());
            }
        };
        feed.send(ToPage::Answer {
            sdp: peer.answer_sdp().to_string(),
            call_id: call_id.to_string(),
        });
        let connected = tokio::select! {
            r = peer.connected(settings.connect_timeout) => r.map_err(|e| (if matches!(e, WebRtcError::ConnectTimeout(_)) { "ice_timeout" } else { "ice_failed" }, e.to_string())),
            _ = signals.page_hung_up.cancelled() => Err(("cancel", "the page hung up before the call connected".to_string())),
            _ = hangup.cancelled() => Err(("operator", "hung up before the call connected".to_string())),
        };
        if let Err((reason, message)) = connected {
            peer.close().await;
            info!(reason, "browser call not connected");
            let by = if reason == "cancel" {
                Party::Remote
            } else {
                Party::Local
            };
            return fail(reason, by, message);
        }
        feed.send(ToPage::Connected);
        let record = self.params.record.unwrap_or(self.media.record);
        let recorder = open_recorder(&self.media, record, call_id);
        let rec_path = recorder.as_ref().map(|r| r.path().display().to_string());
        records
            .answered(record_id, "opus", Some("dtls-srtp"), rec_path.as_deref())
            .await;
        let facts = LegFacts {
            call_id: call_id.to_string(),
            direction: Direction::Inbound,
            caller: caller.clone(),
            callee: format!("webrtc:{}", self.params.domain.display()),
            channel: "webrtc",
            variables: BTreeMap::from([("channel".to_string(), "webrtc".to_string())]),
        };
        let stats = peer.relay_stats();
        let mut leg = match WebRtcLeg::new(peer, rtp.clone(), facts, signals) {
            Ok(leg) => leg,
            Err(why) => {
                warn!(error = %why, "media port unavailable on a browser call");
                return Outcome::answered(local_end("error"), &rtp, Some(why));
            }
        };
        let mut sink = StoreSink::new(records, record_id, None, live.feed());
        sink.page = Some(feed.clone());
        let outcome = self.talk(&mut leg, rtp, recorder, sink, None, hangup).await;
        leg.close().await;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        info!(
            from_browser = load(&stats.from_browser),
            to_browser = load(&stats.to_browser),
            refused = load(&stats.refused),
            "browser relay"
        );
        outcome
    }
}
