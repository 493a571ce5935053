//! RTCP for one call (RFC 3550 §6): sender and receiver reports with a
//! CNAME every ~5 s, and what the far end reports back: the loss and jitter
//! it sees on voxline's stream and the round-trip time (from LSR/DLSR).
//! Packets are built and parsed with the `rtcp` crate.

use bytes::Bytes;
use rtcp::packet::Packet;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use webrtc_util::marshal::Unmarshal;

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// Nominal report interval (RFC 3550's 5 s minimum for small sessions).
const INTERVAL: Duration = Duration::from_secs(5);

/// A 64-bit NTP timestamp of a wall-clock time.
pub fn ntp_time(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ((d.as_secs() + NTP_UNIX_OFFSET) << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR format).
fn mid32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// What voxline has received of the caller's stream, for a report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reception {
    /// The caller's SSRC.
    pub ssrc: u32,
    /// Extended sequence number of the first packet.
    pub base_seq: i64,
    /// Highest extended sequence number received.
    pub highest_seq: i64,
    /// Packets received, late ones included (duplicates excluded).
    pub received: u64,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
}

/// What voxline has sent, for a sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sending {
    /// Our SSRC.
    pub ssrc: u32,
    /// RTP timestamp that corresponds to "now".
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packets: u32,
    /// Payload octets sent so far.
    pub octets: u32,
}

/// What the far end told us about voxline's stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteView {
    /// Round-trip time from the last report that allowed computing it.
    pub rtt: Option<Duration>,
    /// Fraction of our packets lost since its previous report (0..1).
    pub fraction_lost: f32,
    /// Cumulative packets of ours it never received.
    pub cumulative_lost: u32,
    /// Jitter it measured on our stream, in our RTP timestamp units.
    pub jitter: u32,
    /// Reports received.
    pub reports: u64,
}

/// RTCP state of one session.
#[derive(Debug)]
pub struct RtcpState {
    ssrc: u32,
    cname: Bytes,
    next_report: Instant,
    /// The caller's last SR (its NTP mid-32 bits) and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// Expected/received at the previous report (for the fraction lost).
    prior: (u64, u64),
    last_packets: u32,
    remote: RemoteView,
}

impl RtcpState {
    /// State for our `ssrc`, first report due soon after `now`.
    pub fn new(ssrc: u32, cname: &str, now: Instant) -> RtcpState {
        RtcpState {
            ssrc,
            cname: Bytes::copy_from_slice(cname.as_bytes()),
            // RFC 3550 6.2: the first report after half an interval.
            next_report: now + jittered(INTERVAL / 2),
            last_sr: None,
            prior: (0, 0),
            last_packets: 0,
            remote: RemoteView::default(),
        }
    }

    /// What the far end has reported so far.
    pub fn remote(&self) -> RemoteView {
        self.remote
    }

    /// Whether a report is due.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_report
    }

    /// Builds the compound report (SR when we sent since the last report,
    /// else RR; then SDES with our CNAME) and schedules the next one.
    pub fn report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        sending: Option<Sending>,
        rx: Option<Reception>,
    ) -> Option<Bytes> {
        self.next_report = now + jittered(INTERVAL);
        let block = rx.map(|r| self.reception_block(r, now));
        let reports: Vec<ReceptionReport> = block.into_iter().collect();
        let sent_recently = sending.is_some_and(|s| s.packets != self.last_packets);
        let first: Box<dyn Packet + Send + Sync> = match sending.filter(|_| sent_recently) {
            Some(s) => {
                self.last_packets = s.packets;
                Box::new(SenderReport {
                    ssrc: self.ssrc,
                    ntp_time: ntp_time(wall),
                    rtp_time: s.rtp_time,
                    packet_count: s.packets,
                    octet_count: s.octets,
                    reports,
                    ..Default::default()
                })
            }
            None => Box::new(ReceiverReport {
                ssrc: self.ssrc,
                reports,
                ..Default::default()
            }),
        };
        let sdes: Box<dyn Packet + Send + Sync> = Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: self.cname.clone(),
                }],
            }],
        });
        rtcp::packet::marshal(&[first, sdes]).ok()
    }

    fn reception_block(&mut self, r: Reception, now: Instant) -> ReceptionReport {
        let expected = (r.highest_seq - r.base_seq + 1).max(0) as u64;
        let lost_total = expected.saturating_sub(r.received);
        let (exp_prior, rec_prior) = self.prior;
        self.prior = (expected, r.received);
        let expected_interval = expected.saturating_sub(exp_prior);
        let lost_interval = expected_interval.saturating_sub(r.received.saturating_sub(rec_prior));
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                (lsr, (delay.as_secs_f64() * 65536.0) as u32)
            }
            None => (0, 0),
        };
        ReceptionReport {
            ssrc: r.ssrc,
            fraction_lost,
            // 24-bit signed field: clamp.
            total_lost: lost_total.min(0x7F_FFFF) as u32,
            last_sequence_number: (r.highest_seq & 0xFFFF_FFFF) as u32,
            jitter: r.jitter,
            last_sender_report: lsr,
            delay: dlsr,
        }
    }

    /// Takes in one received RTCP datagram (a compound packet). Returns
    /// false when it is not valid RTCP.
    pub fn on_packet(&mut self, data: &[u8], now: Instant, wall: SystemTime) -> bool {
        let Some(parts) = split_compound(data) else {
            return false;
        };
        // Only SR and RR are read, each parsed on its own bytes: the `rtcp`
        // crate's parsers of other types (feedback, XR...) panic on some
        // crafted packets (found by the media_ingress fuzz target).
        // Each report: the sender's NTP time (SRs only) and its report blocks;
        // all are parsed before any is taken in.
        let mut reports: Vec<(Option<u64>, Vec<ReceptionReport>)> = Vec::new();
        for p in parts {
            let mut b = Bytes::copy_from_slice(p);
            match p[1] {
                200 => match SenderReport::unmarshal(&mut b) {
                    Ok(sr) => reports.push((Some(sr.ntp_time), sr.reports)),
                    Err(_) => return false,
                },
                201 => match ReceiverReport::unmarshal(&mut b) {
                    Ok(rr) => reports.push((None, rr.reports)),
                    Err(_) => return false,
                },
                _ => {}
            }
        }
        for (sender_ntp, blocks) in &reports {
            if let Some(ntp) = sender_ntp {
                self.last_sr = Some((mid32(*ntp), now));
            }
            for b in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
                tracing::debug!(
                    lsr = b.last_sender_report,
                    dlsr = b.delay,
                    lost = b.total_lost,
                    "RTCP report block"
                );
                self.remote.reports += 1;
                self.remote.fraction_lost = f32::from(b.fraction_lost) / 256.0;
                self.remote.cumulative_lost = b.total_lost;
                self.remote.jitter = b.jitter;
                if b.last_sender_report != 0 {
                    // RFC 3550 6.4.1: A − LSR − DLSR, in 1/65536 s.
                    let a = mid32(ntp_time(wall));
                    let rtt = a.wrapping_sub(b.last_sender_report).wrapping_sub(b.delay) as i32;
                    // A peer that rounds its DLSR up (to the millisecond, say)
                    // makes a short round trip come out slightly negative:
                    // that is a round trip of about zero. Far off either way
                    // (a clock step) is ignored.
                    if (-65536..65536 * 10).contains(&rtt) {
                        let units = f64::from(rtt.max(0));
                        self.remote.rtt = Some(Duration::from_secs_f64(units / 65536.0));
                    }
                }
            }
        }
        true
    }
}

/// The packets of a compound RTCP datagram, each inside the datagram
/// (version 2, a length that fits); None when the datagram is not RTCP.
fn split_compound(mut data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut parts = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 || data[0] >> 6 != 2 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1) * 4;
        if len > data.len() {
            return None;
        }
        let (p, rest) = data.split_at(len);
        parts.push(p);
        data = rest;
    }
    (!parts.is_empty()).then_some(parts)
}

/// The interval randomised to 0.5–1.5 of itself (RFC 3550 6.3.1).
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

/// Whether a datagram on a muxed RTP port is RTCP (RFC 5761 §4: packet
/// types 192–223 in the second byte).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(received: u64, highest: i64) -> Reception {
        Reception {
            ssrc: 0xCA11E4,
            base_seq: 1000,
            highest_seq: highest,
            received,
            jitter: 80,
        }
    }

    #[test]
    fn sender_report_carries_counts_and_a_reception_block() {
        let now = Instant::now();
        let mut ours = RtcpState::new(0xA1, "voxline@test", now);
        let send = Sending {
            ssrc: 0xA1,
            rtp_time: 4242,
            packets: 50,
            octets: 8000,
        };
        let bytes = ours
            .report(now, SystemTime::now(), Some(send), Some(rx(90, 1099)))
            .unwrap();
        assert!(is_rtcp(&bytes));
        let mut b = bytes.clone();
        let pkts = rtcp::packet::unmarshal(&mut b).unwrap();
        let sr = pkts[0].as_any().downcast_ref::<SenderReport>().expect("an SR first");
        assert_eq!((sr.packet_count, sr.octet_count, sr.rtp_time), (50, 8000, 4242));
        let block = &sr.reports[0];
        // 100 expected, 90 received: 10 lost, fraction 10/100 * 256 = 25.
        assert_eq!((block.total_lost, block.fraction_lost, block.jitter), (10, 25, 80));
        assert!(pkts[1].as_any().downcast_ref::<SourceDescription>().is_some());
        // Nothing new sent: a receiver report next time.
        let bytes = ours
            .report(now, SystemTime::now(), Some(send), Some(rx(190, 1199)))
            .unwrap();
        let mut b = bytes.clone();
        let pkts = rtcp::packet::unmarshal(&mut b).unwrap();
        let rr = pkts[0].as_any().downcast_ref::<ReceiverReport>().expect("an RR");
        assert_eq!(rr.reports[0].fraction_lost, 0, "no loss in the second interval");
    }

    #[test]
    fn round_trip_time_comes_from_lsr_and_dlsr() {
        // Two peers over a simulated path of 30 ms each way; the far end holds
        // our SR for 100 ms before reporting.
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        let mut ours = RtcpState::new(0xA1, "a", t0);
        let mut theirs = RtcpState::new(0xB2, "b", t0);
        let send = Sending {
            ssrc: 0xA1,
            rtp_time: 0,
            packets: 10,
            octets: 1600,
        };
        let sr = ours.report(t0, wall0, Some(send), None).unwrap();
        let arrive = Duration::from_millis(30);
        assert!(theirs.on_packet(&sr, t0 + arrive, wall0 + arrive));
        let hold = Duration::from_millis(130);
        let their_rx = Reception {
            ssrc: 0xA1,
            base_seq: 0,
            highest_seq: 9,
            received: 9,
            jitter: 16,
        };
        let rr = theirs.report(t0 + hold, wall0 + hold, None, Some(their_rx)).unwrap();
        let back = Duration::from_millis(160);
        assert!(ours.on_packet(&rr, t0 + back, wall0 + back));
        let view = ours.remote();
        let rtt = view.rtt.expect("rtt measured").as_secs_f64() * 1000.0;
        assert!((rtt - 60.0).abs() < 1.0, "rtt {rtt} ms");
        assert_eq!(view.cumulative_lost, 1);
        assert_eq!(view.jitter, 16);
        assert_eq!(view.reports, 1);
    }

    #[test]
    fn a_dlsr_rounded_up_by_the_peer_gives_a_zero_round_trip() {
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        let mut ours = RtcpState::new(0xA1, "a", t0);
        let send = Sending {
            ssrc: 0xA1,
            rtp_time: 0,
            packets: 1,
            octets: 160,
        };
        let sr = ours.report(t0, wall0, Some(send), None).unwrap();
        let mut b = sr.clone();
        let pkts = rtcp::packet::unmarshal(&mut b).unwrap();
        let lsr = mid32(pkts[0].as_any().downcast_ref::<SenderReport>().unwrap().ntp_time);
        // Held 0.3 ms, reported as 1 ms.
        let rr: Box<dyn Packet + Send + Sync> = Box::new(ReceiverReport {
            ssrc: 0xB2,
            reports: vec![ReceptionReport {
                ssrc: 0xA1,
                last_sender_report: lsr,
                delay: 66,
                ..Default::default()
            }],
            ..Default::default()
        });
        let back = Duration::from_micros(300);
        assert!(ours.on_packet(&rtcp::packet::marshal(&[rr]).unwrap(), t0 + back, wall0 + back));
        assert_eq!(ours.remote().rtt, Some(Duration::ZERO));
    }

    #[test]
    fn feedback_packets_the_rtcp_crate_cannot_parse_are_skipped() {
        // A full-intra-request the `rtcp` crate panics on (fuzz artifact).
        let fir = [132u8, 206, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 14, 21, 179, 113];
        let mut s = RtcpState::new(1, "x", Instant::now());
        assert!(
            !s.on_packet(&fir, Instant::now(), SystemTime::now()),
            "length runs past the datagram"
        );
        assert!(
            s.on_packet(&fir[..8], Instant::now(), SystemTime::now()),
            "a whole FIR is skipped, not parsed"
        );
        assert_eq!(s.remote().reports, 0);
    }

    #[test]
    fn garbage_and_rtp_are_not_rtcp() {
        let mut s = RtcpState::new(1, "x", Instant::now());
        assert!(!s.on_packet(b"\x80\xc8\x00", Instant::now(), SystemTime::now()));
        assert!(!is_rtcp(&[0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0xC8]));
    }
}
