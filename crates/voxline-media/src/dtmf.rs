//! RFC 4733 telephone-event reception: one digit per event, whatever the
//! redundancy (an event is sent many times with a growing duration, and its
//! end packet three times) and whatever was lost.

/// A DTMF digit heard on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// 0-9, *, #, A-D.
    pub digit: char,
    /// How long it was pressed, ms.
    pub duration_ms: u32,
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
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                duration_ms: 280
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
                    duration_ms: 100
                },
                DtmfDigit {
                    digit: '#',
                    duration_ms: 120
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
                duration_ms: 50
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
