//! A transfer's second way: when the far end refuses the REFER (or the
//! colleague is not reached through it), the agent calls the transfer
//! target itself and joins the two calls. Each side's audio (20 ms frames
//! at 16 kHz from its media port) is played to the other until either side
//! hangs up. The SIP endpoint starts after the handlers, so it reaches them
//! through a [`Dialer`] filled in at start-up.

use crate::config::MediaConfig;
use crate::handlers::playback::rtp_target;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_media::{MediaClock, MediaPort, PortInput, RtpSession, PORT_RATE};
use voxline_sip::{CallEvent, EndReason, InboundCall, Party, PlaceCall, SipEndpoint};

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
    call: &mut InboundCall,
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
    let rtp = RtpSession::bind(media.bind_ip, media.rtp_port_min, media.rtp_port_max)
        .await
        .map_err(|e| format!("no RTP port: {e}"))?;
    let media_cancel = CancellationToken::new();
    let media_task = {
        let rtp = rtp.clone();
        let c = media_cancel.clone();
        let clock = env.clock.clone();
        tokio::spawn(async move { rtp.run(&clock, None, c).await })
    };
    let result = call_and_join(call, caller_port, &rtp, &endpoint, to, ring, &env).await;
    // The colleague's media stops here, however the bridge ended.
    media_cancel.cancel();
    media_task.await.ok();
    result
}

/// The bridge on the colleague's RTP session `rtp` (already running).
async fn call_and_join(
    call: &mut InboundCall,
    caller_port: &mut MediaPort,
    rtp: &RtpSession,
    endpoint: &SipEndpoint,
    to: &str,
    ring: Duration,
    env: &BridgeEnv<'_>,
) -> Result<Bridged, String> {
    let media = env.media;
    let abandon = CancellationToken::new();
    let place = endpoint.place_call(
        PlaceCall {
            target: to.to_string(),
            from: None,
            trunk: None,
            media: SocketAddr::new(media.advertised(), rtp.local_addr().port()),
            ring_timeout: Some(ring),
            call_id: None,
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
        if let Ok(Ok(mut leg)) = placed {
            leg.hangup().await.ok();
        }
        return Ok(Bridged { end, joined: false });
    }
    let mut leg = match placed {
        Ok(Ok(leg)) => leg,
        Ok(Err(failure)) => return Err(format!("{to} not answered: {failure}")),
        Err(e) => return Err(format!("{to}: {e}")),
    };
    rtp.set_target(rtp_target(&leg.negotiated));
    let mut leg_port = match MediaPort::open(rtp) {
        Ok(p) => p,
        Err(e) => {
            leg.hangup().await.ok();
            return Err(format!("media port for {to}: {e}"));
        }
    };
    info!(to, call_id = %leg.call_id, "colleague answered: calls joined");
    let end = loop {
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Ended(e) => {
                    leg.hangup().await.ok();
                    break e;
                }
                CallEvent::MediaChanged(n) => {
                    info!(remote = %n.remote_rtp, "caller's media changed during the bridge");
                    env.caller_rtp.set_target(rtp_target(&n));
                }
                CallEvent::Dtmf { .. } => {}
            },
            ev = leg.next_event() => if let CallEvent::Ended(e) = ev {
                info!(reason = %e.reason, "the colleague's call ended: ending the caller's");
                call.hangup().await.ok();
                break EndReason { by: Party::Local, reason: "bridge_ended".into(), status: None };
            },
            Some(input) = caller_port.recv() => if let PortInput::Frame(f) = input {
                if let Err(e) = leg_port.play(&f, PORT_RATE) {
                    warn!(error = %e, "bridge playout to the colleague failed");
                }
            },
            Some(input) = leg_port.recv() => if let PortInput::Frame(f) = input {
                if let Err(e) = caller_port.play(&f, PORT_RATE) {
                    warn!(error = %e, "bridge playout to the caller failed");
                }
            },
            _ = env.shutdown.cancelled() => {
                leg.hangup().await.ok();
                call.hangup().await.ok();
                break EndReason { by: Party::Local, reason: "shutdown".into(), status: None };
            }
        }
    };
    Ok(Bridged { end, joined: true })
}

/// The caller's call's end; a media change meanwhile is followed.
async fn next_end(call: &mut InboundCall, caller_rtp: &RtpSession) -> EndReason {
    loop {
        match call.next_event().await {
            CallEvent::Ended(e) => return e,
            CallEvent::MediaChanged(n) => caller_rtp.set_target(rtp_target(&n)),
            CallEvent::Dtmf { .. } => {}
        }
    }
}
