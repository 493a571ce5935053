//! One RTP session per call: a UDP socket, paced 20 ms sending and decoding
//! of what the caller sends.

use crate::clock::{ClockTask, MediaClock};
use crate::dtmf::{DtmfDigit, DtmfReceiver, DtmfSender};
use crate::g711::Codec;
use crate::jitter::{JitterBuffer, JitterConfig, Playout, Pushed, RtpIn};
use crate::latch::{Latch, LatchVerdict};
use crate::port::CallerTap;
use crate::recorder::CallRecorder;
use crate::{MediaError, SAMPLES_PER_FRAME_8K};
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use webrtc_util::marshal::{Marshal, Unmarshal};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpTarget {
    /// The peer's RTP address from its SDP.
    pub addr: SocketAddr,
    /// The negotiated audio codec.
    pub codec: Codec,
    /// The payload type used for that codec on this call.
    pub payload_type: u8,
    /// The payload type of telephone-event, when negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Whether voxline sends and/or receives.
    pub direction: MediaDirection,
}

/// Counters of one session, copied into the call record at the end.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// RTP packets sent.
    pub packets_sent: AtomicU64,
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
    /// Interarrival jitter (RFC 3550), microseconds.
    pub jitter_us: AtomicU64,
    /// Packets from a source other than the latched one (dropped).
    pub packets_foreign: AtomicU64,
    /// Caller frames dropped because the media port's consumer fell behind.
    pub frames_overrun: AtomicU64,
    /// Packets not sent because the socket could not take them.
    pub send_errors: AtomicU64,
}

/// Audio queued toward the caller, 8 kHz mono.
#[derive(Debug, Default)]
struct PlayoutQueue {
    queue: Mutex<VecDeque<i16>>,
    drained: Notify,
}

/// An RTP session bound to a local port.
#[derive(Debug, Clone)]
pub struct RtpSession {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    target: Arc<watch::Sender<Option<RtpTarget>>>,
    playout: Arc<PlayoutQueue>,
    stats: Arc<MediaStats>,
    latch: Arc<Mutex<Latch>>,
    /// When the session started and when the last accepted packet arrived.
    started: Instant,
    last_rx_ms: Arc<AtomicU64>,
    dtmf_tx: mpsc::UnboundedSender<DtmfDigit>,
    dtmf_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<DtmfDigit>>>>,
    caller_tap: Arc<Mutex<Option<CallerTap>>>,
    dtmf_out: Arc<Mutex<DtmfSender>>,
}

impl RtpSession {
    /// Binds a session on an even port of `min..=max` on `ip`, trying ports in
    /// a random order so concurrent calls don't collide.
    pub async fn bind(ip: IpAddr, min: u16, max: u16) -> Result<RtpSession, MediaError> {
        let (min_even, max) = (min + (min & 1), max);
        if min_even > max {
            return Err(MediaError::NoPort { min, max });
        }
        let slots = u32::from((max - min_even) / 2) + 1;
        let start = rand::random::<u32>() % slots;
        for i in 0..slots.min(256) {
            let port = min_even + (((start + i * 7919) % slots) * 2) as u16;
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
                let local = socket.local_addr().map_err(|source| MediaError::Io {
                    context: "reading RTP socket address".into(),
                    source,
                })?;
                let (target, _) = watch::channel(None);
                let (dtmf_tx, dtmf_rx) = mpsc::unbounded_channel();
                return Ok(RtpSession {
                    socket: Arc::new(socket),
                    local,
                    target: Arc::new(target),
                    playout: Arc::default(),
                    stats: Arc::default(),
                    latch: Arc::default(),
                    started: Instant::now(),
                    last_rx_ms: Arc::default(),
                    dtmf_tx,
                    dtmf_rx: Arc::new(Mutex::new(Some(dtmf_rx))),
                    caller_tap: Arc::default(),
                    dtmf_out: Arc::default(),
                });
            }
        }
        Err(MediaError::NoPort { min, max })
    }

    /// The local RTP address (what goes into our SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sets (or changes, on re-INVITE) where and how media flows. A new
    /// remote address forgets the latch.
    pub fn set_target(&self, target: RtpTarget) {
        let old = self.target.send_replace(Some(target.clone()));
        if old.is_some_and(|o| o.addr != target.addr) {
            if let Ok(mut l) = self.latch.lock() {
                l.reset();
            }
        }
    }

    /// Time since the last accepted packet from the far end (or since the
    /// session started, when none came).
    pub fn silence(&self) -> Duration {
        let now = self.started.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_rx_ms.load(Ordering::Relaxed)))
    }

    /// The DTMF digits received as RFC 4733 telephone-events (once: the
    /// receiver goes to whoever takes it first).
    pub fn take_dtmf(&self) -> Option<mpsc::UnboundedReceiver<DtmfDigit>> {
        self.dtmf_rx.lock().ok().and_then(|mut r| r.take())
    }

    /// Sends `digits` to the far end as RFC 4733 telephone-events, each
    /// `duration_ms` long, after anything already queued. Fails when the call
    /// did not negotiate telephone-event or a character is not a digit.
    pub fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        if self.target().and_then(|t| t.telephone_event_pt).is_none() {
            return Err(MediaError::Dtmf("the call did not negotiate telephone-event".into()));
        }
        let mut out = self
            .dtmf_out
            .lock()
            .map_err(|_| MediaError::Dtmf("DTMF sender poisoned".into()))?;
        out.queue(digits, duration_ms * 8)
            .map_err(|c| MediaError::Dtmf(format!("{c:?} is not a DTMF digit")))
    }

    /// Sends the caller's audio to a media port (once).
    pub(crate) fn set_caller_tap(&self, tap: CallerTap) -> Result<(), MediaError> {
        let mut t = self
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

    /// The source latched onto, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latch.lock().ok().and_then(|l| l.latched())
    }

    /// The current negotiated target, if any.
    pub fn target(&self) -> Option<RtpTarget> {
        self.target.borrow().clone()
    }

    /// Queues 8 kHz mono audio to be played to the caller.
    pub fn play(&self, samples: &[i16]) {
        if let Ok(mut q) = self.playout.queue.lock() {
            q.extend(samples.iter().copied());
        }
    }

    /// Empties the playout queue; the next frame sent is silence.
    pub fn clear(&self) {
        if let Ok(mut q) = self.playout.queue.lock() {
            q.clear();
        }
        self.playout.drained.notify_waiters();
    }

    /// Samples still queued for playout.
    pub fn queued_samples(&self) -> usize {
        self.playout.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Waits until everything queued so far has been sent.
    pub async fn wait_drained(&self) {
        loop {
            let notified = self.playout.drained.notified();
            if self.queued_samples() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Session counters.
    pub fn stats(&self) -> Arc<MediaStats> {
        self.stats.clone()
    }

    /// Runs the session until `cancel` fires: a receive loop that decodes the
    /// caller's audio, and, on the shared media `clock`, a 20 ms frame task
    /// that sends the next frame (queued audio, DTMF or silence) and writes
    /// both sides to the recorder.
    pub async fn run(&self, clock: &MediaClock, recorder: Option<CallRecorder>, cancel: CancellationToken) {
        let jitter = Arc::new(Mutex::new(JitterBuffer::new(JitterConfig::for_clock(8000))));
        let receiver = tokio::spawn(receive_loop(self.clone(), jitter.clone(), cancel.clone()));
        let task = Arc::new(FrameTask {
            session: self.clone(),
            jitter: jitter.clone(),
            cancel: cancel.clone(),
            state: Mutex::new(FrameState {
                heard: CallerAudio::default(),
                recorder,
                ssrc: rand::random(),
                seq: rand::random(),
                timestamp: rand::random(),
                marker: true,
                frame: vec![0i16; SAMPLES_PER_FRAME_8K],
                caller: vec![0i16; SAMPLES_PER_FRAME_8K],
                payload: Vec::with_capacity(SAMPLES_PER_FRAME_8K),
            }),
        });
        clock.register(task.clone());
        cancel.cancelled().await;
        receiver.abort();
        // Closing the tap ends the port's frame stream.
        if let Ok(mut tap) = self.caller_tap.lock() {
            tap.take();
        }
        if let Ok(jb) = jitter.lock() {
            let js = jb.stats();
            self.stats.packets_lost.store(js.lost, Ordering::Relaxed);
            self.stats.packets_late.store(js.late, Ordering::Relaxed);
            self.stats.packets_duplicate.store(js.duplicates, Ordering::Relaxed);
            self.stats
                .frames_concealed
                .store(js.concealed + js.stretched, Ordering::Relaxed);
            self.stats
                .jitter_us
                .store((js.jitter_ms * 1000.0) as u64, Ordering::Relaxed);
        }
        // The clock drops the task at its next tick; the recorder is ours to finish.
        let recorder = task.state.lock().ok().and_then(|mut s| s.recorder.take());
        if let Some(rec) = recorder {
            if let Err(e) = rec.finish() {
                tracing::warn!(error = %e, "could not finalise recording");
            }
        }
    }

    /// Fills `frame` from the playout queue (silence when empty); returns
    /// whether any queued audio was used.
    fn next_frame(&self, frame: &mut [i16]) -> bool {
        let Ok(mut q) = self.playout.queue.lock() else {
            frame.fill(0);
            return false;
        };
        let n = q.len().min(frame.len());
        for (dst, src) in frame.iter_mut().zip(q.drain(..n)) {
            *dst = src;
        }
        frame[n..].fill(0);
        n > 0
    }
}

/// What a session keeps between frames.
struct FrameState {
    heard: CallerAudio,
    recorder: Option<CallRecorder>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
    frame: Vec<i16>,
    caller: Vec<i16>,
    payload: Vec<u8>,
}

/// A session's work on the media clock.
struct FrameTask {
    session: RtpSession,
    jitter: Arc<Mutex<JitterBuffer>>,
    cancel: CancellationToken,
    state: Mutex<FrameState>,
}

impl ClockTask for FrameTask {
    fn tick(&self) -> bool {
        if self.cancel.is_cancelled() {
            return false;
        }
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        self.session.frame(&self.jitter, &mut st);
        true
    }
}

impl RtpSession {
    /// One 20 ms frame: caller audio out of the jitter buffer (to the port
    /// and the recorder), then the next packet toward the caller.
    fn frame(&self, jitter: &Mutex<JitterBuffer>, st: &mut FrameState) {
        let st = &mut *st;
        let had_audio = self.next_frame(&mut st.frame);
        let target = self.target.borrow().clone();
        let codec = target.as_ref().map(|t| t.codec).unwrap_or(Codec::Pcmu);
        st.heard.next_frame(jitter, codec, &mut st.caller);
        if let Ok(mut tap) = self.caller_tap.lock() {
            if let Some(t) = tap.as_mut() {
                t.feed(&st.caller, &self.stats);
            }
        }
        if let Some(rec) = st.recorder.as_mut() {
            if let Err(e) = rec.write_frame(&st.caller, &st.frame) {
                tracing::warn!(error = %e, "recording stopped");
                st.recorder = None;
            }
        }
        if let Some(t) = target.filter(|t| t.direction.sends()) {
            let event = match (t.telephone_event_pt, self.dtmf_out.lock()) {
                (Some(pt), Ok(mut out)) => out.next(st.timestamp, SAMPLES_PER_FRAME_8K as u32).map(|e| (pt, e)),
                _ => None,
            };
            let (pt, mark, ts, body, seq_now) = match event {
                Some((pt, e)) => {
                    // A retransmitted end packet keeps the previous sequence number.
                    let s = if e.repeat { st.seq.wrapping_sub(1) } else { st.seq };
                    (pt, e.marker, e.timestamp, Bytes::copy_from_slice(&e.payload), s)
                }
                None => {
                    t.codec.encode(&st.frame, &mut st.payload);
                    (
                        t.payload_type,
                        st.marker,
                        st.timestamp,
                        Bytes::copy_from_slice(&st.payload),
                        st.seq,
                    )
                }
            };
            let dest = self.latch.lock().map(|l| l.destination(t.addr)).unwrap_or(t.addr);
            if let Some(buf) = rtp_packet(pt, mark, seq_now, ts, st.ssrc, body) {
                // Never wait on the network from the clock: a full socket buffer drops the frame.
                match self.socket.try_send_to(&buf, dest) {
                    Ok(_) => {
                        self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if !event.is_some_and(|(_, e)| e.repeat) {
                st.seq = st.seq.wrapping_add(1);
            }
            st.marker = false;
        }
        // Timestamps advance with the clock, also across silence and hold.
        st.timestamp = st.timestamp.wrapping_add(SAMPLES_PER_FRAME_8K as u32);
        if !had_audio {
            self.playout.drained.notify_waiters();
        }
    }
}

/// The caller's decoded audio, one 20 ms frame at a time, out of the jitter
/// buffer, with simple G.711 concealment (the last frame, fading).
#[derive(Default)]
struct CallerAudio {
    pcm: VecDeque<i16>,
    last: Vec<i16>,
    fade: f32,
    scratch: Vec<i16>,
}

impl CallerAudio {
    fn next_frame(&mut self, jitter: &Mutex<JitterBuffer>, codec: Codec, out: &mut [i16]) {
        while self.pcm.len() < out.len() {
            let playout = match jitter.lock() {
                Ok(mut jb) => jb.pop(),
                Err(_) => Playout::Silence,
            };
            match playout {
                Playout::Audio { payload, .. } => {
                    codec.decode(&payload, &mut self.scratch);
                    self.pcm.extend(self.scratch.iter().copied());
                    self.last.clear();
                    self.last.extend(self.scratch.iter().rev().take(out.len()).rev());
                    self.fade = 1.0;
                }
                Playout::Conceal => {
                    self.fade *= 0.5;
                    let fade = self.fade;
                    if self.last.len() == out.len() {
                        self.pcm.extend(self.last.iter().map(|&s| (f32::from(s) * fade) as i16));
                    } else {
                        self.pcm.extend(std::iter::repeat_n(0, out.len()));
                    }
                }
                Playout::Silence => {
                    self.pcm.extend(std::iter::repeat_n(0, out.len()));
                }
            }
        }
        let n = out.len();
        for (dst, src) in out.iter_mut().zip(self.pcm.drain(..n)) {
            *dst = src;
        }
    }
}

async fn receive_loop(session: RtpSession, jitter: Arc<Mutex<JitterBuffer>>, cancel: CancellationToken) {
    let started = session.started;
    let stats = session.stats.clone();
    let mut dtmf = DtmfReceiver::new(8000);
    let mut last_event: Option<Instant> = None;
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = session.socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let mut data = &buf[..len];
        let Ok(packet) = rtp::packet::Packet::unmarshal(&mut data) else {
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let (audio_pt, event_pt) = session
            .target
            .borrow()
            .as_ref()
            .map(|t| (Some(t.payload_type), t.telephone_event_pt))
            .unwrap_or((None, None));
        if event_pt == Some(packet.header.payload_type) {
            let from_latched = session
                .latch
                .lock()
                .map(|l| l.latched().is_none_or(|a| a == from))
                .unwrap_or(true);
            if from_latched {
                last_event = Some(Instant::now());
                for d in dtmf.on_packet(packet.header.timestamp, &packet.payload) {
                    session.dtmf_tx.send(d).ok();
                }
            }
            continue;
        }
        // An event whose end packets were all lost is over once audio resumes.
        if last_event.is_some_and(|t| t.elapsed() >= Duration::from_millis(100)) {
            last_event = None;
            if let Some(d) = dtmf.flush() {
                session.dtmf_tx.send(d).ok();
            }
        }
        if audio_pt != Some(packet.header.payload_type) {
            // telephone-event and unknown payload types are not audio.
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let verdict = session
            .latch
            .lock()
            .map(|mut l| l.observe(from))
            .unwrap_or(LatchVerdict::Accept);
        if verdict == LatchVerdict::Foreign {
            stats.packets_foreign.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        session
            .last_rx_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let samples = packet.payload.len() as u32; // G.711: one byte per sample
        let pushed = match jitter.lock() {
            Ok(mut jb) => jb.push(RtpIn {
                ssrc: packet.header.ssrc,
                seq: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                marker: packet.header.marker,
                payload: packet.payload,
                samples,
                arrival: started.elapsed(),
            }),
            Err(_) => continue,
        };
        match pushed {
            Pushed::Buffered | Pushed::NewSource => {
                stats.packets_received.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Empty => {
                stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Duplicate | Pushed::Late => {}
        }
    }
}
