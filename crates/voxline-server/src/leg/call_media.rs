//! What every handler does around its conversation: ring, bind an RTP
//! port, answer with SDP (or place the call and take its answer), open the
//! recording, mark the record answered; and at the end, log the media
//! counters and complete the record.

use crate::config::MediaConfig;
use crate::leg::{chrono_day, rtp_target, safe_name};
use crate::records::{call_end, Records};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};
use voxline_media::leg::Direction;
use voxline_media::{CallRecorder, MediaStats, RtpSession};
use voxline_sip::{CallEvent, EndReason, InboundCall, OutboundCall, Party, PlaceCall, SipEndpoint};

/// A call answered with media: its RTP session (target set) and recorder.
pub struct Answered {
    /// The call's RTP session.
    pub rtp: RtpSession,
    /// The call's recording, when recording is on.
    pub recorder: Option<CallRecorder>,
}

/// How a call ended, as its record is completed.
#[derive(Debug)]
pub struct Outcome {
    /// Who ended it and why.
    pub end: EndReason,
    /// It was answered.
    pub answered: bool,
    /// Its media counters, when it had media.
    pub stats: Option<Arc<MediaStats>>,
    /// What went wrong, when something did.
    pub detail: Option<String>,
    /// The conversation's outcome (a flow step's disposition, `opted_out`).
    pub conversation: Option<String>,
}

impl Outcome {
    /// A call that ended before it was answered.
    pub fn unanswered(end: EndReason, detail: Option<String>) -> Outcome {
        Outcome {
            end,
            answered: false,
            stats: None,
            detail,
            conversation: None,
        }
    }

    /// An answered call whose media ran on `rtp`.
    pub fn answered(end: EndReason, rtp: &RtpSession, detail: Option<String>) -> Outcome {
        Outcome {
            end,
            answered: true,
            stats: Some(rtp.stats()),
            detail,
            conversation: None,
        }
    }
}

/// An end of a call decided on this side (`reason` as the record keeps it).
pub(crate) fn local_end(reason: &str) -> EndReason {
    EndReason {
        by: Party::Local,
        reason: reason.into(),
        status: None,
    }
}

/// Rings (180, then `ring_ms`), binds a media port, answers, opens the
/// recording and marks the record answered. Err is the call's outcome when
/// it ended before or while answering.
pub async fn answer_with_media(
    call: &mut InboundCall,
    media: &MediaConfig,
    record: bool,
    ring_ms: u64,
    records: &Records,
    record_id: &str,
) -> Result<Answered, Outcome> {
    if let Err(e) = call.ringing() {
        warn!(error = %e, "could not send 180");
    }
    if ring_ms > 0 {
        let ring = tokio::time::sleep(Duration::from_millis(ring_ms));
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                ev = call.next_event() => {
                    if let CallEvent::Ended(e) = ev {
                        return Err(Outcome::unanswered(e, None));
                    }
                }
            }
        }
    }
    let rtp = match media.bind_rtp(Some(call.info.remote.ip())).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "no RTP port: 503");
            call.reject(503).ok();
            let end = EndReason {
                by: Party::Local,
                reason: "no_media_port".into(),
                status: Some(503),
            };
            return Err(Outcome::unanswered(end, Some(e.to_string())));
        }
    };
    let advertised = SocketAddr::new(media.advertised(), rtp.local_addr().port());
    let negotiated = match call.answer(advertised).await {
        Ok(n) => n,
        Err(e) => {
            let end = call.ended().cloned().unwrap_or_else(|| local_end("error"));
            return Err(Outcome::unanswered(end, Some(e.to_string())));
        }
    };
    rtp.set_target(rtp_target(&negotiated));
    let recorder = open_recorder(media, record, &call.info.call_id);
    let rec_path = recorder.as_ref().map(|r| r.path().display().to_string());
    records
        .answered(
            record_id,
            negotiated.codec.name(),
            negotiated.srtp_suite(),
            rec_path.as_deref(),
        )
        .await;
    Ok(Answered { rtp, recorder })
}

/// Binds a media port, places `place` (its media address is filled in here)
/// and waits for the answer; then opens the recording and marks the record
/// answered. Err is the call's outcome when it was not answered.
pub async fn place_with_media(
    endpoint: &SipEndpoint,
    mut place: PlaceCall,
    media: &MediaConfig,
    record: bool,
    records: &Records,
    record_id: &str,
) -> Result<(OutboundCall, Answered), Outcome> {
    let rtp = match media.bind_rtp(None).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "no RTP port: the call is not placed");
            return Err(Outcome::unanswered(local_end("no_media_port"), Some(e.to_string())));
        }
    };
    place.media = SocketAddr::new(media.advertised(), rtp.local_addr().port());
    let call = match endpoint.place_call(place, |_, _| {}).await {
        Ok(Ok(call)) => call,
        Ok(Err(failure)) => {
            let end = EndReason {
                by: Party::Remote,
                reason: failure.reason.clone(),
                status: failure.status,
            };
            return Err(Outcome::unanswered(end, None));
        }
        Err(e) => return Err(Outcome::unanswered(local_end("error"), Some(e.to_string()))),
    };
    rtp.set_target(rtp_target(&call.negotiated));
    let recorder = open_recorder(media, record, &call.call_id);
    let rec_path = recorder.as_ref().map(|r| r.path().display().to_string());
    records
        .answered(
            record_id,
            call.negotiated.codec.name(),
            call.negotiated.srtp_suite(),
            rec_path.as_deref(),
        )
        .await;
    Ok((call, Answered { rtp, recorder }))
}

/// The call's recording under `recordings_dir/<day>/<call-id>.wav`, when
/// recording is on (a file that cannot be created turns it off, logged).
pub(crate) fn open_recorder(media: &MediaConfig, record: bool, call_id: &str) -> Option<CallRecorder> {
    if !record {
        return None;
    }
    let path = media
        .recordings_dir
        .join(chrono_day())
        .join(format!("{}.wav", safe_name(call_id)));
    match CallRecorder::create(&path) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(error = %e, "recording disabled for this call");
            None
        }
    }
}

/// Logs how the call ended with its media counters and completes its record.
pub async fn finish_call(records: &Records, record_id: &str, outcome: Outcome, direction: Direction) {
    let Outcome {
        end,
        answered,
        stats,
        detail,
        ..
    } = outcome;
    let load = |f: fn(&MediaStats) -> &std::sync::atomic::AtomicU64| {
        stats.as_deref().map(|s| f(s).load(Ordering::Relaxed)).unwrap_or(0)
    };
    info!(
        reason = %end.reason,
        by = party_name(&end, direction),
        sent = load(|s| &s.packets_sent),
        received = load(|s| &s.packets_received),
        lost = load(|s| &s.packets_lost),
        foreign = load(|s| &s.packets_foreign),
        srtp_rejected = load(|s| &s.srtp_rejected),
        jitter_us = load(|s| &s.jitter_us),
        "call ended"
    );
    records
        .ended(
            record_id,
            &call_end(
                answered,
                &end,
                direction == Direction::Inbound,
                stats.as_deref(),
                detail,
            ),
        )
        .await;
}

/// Who ended the call, as the record names them.
fn party_name(end: &EndReason, direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => end.by.inbound_name(),
        Direction::Outbound => end.by.outbound_name(),
    }
}
