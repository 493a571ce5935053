//! SRTP and SRTCP (RFC 3711) for one RTP session, with the keys the call's
//! SDP exchanged (SDES, RFC 4568), by the `webrtc-srtp` crate.
//!
//! Each direction has its own context: what voxline sends is protected with
//! its own key, what arrives is authenticated and decrypted with the far
//! end's. A packet that fails authentication or replays one already taken
//! (a 128-packet window per SSRC, SRTP and SRTCP each) is dropped. The
//! receiving side keeps state per SSRC; it takes at most [`MAX_SOURCES`] of
//! them, so a stream of forged SSRCs cannot grow it.
//!
//! Three things are checked here rather than left to the crate (0.17.2):
//! its replay window starts from the first packet it is *shown*, forged or
//! not, so one forged packet with a far-off index made every real one "too
//! old"; it takes an SRTCP packet whose E flag is clear without checking
//! its tag; and it reads the SRTCP index before checking the length (a
//! packet under 14 bytes made it panic). So the crate runs without its
//! replay windows, voxline keeps its own that start at the first
//! *authentic* packet, SRTCP must be encrypted (voxline never offers
//! UNENCRYPTED_SRTCP) and at least header, index and tag long.

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Master key and salt together (a 16-byte key, a 14-byte salt).
pub const KEY_LEN: usize = 30;

/// SSRCs the receiving side keeps state for.
pub const MAX_SOURCES: usize = 16;

/// The SRTP suite of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpProfile {
    /// AES-CM-128 with an 80-bit HMAC-SHA1 tag.
    Aes128Sha1_80,
    /// AES-CM-128 with a 32-bit tag on SRTP (80 on SRTCP).
    Aes128Sha1_32,
}

impl SrtpProfile {
    fn protection(self) -> ProtectionProfile {
        match self {
            SrtpProfile::Aes128Sha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::Aes128Sha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// The keys of an encrypted call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite.
    pub profile: SrtpProfile,
    /// voxline's master key and salt (what it sends with).
    pub local: [u8; KEY_LEN],
    /// The far end's (what it sends with).
    pub remote: [u8; KEY_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Why a context could not be built.
#[derive(Debug, thiserror::Error)]
#[error("SRTP keys: {0}")]
pub struct SrtpError(String);

fn context(profile: SrtpProfile, key: &[u8; KEY_LEN]) -> Result<Context, SrtpError> {
    let (master, salt) = key.split_at(16);
    Context::new(master, salt, profile.protection(), None, None).map_err(|e| SrtpError(e.to_string()))
}

/// The shortest SRTCP packet: an RTCP header with its SSRC, the E flag and
/// index, an 80-bit tag.
const MIN_SRTCP: usize = 8 + 4 + 10;

/// A replay window over a wrapping counter (the RTP sequence number, or
/// the 31-bit SRTCP index) that starts at the first packet accepted.
#[derive(Debug, Clone, Copy)]
struct ReplayWindow {
    /// The highest counter accepted, when any was.
    latest: Option<u64>,
    /// Bit n: `latest - n` was accepted.
    seen: u128,
    /// The counter's modulus.
    modulus: u64,
}

impl ReplayWindow {
    fn new(modulus: u64) -> ReplayWindow {
        ReplayWindow {
            latest: None,
            seen: 0,
            modulus,
        }
    }

    /// How far `n` is behind the latest (negative: ahead), with the wrap.
    fn behind(&self, latest: u64, n: u64) -> i64 {
        let m = self.modulus as i64;
        let mut d = (latest as i64 - n as i64).rem_euclid(m);
        if d > m / 2 {
            d -= m;
        }
        d
    }

    /// Whether `n` may be taken (not seen, not older than the window).
    fn fresh(&self, n: u64) -> bool {
        let Some(latest) = self.latest else {
            return true;
        };
        let d = self.behind(latest, n);
        d < 0 || (d < 128 && self.seen & (1u128 << d) == 0)
    }

    /// Marks `n` taken (after it authenticated).
    fn accept(&mut self, n: u64) {
        let Some(latest) = self.latest else {
            self.latest = Some(n);
            self.seen = 1;
            return;
        };
        let d = self.behind(latest, n);
        if d < 0 {
            let ahead = (-d) as u32;
            self.seen = if ahead >= 128 { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.latest = Some(n);
        } else if d < 128 {
            self.seen |= 1u128 << d;
        }
    }
}

/// What the receiving side keeps per SSRC.
#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    rtp: ReplayWindow,
    rtcp: ReplayWindow,
}

/// The SRTP contexts of one session.
pub struct SrtpSession {
    keys: SrtpKeys,
    send: Context,
    receive: Context,
    /// SSRCs handed to the receiving context so far, with their windows.
    sources: Vec<Source>,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("keys", &self.keys)
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl SrtpSession {
    /// Both contexts for `keys`.
    pub fn new(keys: SrtpKeys) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            keys,
            send: context(keys.profile, &keys.local)?,
            receive: context(keys.profile, &keys.remote)?,
            sources: Vec::new(),
        })
    }

    /// The keys it runs with.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// Takes new keys (a re-INVITE): a direction whose key changed starts
    /// afresh, the other keeps its state (its rollover counter).
    pub fn rekey(&mut self, keys: SrtpKeys) -> Result<(), SrtpError> {
        if keys.profile != self.keys.profile || keys.local != self.keys.local {
            self.send = context(keys.profile, &keys.local)?;
        }
        if keys.profile != self.keys.profile || keys.remote != self.keys.remote {
            self.receive = context(keys.profile, &keys.remote)?;
            self.sources.clear();
        }
        self.keys = keys;
        Ok(())
    }

    /// Encrypts and signs one RTP packet (`None`: it could not be).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Option<Bytes> {
        self.send.encrypt_rtp(packet).ok()
    }

    /// Encrypts and signs one RTCP compound packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Option<Bytes> {
        self.send.encrypt_rtcp(packet).ok()
    }

    /// The plain packet, when `packet` is authentic and not a replay.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Option<Bytes> {
        let ssrc = u32::from_be_bytes(packet.get(8..12)?.try_into().ok()?);
        let seq = u64::from(u16::from_be_bytes(packet.get(2..4)?.try_into().ok()?));
        let i = self.admit(ssrc)?;
        if !self.sources[i].rtp.fresh(seq) {
            return None;
        }
        let plain = self.receive.decrypt_rtp(packet).ok()?;
        self.sources[i].rtp.accept(seq);
        Some(plain)
    }

    /// The plain compound packet, when `packet` is authentic, encrypted
    /// and not a replay.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Option<Bytes> {
        if packet.len() < MIN_SRTCP {
            return None;
        }
        let ssrc = u32::from_be_bytes(packet.get(4..8)?.try_into().ok()?);
        let tail = packet.len() - 10 - 4;
        let e_index = u32::from_be_bytes(packet.get(tail..tail + 4)?.try_into().ok()?);
        if e_index & 0x8000_0000 == 0 {
            return None;
        }
        let index = u64::from(e_index & 0x7fff_ffff);
        let i = self.admit(ssrc)?;
        if !self.sources[i].rtcp.fresh(index) {
            return None;
        }
        let plain = self.receive.decrypt_rtcp(packet).ok()?;
        self.sources[i].rtcp.accept(index);
        Some(plain)
    }

    /// Where the receiving side keeps `ssrc`'s state, when it may.
    fn admit(&mut self, ssrc: u32) -> Option<usize> {
        if let Some(i) = self.sources.iter().position(|s| s.ssrc == ssrc) {
            return Some(i);
        }
        if self.sources.len() >= MAX_SOURCES {
            return None;
        }
        self.sources.push(Source {
            ssrc,
            rtp: ReplayWindow::new(1 << 16),
            rtcp: ReplayWindow::new(1 << 31),
        });
        Some(self.sources.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp_session::rtp_packet;

    fn keys(profile: SrtpProfile) -> (SrtpKeys, SrtpKeys) {
        let a = [7u8; KEY_LEN];
        let mut b = [9u8; KEY_LEN];
        b[0] = 1;
        (
            SrtpKeys {
                profile,
                local: a,
                remote: b,
            },
            SrtpKeys {
                profile,
                local: b,
                remote: a,
            },
        )
    }

    fn packet(seq: u16, ssrc: u32) -> Bytes {
        rtp_packet(0, false, seq, u32::from(seq) * 160, ssrc, Bytes::from(vec![0x55; 160])).expect("packet")
    }

    #[test]
    fn what_one_side_protects_the_other_reads() {
        for profile in [SrtpProfile::Aes128Sha1_80, SrtpProfile::Aes128Sha1_32] {
            let (ka, kb) = keys(profile);
            let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
            let plain = packet(1, 42);
            let sealed = a.protect_rtp(&plain).expect("sealed");
            let tag = if profile == SrtpProfile::Aes128Sha1_80 { 10 } else { 4 };
            assert_eq!(sealed.len(), plain.len() + tag);
            assert_ne!(&sealed[12..12 + 160], &plain[12..]);
            assert_eq!(b.unprotect_rtp(&sealed).expect("opened"), plain);
            // Replayed: refused.
            assert_eq!(b.unprotect_rtp(&sealed), None);
            // RTCP both ways.
            let rr = rtcp::receiver_report::ReceiverReport {
                ssrc: 42,
                ..Default::default()
            };
            let rr = rtcp::packet::marshal(&[Box::new(rr) as Box<dyn rtcp::packet::Packet + Send + Sync>]).expect("rr");
            let sealed = b.protect_rtcp(&rr).expect("sealed");
            assert_eq!(a.unprotect_rtcp(&sealed).expect("opened"), rr);
        }
    }

    #[test]
    fn an_event_packet_reads_back_as_sent() {
        use webrtc_util::marshal::Unmarshal;
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_80);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        let event = rtp_packet(101, true, 500, 80_000, 0x600d, Bytes::from_static(&[7, 10, 0, 80])).expect("event");
        let opened = b
            .unprotect_rtp(&a.protect_rtp(&event).expect("sealed"))
            .expect("opened");
        let mut buf: &[u8] = &opened;
        let p = rtp::packet::Packet::unmarshal(&mut buf).expect("parses");
        assert_eq!((p.header.payload_type, &p.payload[..]), (101, &[7u8, 10, 0, 80][..]));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn an_srtcp_packet_from_another_implementation_opens() {
        // A captured SRTCP compound (SR, SDES, PSFB) with its SDES key,
        // from rtpengine's issue 700 (decoded there with its own helper).
        let key = hex("be8dc8528f875c6fbc0259a31dcc3010d616a2a1e1fe3435ef083dd62779");
        let sealed = hex("81c8000c7dea59bcb2cc5fbb28409c112fed69b170fb31d935fd16285ce772ad285d23a4880da265b651ab1702b74f64655872c679b10f3e22bde41f12ca835ca33952f116beeccdc0c79f5ae6d8553a9b98076671736dd514872103ff5c7dc48f9d50a898cbf5b1777a9d4f4e2d54978ce15cc43885c4c009f03692800000070004b0238cdd79c9c41b");
        let mut s = SrtpSession::new(SrtpKeys {
            profile: SrtpProfile::Aes128Sha1_80,
            local: [0; KEY_LEN],
            remote: key.try_into().expect("30 bytes"),
        })
        .expect("session");
        let opened = s.unprotect_rtcp(&sealed).expect("authenticates");
        assert_eq!(
            hex_of(&opened[..24]),
            "81c8000c7dea59bce003b7ea1b68be2fdb7f829c000001da"
        );
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn forged_or_plain_packets_are_dropped() {
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_80);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        // Plain RTP where SRTP is expected.
        assert_eq!(b.unprotect_rtp(&packet(1, 42)), None);
        // One bit flipped in the payload.
        let mut sealed = a.protect_rtp(&packet(2, 42)).expect("sealed").to_vec();
        sealed[20] ^= 1;
        assert_eq!(b.unprotect_rtp(&sealed), None);
        // Sealed with another key.
        let (other, _) = keys(SrtpProfile::Aes128Sha1_80);
        let mut stranger = SrtpSession::new(SrtpKeys {
            local: [3; KEY_LEN],
            ..other
        })
        .expect("stranger");
        assert_eq!(
            b.unprotect_rtp(&stranger.protect_rtp(&packet(3, 42)).expect("sealed")),
            None
        );
        // Too short to hold a tag.
        assert_eq!(b.unprotect_rtp(&[0x80, 0, 0, 1]), None);
    }

    fn rr(ssrc: u32) -> Bytes {
        let rr = rtcp::receiver_report::ReceiverReport {
            ssrc,
            ..Default::default()
        };
        rtcp::packet::marshal(&[Box::new(rr) as Box<dyn rtcp::packet::Packet + Send + Sync>]).expect("rr")
    }

    #[test]
    fn a_forged_packet_first_does_not_shut_out_the_real_stream() {
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_80);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        // Forged, with indexes half the counter's range away, before the
        // real ones.
        let mut forged_rtp = packet(40_000, 1).to_vec();
        forged_rtp.extend([0; 10]);
        assert_eq!(b.unprotect_rtp(&forged_rtp), None);
        let mut forged_rtcp = rr(1).to_vec();
        forged_rtcp.extend(0xc000_0000u32.to_be_bytes());
        forged_rtcp.extend([0; 10]);
        assert_eq!(b.unprotect_rtcp(&forged_rtcp), None);
        for seq in 1..5 {
            assert!(
                b.unprotect_rtp(&a.protect_rtp(&packet(seq, 1)).expect("sealed"))
                    .is_some(),
                "{seq}"
            );
            assert!(
                b.unprotect_rtcp(&a.protect_rtcp(&rr(1)).expect("sealed")).is_some(),
                "{seq}"
            );
        }
    }

    #[test]
    fn srtcp_must_be_encrypted_long_enough_and_authentic() {
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_32);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        // E flag clear, any tag: the crate would take it as it is.
        let mut clear = rr(1).to_vec();
        clear.extend(1u32.to_be_bytes());
        clear.extend([0xab; 10]);
        assert_eq!(b.unprotect_rtcp(&clear), None);
        // Every length under the minimum, from an RTCP header up.
        let sealed = a.protect_rtcp(&rr(1)).expect("sealed");
        for len in 4..MIN_SRTCP {
            let mut short = sealed[..len.min(sealed.len())].to_vec();
            short.resize(len, 0);
            assert_eq!(b.unprotect_rtcp(&short), None, "{len}");
        }
        assert!(b.unprotect_rtcp(&sealed).is_some());
        assert_eq!(b.unprotect_rtcp(&sealed), None, "replayed");
    }

    #[test]
    fn the_replay_window_follows_the_wrap_and_forgets_what_is_too_old() {
        let mut w = ReplayWindow::new(1 << 16);
        assert!(w.fresh(65_530));
        w.accept(65_530);
        assert!(!w.fresh(65_530));
        // Across the wrap: 3 is 9 ahead of 65530.
        assert!(w.fresh(3));
        w.accept(3);
        assert!(!w.fresh(3) && !w.fresh(65_530));
        // Late but inside the window: once.
        assert!(w.fresh(65_532));
        w.accept(65_532);
        assert!(!w.fresh(65_532));
        // 128 or more behind: too old.
        w.accept(200);
        assert!(!w.fresh(72) && w.fresh(73));
    }

    #[test]
    fn forged_sources_cannot_grow_the_receiving_state() {
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_80);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        assert!(b
            .unprotect_rtp(&a.protect_rtp(&packet(1, 1)).expect("sealed"))
            .is_some());
        for ssrc in 1000..1100 {
            assert_eq!(b.unprotect_rtp(&packet(1, ssrc)), None);
        }
        assert_eq!(b.sources.len(), MAX_SOURCES);
        // The source it had goes on.
        assert!(b
            .unprotect_rtp(&a.protect_rtp(&packet(2, 1)).expect("sealed"))
            .is_some());
    }

    #[test]
    fn a_new_far_end_key_restarts_only_the_receiving_side() {
        let (ka, kb) = keys(SrtpProfile::Aes128Sha1_80);
        let (mut a, mut b) = (SrtpSession::new(ka).expect("a"), SrtpSession::new(kb).expect("b"));
        assert!(b
            .unprotect_rtp(&a.protect_rtp(&packet(1, 1)).expect("sealed"))
            .is_some());
        let fresh = [5u8; KEY_LEN];
        a.rekey(SrtpKeys { local: fresh, ..ka }).expect("rekey a");
        b.rekey(SrtpKeys { remote: fresh, ..kb }).expect("rekey b");
        assert!(b
            .unprotect_rtp(&a.protect_rtp(&packet(2, 1)).expect("sealed"))
            .is_some());
        assert!(a
            .unprotect_rtp(&b.protect_rtp(&packet(1, 2)).expect("sealed"))
            .is_some());
        assert!(format!("{:?}", b).contains("Aes128Sha1_80") && !format!("{:?}", b.keys()).contains("5, 5"));
    }
}
