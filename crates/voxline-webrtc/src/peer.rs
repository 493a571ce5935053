//! One browser's peer connection: the answer to its offer, the wait for ICE
//! and DTLS, and the relay between its tracks and the call's RTP session.
//!
//! The relay is two tasks on one loopback UDP socket. The browser's Opus
//! RTP (already decrypted by DTLS-SRTP) is sent to the session's port as
//! plain RTP; what the session sends back to the relay socket (its paced
//! Opus RTP and RTCP) is unpacked and written to the browser's track, RTCP
//! dropped (the `webrtc` stack reports on the encrypted streams itself).

use crate::offer::{audio_codecs, check_offer, OfferSummary};
use crate::settings::WebRtcSettings;
use crate::WebRtcError;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::shared::marshal::{Marshal, Unmarshal};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voxline_media::{Codec, MediaDirection, RtpSession, RtpTarget};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};

/// Opus's payload type in what voxline offers to match (the browser's own
/// number is what the answer uses).
const OPUS_PT: u8 = 111;
/// telephone-event/8000's payload type likewise.
const EVENT_PT: u8 = 126;
/// The longest gathering our own candidates may take (host candidates are
/// immediate; a STUN server that does not answer is given up on).
const GATHER_LIMIT: Duration = Duration::from_secs(5);

/// Where a browser's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// ICE and DTLS are running.
    Connecting,
    /// Media can flow.
    Connected,
    /// ICE lost the path (it may come back).
    Disconnected,
    /// ICE or DTLS failed.
    Failed,
    /// The connection was closed.
    Closed,
}

/// Counters of a relay, for the call's log.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Packets from the browser given to the session.
    pub from_browser: AtomicU64,
    /// Packets from the session written to the browser's track.
    pub to_browser: AtomicU64,
    /// Packets of the session the track would not take (not yet bound, closed).
    pub refused: AtomicU64,
}

/// A browser's peer connection and its relay to one RTP session.
pub struct BrowserPeer {
    pc: Arc<dyn PeerConnection>,
    answer: String,
    codecs: OfferSummary,
    state: watch::Receiver<PeerState>,
    relay: Arc<Relay>,
    closed: bool,
}

impl std::fmt::Debug for BrowserPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPeer")
            .field("state", &*self.state.borrow())
            .field("codecs", &self.codecs)
            .finish()
    }
}

/// The relay's shared half: the loopback socket, the session's address and
/// the tasks (ended by `cancel`, waited for on close).
struct Relay {
    socket: Arc<UdpSocket>,
    session: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
    stats: Arc<RelayStats>,
}

struct Handler {
    state: watch::Sender<PeerState>,
    gathered: watch::Sender<bool>,
    relay: Arc<Relay>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let s = match state {
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
            RTCPeerConnectionState::Failed => PeerState::Failed,
            RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => PeerState::Connecting,
        };
        tracing::debug!(state = ?s, "browser connection");
        self.state.send_replace(s);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let relay = self.relay.clone();
        self.relay
            .tasks
            .spawn(async move { relay.browser_to_session(track).await });
    }
}

impl Relay {
    /// The browser's RTP to the session, until the track ends or the relay stops.
    async fn browser_to_session(&self, track: Arc<dyn TrackRemote>) {
        loop {
            let event = tokio::select! {
                _ = self.cancel.cancelled() => return,
                e = track.poll() => e,
            };
            match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    let Ok(bytes) = packet.marshal() else { continue };
                    // Loopback to our own socket: a full buffer drops the packet like the network would.
                    if self.socket.try_send_to(&bytes, self.session).is_ok() {
                        self.stats.from_browser.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => return,
                Some(_) => {}
            }
        }
    }

    /// The session's RTP to the browser's track (with its SSRC), until the relay stops.
    async fn session_to_browser(&self, track: Arc<TrackLocalStaticRTP>, ssrc: u32) {
        let mut buf = vec![0u8; 1500];
        loop {
            let got = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => r,
            };
            let Ok((n, from)) = got else { continue };
            // Only the session's own packets, and no RTCP (payload types 72-76 with the marker bit).
            if from != self.session || n < 12 || (200..=206).contains(&buf[1]) {
                continue;
            }
            let mut data = &buf[..n];
            let Ok(mut packet) = rtc::rtp::Packet::unmarshal(&mut data) else {
                continue;
            };
            packet.header.ssrc = ssrc;
            match track.write_rtp(packet).await {
                Ok(()) => self.stats.to_browser.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.stats.refused.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

impl BrowserPeer {
    /// Answers the page's `offer` for a call whose media runs on `rtp` (a
    /// session bound on loopback): checks the offer, opens the peer
    /// connection (ICE on `settings.bind`), gathers our candidates and sets
    /// the session's target to the relay. Err says what was wrong; nothing
    /// stays open then.
    pub async fn answer(offer: &str, settings: &WebRtcSettings, rtp: &RtpSession) -> Result<BrowserPeer, WebRtcError> {
        check_offer(offer)?;
        let std_socket = std::net::UdpSocket::bind(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0))?;
        std_socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(std_socket)?);
        let relay_addr = socket.local_addr()?;
        let relay = Arc::new(Relay {
            socket,
            session: rtp.local_addr(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            stats: Arc::default(),
        });
        let (state_tx, state) = watch::channel(PeerState::Connecting);
        let (gathered_tx, mut gathered) = watch::channel(false);
        let handler = Arc::new(Handler {
            state: state_tx,
            gathered: gathered_tx,
            relay: relay.clone(),
        });
        let pc = match build_connection(settings, handler).await {
            Ok(pc) => pc,
            Err(e) => {
                relay.cancel.cancel();
                return Err(e);
            }
        };
        let mut peer = BrowserPeer {
            pc,
            answer: String::new(),
            codecs: OfferSummary {
                opus_pt: OPUS_PT,
                telephone_event: None,
            },
            state,
            relay,
            closed: false,
        };
        if let Err(e) = peer.negotiate(offer, &mut gathered).await {
            peer.close().await;
            return Err(e);
        }
        rtp.set_target(RtpTarget {
            addr: relay_addr,
            codec: Codec::Opus,
            payload_type: peer.codecs.opus_pt,
            telephone_event_pt: peer.codecs.telephone_event.map(|(pt, _)| pt),
            telephone_event_rate: peer.codecs.telephone_event.map_or(8000, |(_, rate)| rate),
            comfort_noise_pt: None,
            direction: MediaDirection::SendRecv,
            rtcp_mux: true,
            rtcp_addr: None,
            srtp: None,
        });
        Ok(peer)
    }

    /// Adds our track, takes the offer, makes and sets the answer, waits for
    /// our candidates (the answer carries them: no trickle needed).
    async fn negotiate(&mut self, offer: &str, gathered: &mut watch::Receiver<bool>) -> Result<(), WebRtcError> {
        let ssrc = rand_ssrc();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "voxline".to_string(),
            "agent-voice".to_string(),
            "agent".to_string(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        )));
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| WebRtcError::stack("adding the agent's track", e))?;
        let desc = RTCSessionDescription::offer(offer.to_string()).map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| WebRtcError::stack("creating the answer", e))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| WebRtcError::stack("setting the answer", e))?;
        // Gathering may already be complete; a STUN server that never
        // answers only costs its limit (host candidates are in by then).
        let _ = tokio::time::timeout(GATHER_LIMIT, gathered.wait_for(|g| *g)).await;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| WebRtcError::stack("reading the answer", "no local description"))?;
        self.codecs = audio_codecs(&local.sdp)?;
        self.answer = local.sdp;
        let relay = self.relay.clone();
        self.relay
            .tasks
            .spawn(async move { relay.session_to_browser(track, ssrc).await });
        Ok(())
    }

    /// The SDP answer for the page.
    pub fn answer_sdp(&self) -> &str {
        &self.answer
    }

    /// The payload types the call uses.
    pub fn codecs(&self) -> &OfferSummary {
        &self.codecs
    }

    /// The connection's state, as it changes.
    pub fn state(&self) -> watch::Receiver<PeerState> {
        self.state.clone()
    }

    /// The relay's counters.
    pub fn relay_stats(&self) -> Arc<RelayStats> {
        self.relay.stats.clone()
    }

    /// Waits until ICE and DTLS complete (media can flow), at most `within`.
    pub async fn connected(&mut self, within: Duration) -> Result<(), WebRtcError> {
        let wait = self
            .state
            .wait_for(|s| matches!(s, PeerState::Connected | PeerState::Failed | PeerState::Closed));
        match tokio::time::timeout(within, wait).await {
            Err(_) => Err(WebRtcError::ConnectTimeout(within.as_secs())),
            Ok(Err(_)) => Err(WebRtcError::ConnectFailed("closed")),
            Ok(Ok(s)) => match *s {
                PeerState::Connected => Ok(()),
                PeerState::Failed => Err(WebRtcError::ConnectFailed("failed")),
                _ => Err(WebRtcError::ConnectFailed("closed")),
            },
        }
    }

    /// Closes the connection (DTLS close, sockets released) and stops the
    /// relay, waiting for its tasks. Idempotent.
    pub async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.relay.cancel.cancel();
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing the browser connection");
        }
        self.relay.tasks.close();
        if tokio::time::timeout(Duration::from_secs(2), self.relay.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("the browser relay's tasks did not stop within 2 s");
        }
    }
}

impl Drop for BrowserPeer {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Dropped without close (a task cancelled): the connection's driver
        // would otherwise run on; close it on the runtime.
        self.relay.cancel.cancel();
        let pc = self.pc.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                pc.close().await.ok();
            });
        }
    }
}

/// Opus as voxline registers and sends it.
fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS.to_string(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_string(),
        rtcp_feedback: vec![],
    }
}

fn rand_ssrc() -> u32 {
    rand::random()
}

/// The peer connection: Opus and telephone-event registered, the default
/// interceptors (RTCP reports, NACK), ICE bound on `settings.bind` (a free
/// port of `settings.ports`), the public address and ICE servers set.
async fn build_connection(
    settings: &WebRtcSettings,
    handler: Arc<Handler>,
) -> Result<Arc<dyn PeerConnection>, WebRtcError> {
    let mut last = None;
    for port in candidate_ports(settings.ports) {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus_codec(),
                    payload_type: OPUS_PT,
                },
                RtpCodecKind::Audio,
            )
            .map_err(|e| WebRtcError::stack("registering Opus", e))?;
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_TELEPHONE_EVENT
                            .to_string(),
                        clock_rate: 8000,
                        channels: 0,
                        sdp_fmtp_line: "0-16".to_string(),
                        rtcp_feedback: vec![],
                    },
                    payload_type: EVENT_PT,
                },
                RtpCodecKind::Audio,
            )
            .map_err(|e| WebRtcError::stack("registering telephone-event", e))?;
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .map_err(|e| WebRtcError::stack("registering interceptors", e))?;
        let mut engine = SettingEngineBuilder::new()
            .with_include_loopback_candidate(settings.bind.is_loopback())
            .with_ice_timeouts(
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(2)),
            );
        if let Some(ip) = settings.public_ip {
            engine = engine.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
        }
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(
                settings
                    .ice_servers
                    .iter()
                    .map(|s| RTCIceServer {
                        urls: s.urls.clone(),
                        username: s.username.clone(),
                        credential: s.credential.clone(),
                    })
                    .collect(),
            )
            .build();
        let runtime = webrtc::runtime::default_runtime()
            .ok_or_else(|| WebRtcError::stack("starting the connection", "no tokio runtime for webrtc"))?;
        let built = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(engine.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(handler.clone())
            .with_runtime(runtime)
            .with_udp_addrs(vec![SocketAddr::new(settings.bind, port)])
            .build()
            .await;
        match built {
            Ok(pc) => return Ok(Arc::new(pc)),
            Err(e) => last = Some(e.to_string()),
        }
    }
    Err(WebRtcError::stack(
        "opening the ICE socket",
        last.unwrap_or_else(|| "no port to try".into()),
    ))
}

/// The ports tried for ICE: `0` (any) for `(0, 0)`, else up to 16 ports of
/// the range from a random start.
fn candidate_ports((min, max): (u16, u16)) -> Vec<u16> {
    if min == 0 && max == 0 {
        return vec![0];
    }
    let span = u32::from(max.saturating_sub(min)) + 1;
    let start = rand::random::<u32>() % span;
    (0..span.min(16)).map(|i| min + ((start + i) % span) as u16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_tried_stay_in_the_range() {
        assert_eq!(candidate_ports((0, 0)), vec![0]);
        let ports = candidate_ports((40_000, 40_009));
        assert_eq!(ports.len(), 10);
        assert!(ports.iter().all(|p| (40_000..=40_009).contains(p)), "{ports:?}");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 10, "each port once: {ports:?}");
    }
}
