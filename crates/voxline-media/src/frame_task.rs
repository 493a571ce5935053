//! The 20 ms work of one session on the media clock: drain what arrived on
//! its sockets (RTP into the jitter buffer, telephone-events into DTMF
//! digits, RTCP into the far end's view), take the caller's next frame out
//! of the jitter buffer (decoded, or concealed: Opus FEC/PLC, G.711 fade) to
//! the media port and the recorder, send the next frame toward the caller,
//! and send an RTCP report when one is due.

use crate::clock::ClockTask;
use crate::codec::{Codec, Decoder, Encoder};
use crate::dtmf::DtmfReceiver;
use crate::jitter::{JitterBuffer, JitterConfig, Playout, Pushed, RtpIn};
use crate::latch::LatchVerdict;
use crate::port::MediaEvent;
use crate::recorder::CallRecorder;
use crate::rtcp_report::{is_rtcp, Reception, RtcpState, Sending};
use crate::rtp_session::{rtp_packet, RtpSession, RtpTarget};
use crate::socket::{BatchBuffers, Datagram, BATCH, MAX_DATAGRAM};
use crate::srtp::SrtpSession;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use webrtc_util::marshal::Unmarshal;

/// Datagrams taken off one socket per frame at most (a flood waits in the
/// kernel's buffer and overflows there, not here).
const MAX_DATAGRAMS_PER_FRAME: usize = 32;
/// The RTCP socket is drained every this many frames (500 ms): reports come
/// every few seconds and carry kernel arrival times, so reading them a
/// little later changes nothing but saves a system call per frame.
const RTCP_DRAIN_FRAMES: u32 = 25;

thread_local! {
    /// Receive buffers of the shard thread, shared by its sessions.
    static SCRATCH: RefCell<Box<BatchBuffers>> = RefCell::new(Box::new([[0; MAX_DATAGRAM]; BATCH]));
}
/// With comfort noise negotiated, silence is a CN packet every this many
/// frames (200 ms; RFC 3389 leaves the refresh to the sender).
const CN_REFRESH_FRAMES: u32 = 10;
/// The noise level voxline's CN packets announce: -70 dBov, a faint hiss.
const CN_LEVEL_DBOV: u8 = 70;

/// A session's work on the media clock.
pub(crate) struct FrameTask {
    session: RtpSession,
    /// Set once the session's run ends (cheaper to check every frame than
    /// the cancellation token, which takes a lock).
    stopped: AtomicBool,
    state: Mutex<FrameState>,
}

/// The codec state of the stream in use.
struct Coding {
    codec: Codec,
    encoder: Encoder,
    decoder: Decoder,
}

/// What a session keeps between frames.
struct FrameState {
    coding: Option<Coding>,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    last_event: Option<Instant>,
    heard: CallerAudio,
    recorder: Option<CallRecorder>,
    rtcp: RtcpState,
    /// Where the far end's RTCP comes from (symmetric RTCP).
    rtcp_from: Option<SocketAddr>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
    timeout_raised: bool,
    frames: u32,
    /// Frames of silence sent as comfort noise since the last audio.
    silent_frames: u32,
    frame: Vec<i16>,
    caller: Vec<i16>,
    payload: Vec<u8>,
    /// The SRTP contexts when the target says the media is encrypted.
    srtp: Option<SrtpSession>,
}

/// A received datagram after SRTP: as it came (plain media), decrypted, or
/// to be dropped.
enum Opened<'a> {
    Plain(&'a [u8]),
    Decrypted(Bytes),
    Rejected,
}

impl FrameTask {
    pub(crate) fn new(session: RtpSession, recorder: Option<CallRecorder>) -> FrameTask {
        let ssrc = rand::random();
        let frame = (session.pcm_rate() / 50) as usize;
        let cname = format!("voxline@{}", session.local_addr());
        FrameTask {
            state: Mutex::new(FrameState {
                coding: None,
                jitter: JitterBuffer::new(JitterConfig::for_clock(8000)),
                dtmf: DtmfReceiver::new(8000),
                last_event: None,
                heard: CallerAudio::default(),
                recorder,
                rtcp: RtcpState::new(ssrc, &cname, Instant::now()),
                rtcp_from: None,
                ssrc,
                seq: rand::random(),
                timestamp: rand::random(),
                marker: true,
                timeout_raised: false,
                frames: 0,
                silent_frames: 0,
                frame: vec![0; frame],
                caller: vec![0; frame],
                payload: Vec::with_capacity(400),
                srtp: None,
            }),
            session,
            stopped: AtomicBool::new(false),
        }
    }

    /// Stops the task (the clock drops it at its next tick), copies the
    /// jitter-buffer counters into the stats and gives back the recording
    /// to complete (off the clock's thread).
    pub(crate) fn finish(&self) -> Option<CallRecorder> {
        self.stopped.store(true, Ordering::Relaxed);
        let stats = &self.session.shared.stats;
        let Ok(mut st) = self.state.lock() else {
            return None;
        };
        let js = st.jitter.stats();
        stats.packets_lost.store(js.lost, Ordering::Relaxed);
        stats.packets_late.store(js.late, Ordering::Relaxed);
        stats.packets_duplicate.store(js.duplicates, Ordering::Relaxed);
        stats
            .frames_concealed
            .store(js.concealed + js.stretched, Ordering::Relaxed);
        stats.jitter_us.store((js.jitter_ms * 1000.0) as u64, Ordering::Relaxed);
        st.recorder.take()
    }
}

impl ClockTask for FrameTask {
    fn tick(&self, due: Instant) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let Ok(mut guard) = self.state.lock() else {
            return false;
        };
        let st = &mut *guard;
        let target = self.session.target();
        if let Some(t) = target {
            st.use_codec(&t);
            st.use_srtp(&t);
        }
        let now = (Instant::now(), SystemTime::now());
        self.receive(st, target.as_ref(), now);
        self.frame(st, target.as_ref(), due);
        if let Some(t) = target.as_ref() {
            self.report(st, t, now);
        }
        self.watch_timeout(st, target.as_ref());
        true
    }
}

impl FrameState {
    /// Builds (or rekeys) the SRTP contexts when the target's keys change;
    /// drops them when the media is plain again.
    fn use_srtp(&mut self, t: &RtpTarget) {
        match (t.srtp, self.srtp.as_mut()) {
            (None, _) => self.srtp = None,
            (Some(k), Some(s)) if *s.keys() == k => {}
            (Some(k), Some(s)) => {
                if let Err(e) = s.rekey(k) {
                    tracing::error!(error = %e, "SRTP rekey failed: media stops");
                    self.srtp = None;
                }
            }
            (Some(k), None) => match SrtpSession::new(k) {
                Ok(s) => self.srtp = Some(s),
                Err(e) => tracing::error!(error = %e, "SRTP keys unusable: media stops"),
            },
        }
    }

    /// `data` as the media layer may read it: decrypted when the call is
    /// encrypted (authentic and not a replay), else as it came.
    fn open<'a>(
        &mut self,
        target: Option<&RtpTarget>,
        data: &'a [u8],
        rtcp: bool,
        stats: &crate::MediaStats,
    ) -> Opened<'a> {
        if target.is_none_or(|t| t.srtp.is_none()) {
            return Opened::Plain(data);
        }
        let opened = self.srtp.as_mut().and_then(|s| {
            if rtcp {
                s.unprotect_rtcp(data)
            } else {
                s.unprotect_rtp(data)
            }
        });
        match opened {
            Some(b) => Opened::Decrypted(b),
            None => {
                stats.srtp_rejected.fetch_add(1, Ordering::Relaxed);
                Opened::Rejected
            }
        }
    }

    /// `packet` as it goes on the wire: encrypted when the call is
    /// (`None`: it cannot be sent).
    fn seal(&mut self, t: &RtpTarget, packet: Bytes, rtcp: bool) -> Option<Bytes> {
        if t.srtp.is_none() {
            return Some(packet);
        }
        let s = self.srtp.as_mut()?;
        if rtcp {
            s.protect_rtcp(&packet)
        } else {
            s.protect_rtp(&packet)
        }
    }

    /// Builds the codec state (and a jitter buffer at its clock) when the
    /// negotiated codec changes.
    fn use_codec(&mut self, t: &RtpTarget) {
        if self.coding.as_ref().is_some_and(|c| c.codec == t.codec) {
            return;
        }
        match (Encoder::new(t.codec), Decoder::new(t.codec)) {
            (Ok(encoder), Ok(decoder)) => {
                if self
                    .coding
                    .as_ref()
                    .is_none_or(|c| c.codec.clock_rate() != t.codec.clock_rate())
                {
                    self.jitter = JitterBuffer::new(JitterConfig::for_clock(t.codec.clock_rate()));
                }
                self.coding = Some(Coding {
                    codec: t.codec,
                    encoder,
                    decoder,
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, codec = t.codec.name(), "codec unavailable");
            }
        }
        self.dtmf = DtmfReceiver::new(t.telephone_event_rate);
    }
}

impl FrameTask {
    /// Takes in everything that arrived since the last frame.
    fn receive(&self, st: &mut FrameState, target: Option<&RtpTarget>, now: (Instant, SystemTime)) {
        let shared = &self.session.shared;
        SCRATCH.with(|scratch| {
            let Ok(mut bufs) = scratch.try_borrow_mut() else {
                return;
            };
            shared.rtp.drain(&mut bufs, MAX_DATAGRAMS_PER_FRAME, now, |data, d| {
                if is_rtcp(data) {
                    self.on_rtcp(st, target, data, d, now);
                } else {
                    self.on_rtp(st, target, data, d);
                }
            });
            st.frames = st.frames.wrapping_add(1);
            if let Some(rtcp) = shared.rtcp.as_ref() {
                if st.frames.is_multiple_of(RTCP_DRAIN_FRAMES) {
                    rtcp.drain(&mut bufs, MAX_DATAGRAMS_PER_FRAME, now, |data, d| {
                        self.on_rtcp(st, target, data, d, now);
                    });
                }
            }
        });
        // An event whose end packets were all lost is over once nothing
        // more of it came for 100 ms.
        if st
            .last_event
            .is_some_and(|t| now.0.duration_since(t) >= Duration::from_millis(100))
        {
            st.last_event = None;
            if let Some(d) = st.dtmf.flush() {
                shared.events_tx.send(MediaEvent::Dtmf(d)).ok();
            }
        }
    }

    fn on_rtcp(
        &self,
        st: &mut FrameState,
        target: Option<&RtpTarget>,
        data: &[u8],
        d: &Datagram,
        now: (Instant, SystemTime),
    ) {
        let stats = &self.session.shared.stats;
        if !self.session.shared.latch.lock().is_ok_and(|l| l.accepts_rtcp(d.from)) {
            // Reports from elsewhere neither count nor move where ours go.
            stats.packets_foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let opened = st.open(target, data, true, stats);
        let data: &[u8] = match &opened {
            Opened::Plain(p) => p,
            Opened::Decrypted(b) => b,
            Opened::Rejected => return,
        };
        // Timed by its kernel arrival, not by when this frame got to it, so
        // the round-trip time does not include up to a frame of our delay.
        let age = now.0.saturating_duration_since(d.arrival);
        let wall = now.1.checked_sub(age).unwrap_or(now.1);
        if !st.rtcp.on_packet(data, d.arrival, wall) {
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        st.rtcp_from = Some(d.from);
        let view = st.rtcp.remote();
        let clock = st.coding.as_ref().map_or(8000, |c| c.codec.clock_rate());
        stats.rtcp_reports.store(view.reports, Ordering::Relaxed);
        if let Some(rtt) = view.rtt {
            stats.rtt_us.store(rtt.as_micros() as u64, Ordering::Relaxed);
        }
        stats
            .remote_lost
            .store(u64::from(view.cumulative_lost), Ordering::Relaxed);
        stats
            .remote_jitter_us
            .store(u64::from(view.jitter) * 1_000_000 / u64::from(clock), Ordering::Relaxed);
    }

    fn on_rtp(&self, st: &mut FrameState, target: Option<&RtpTarget>, data: &[u8], d: &Datagram) {
        let shared = &self.session.shared;
        let stats = &shared.stats;
        if !crate::rtp_guard::rtp_parseable(data) {
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // On an encrypted call only authentic packets go further: nothing
        // forged is heard, keyed as a digit, or latched onto.
        let opened = st.open(target, data, false, stats);
        let mut data: &[u8] = match &opened {
            Opened::Plain(p) => p,
            Opened::Decrypted(b) => b,
            Opened::Rejected => return,
        };
        let Ok(packet) = rtp::packet::Packet::unmarshal(&mut data) else {
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (Some(t), Some(coding)) = (target, st.coding.as_ref()) else {
            // No negotiated media yet: nothing to decode with.
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let pt = packet.header.payload_type;
        let is_event = t.telephone_event_pt == Some(pt);
        let is_cn = t.comfort_noise_pt == Some(pt);
        if (is_event || is_cn) && !shared.latch.lock().is_ok_and(|l| l.accepts(d.from)) {
            // Digits and "the line is alive" only from the call's own source.
            stats.packets_foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if is_event {
            st.last_event = Some(d.arrival);
            for digit in st.dtmf.on_packet(packet.header.timestamp, &packet.payload) {
                shared.events_tx.send(MediaEvent::Dtmf(digit)).ok();
            }
            return;
        }
        if is_cn {
            // The far end is silent on purpose (RFC 3389): the line is alive.
            let arrival = d.arrival.saturating_duration_since(shared.started);
            shared.last_rx_ms.store(arrival.as_millis() as u64, Ordering::Relaxed);
            stats.packets_received.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if pt != t.payload_type {
            // Unknown payload types (comfort noise we did not accept, video...) are not audio.
            stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let verdict = shared
            .latch
            .lock()
            .map(|mut l| l.observe(d.from))
            .unwrap_or(LatchVerdict::Accept);
        if verdict == LatchVerdict::Foreign {
            stats.packets_foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let arrival = d.arrival.saturating_duration_since(shared.started);
        shared.last_rx_ms.store(arrival.as_millis() as u64, Ordering::Relaxed);
        let samples = coding.codec.payload_timestamps(&packet.payload);
        let pushed = st.jitter.push(RtpIn {
            ssrc: packet.header.ssrc,
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload: packet.payload,
            samples,
            arrival,
        });
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

    /// One 20 ms frame: the caller's audio out of the jitter buffer (to the
    /// port and the recorder), then the next packet toward the caller.
    fn frame(&self, st: &mut FrameState, target: Option<&RtpTarget>, due: Instant) {
        let shared = &self.session.shared;
        // When this frame was due, on the packets' arrival scale.
        let now = due.saturating_duration_since(shared.started);
        let rate = self.session.pcm_rate();
        let samples = (rate / 50) as usize;
        if st.frame.len() != samples {
            st.frame.resize(samples, 0);
            st.caller.resize(samples, 0);
        }
        // A codec of another rate than the call's (refused in SDP) is not used.
        let usable = st.coding.as_ref().is_some_and(|c| c.codec.pcm_rate() == rate);
        let had_audio = shared.playout.fill(&mut st.frame);
        match st.coding.as_mut().filter(|_| usable) {
            Some(c) => st
                .heard
                .next_frame(&mut st.jitter, &mut c.decoder, &shared.stats, &mut st.caller, now),
            None => st.caller.fill(0),
        }
        if let Ok(mut tap) = shared.caller_tap.lock() {
            if let Some(t) = tap.as_mut() {
                t.feed(&st.caller, &shared.stats);
            }
        }
        // Record once the codec (and so the call's rate) is known.
        if let Some(rec) = st.recorder.as_mut().filter(|_| st.coding.is_some()) {
            if let Err(e) = rec.write_frame(&st.caller, &st.frame, rate) {
                tracing::warn!(error = %e, "recording stopped");
                st.recorder = None;
            }
        }
        let frame_ts = st.coding.as_ref().map_or(160, |c| c.codec.frame_timestamps());
        if let Some(t) = target.filter(|t| usable && t.direction.sends()) {
            self.send_frame(st, t, had_audio);
        }
        // Timestamps advance with the clock, also across silence and hold.
        st.timestamp = st.timestamp.wrapping_add(frame_ts);
        if !had_audio {
            shared.playout.drained.notify_waiters();
        }
    }

    /// Sends the frame (or a DTMF or comfort-noise packet); the caller has
    /// checked that the codec is usable.
    fn send_frame(&self, st: &mut FrameState, t: &RtpTarget, had_audio: bool) {
        let shared = &self.session.shared;
        let Some(coding) = st.coding.as_mut() else {
            return;
        };
        let event = match (t.telephone_event_pt, shared.dtmf_out.lock()) {
            (Some(pt), Ok(mut out)) => out.next(st.timestamp, t.telephone_event_rate / 50).map(|e| (pt, e)),
            _ => None,
        };
        let (pt, mark, ts, body, seq_now) = match event {
            Some((pt, e)) => {
                // A retransmitted end packet keeps the previous sequence number.
                let s = if e.repeat { st.seq.wrapping_sub(1) } else { st.seq };
                (pt, e.marker, e.timestamp, Bytes::copy_from_slice(&e.payload), s)
            }
            None if !had_audio && t.comfort_noise_pt.is_some() => {
                // Silence as comfort noise: a CN packet now and then, none in
                // between; the next audio starts a talkspurt (marker bit).
                let refresh = st.silent_frames.is_multiple_of(CN_REFRESH_FRAMES);
                st.silent_frames = st.silent_frames.wrapping_add(1);
                st.marker = true;
                let Some(cn) = t.comfort_noise_pt.filter(|_| refresh) else {
                    return;
                };
                (cn, false, st.timestamp, Bytes::from_static(&[CN_LEVEL_DBOV]), st.seq)
            }
            None => {
                st.silent_frames = 0;
                if let Err(e) = coding.encoder.encode(&st.frame, &mut st.payload) {
                    tracing::warn!(error = %e, "encoding failed: frame not sent");
                    return;
                }
                (
                    t.payload_type,
                    st.marker,
                    st.timestamp,
                    Bytes::copy_from_slice(&st.payload),
                    st.seq,
                )
            }
        };
        let dest = shared.latch.lock().map(|l| l.destination(t.addr)).unwrap_or(t.addr);
        let len = body.len() as u64;
        let sealed = rtp_packet(pt, mark, seq_now, ts, st.ssrc, body).and_then(|b| st.seal(t, b, false));
        if let Some(buf) = sealed {
            // Never wait on the network from the clock: a full socket buffer drops the frame.
            match shared.rtp.send_to(&buf, dest) {
                Ok(_) => {
                    shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    shared.stats.octets_sent.fetch_add(len, Ordering::Relaxed);
                }
                Err(_) => {
                    shared.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !event.is_some_and(|(_, e)| e.repeat) {
            st.seq = st.seq.wrapping_add(1);
        }
        // A CN packet leaves the marker for the audio that follows it.
        if pt != t.comfort_noise_pt.unwrap_or(u8::MAX) {
            st.marker = false;
        }
    }

    /// Sends an RTCP report when one is due: on the RTP port when muxed,
    /// else to where the far end's RTCP comes from, its `a=rtcp` address, or
    /// the port above its RTP port.
    fn report(&self, st: &mut FrameState, t: &RtpTarget, now: (Instant, SystemTime)) {
        if !st.rtcp.due(now.0) {
            return;
        }
        let shared = &self.session.shared;
        let stats = &shared.stats;
        let sending = Sending {
            ssrc: st.ssrc,
            rtp_time: st.timestamp,
            packets: stats.packets_sent.load(Ordering::Relaxed) as u32,
            octets: stats.octets_sent.load(Ordering::Relaxed) as u32,
        };
        let rx: Option<Reception> = st.jitter.reception();
        let Some(bytes) = st.rtcp.report(now.0, now.1, Some(sending), rx) else {
            return;
        };
        let Some(bytes) = st.seal(t, bytes, true) else {
            return;
        };
        let rtp_dest = shared.latch.lock().map(|l| l.destination(t.addr)).unwrap_or(t.addr);
        if rtp_dest.ip().is_unspecified() || rtp_dest.port() == 0 {
            return;
        }
        let sent = match (t.rtcp_mux, shared.rtcp.as_ref()) {
            (false, Some(sock)) => {
                let dest = st
                    .rtcp_from
                    .or(t.rtcp_addr)
                    .unwrap_or_else(|| SocketAddr::new(rtp_dest.ip(), rtp_dest.port().wrapping_add(1)));
                sock.send_to(&bytes, dest)
            }
            _ => shared.rtp.send_to(&bytes, rtp_dest),
        };
        if sent.is_ok() {
            stats.rtcp_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Raises `MediaEvent::MediaTimeout` once when a two-way call has had no
    /// RTP for the configured time (on hold, phones often send nothing).
    fn watch_timeout(&self, st: &mut FrameState, target: Option<&RtpTarget>) {
        let shared = &self.session.shared;
        let limit = shared.media_timeout_ms.load(Ordering::Relaxed);
        let two_way = target.is_some_and(|t| t.direction == crate::MediaDirection::SendRecv);
        let silent = self.session.silence() >= Duration::from_millis(limit);
        if limit == 0 || !two_way || !silent {
            st.timeout_raised = false;
            return;
        }
        if !st.timeout_raised {
            st.timeout_raised = true;
            shared.events_tx.send(MediaEvent::MediaTimeout).ok();
        }
    }
}

/// The caller's decoded audio, one 20 ms frame at a time, out of the jitter
/// buffer, with concealment of lost frames: Opus FEC or PLC, and for G.711
/// the last frame, fading.
#[derive(Default)]
struct CallerAudio {
    pcm: VecDeque<i16>,
    last: Vec<i16>,
    fade: f32,
    scratch: Vec<i16>,
}

impl CallerAudio {
    fn next_frame(
        &mut self,
        jitter: &mut JitterBuffer,
        decoder: &mut Decoder,
        stats: &crate::MediaStats,
        out: &mut [i16],
        now: Duration,
    ) {
        let n = out.len();
        while self.pcm.len() < n {
            match jitter.pop_at(now) {
                Playout::Audio { payload, .. } => {
                    if decoder.decode(&payload, &mut self.scratch).is_err() {
                        self.scratch.clear();
                        self.scratch.resize(n, 0);
                    }
                    self.pcm.extend(self.scratch.iter().copied());
                    self.last.clear();
                    self.last.extend(self.scratch.iter().rev().take(n).rev());
                    self.fade = 1.0;
                }
                Playout::Conceal => {
                    let fec = jitter.fec_source();
                    match decoder.conceal(fec.as_deref(), n, &mut self.scratch) {
                        Ok(true) => {
                            if fec.is_some() {
                                stats.frames_fec.fetch_add(1, Ordering::Relaxed);
                            }
                            self.pcm.extend(self.scratch.iter().copied());
                        }
                        _ => {
                            self.fade *= 0.5;
                            let fade = self.fade;
                            if self.last.len() == n {
                                self.pcm.extend(self.last.iter().map(|&s| (f32::from(s) * fade) as i16));
                            } else {
                                self.pcm.extend(std::iter::repeat_n(0, n));
                            }
                        }
                    }
                }
                Playout::Silence => {
                    self.pcm.extend(std::iter::repeat_n(0, n));
                }
            }
        }
        for (dst, src) in out.iter_mut().zip(self.pcm.drain(..n)) {
            *dst = src;
        }
    }
}
