//! RFC 4733 telephone-event reception: one digit per event, whatever the
//! redundancy (an event is sent many times with a growing duration, and its
//! end packet three times) and whatever was lost.

/// How a DTMF digit reached voxline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-events in the RTP stream.
    Rtp,
    /// A SIP INFO (application/dtmf-relay or application/dtmf).
    SipInfo,
}

impl DtmfSource {
    /// Short name for logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfSource::Rtp => "rtp",
            DtmfSource::SipInfo => "info",
        }
    }
}

/// A DTMF digit heard on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// 0-9, *, #, A-D.
    pub digit: char,
    /// How long it was pressed, ms (0 when a SIP INFO did not say).
    pub duration_ms: u32,
    /// How it came.
    pub source: DtmfSource,
}

/// The digit of an RFC 4733 event code (0-15), if it is one.
pub fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Tracks telephone-event packets of one stream.
#[derive(Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    /// The event being received: RTP timestamp, event code, last duration, reported.
    current: Option<(u32, u8, u16, bool)>,
}

impl DtmfReceiver {
    /// A receiver for a stream clocked at `clock_rate` (8000 for G.711 calls).
    pub fn new(clock_rate: u32) -> DtmfReceiver {
        DtmfReceiver {
            clock_rate: clock_rate.max(1),
            current: None,
        }
    }

    fn to_ms(&self, duration: u16) -> u32 {
        (u64::from(duration) * 1000 / u64::from(self.clock_rate)) as u32
    }

    /// Takes one telephone-event payload with its RTP timestamp; returns the
    /// digits completed by it (the previous event's, when its end was lost,
    /// and this one's, when this packet ends it).
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Vec<DtmfDigit> {
        let mut out = Vec::new();
        if payload.len() < 4 {
            return out;
        }
        let event = payload[0];
        let end = payload[1] & 0x80 != 0;
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        match self.current {
            Some((ts, _, _, true)) if ts == timestamp => return out, // retransmitted end
            Some((ts, ev, dur, false)) if ts != timestamp => {
                // A new event began before the old one's end arrived: report the old one.
                if let Some(d) = event_digit(ev) {
                    out.push(DtmfDigit {
                        digit: d,
                        duration_ms: self.to_ms(dur),
                        source: DtmfSource::Rtp,
                    });
                }
            }
            _ => {}
        }
        let same = matches!(self.current, Some((ts, ..)) if ts == timestamp);
        let best = match self.current {
            Some((_, _, d, _)) if same => d.max(duration),
            _ => duration,
        };
        if end {
            if let Some(d) = event_digit(event) {
                out.push(DtmfDigit {
                    digit: d,
                    duration_ms: self.to_ms(best),
                    source: DtmfSource::Rtp,
                });
            }
        }
        self.current = Some((timestamp, event, best, end));
        out
    }

    /// Reports an event whose end never came, once nothing was heard for a
    /// while (call this when the stream goes quiet).
    pub fn flush(&mut self) -> Option<DtmfDigit> {
        match self.current {
            Some((ts, ev, dur, false)) => {
                self.current = Some((ts, ev, dur, true));
                event_digit(ev).map(|d| DtmfDigit {
                    digit: d,
                    duration_ms: self.to_ms(dur),
                    source: DtmfSource::Rtp,
                })
            }
            _ => None,
        }
    }
}

/// The RFC 4733 event code of a digit.
pub fn digit_event(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// One telephone-event packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The 4-byte RFC 4733 payload.
    pub payload: [u8; 4],
    /// Marker bit (first packet of an event).
    pub marker: bool,
    /// RTP timestamp: the event's start, the same for all its packets.
    pub timestamp: u32,
    /// A retransmission of the end packet: reuse the previous sequence number.
    pub repeat: bool,
}

#[derive(Debug)]
struct Sending {
    event: u8,
    start_ts: u32,
    duration: u32,
    target: u32,
    ends_sent: u8,
}

/// Sends digits as RFC 4733 events on the media clock: one packet per 20 ms
/// frame with a growing duration, the end packet three times, 60 ms between
/// digits. Audio is not sent while an event is.
#[derive(Debug, Default)]
pub struct DtmfSender {
    queue: std::collections::VecDeque<(u8, u32)>,
    active: Option<Sending>,
    gap_frames: u32,
}

/// Volume field of sent events (dBm0 below 0, as a positive number).
const SEND_VOLUME: u8 = 10;
/// Frames of audio between two digits.
const GAP_FRAMES: u32 = 3;

impl DtmfSender {
    /// Queues `digits`, each lasting `duration_samples` (at the RTP clock);
    /// refuses a string with a character that is not a DTMF digit.
    pub fn queue(&mut self, digits: &str, duration_samples: u32) -> Result<(), char> {
        let events: Result<Vec<u8>, char> = digits.chars().map(|c| digit_event(c).ok_or(c)).collect();
        for e in events? {
            self.queue.push_back((e, duration_samples.clamp(320, 0xFFFF)));
        }
        Ok(())
    }

    /// Whether nothing is being or waiting to be sent.
    pub fn is_idle(&self) -> bool {
        self.active.is_none() && self.queue.is_empty()
    }

    fn packet(&self, a: &Sending, end: bool, marker: bool, repeat: bool) -> EventPacket {
        let d = (a.duration.min(0xFFFF) as u16).to_be_bytes();
        EventPacket {
            payload: [a.event, if end { 0x80 } else { 0 } | SEND_VOLUME, d[0], d[1]],
            marker,
            timestamp: a.start_ts,
            repeat,
        }
    }

    /// The event packet for this frame, or None to send audio.
    /// `now_ts` is the frame's RTP timestamp, `frame` its length in samples.
    pub fn next(&mut self, now_ts: u32, frame: u32) -> Option<EventPacket> {
        if let Some(mut a) = self.active.take() {
            if a.ends_sent > 0 {
                if a.ends_sent < 3 {
                    a.ends_sent += 1;
                    let p = self.packet(&a, true, false, true);
                    self.active = Some(a);
                    return Some(p);
                }
                self.gap_frames = GAP_FRAMES;
                return None;
            }
            a.duration += frame;
            let end = a.duration >= a.target;
            if end {
                a.ends_sent = 1;
            }
            let p = self.packet(&a, end, false, false);
            self.active = Some(a);
            return Some(p);
        }
        if self.gap_frames > 0 {
            self.gap_frames -= 1;
            return None;
        }
        let (event, target) = self.queue.pop_front()?;
        let a = Sending {
            event,
            start_ts: now_ts,
            duration: frame,
            target,
            ends_sent: 0,
        };
        let p = self.packet(&a, false, true, false);
        self.active = Some(a);
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_digit_has_a_marker_growing_durations_and_three_ends() {
        let mut s = DtmfSender::default();
        s.queue("1", 800).unwrap();
        let mut ts = 1000u32;
        let mut got = Vec::new();
        for _ in 0..12 {
            got.push(s.next(ts, 160));
            ts += 160;
        }
        let packets: Vec<EventPacket> = got.iter().flatten().copied().collect();
        // 160, 320, 480, 640, then the end at 800 sent three times.
        assert_eq!(packets.len(), 7, "{packets:?}");
        assert!(packets[0].marker && !packets[1].marker);
        assert!(packets.iter().all(|p| p.timestamp == 1000 && p.payload[0] == 1));
        let durations: Vec<u16> = packets
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        let ends = packets.iter().filter(|p| p.payload[1] & 0x80 != 0).count();
        assert_eq!(ends, 3);
        assert_eq!(packets.iter().filter(|p| p.repeat).count(), 2);
        assert!(s.is_idle());
    }

    #[test]
    fn sent_digits_are_received_as_the_same_digits() {
        let mut s = DtmfSender::default();
        s.queue("12#", 640).unwrap();
        let mut r = DtmfReceiver::new(8000);
        let mut heard = Vec::new();
        let mut ts = 0u32;
        for _ in 0..60 {
            if let Some(p) = s.next(ts, 160) {
                heard.extend(r.on_packet(p.timestamp, &p.payload));
            }
            ts += 160;
        }
        let digits: String = heard.iter().map(|d| d.digit).collect();
        assert_eq!(digits, "12#");
        assert!(heard.iter().all(|d| d.duration_ms == 80));
    }

    #[test]
    fn a_bad_digit_is_refused() {
        assert_eq!(DtmfSender::default().queue("12x", 800), Err('x'));
    }

    fn p(event: u8, end: bool, duration: u16) -> Vec<u8> {
        let d = duration.to_be_bytes();
        vec![event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    #[test]
    fn one_digit_per_event_despite_three_end_packets() {
        let mut r = DtmfReceiver::new(8000);
        let mut got = Vec::new();
        for dur in [0u16, 320, 640, 960, 1280, 1600, 1920] {
            got.extend(r.on_packet(13280, &p(1, false, dur)));
        }
        for _ in 0..3 {
            got.extend(r.on_packet(13280, &p(1, true, 2240)));
        }
        assert_eq!(
            got,
            vec![DtmfDigit {
                digit: '1',
                duration_ms: 280,
                source: DtmfSource::Rtp
            }]
        );
    }

    #[test]
    fn a_lost_end_is_reported_when_the_next_event_starts() {
        let mut r = DtmfReceiver::new(8000);
        let mut got = r.on_packet(1000, &p(5, false, 800));
        assert!(got.is_empty());
        got.extend(r.on_packet(9000, &p(11, false, 0)));
        got.extend(r.on_packet(9000, &p(11, true, 960)));
        assert_eq!(
            got,
            vec![
                DtmfDigit {
                    digit: '5',
                    duration_ms: 100,
                    source: DtmfSource::Rtp
                },
                DtmfDigit {
                    digit: '#',
                    duration_ms: 120,
                    source: DtmfSource::Rtp
                }
            ]
        );
    }

    #[test]
    fn a_lost_end_is_reported_on_flush_once() {
        let mut r = DtmfReceiver::new(8000);
        r.on_packet(1000, &p(10, false, 400));
        assert_eq!(
            r.flush(),
            Some(DtmfDigit {
                digit: '*',
                duration_ms: 50,
                source: DtmfSource::Rtp
            })
        );
        assert_eq!(r.flush(), None);
        // Its late end packets are not a second digit.
        assert!(r.on_packet(1000, &p(10, true, 800)).is_empty());
    }

    #[test]
    fn the_same_digit_pressed_twice_is_two_digits() {
        let mut r = DtmfReceiver::new(8000);
        let mut got = r.on_packet(1000, &p(7, true, 800));
        got.extend(r.on_packet(5000, &p(7, true, 800)));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn codes_map_to_digits_and_truncated_payloads_are_ignored() {
        assert_eq!(event_digit(0), Some('0'));
        assert_eq!(event_digit(10), Some('*'));
        assert_eq!(event_digit(11), Some('#'));
        assert_eq!(event_digit(15), Some('D'));
        assert_eq!(event_digit(16), None);
        assert!(DtmfReceiver::new(8000).on_packet(1, &[1, 0x80]).is_empty());
    }
}
