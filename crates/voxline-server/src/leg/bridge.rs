//! A transfer's second way: when the far end refuses the REFER (or the
//! colleague is not reached through it), the agent calls the transfer
//! target itself, only through the route's `transfer_trunk` (its host,
//! credentials and call limits: an inbound call is never sent anywhere
//! else, decision 0004), and joins the two calls. Each side's audio (20 ms
//! frames at 16 kHz from its media port) is played to the other until
//! either side hangs up, either side's media times out (`[media]
//! timeout_secs`), or the call's longest duration passes. The SIP endpoint
//! starts after the handlers, so it reaches them through a [`Dialer`]
//! filled in at start-up. The colleague's leg gets a call record of its own
//! (outbound, handler `bridge`, its trunk), whose end names the caller's
//! call it was joined to.

use crate::config::MediaConfig;
use crate::leg::call_media::local_end;
use crate::leg::{rtp_target, RunningMedia};
use crate::records::{call_end, new_call_id, new_record_id, OutboundStart, Records};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_media::{MediaClock, MediaEvent, MediaPort, PortInput, RtpSession, PORT_RATE};
use voxline_sip::{CallDialog, CallEvent, EndReason, Party, PlaceCall, SipEndpoint};

/// Lets a handler place calls of its own once the endpoint is up.
#[derive(Clone, Default)]
pub struct Dialer(Arc<OnceLock<Arc<SipEndpoint>>>);

impl Dialer {
    /// Hands the running endpoint to every handler holding this dialer.
    pub fn set(&self, endpoint: Arc<SipEndpoint>) {
        let _ = self.0.set(endpoint);
    }

    /// The endpoint, once set.
    pub fn endpoint(&self) -> Option<Arc<SipEndpoint>> {
        self.0.get().cloned()
    }
}

/// What a bridge needs: the caller's media session, and of the server the
/// endpoint, media settings and clock, shutdown.
pub(crate) struct BridgeEnv<'a> {
    pub caller_rtp: &'a RtpSession,
    /// The trunk the colleague is called through.
    pub trunk: &'a str,
    /// The longest the joined calls may last.
    pub limit: Duration,
    /// Where the colleague's leg is recorded.
    pub records: &'a Records,
    pub dialer: &'a Dialer,
    pub media: &'a MediaConfig,
    pub clock: &'a MediaClock,
    pub shutdown: &'a CancellationToken,
}

/// How a bridge ended.
pub(crate) struct Bridged {
    /// How the caller's call ended.
    pub end: EndReason,
    /// The colleague answered and the calls were joined (else the caller
    /// hung up while the colleague's phone rang).
    pub joined: bool,
}

/// Calls `to` (ringing up to `ring`) and joins it to `call` until one side
/// hangs up. `Err` (why) when the new call could not be made: the caller is
/// still with the agent.
pub(crate) async fn bridge(
    call: &mut CallDialog,
    caller_port: &mut MediaPort,
    to: &str,
    ring: Duration,
    env: BridgeEnv<'_>,
) -> Result<Bridged, String> {
    let endpoint = env
        .dialer
        .endpoint()
        .ok_or_else(|| "no SIP endpoint to call from".to_string())?;
    let media = env.media;
    let rtp = media.bind_rtp(None).await.map_err(|e| format!("no RTP port: {e}"))?;
    rtp.set_media_timeout(Duration::from_secs(media.timeout_secs));
    let running = RunningMedia::start(&rtp, env.clock, None);
    let result = call_and_join(call, caller_port, &rtp, &endpoint, to, ring, &env).await;
    // The colleague's media stops here, however the bridge ended.
    running.stop().await;
    result
}

/// The bridge on the colleague's RTP session `rtp` (already running).
async fn call_and_join(
    call: &mut CallDialog,
    caller_port: &mut MediaPort,
    rtp: &RtpSession,
    endpoint: &SipEndpoint,
    to: &str,
    ring: Duration,
    env: &BridgeEnv<'_>,
) -> Result<Bridged, String> {
    let media = env.media;
    let abandon = CancellationToken::new();
    let leg_call_id = new_call_id();
    let leg = LegRecord {
        records: env.records,
        id: new_record_id(),
        joined_to: call.call_id().to_string(),
    };
    env.records
        .outbound_started(&OutboundStart {
            id: &leg.id,
            call_id: &leg_call_id,
            from: "",
            to,
            trunk: Some(env.trunk),
            route: None,
            handler: "bridge",
        })
        .await;
    let place = endpoint.place_call(
        PlaceCall {
            target: to.to_string(),
            from: None,
            trunk: Some(env.trunk.to_string()),
            media: SocketAddr::new(media.advertised(), rtp.local_addr().port()),
            ring_timeout: Some(ring),
            call_id: Some(leg_call_id),
            abandon: Some(abandon.clone()),
        },
        |_, _| {},
    );
    tokio::pin!(place);
    // The caller may hang up while the colleague's phone rings: the new
    // call is then cancelled (and hung up if its answer crossed the CANCEL).
    let mut caller_gone: Option<EndReason> = None;
    let placed = loop {
        tokio::select! {
            placed = &mut place => break placed,
            ev = next_end(call, env.caller_rtp), if caller_gone.is_none() => {
                info!(to, "the caller hung up while the colleague's phone rang: CANCEL");
                caller_gone = Some(ev);
                abandon.cancel();
            }
        }
    };
    if let Some(end) = caller_gone {
        // The colleague's answer may have crossed the CANCEL: that call is hung up.
        let answered = matches!(placed, Ok(Ok(_)));
        if let Ok(Ok(mut leg_call)) = placed {
            env.records
                .answered(
                    &leg.id,
                    leg_call.negotiated.codec.name(),
                    leg_call.negotiated.srtp_suite(),
                    None,
                )
                .await;
            leg_call.hangup().await.ok();
        }
        leg.ended(answered, local_end("caller_hung_up"), None).await;
        return Ok(Bridged { end, joined: false });
    }
    let mut leg_call = match placed {
        Ok(Ok(leg)) => leg,
        Ok(Err(failure)) => {
            let end = EndReason {
                by: Party::Remote,
                reason: failure.reason.clone(),
                status: failure.status,
            };
            leg.ended(false, end, None).await;
            return Err(format!("{to} not answered: {failure}"));
        }
        Err(e) => {
            leg.ended(false, local_end("error"), None).await;
            return Err(format!("{to}: {e}"));
        }
    };
    env.records
        .answered(
            &leg.id,
            leg_call.negotiated.codec.name(),
            leg_call.negotiated.srtp_suite(),
            None,
        )
        .await;
    rtp.set_target(rtp_target(&leg_call.negotiated));
    let mut leg_port = match MediaPort::open(rtp) {
        Ok(p) => p,
        Err(e) => {
            leg_call.hangup().await.ok();
            leg.ended(true, local_end("error"), Some(rtp)).await;
            return Err(format!("media port for {to}: {e}"));
        }
    };
    info!(to, call_id = %leg_call.call_id, limit_s = env.limit.as_secs(), "colleague answered: calls joined");
    let limit = tokio::time::sleep(env.limit);
    tokio::pin!(limit);
    // (the caller's call's end, the colleague's)
    let (end, leg_end) = loop {
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Ended(e) => {
                    leg_call.hangup().await.ok();
                    break (e, local_end("caller_ended"));
                }
                CallEvent::MediaChanged(n) => {
                    info!(remote = %n.remote_rtp, "caller's media changed during the bridge");
                    env.caller_rtp.set_target(rtp_target(&n));
                }
                CallEvent::Dtmf { .. } => {}
            },
            ev = leg_call.next_event() => if let CallEvent::Ended(e) = ev {
                info!(reason = %e.reason, "the colleague's call ended: ending the caller's");
                call.hangup().await.ok();
                break (local_end("bridge_ended"), e);
            },
            Some(input) = caller_port.recv() => match input {
                PortInput::Frame(f) => {
                    if let Err(e) = leg_port.play(&f, PORT_RATE) {
                        warn!(error = %e, "bridge playout to the colleague failed");
                    }
                }
                PortInput::Event(MediaEvent::MediaTimeout) => {
                    warn!("the caller's media timed out during the bridge: both calls hung up");
                    break hang_up_both(call, &mut leg_call, "media_timeout", "bridge_ended").await;
                }
                PortInput::Event(_) => {}
            },
            Some(input) = leg_port.recv() => match input {
                PortInput::Frame(f) => {
                    if let Err(e) = caller_port.play(&f, PORT_RATE) {
                        warn!(error = %e, "bridge playout to the caller failed");
                    }
                }
                PortInput::Event(MediaEvent::MediaTimeout) => {
                    warn!("the colleague's media timed out during the bridge: both calls hung up");
                    break hang_up_both(call, &mut leg_call, "bridge_ended", "media_timeout").await;
                }
                PortInput::Event(_) => {}
            },
            _ = &mut limit => {
                info!(limit_s = env.limit.as_secs(), "the call's longest duration passed during the bridge: both calls hung up");
                break hang_up_both(call, &mut leg_call, "max_duration", "max_duration").await;
            }
            _ = env.shutdown.cancelled() => {
                break hang_up_both(call, &mut leg_call, "shutdown", "shutdown").await;
            }
        }
    };
    // The leg's media counters as they are now: its RTP stops right after.
    leg.ended(true, leg_end, Some(rtp)).await;
    Ok(Bridged { end, joined: true })
}

/// Hangs up the caller's call and the colleague's; their ends, as voxline's
/// with these reasons.
async fn hang_up_both(
    call: &mut CallDialog,
    leg_call: &mut voxline_sip::OutboundCall,
    caller_reason: &str,
    leg_reason: &str,
) -> (EndReason, EndReason) {
    leg_call.hangup().await.ok();
    call.hangup().await.ok();
    (local_end(caller_reason), local_end(leg_reason))
}

/// The colleague's leg in the call store.
struct LegRecord<'a> {
    records: &'a Records,
    id: String,
    /// The SIP Call-ID of the caller's call it is joined to.
    joined_to: String,
}

impl LegRecord<'_> {
    /// Completes the leg's record.
    async fn ended(&self, answered: bool, end: EndReason, rtp: Option<&RtpSession>) {
        let stats = rtp.map(RtpSession::stats);
        let detail = Some(format!("transfer leg of call {}", self.joined_to));
        self.records
            .ended(&self.id, &call_end(answered, &end, false, stats.as_deref(), detail))
            .await;
    }
}

/// The caller's call's end; a media change meanwhile is followed.
async fn next_end(call: &mut CallDialog, caller_rtp: &RtpSession) -> EndReason {
    loop {
        match call.next_event().await {
            CallEvent::Ended(e) => return e,
            CallEvent::MediaChanged(n) => caller_rtp.set_target(rtp_target(&n)),
            CallEvent::Dtmf { .. } => {}
        }
    }
}
