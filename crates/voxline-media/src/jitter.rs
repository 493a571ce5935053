//! Adaptive jitter buffer for one RTP stream.
//!
//! Packets go in as they arrive ([`JitterBuffer::push`]); the media clock
//! takes one frame out every ptime ([`JitterBuffer::pop`]): the packet whose
//! timestamp is due, a concealment frame when it is missing, or silence when
//! the stream has not started or has stopped. Sequence numbers and timestamps
//! are extended across their wraps; duplicates and late packets are dropped
//! and counted; an SSRC change resets the stream; a timestamp jump with no
//! sequence gap (silence suppression, a talkspurt after the marker bit) is
//! followed without concealing the gap. The playout delay follows the
//! RFC 3550 interarrival jitter estimate, between a minimum and a maximum.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of a jitter buffer.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// RTP clock rate (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Samples (timestamp units) per output frame: 20 ms.
    pub frame_samples: u32,
    /// Lowest playout delay.
    pub min_delay: Duration,
    /// Highest playout delay.
    pub max_delay: Duration,
    /// Packets held at most; the oldest is dropped beyond.
    pub max_packets: usize,
    /// Frames concealed in a row before the buffer goes silent and rebuffers.
    pub max_conceal_frames: u32,
    /// The least jitter the delay allows for, whatever the estimate says:
    /// the estimate starts at zero and the clock's own wake-ups wobble, so
    /// a stream that looks perfectly steady still gets this margin.
    pub jitter_floor: Duration,
}

impl JitterConfig {
    /// 20 ms frames at `clock_rate`, 20–200 ms delay.
    pub fn for_clock(clock_rate: u32) -> JitterConfig {
        JitterConfig {
            clock_rate,
            frame_samples: clock_rate / 50,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_packets: 200,
            max_conceal_frames: 5,
            jitter_floor: Duration::from_millis(2),
        }
    }
}

/// One received RTP packet, as the buffer needs it.
#[derive(Debug, Clone)]
pub struct RtpIn {
    /// Synchronisation source.
    pub ssrc: u32,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit (start of a talkspurt for audio).
    pub marker: bool,
    /// Encoded audio.
    pub payload: Bytes,
    /// Timestamp units of audio in the payload.
    pub samples: u32,
    /// Arrival time (any fixed origin).
    pub arrival: Duration,
}

/// What `push` did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Held for playout.
    Buffered,
    /// Already held or already played.
    Duplicate,
    /// Arrived after its playout time.
    Late,
    /// A new SSRC: the buffer was reset and the packet held.
    NewSource,
    /// Empty payload: ignored.
    Empty,
}

/// What the media clock gets for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet due now.
    Audio {
        /// Encoded audio.
        payload: Bytes,
        /// Its extended sequence number.
        seq: i64,
    },
    /// The packet due now is missing: conceal (PLC).
    Conceal,
    /// Nothing to play (not started, stopped, or rebuffering).
    Silence,
}

/// Counters of one stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JitterStats {
    /// Packets accepted.
    pub received: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Packets that arrived out of sequence order (and were put back in order).
    pub reordered: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Packets never received (RFC 3550 A.3: expected minus received, per
    /// source, summed over sources). A packet that arrived after its playout
    /// time is counted in `late`, not here: the network delivered it.
    pub lost: u64,
    /// Frames dropped to bring the delay down.
    pub accelerated: u64,
    /// Frames of concealment inserted to build the delay up.
    pub stretched: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// SSRC changes.
    pub source_changes: u64,
    /// Times playout jumped to a new timestamp without concealing.
    pub resyncs: u64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Current target delay, milliseconds.
    pub target_delay_ms: f64,
}

#[derive(Debug, Clone)]
struct Held {
    seq: i64,
    payload: Bytes,
    samples: u32,
    arrival: Duration,
}

/// Extends a wrapping RTP counter to 64 bits around the highest value seen
/// (`top`); `distance` is the signed distance from the top's raw value.
fn extend<T: Copy + Into<i64>>(top: &mut Option<(i64, T)>, raw: T, distance: impl Fn(T, T) -> i64) -> i64 {
    match *top {
        None => {
            *top = Some((raw.into(), raw));
            raw.into()
        }
        Some((ext, top_raw)) => {
            let e = ext + distance(raw, top_raw);
            if e > ext {
                *top = Some((e, raw));
            }
            e
        }
    }
}

/// The buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    ssrc: Option<u32>,
    /// Highest extended sequence number and timestamp seen, with their raw values.
    top_seq: Option<(i64, u16)>,
    top_ts: Option<(i64, u32)>,
    held: BTreeMap<i64, Held>,
    /// Next timestamp to play, once playing.
    play_ts: Option<i64>,
    /// Extended sequence number of the last packet played.
    last_played_seq: Option<i64>,
    conceal_run: u32,
    frames_since_accelerate: u32,
    frames_since_stretch: u32,
    /// Transit time of the previous packet, in timestamp units (RFC 3550 A.8).
    last_transit: Option<f64>,
    jitter: f64,
    /// First extended sequence number and packets received from the current source.
    base_seq: Option<i64>,
    source_received: u64,
    /// Packets lost from earlier sources (before an SSRC change).
    lost_earlier: u64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> JitterBuffer {
        let mut jb = JitterBuffer {
            cfg,
            ssrc: None,
            top_seq: None,
            top_ts: None,
            held: BTreeMap::new(),
            play_ts: None,
            last_played_seq: None,
            conceal_run: 0,
            frames_since_accelerate: 0,
            frames_since_stretch: 0,
            last_transit: None,
            jitter: 0.0,
            base_seq: None,
            source_received: 0,
            lost_earlier: 0,
            stats: JitterStats::default(),
        };
        jb.stats.target_delay_ms = jb.target_delay_samples() as f64 * 1000.0 / f64::from(cfg.clock_rate);
        jb
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            lost: self.lost_earlier + self.source_lost(),
            ..self.stats.clone()
        }
    }

    /// Packets expected from the current source (its first to its highest
    /// sequence number) that never arrived.
    fn source_lost(&self) -> u64 {
        match (self.base_seq, self.top_seq) {
            (Some(base), Some((top, _))) => ((top - base + 1).max(0) as u64).saturating_sub(self.source_received),
            _ => 0,
        }
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn reset_stream(&mut self) {
        self.lost_earlier += self.source_lost();
        self.top_seq = None;
        self.top_ts = None;
        self.held.clear();
        self.play_ts = None;
        self.last_played_seq = None;
        self.conceal_run = 0;
        self.last_transit = None;
        self.base_seq = None;
        self.source_received = 0;
    }

    /// What has been received from the current source, for an RTCP report
    /// block (None before the first packet).
    pub fn reception(&self) -> Option<crate::rtcp_report::Reception> {
        Some(crate::rtcp_report::Reception {
            ssrc: self.ssrc?,
            base_seq: self.base_seq?,
            highest_seq: self.top_seq?.0,
            received: self.source_received,
            jitter: self.jitter as u32,
        })
    }

    /// After a concealed frame: the packet now due, when exactly one packet
    /// was lost before it (its in-band FEC data can rebuild the lost one).
    pub fn fec_source(&self) -> Option<Bytes> {
        let play = self.play_ts?;
        let h = self.held.get(&play)?;
        (Some(h.seq) == self.last_played_seq.map(|s| s + 2)).then(|| h.payload.clone())
    }

    fn extend_seq(&mut self, seq: u16) -> i64 {
        extend(&mut self.top_seq, seq, |raw, top| {
            i64::from(raw.wrapping_sub(top) as i16)
        })
    }

    fn extend_ts(&mut self, ts: u32) -> i64 {
        extend(&mut self.top_ts, ts, |raw, top| i64::from(raw.wrapping_sub(top) as i32))
    }

    fn target_delay_samples(&self) -> i64 {
        let rate = f64::from(self.cfg.clock_rate);
        let min = self.cfg.min_delay.as_secs_f64() * rate;
        let max = self.cfg.max_delay.as_secs_f64() * rate;
        // Three times the jitter plus one frame covers most arrivals.
        let floor = self.cfg.jitter_floor.as_secs_f64() * rate;
        let want = 3.0 * self.jitter.max(floor) + f64::from(self.cfg.frame_samples);
        want.clamp(min, max.max(min)) as i64
    }

    fn update_jitter(&mut self, p: &RtpIn, ext_ts: i64) {
        let arrival = p.arrival.as_secs_f64() * f64::from(self.cfg.clock_rate);
        let transit = arrival - ext_ts as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // Ignore steps that are clock jumps, not jitter (over 1 s).
            if d < f64::from(self.cfg.clock_rate) {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
        self.stats.jitter_ms = self.jitter * 1000.0 / f64::from(self.cfg.clock_rate);
        self.stats.target_delay_ms = self.target_delay_samples() as f64 * 1000.0 / f64::from(self.cfg.clock_rate);
    }

    /// Takes in one packet.
    pub fn push(&mut self, p: RtpIn) -> Pushed {
        if p.payload.is_empty() || p.samples == 0 {
            return Pushed::Empty;
        }
        let mut outcome = Pushed::Buffered;
        if self.ssrc != Some(p.ssrc) {
            if self.ssrc.is_some() {
                self.stats.source_changes += 1;
                outcome = Pushed::NewSource;
            }
            self.ssrc = Some(p.ssrc);
            self.reset_stream();
        }
        let before_top = self.top_seq.map(|(e, _)| e);
        let seq = self.extend_seq(p.seq);
        let ts = self.extend_ts(p.timestamp);
        if self.last_played_seq == Some(seq) || self.held.values().any(|h| h.seq == seq) {
            self.stats.duplicates += 1;
            return Pushed::Duplicate;
        }
        // RTCP counts a late packet as received (RFC 3550 A.3): the
        // network delivered it, only the playout had passed it.
        self.source_received += 1;
        self.base_seq = Some(self.base_seq.map_or(seq, |b| b.min(seq)));
        // A late packet still tells how much the network delays vary.
        self.update_jitter(&p, ts);
        if before_top.is_some_and(|top| seq < top) {
            self.stats.reordered += 1;
        }
        if let Some(pt) = self.play_ts {
            if ts + i64::from(p.samples) <= pt {
                self.stats.late += 1;
                return Pushed::Late;
            }
        }
        self.stats.received += 1;
        self.held.insert(
            ts,
            Held {
                seq,
                payload: p.payload,
                samples: p.samples,
                arrival: p.arrival,
            },
        );
        while self.held.len() > self.cfg.max_packets {
            if let Some((&k, _)) = self.held.iter().next() {
                self.held.remove(&k);
                self.stats.overflow += 1;
            }
        }
        outcome
    }

    /// Buffered audio ahead of the playout point (or of the first packet), in timestamp units.
    fn buffered_samples(&self) -> i64 {
        let (Some((&first, _)), Some((&last, h))) = (self.held.iter().next(), self.held.iter().next_back()) else {
            return 0;
        };
        let from = self.play_ts.unwrap_or(first);
        last + i64::from(h.samples) - from
    }

    /// How long ago (timestamp units) the newest held packet arrived, when
    /// that is less than a frame: the next packet is that much closer, so
    /// the buffer's lead over the network is this much more than the audio
    /// it holds. Nothing when the time is unknown or the next packet is
    /// already overdue.
    fn arrival_credit(&self, now: Option<Duration>) -> i64 {
        let (Some(now), Some((_, h))) = (now, self.held.iter().next_back()) else {
            return 0;
        };
        let since = now.saturating_sub(h.arrival).as_secs_f64() * f64::from(self.cfg.clock_rate);
        if since < f64::from(self.cfg.frame_samples) {
            since as i64
        } else {
            0
        }
    }

    /// Gives the frame due now. Call once per `frame_samples` of the media
    /// clock. Without the clock's time the buffer judges its lead by the
    /// audio it holds only: prefer [`pop_at`](Self::pop_at).
    pub fn pop(&mut self) -> Playout {
        self.pop_inner(None)
    }

    /// Gives the frame due at `now` (same origin as [`RtpIn::arrival`]).
    /// The delay is stretched only when the audio held plus the time since
    /// the newest packet arrived is short of the target: a packet that
    /// arrives well before the clock's tick needs no second frame held.
    pub fn pop_at(&mut self, now: Duration) -> Playout {
        self.pop_inner(Some(now))
    }

    fn pop_inner(&mut self, now: Option<Duration>) -> Playout {
        let frame = i64::from(self.cfg.frame_samples);
        let Some(mut play) = self.play_ts else {
            // Not playing: start once the target delay is buffered.
            let lead = self.buffered_samples() + self.arrival_credit(now);
            if self.held.is_empty() || lead < self.target_delay_samples() {
                return Playout::Silence;
            }
            let first = self.held.keys().next().copied().unwrap_or(0);
            self.play_ts = Some(first);
            return self.pop_inner(now);
        };
        // Drop anything that is now behind the playout point.
        while let Some((&k, h)) = self.held.iter().next() {
            if k + i64::from(h.samples) <= play {
                self.held.remove(&k);
                self.stats.late += 1;
            } else {
                break;
            }
        }
        // Too much delay built up: drop one frame now and then (at most 1 in 10).
        self.frames_since_accelerate += 1;
        if self.buffered_samples() > self.target_delay_samples() + 3 * frame && self.frames_since_accelerate >= 10 {
            if let Some((&k, h)) = self.held.iter().next() {
                if k == play {
                    let samples = i64::from(h.samples);
                    let seq = h.seq;
                    self.held.remove(&k);
                    self.last_played_seq = Some(seq);
                    play += samples;
                    self.play_ts = Some(play);
                    self.stats.accelerated += 1;
                    self.frames_since_accelerate = 0;
                }
            }
        }
        // Too little delay for the jitter seen: stretch by one concealment
        // frame now and then (at most 1 in 5), without consuming the packet.
        self.frames_since_stretch += 1;
        let due = self.held.keys().next().is_some_and(|&k| k <= play);
        let lead = self.buffered_samples() + self.arrival_credit(now);
        if due && lead < self.target_delay_samples() && self.frames_since_stretch >= 5 {
            self.frames_since_stretch = 0;
            self.stats.stretched += 1;
            return Playout::Conceal;
        }
        match self.held.iter().next().map(|(&k, h)| (k, h.seq)) {
            Some((k, seq)) if k <= play => {
                let h = self.held.remove(&k).expect("key just seen");
                self.last_played_seq = Some(seq);
                self.play_ts = Some(k + i64::from(h.samples));
                self.conceal_run = 0;
                Playout::Audio {
                    payload: h.payload,
                    seq,
                }
            }
            Some((k, seq)) => {
                let consecutive = self.last_played_seq.is_some_and(|last| seq == last + 1);
                if consecutive {
                    // No packet is missing: the sender skipped time (silence
                    // suppression, a new talkspurt, a clock jump). Follow it.
                    self.stats.resyncs += 1;
                    self.play_ts = Some(k);
                    return self.pop_inner(now);
                }
                self.conceal(play + frame)
            }
            None => self.conceal(play + frame),
        }
    }

    fn conceal(&mut self, next_play: i64) -> Playout {
        self.conceal_run += 1;
        if self.conceal_run > self.cfg.max_conceal_frames {
            // The stream stopped (hold, DTX, loss of the far end): go quiet and
            // rebuffer when packets come back.
            self.play_ts = None;
            self.conceal_run = 0;
            return Playout::Silence;
        }
        self.play_ts = Some(next_play);
        self.stats.concealed += 1;
        Playout::Conceal
    }
}

#[cfg(test)]
mod tests {
    //! Cases ported from the GStreamer rtpjitterbuffer, WebRTC NetEq and
    //! rtpengine sequencer test catalogues, named after what they check.
    use super::*;

    const FRAME: u32 = 160;

    /// The ordering and loss cases feed packets with no clock: without the
    /// jitter floor, so a buffer drained to its last frame is not stretched.
    fn cfg() -> JitterConfig {
        JitterConfig {
            jitter_floor: Duration::ZERO,
            ..JitterConfig::for_clock(8000)
        }
    }

    fn pkt(seq: u16, ts: u32, at_ms: u64) -> RtpIn {
        RtpIn {
            ssrc: 0x1234,
            seq,
            timestamp: ts,
            marker: false,
            payload: Bytes::from(vec![seq as u8; FRAME as usize]),
            samples: FRAME,
            arrival: Duration::from_millis(at_ms),
        }
    }

    /// Pushes packets `seqs` (timestamps follow the sequence) all at once.
    fn feed(jb: &mut JitterBuffer, seqs: &[u16]) {
        for &s in seqs {
            jb.push(pkt(s, u32::from(s) * FRAME, u64::from(s) * 20));
        }
    }

    fn played(jb: &mut JitterBuffer, n: usize) -> Vec<Option<i64>> {
        (0..n)
            .map(|_| match jb.pop() {
                Playout::Audio { seq, .. } => Some(seq),
                Playout::Conceal => Some(-1),
                Playout::Silence => None,
            })
            .collect()
    }

    #[test]
    fn in_order_packets_play_in_order_after_the_initial_delay() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 2, 3, 4]);
        assert_eq!(
            played(&mut jb, 6),
            vec![Some(0), Some(1), Some(2), Some(3), Some(4), Some(-1)]
        );
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn silence_until_the_target_delay_is_buffered() {
        let mut jb = JitterBuffer::new(JitterConfig {
            min_delay: Duration::from_millis(60),
            ..cfg()
        });
        jb.push(pkt(0, 0, 0));
        assert_eq!(jb.pop(), Playout::Silence);
        jb.push(pkt(1, FRAME, 20));
        assert_eq!(jb.pop(), Playout::Silence);
        jb.push(pkt(2, 2 * FRAME, 40));
        assert!(matches!(jb.pop(), Playout::Audio { seq: 0, .. }));
    }

    #[test]
    fn single_loss_is_concealed_once_and_counted() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 3, 4]);
        assert_eq!(played(&mut jb, 5), vec![Some(0), Some(1), Some(-1), Some(3), Some(4)]);
        assert_eq!(jb.stats().concealed, 1);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn burst_loss_is_concealed_frame_by_frame() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 5, 6]);
        assert_eq!(
            played(&mut jb, 7),
            vec![Some(0), Some(1), Some(-1), Some(-1), Some(-1), Some(5), Some(6)]
        );
        assert_eq!(jb.stats().lost, 3);
    }

    #[test]
    fn loss_is_summed_over_sources() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 3]);
        assert_eq!(jb.stats().lost, 1);
        for (i, seq) in [500u16, 502, 503].into_iter().enumerate() {
            let mut p = pkt(seq, 9000 + u32::from(seq) * FRAME, 100 + i as u64 * 20);
            p.ssrc = 0x9999;
            jb.push(p);
        }
        assert_eq!(jb.stats().source_changes, 1);
        assert_eq!(jb.stats().lost, 2, "one from each source");
    }

    #[test]
    fn reordered_packets_are_played_in_sequence_order() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 2, 1, 4, 3]);
        assert_eq!(played(&mut jb, 5), vec![Some(0), Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(jb.stats().reordered, 2);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn duplicate_packets_are_dropped_and_counted() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1]);
        assert_eq!(jb.push(pkt(1, FRAME, 25)), Pushed::Duplicate);
        jb.pop();
        // A duplicate of a packet already played.
        assert_eq!(jb.push(pkt(0, 0, 30)), Pushed::Duplicate);
        assert_eq!(played(&mut jb, 2), vec![Some(1), Some(-1)]);
        assert_eq!(jb.stats().duplicates, 2);
    }

    #[test]
    fn sequence_number_wrap_keeps_order() {
        let mut jb = JitterBuffer::new(cfg());
        let seqs = [65533u16, 65534, 65535, 0, 1];
        for (i, &s) in seqs.iter().enumerate() {
            jb.push(pkt(s, i as u32 * FRAME, i as u64 * 20));
        }
        let got = played(&mut jb, 5);
        assert!(got.iter().all(|g| g.is_some_and(|s| s >= 0)), "{got:?}");
        let seqs: Vec<i64> = got.into_iter().flatten().collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reordering_across_the_sequence_wrap_is_repaired() {
        let mut jb = JitterBuffer::new(cfg());
        let order = [(65534u16, 0u32), (0, 2), (65535, 1), (1, 3)];
        for (s, i) in order {
            jb.push(pkt(s, i * FRAME, u64::from(i) * 20));
        }
        let seqs: Vec<i64> = played(&mut jb, 4).into_iter().flatten().collect();
        assert_eq!(seqs.len(), 4);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }

    #[test]
    fn timestamp_wrap_keeps_order() {
        let mut jb = JitterBuffer::new(cfg());
        let start = u32::MAX - FRAME; // the third packet wraps
        for i in 0..5u32 {
            jb.push(pkt(100 + i as u16, start.wrapping_add(i * FRAME), u64::from(i) * 20));
        }
        assert_eq!(
            played(&mut jb, 5),
            vec![Some(100), Some(101), Some(102), Some(103), Some(104)]
        );
    }

    #[test]
    fn ssrc_change_resets_the_stream() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 2]);
        assert!(matches!(jb.pop(), Playout::Audio { seq: 0, .. }));
        // A transfer: a new source with unrelated numbers.
        let mut p = pkt(9000, 555_000, 60);
        p.ssrc = 0xBEEF;
        assert_eq!(jb.push(p), Pushed::NewSource);
        let mut q = pkt(9001, 555_000 + FRAME, 80);
        q.ssrc = 0xBEEF;
        jb.push(q);
        assert_eq!(played(&mut jb, 2), vec![Some(9000), Some(9001)]);
        assert_eq!(jb.stats().source_changes, 1);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn marker_after_silence_resumes_without_concealing_the_gap() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1]);
        assert_eq!(played(&mut jb, 2), vec![Some(0), Some(1)]);
        // The sender was silent for 2 s (no packets, timestamps moved on), then a
        // new talkspurt starts with the marker bit and the next sequence number.
        let mut p = pkt(2, FRAME * 2 + 16000, 2040);
        p.marker = true;
        jb.push(p);
        jb.push(pkt(3, FRAME * 3 + 16000, 2060));
        assert_eq!(played(&mut jb, 2), vec![Some(2), Some(3)]);
        assert_eq!(jb.stats().concealed, 0);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn timestamp_jump_without_a_sequence_gap_is_not_loss() {
        let mut jb = JitterBuffer::new(cfg());
        jb.push(pkt(10, 1000, 0));
        jb.push(pkt(11, 1000 + FRAME, 20));
        jb.push(pkt(12, 900_000, 40)); // the sender's clock jumped
        jb.push(pkt(13, 900_000 + FRAME, 60));
        assert_eq!(played(&mut jb, 4), vec![Some(10), Some(11), Some(12), Some(13)]);
        assert_eq!(jb.stats().concealed, 0);
        assert_eq!(jb.stats().resyncs, 1);
    }

    #[test]
    fn a_packet_arriving_after_its_playout_time_is_dropped_as_late() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0, 1, 3]);
        assert_eq!(played(&mut jb, 3), vec![Some(0), Some(1), Some(-1)]);
        assert_eq!(jb.push(pkt(2, 2 * FRAME, 100)), Pushed::Late);
        assert_eq!(played(&mut jb, 1), vec![Some(3)]);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().lost, 0, "late is not lost");
        // It arrived: the RTCP report does not count it as lost.
        let r = jb.reception().expect("reception");
        assert_eq!((r.highest_seq - r.base_seq + 1, r.received), (4, 4));
    }

    #[test]
    fn underrun_conceals_a_few_frames_then_goes_silent_and_rebuffers() {
        let mut jb = JitterBuffer::new(cfg());
        feed(&mut jb, &[0]);
        let got = played(&mut jb, 8);
        assert_eq!(got[0], Some(0));
        assert_eq!(&got[1..6], &[Some(-1); 5]);
        assert_eq!(&got[6..], &[None, None]);
        // Packets come back much later: playing resumes, no huge concealment.
        jb.push(pkt(50, 50 * FRAME, 1000));
        jb.push(pkt(51, 51 * FRAME, 1020));
        assert_eq!(played(&mut jb, 2), vec![Some(50), Some(51)]);
    }

    /// Runs a 20 ms media clock for `ticks` ticks over packets that arrive
    /// `early_ms` before their tick, give or take `wobble_ms` (alternating);
    /// returns the buffer's counters and the packets held at the end.
    fn stretches_with_packets_early_by(early_ms: f64, wobble_ms: f64, ticks: u64) -> (JitterStats, usize) {
        let mut jb = JitterBuffer::new(JitterConfig::for_clock(8000));
        let mut next = 0u16;
        for tick in 1..=ticks {
            let now = Duration::from_secs_f64(tick as f64 * 0.020);
            loop {
                let k = f64::from(next);
                let wobble = if next.is_multiple_of(2) { wobble_ms } else { -wobble_ms };
                let at = Duration::from_secs_f64(((k + 1.0) * 20.0 - early_ms + wobble) / 1000.0);
                if at > now {
                    break;
                }
                let mut p = pkt(next, u32::from(next) * FRAME, 0);
                p.arrival = at;
                jb.push(p);
                next += 1;
            }
            jb.pop_at(now);
        }
        (jb.stats(), jb.len())
    }

    #[test]
    fn packets_arriving_well_before_the_tick_need_no_stretch() {
        // 12 ms early, ±1.5 ms of jitter: the next packet is always in time
        // with one frame held, so playout starts on the first packet and
        // the delay stays there (judged by the audio held alone, one frame
        // is less than the target and the buffer would hold two).
        let (stats, held) = stretches_with_packets_early_by(12.0, 1.5, 500);
        assert_eq!((stats.stretched, stats.late, stats.concealed, held), (0, 0, 0, 0));
    }

    #[test]
    fn packets_arriving_just_before_the_tick_get_one_more_frame() {
        // 1 ms early, ±1.5 ms: every other packet would miss its tick with
        // one frame held, so the buffer holds a second one and none is late.
        let (stats, held) = stretches_with_packets_early_by(1.0, 1.5, 500);
        assert!(stats.stretched <= 2 && held <= 2, "{stats:?}, held {held}");
        assert_eq!(stats.late, 0, "{stats:?}");
    }

    #[test]
    fn jitter_estimate_grows_with_arrival_jitter_and_the_delay_follows() {
        let mut calm = JitterBuffer::new(cfg());
        let mut rough = JitterBuffer::new(cfg());
        for i in 0..200u32 {
            calm.push(pkt(i as u16, i * FRAME, u64::from(i) * 20));
            // ±30 ms of arrival jitter.
            let wobble = if i % 2 == 0 { 0 } else { 30 };
            rough.push(pkt(i as u16, i * FRAME, u64::from(i) * 20 + wobble));
        }
        let (c, r) = (calm.stats(), rough.stats());
        assert!(c.jitter_ms < 1.0, "calm jitter {}", c.jitter_ms);
        assert!(r.jitter_ms > 10.0, "rough jitter {}", r.jitter_ms);
        assert!(
            r.target_delay_ms > c.target_delay_ms + 20.0,
            "{} vs {}",
            r.target_delay_ms,
            c.target_delay_ms
        );
        assert!(r.target_delay_ms <= 200.0);
    }

    #[test]
    fn excess_delay_is_reduced_by_dropping_frames() {
        let mut jb = JitterBuffer::new(cfg());
        // A burst of 40 packets (800 ms) arrives at once after a network stall.
        for i in 0..40u32 {
            jb.push(pkt(i as u16, i * FRAME, 1000));
        }
        let mut frames = 0;
        while !jb.is_empty() && frames < 100 {
            jb.pop();
            frames += 1;
        }
        assert!(jb.stats().accelerated > 0);
        assert!(frames < 40, "played {frames} frames for 40 packets");
    }

    #[test]
    fn overflow_drops_the_oldest_packets() {
        let mut jb = JitterBuffer::new(JitterConfig {
            max_packets: 10,
            ..cfg()
        });
        for i in 0..15u32 {
            jb.push(pkt(i as u16, i * FRAME, u64::from(i) * 20));
        }
        assert_eq!(jb.len(), 10);
        assert_eq!(jb.stats().overflow, 5);
        assert!(matches!(jb.pop(), Playout::Audio { seq: 5, .. }));
    }

    #[test]
    fn empty_payloads_are_ignored() {
        let mut jb = JitterBuffer::new(cfg());
        let mut p = pkt(0, 0, 0);
        p.payload = Bytes::new();
        assert_eq!(jb.push(p), Pushed::Empty);
        assert!(jb.is_empty());
    }

    #[test]
    fn steady_stream_with_loss_reorder_and_duplicates_plays_everything_it_can() {
        // A long stream through a 10% loss / 5% reorder / 2% duplicate channel.
        let mut jb = JitterBuffer::new(cfg());
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % 100
        };
        let mut delivered = std::collections::BTreeSet::new();
        let mut pending: Option<RtpIn> = None;
        let mut played_seqs = Vec::new();
        for i in 0..1000u32 {
            let p = pkt(i as u16, i * FRAME, u64::from(i) * 20);
            let r = next();
            if r < 10 {
                // lost
            } else if r < 15 && pending.is_none() {
                pending = Some(p); // held back: arrives after the next one
            } else {
                delivered.insert(i);
                jb.push(p.clone());
                if r >= 98 {
                    jb.push(p);
                }
                if let Some(mut q) = pending.take() {
                    // It really arrives now, 20 ms or more after its turn.
                    q.arrival = Duration::from_millis(u64::from(i) * 20 + 5);
                    delivered.insert(u32::from(q.seq));
                    jb.push(q);
                }
            }
            if let Playout::Audio { seq, .. } = jb.pop() {
                played_seqs.push(seq);
            }
        }
        for _ in 0..20 {
            if let Playout::Audio { seq, .. } = jb.pop() {
                played_seqs.push(seq);
            }
        }
        assert!(played_seqs.windows(2).all(|w| w[1] > w[0]), "played out of order");
        let s = jb.stats();
        assert!(s.duplicates > 0 && s.reordered > 0 && s.lost > 50, "{s:?}");
        // Almost everything delivered is played (a reordered packet may come too late).
        assert!(
            played_seqs.len() as f64 >= delivered.len() as f64 * 0.97,
            "{} of {}",
            played_seqs.len(),
            delivered.len()
        );
    }
}
