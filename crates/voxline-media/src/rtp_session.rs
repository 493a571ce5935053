//! One RTP session per call: its sockets (RTP, and RTCP unless muxed), where
//! and how media flows, the playout queue toward the caller, counters and
//! events. The per-frame work (receive, decode, encode, send, report) runs on
//! the shared media clock: see `frame_task`.

use crate::clock::MediaClock;
use crate::codec::Codec;
use crate::dtmf::{DtmfDigit, DtmfSender};
use crate::frame_task::FrameTask;
use crate::latch::Latch;
use crate::playout::PlayoutQueue;
use crate::port::{CallerTap, MediaEvent};
use crate::recorder::CallRecorder;
use crate::resample::StreamResampler;
use crate::socket::MediaSocket;
use crate::wav_source::Prompt;
use crate::MediaError;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use webrtc_util::marshal::Marshal;

/// Serialises one RTP packet (version 2, no extensions).
pub fn rtp_packet(
    payload_type: u8,
    marker: bool,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Bytes,
) -> Option<Bytes> {
    rtp::packet::Packet {
        header: rtp::header::Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: seq,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload,
    }
    .marshal()
    .ok()
}

/// Which way media flows, from voxline's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDirection {
    /// Both ways.
    SendRecv,
    /// voxline sends, does not expect to receive.
    SendOnly,
    /// voxline receives only (the peer put the call on hold with `sendonly`).
    RecvOnly,
    /// No media either way (the peer put the call on hold with `inactive`).
    Inactive,
}

impl MediaDirection {
    /// Whether voxline should send RTP in this direction.
    pub fn sends(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }

    /// Whether the far end has put the call on hold (it sends nothing, or
    /// only music, and wants nothing from us).
    pub fn is_held(self) -> bool {
        matches!(self, MediaDirection::RecvOnly | MediaDirection::Inactive)
    }

    /// The SDP attribute name.
    pub fn sdp_attribute(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }
}

/// Where and how to send: the negotiated result of an offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpTarget {
    /// The peer's RTP address from its SDP.
    pub addr: SocketAddr,
    /// The negotiated audio codec.
    pub codec: Codec,
    /// The payload type used for that codec on this call.
    pub payload_type: u8,
    /// The payload type of telephone-event, when negotiated.
    pub telephone_event_pt: Option<u8>,
    /// The clock rate telephone-event was negotiated at (8000 or the codec's).
    pub telephone_event_rate: u32,
    /// The comfort-noise (RFC 3389) payload type, when negotiated: silence
    /// is then sent as a CN packet at its start and every 200 ms, not as a
    /// packet of silence every 20 ms.
    pub comfort_noise_pt: Option<u8>,
    /// Whether voxline sends and/or receives.
    pub direction: MediaDirection,
    /// RTCP shares the RTP port (RFC 5761), both sides agreed.
    pub rtcp_mux: bool,
    /// The peer's RTCP address from `a=rtcp`, when it gave one.
    pub rtcp_addr: Option<SocketAddr>,
    /// The SRTP keys when the media is encrypted (RTP/SAVP): then nothing
    /// goes out in clear and nothing unauthenticated is taken in.
    pub srtp: Option<crate::srtp::SrtpKeys>,
}

/// Counters of one session, copied into the call record at the end.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// RTP packets sent.
    pub packets_sent: AtomicU64,
    /// RTP payload octets sent.
    pub octets_sent: AtomicU64,
    /// RTP packets received and accepted.
    pub packets_received: AtomicU64,
    /// Datagrams dropped (not RTP, wrong source, unknown payload type).
    pub packets_dropped: AtomicU64,
    /// Packets never received (sequence gaps played past).
    pub packets_lost: AtomicU64,
    /// Packets that arrived after their playout time.
    pub packets_late: AtomicU64,
    /// Duplicate packets.
    pub packets_duplicate: AtomicU64,
    /// Frames concealed (lost, late or stretched).
    pub frames_concealed: AtomicU64,
    /// Lost Opus frames rebuilt from the next packet's FEC data.
    pub frames_fec: AtomicU64,
    /// Interarrival jitter (RFC 3550), microseconds.
    pub jitter_us: AtomicU64,
    /// Packets from a source other than the latched one (dropped).
    pub packets_foreign: AtomicU64,
    /// SRTP/SRTCP packets that failed authentication or replayed one
    /// already taken (dropped).
    pub srtp_rejected: AtomicU64,
    /// Caller frames dropped because the media port's consumer fell behind.
    pub frames_overrun: AtomicU64,
    /// Packets not sent because the socket could not take them.
    pub send_errors: AtomicU64,
    /// RTCP packets sent.
    pub rtcp_sent: AtomicU64,
    /// RTCP reports about our stream received from the far end.
    pub rtcp_reports: AtomicU64,
    /// Round-trip time from RTCP, microseconds (0 until measured).
    pub rtt_us: AtomicU64,
    /// Our packets the far end reports lost (cumulative, from RTCP).
    pub remote_lost: AtomicU64,
    /// Jitter the far end reports on our stream, microseconds (from RTCP).
    pub remote_jitter_us: AtomicU64,
}

/// What the session's clients and its frame task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) rtp: MediaSocket,
    pub(crate) rtcp: Option<MediaSocket>,
    local: SocketAddr,
    pub(crate) target: watch::Sender<Option<RtpTarget>>,
    /// PCM rate of the whole session, fixed by the first negotiated codec.
    pub(crate) pcm_rate: AtomicU32,
    pub(crate) playout: PlayoutQueue,
    pub(crate) stats: Arc<MediaStats>,
    pub(crate) latch: Mutex<Latch>,
    pub(crate) started: Instant,
    pub(crate) last_rx_ms: AtomicU64,
    /// No RTP for this long on a two-way call raises `MediaEvent::MediaTimeout` (0: never).
    pub(crate) media_timeout_ms: AtomicU64,
    pub(crate) events_tx: mpsc::UnboundedSender<MediaEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
    pub(crate) caller_tap: Mutex<Option<CallerTap>>,
    pub(crate) dtmf_out: Mutex<DtmfSender>,
}

/// An RTP session bound to a local port pair.
#[derive(Debug, Clone)]
pub struct RtpSession {
    pub(crate) shared: Arc<Shared>,
}

impl RtpSession {
    /// Binds a session on an even port of `min..=max` on `ip` (RTCP on the
    /// odd port above it), trying ports in a random order so concurrent
    /// calls don't collide.
    pub async fn bind(ip: IpAddr, min: u16, max: u16) -> Result<RtpSession, MediaError> {
        let min_even = min.saturating_add(min & 1);
        if min_even >= max {
            return Err(MediaError::NoPort { min, max });
        }
        // Even ports p with p + 1 (RTCP) still in the range.
        let slots = u32::from((max - 1 - min_even) / 2) + 1;
        let start = rand::random::<u32>() % slots;
        for i in 0..slots.min(256) {
            let port = min_even + (((start + i * 7919) % slots) * 2) as u16;
            let Ok(rtp) = MediaSocket::bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            let Ok(rtcp) = MediaSocket::bind(SocketAddr::new(ip, port + 1)) else {
                continue;
            };
            let local = rtp.local_addr().map_err(|source| MediaError::Io {
                context: "reading RTP socket address".into(),
                source,
            })?;
            return Ok(RtpSession::from_sockets(rtp, Some(rtcp), local));
        }
        Err(MediaError::NoPort { min, max })
    }

    fn from_sockets(rtp: MediaSocket, rtcp: Option<MediaSocket>, local: SocketAddr) -> RtpSession {
        let (target, _) = watch::channel(None);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        RtpSession {
            shared: Arc::new(Shared {
                rtp,
                rtcp,
                local,
                target,
                pcm_rate: AtomicU32::new(0),
                playout: PlayoutQueue::default(),
                stats: Arc::default(),
                latch: Mutex::default(),
                started: Instant::now(),
                last_rx_ms: AtomicU64::new(0),
                media_timeout_ms: AtomicU64::new(0),
                events_tx,
                events_rx: Mutex::new(Some(events_rx)),
                caller_tap: Mutex::new(None),
                dtmf_out: Mutex::default(),
            }),
        }
    }

    /// The local RTP address (what goes into our SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Sets (or changes, on re-INVITE) where and how media flows. The first
    /// target fixes the session's PCM rate; a new remote address forgets the
    /// latch; the far end putting the call on hold or taking it off hold
    /// raises `MediaEvent::Hold` / `MediaEvent::Unhold`.
    pub fn set_target(&self, target: RtpTarget) {
        let s = &self.shared;
        if let Ok(mut l) = s.latch.lock() {
            if s.target.borrow().is_some_and(|o| o.addr != target.addr) {
                l.reset();
            }
            l.set_signalled(target.addr);
        }
        let old = s.target.send_replace(Some(target));
        match old {
            None => s.pcm_rate.store(target.codec.pcm_rate(), Ordering::Relaxed),
            Some(o) => {
                if o.codec.pcm_rate() != target.codec.pcm_rate() {
                    tracing::error!(
                        from = o.codec.name(),
                        to = target.codec.name(),
                        "codec change to another PCM rate mid-call: audio stops"
                    );
                }
                match (o.direction.is_held(), target.direction.is_held()) {
                    (false, true) => {
                        s.events_tx.send(MediaEvent::Hold).ok();
                    }
                    (true, false) => {
                        s.events_tx.send(MediaEvent::Unhold).ok();
                    }
                    _ => {}
                }
            }
        }
    }

    /// The PCM rate of the session (8000 for G.711, 16000 for Opus; 8000
    /// until a codec is negotiated).
    pub fn pcm_rate(&self) -> u32 {
        match self.shared.pcm_rate.load(Ordering::Relaxed) {
            0 => 8000,
            r => r,
        }
    }

    /// Raises `MediaEvent::MediaTimeout` after `timeout` without RTP on a
    /// two-way call (zero: never).
    pub fn set_media_timeout(&self, timeout: Duration) {
        self.shared
            .media_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last accepted packet from the far end (or since the
    /// session started, when none came).
    pub fn silence(&self) -> Duration {
        let now = self.shared.started.elapsed();
        now.saturating_sub(Duration::from_millis(self.shared.last_rx_ms.load(Ordering::Relaxed)))
    }

    /// The session's events: DTMF, hold/unhold, media timeout, hang-up
    /// (once: the receiver goes to whoever takes it first, normally the
    /// MediaPort).
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<MediaEvent>> {
        self.shared.events_rx.lock().ok().and_then(|mut r| r.take())
    }

    /// Delivers a DTMF digit that came another way (SIP INFO) as the same
    /// event as an RFC 4733 one.
    pub fn inject_dtmf(&self, digit: DtmfDigit) {
        self.shared.events_tx.send(MediaEvent::Dtmf(digit)).ok();
    }

    /// Sends `digits` to the far end as RFC 4733 telephone-events, each
    /// `duration_ms` long, after anything already queued. Fails when the call
    /// did not negotiate telephone-event or a character is not a digit.
    pub fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        let Some(rate) = self
            .target()
            .and_then(|t| t.telephone_event_pt.map(|_| t.telephone_event_rate))
        else {
            return Err(MediaError::Dtmf("the call did not negotiate telephone-event".into()));
        };
        let mut out = self
            .shared
            .dtmf_out
            .lock()
            .map_err(|_| MediaError::Dtmf("DTMF sender poisoned".into()))?;
        out.queue(digits, duration_ms * (rate / 1000))
            .map_err(|c| MediaError::Dtmf(format!("{c:?} is not a DTMF digit")))
    }

    /// Sends the caller's audio to a media port (once).
    pub(crate) fn set_caller_tap(&self, tap: CallerTap) -> Result<(), MediaError> {
        let mut t = self
            .shared
            .caller_tap
            .lock()
            .map_err(|_| MediaError::Resample("caller tap poisoned".into()))?;
        if t.is_some() {
            return Err(MediaError::Resample(
                "a media port is already open on this session".into(),
            ));
        }
        *t = Some(tap);
        Ok(())
    }

    /// Who besides the SDP's address may be latched onto: `peer`, the
    /// address the call's SIP came from, and with `any` every source
    /// (`[media] rtp_sources = "any"`). Call before media flows.
    pub fn allow_sources(&self, peer: Option<std::net::IpAddr>, any: bool) {
        if let Ok(mut l) = self.shared.latch.lock() {
            l.allow(peer, any);
        }
    }

    /// The source latched onto, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.shared.latch.lock().ok().and_then(|l| l.latched())
    }

    /// The current negotiated target, if any.
    pub fn target(&self) -> Option<RtpTarget> {
        *self.shared.target.borrow()
    }

    /// Queues a whole clip to be played to the caller; `rate` is its sample
    /// rate (8, 16, 22.05, 24 or 48 kHz). For a stream of chunks, use a
    /// `MediaPort`, which keeps its resampler state between chunks.
    pub fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError> {
        if samples.is_empty() {
            return Ok(());
        }
        let to = self.pcm_rate();
        if rate == to {
            self.queue_pcm(samples);
            return Ok(());
        }
        self.shared.playout.push_shared(resample_clip(samples, rate, to)?);
        Ok(())
    }

    /// Queues a prompt: shared, not copied, when it is at the call's rate.
    pub fn play_prompt(&self, prompt: &Prompt) -> Result<(), MediaError> {
        if prompt.rate == self.pcm_rate() {
            self.shared.playout.push_shared(prompt.samples.clone());
            return Ok(());
        }
        self.play(&prompt.samples, prompt.rate)
    }

    /// Queues audio already at the session's PCM rate.
    pub(crate) fn queue_pcm(&self, samples: &[i16]) {
        self.shared.playout.push(samples);
    }

    /// Empties the playout queue; the next frame sent is silence.
    pub fn clear(&self) {
        self.shared.playout.clear();
    }

    /// Queues audio at the session's PCM rate as a marked segment: returns
    /// the mark to ask [`RtpSession::playout_started_at`] about.
    pub(crate) fn queue_pcm_marked(&self, samples: &[i16]) -> Option<u64> {
        self.shared.playout.push_marked(samples)
    }

    /// When the marked segment's first packet was sent, once it has.
    pub fn playout_started_at(&self, mark: u64) -> Option<std::time::Instant> {
        self.shared.playout.started_at(mark)
    }

    /// Samples (at the PCM rate) still queued for playout.
    pub fn queued_samples(&self) -> usize {
        self.shared.playout.len()
    }

    /// Waits until everything queued so far has been sent.
    pub async fn wait_drained(&self) {
        loop {
            let notified = self.shared.playout.drained.notified();
            if self.queued_samples() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Session counters.
    pub fn stats(&self) -> Arc<MediaStats> {
        self.shared.stats.clone()
    }

    /// Runs the session until `cancel` fires: on the shared media `clock`,
    /// every 20 ms, the session's frame task takes in what arrived, gives the
    /// caller's audio to the port and the recorder, sends the next frame
    /// (queued audio, DTMF or silence) and RTCP when due. At the end the
    /// jitter-buffer counters land in the stats and `MediaEvent::HangUp` is
    /// raised.
    pub async fn run(&self, clock: &MediaClock, recorder: Option<CallRecorder>, cancel: CancellationToken) {
        let task = Arc::new(FrameTask::new(self.clone(), recorder));
        clock.register(task.clone());
        cancel.cancelled().await;
        // Closing the tap ends the port's frame stream.
        if let Ok(mut tap) = self.shared.caller_tap.lock() {
            tap.take();
        }
        if let Some(rec) = task.finish() {
            if let Err(e) = rec.finish().await {
                tracing::warn!(error = %e, "could not complete the recording");
            }
        }
        self.shared.events_tx.send(MediaEvent::HangUp).ok();
    }
}

/// A whole clip converted from `from` Hz to `to` Hz (the filter's tail flushed).
pub fn resample_clip(samples: &[i16], from: u32, to: u32) -> Result<Arc<[i16]>, MediaError> {
    let mut r = StreamResampler::new(from, to)?;
    r.push(samples);
    r.push(&vec![0; (from / 10) as usize]);
    let mut out = r.drain_all();
    out.truncate((samples.len() as u64 * u64::from(to) / u64::from(from)) as usize);
    Ok(out.into())
}

#[cfg(test)]
impl RtpSession {
    /// A session on an ephemeral loopback port (tests).
    pub(crate) fn loopback() -> RtpSession {
        let rtp = MediaSocket::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let local = rtp.local_addr().expect("address");
        RtpSession::from_sockets(rtp, None, local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{MediaPort, PortInput};
    use std::net::UdpSocket;

    fn target(addr: SocketAddr, direction: MediaDirection) -> RtpTarget {
        RtpTarget {
            addr,
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            telephone_event_rate: 8000,
            comfort_noise_pt: None,
            direction,
            rtcp_mux: true,
            rtcp_addr: None,
            srtp: None,
        }
    }

    #[tokio::test]
    async fn bind_takes_an_even_rtp_port_with_rtcp_above_it() {
        let s = RtpSession::bind("127.0.0.1".parse().unwrap(), 41_001, 41_010)
            .await
            .unwrap();
        let p = s.local_addr().port();
        assert!(p % 2 == 0 && (41_002..=41_008).contains(&p), "port {p}");
        // The smallest usable range: one pair.
        let one = RtpSession::bind("127.0.0.1".parse().unwrap(), 41_020, 41_021)
            .await
            .unwrap();
        assert_eq!(one.local_addr().port(), 41_020);
        let busy = RtpSession::bind("127.0.0.1".parse().unwrap(), 41_020, 41_021).await;
        assert!(matches!(busy, Err(MediaError::NoPort { .. })));
        assert!(RtpSession::bind("127.0.0.1".parse().unwrap(), 41_031, 41_032)
            .await
            .is_err());
    }

    #[test]
    fn hold_and_unhold_by_the_far_end_are_events() {
        let s = RtpSession::loopback();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut events = s.take_events().unwrap();
        s.set_target(target(peer, MediaDirection::SendRecv));
        s.set_target(target(peer, MediaDirection::RecvOnly));
        s.set_target(target(peer, MediaDirection::Inactive));
        s.set_target(target(peer, MediaDirection::SendRecv));
        assert_eq!(events.try_recv().ok(), Some(MediaEvent::Hold));
        assert_eq!(events.try_recv().ok(), Some(MediaEvent::Unhold));
        assert!(
            events.try_recv().is_err(),
            "inactive after recvonly is still the same hold"
        );
        assert!(s.take_events().is_none(), "events go to one reader");
    }

    /// A real UDP peer on loopback: its RTP reaches the port as 16 kHz
    /// frames, voxline's RTP reaches it, its muxed RTCP receiver report is
    /// read, and when it falls silent the media timeout is raised.
    #[tokio::test]
    async fn peer_audio_rtcp_and_media_timeout_on_a_live_session() {
        let s = RtpSession::loopback();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.set_target(target(peer.local_addr().unwrap(), MediaDirection::SendRecv));
        s.set_media_timeout(Duration::from_millis(400));
        let mut port = MediaPort::open(&s).unwrap();
        let clock = MediaClock::start(1);
        let cancel = CancellationToken::new();
        let run = {
            let (s, c, clock) = (s.clone(), cancel.clone(), clock.clone());
            tokio::spawn(async move { s.run(&clock, None, c).await })
        };
        // 20 packets of a loud μ-law tone, paced.
        let tone: Vec<u8> = (0..160)
            .map(|i| crate::g711::linear_to_ulaw(((i as f32 * 0.3).sin() * 10_000.0) as i16))
            .collect();
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for i in 0..20u16 {
            pace.tick().await;
            let pkt = rtp_packet(
                0,
                i == 0,
                500 + i,
                u32::from(i) * 160,
                0xCA11,
                Bytes::from(tone.clone()),
            )
            .unwrap();
            peer.send_to(&pkt, s.local_addr()).unwrap();
        }
        // voxline's packets arrive at the peer; read the SSRC to report on.
        let mut buf = [0u8; 1500];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(from, s.local_addr());
        assert!(n >= 12 + 160);
        let our_ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let rr: Box<dyn rtcp::packet::Packet + Send + Sync> = Box::new(rtcp::receiver_report::ReceiverReport {
            ssrc: 0xCA11,
            reports: vec![rtcp::reception_report::ReceptionReport {
                ssrc: our_ssrc,
                total_lost: 3,
                jitter: 80,
                ..Default::default()
            }],
            ..Default::default()
        });
        peer.send_to(&rtcp::packet::marshal(&[rr]).unwrap(), s.local_addr())
            .unwrap();
        // The caller's tone comes out of the port as 16 kHz frames.
        let mut loud = 0;
        let mut timed_out = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline && !timed_out {
            match tokio::time::timeout(Duration::from_secs(1), port.recv()).await {
                Ok(Some(PortInput::Frame(f))) => {
                    assert_eq!(f.len(), crate::PORT_FRAME);
                    if f.iter().map(|&x| i32::from(x).abs()).max().unwrap_or(0) > 5000 {
                        loud += 1;
                    }
                }
                Ok(Some(PortInput::Event(MediaEvent::MediaTimeout))) => timed_out = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(loud >= 15, "{loud} loud frames of 20 sent");
        assert!(timed_out, "no media timeout after the peer fell silent");
        cancel.cancel();
        run.await.unwrap();
        let stats = s.stats();
        let got = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            got(&stats.packets_received),
            20,
            "late {} dropped {} lost {}",
            got(&stats.packets_late),
            got(&stats.packets_dropped),
            got(&stats.packets_lost)
        );
        assert_eq!(stats.rtcp_reports.load(Ordering::Relaxed), 1);
        assert_eq!(stats.remote_lost.load(Ordering::Relaxed), 3);
        assert_eq!(
            stats.remote_jitter_us.load(Ordering::Relaxed),
            10_000,
            "80 units at 8 kHz"
        );
    }

    /// With CN negotiated, silence goes out as a CN packet every 200 ms,
    /// audio as one packet per 20 ms starting with the marker bit, and the
    /// far end's CN keeps the media timeout away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn comfort_noise_replaces_silence_packets_when_negotiated() {
        let s = RtpSession::loopback();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_target(RtpTarget {
            comfort_noise_pt: Some(13),
            ..target(peer.local_addr().unwrap(), MediaDirection::SendRecv)
        });
        s.set_media_timeout(Duration::from_millis(300));
        let mut events = s.take_events().unwrap();
        let clock = MediaClock::start(1);
        let cancel = CancellationToken::new();
        let run = {
            let (s, c, clock) = (s.clone(), cancel.clone(), clock.clone());
            tokio::spawn(async move { s.run(&clock, None, c).await })
        };
        let sess = s.clone();
        let received = tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 1500];
            peer.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
            let mut listen =
                |until: std::time::Instant, got: &mut Vec<(u8, bool, usize)>, cn_from: Option<&mut u16>| {
                    let mut next_cn = std::time::Instant::now();
                    let mut seq = cn_from;
                    while std::time::Instant::now() < until {
                        if let Some(seq) = seq.as_deref_mut() {
                            // The far end's own CN, every 100 ms.
                            if std::time::Instant::now() >= next_cn {
                                let cn = rtp_packet(
                                    13,
                                    false,
                                    *seq,
                                    u32::from(*seq) * 800,
                                    0xC0DE,
                                    Bytes::from_static(&[60]),
                                )
                                .unwrap();
                                peer.send_to(&cn, sess.local_addr()).unwrap();
                                *seq += 1;
                                next_cn += Duration::from_millis(100);
                            }
                        }
                        if let Ok((n, _)) = peer.recv_from(&mut buf) {
                            if n >= 12 && !crate::rtcp_report::is_rtcp(&buf[..n]) {
                                got.push((buf[1] & 0x7F, buf[1] & 0x80 != 0, n - 12));
                            }
                        }
                    }
                };
            let mut seq = 0u16;
            listen(
                std::time::Instant::now() + Duration::from_millis(500),
                &mut got,
                Some(&mut seq),
            );
            sess.play(&[3000i16; 1600], 8000).unwrap();
            listen(std::time::Instant::now() + Duration::from_millis(150), &mut got, None);
            got
        })
        .await
        .unwrap();
        let cn: Vec<_> = received.iter().filter(|p| p.0 == 13).collect();
        assert!(
            (2..=4).contains(&cn.len()),
            "CN packets in 500 ms of silence: {received:?}"
        );
        assert!(cn.iter().all(|p| p.2 == 1), "CN carries one level byte");
        let audio: Vec<_> = received.iter().filter(|p| p.0 == 0).collect();
        assert!(audio.len() >= 5, "audio packets once audio is queued: {received:?}");
        assert!(audio[0].1 && !audio[1].1, "the talkspurt's first packet has the marker");
        assert!(events.try_recv().is_err(), "the far end's CN is not a media timeout");
        cancel.cancel();
        run.await.unwrap();
    }
}
