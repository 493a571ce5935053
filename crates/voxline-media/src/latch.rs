//! Symmetric RTP ("latching"): send to where the far end's packets really
//! come from (it may be behind NAT), and once latched, ignore packets from
//! anywhere else so nobody can hijack the media stream.
//!
//! Only a source the call signalled may be latched onto: the IP address in
//! the peer's SDP, or the address its SIP came from (a phone behind NAT
//! writes its private address in SDP; its RTP comes from the public address
//! its SIP came from, on any port). Before the latch, DTMF, comfort noise
//! and RTCP count only from those addresses too, so someone spraying the
//! port range neither hears the call nor keys digits. `any` (the
//! `[media] rtp_sources = "any"` setting) latches onto whoever sends first,
//! for a proxy in front that neither fixes the SDP nor is the media's
//! source (decision 0064).

use std::net::{IpAddr, SocketAddr};

/// How many valid packets from one source it takes to latch onto it.
pub const LATCH_AFTER: u32 = 2;

/// The latching state of one RTP session.
#[derive(Debug, Clone, Default)]
pub struct Latch {
    candidate: Option<(SocketAddr, u32)>,
    latched: Option<SocketAddr>,
    /// The IP address in the peer's SDP.
    signalled: Option<IpAddr>,
    /// The address the call's SIP came from, when the call was inbound.
    peer: Option<IpAddr>,
    /// Any source may be latched onto.
    any: bool,
}

/// What to do with a packet from some source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// Use it.
    Accept,
    /// Drop it: another source is latched, or the source is not one the
    /// call signalled.
    Foreign,
}

fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Latch {
    /// Where to send: the latched source, else the address from SDP.
    pub fn destination(&self, signalled: SocketAddr) -> SocketAddr {
        self.latched.unwrap_or(signalled)
    }

    /// The latched source, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Forgets the latch (the far end renegotiated media: re-INVITE,
    /// transfer); who may be latched onto stays.
    pub fn reset(&mut self) {
        self.candidate = None;
        self.latched = None;
    }

    /// The peer's SDP address (each offer or answer).
    pub fn set_signalled(&mut self, addr: SocketAddr) {
        self.signalled = Some(plain(addr.ip()));
    }

    /// Also allows the address the call's SIP came from, and with `any`
    /// every source.
    pub fn allow(&mut self, peer: Option<IpAddr>, any: bool) {
        self.peer = peer.map(plain);
        self.any = any;
    }

    fn eligible(&self, from: SocketAddr) -> bool {
        let ip = plain(from.ip());
        self.any || self.signalled == Some(ip) || self.peer == Some(ip)
    }

    /// Whether a packet that does not latch (DTMF, comfort noise) is taken
    /// from `from`: the latched source, or before the latch one the call
    /// signalled.
    pub fn accepts(&self, from: SocketAddr) -> bool {
        match self.latched {
            Some(l) => l == from,
            None => self.eligible(from),
        }
    }

    /// Whether RTCP from `from` is taken: the latched source's address (on
    /// any port: RTCP comes from the port above, or the same one with
    /// rtcp-mux), or before the latch one the call signalled.
    pub fn accepts_rtcp(&self, from: SocketAddr) -> bool {
        match self.latched {
            Some(l) => plain(l.ip()) == plain(from.ip()),
            None => self.eligible(from),
        }
    }

    /// Judges a valid packet (right payload type) from `from`.
    pub fn observe(&mut self, from: SocketAddr) -> LatchVerdict {
        if let Some(l) = self.latched {
            return if l == from {
                LatchVerdict::Accept
            } else {
                LatchVerdict::Foreign
            };
        }
        if !self.eligible(from) {
            return LatchVerdict::Foreign;
        }
        let count = match self.candidate {
            Some((addr, n)) if addr == from => n + 1,
            _ => 1,
        };
        self.candidate = Some((from, count));
        if count >= LATCH_AFTER {
            self.latched = Some(from);
        }
        LatchVerdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A latch for a call whose SDP said 192.168.1.20:4000 and whose SIP came
    /// from 203.0.113.5.
    fn natted() -> Latch {
        let mut l = Latch::default();
        l.set_signalled(a("192.168.1.20:4000"));
        l.allow(Some("203.0.113.5".parse().unwrap()), false);
        l
    }

    #[test]
    fn sends_to_the_signalled_address_until_packets_arrive() {
        let l = Latch::default();
        assert_eq!(l.destination(a("192.0.2.10:4000")), a("192.0.2.10:4000"));
    }

    #[test]
    fn latches_onto_the_real_source_behind_nat() {
        let mut l = natted();
        assert_eq!(l.observe(a("203.0.113.5:61000")), LatchVerdict::Accept);
        assert_eq!(l.latched(), None);
        assert_eq!(l.observe(a("203.0.113.5:61000")), LatchVerdict::Accept);
        assert_eq!(l.destination(a("192.168.1.20:4000")), a("203.0.113.5:61000"));
    }

    #[test]
    fn a_source_the_call_did_not_signal_is_never_latched_nor_heard() {
        let mut l = natted();
        for _ in 0..10 {
            assert_eq!(l.observe(a("198.51.100.66:4444")), LatchVerdict::Foreign);
        }
        assert_eq!(l.latched(), None);
        assert!(!l.accepts(a("198.51.100.66:4444")), "its DTMF is not taken");
        assert!(!l.accepts_rtcp(a("198.51.100.66:4445")), "nor its RTCP");
        assert!(l.accepts(a("203.0.113.5:61000")) && l.accepts(a("192.168.1.20:4000")));
        // The SDP's own address latches as well (a peer not behind NAT).
        let mut l = natted();
        l.observe(a("192.168.1.20:4000"));
        l.observe(a("192.168.1.20:4000"));
        assert_eq!(l.latched(), Some(a("192.168.1.20:4000")));
    }

    #[test]
    fn any_latches_onto_the_first_steady_source() {
        let mut l = Latch::default();
        l.set_signalled(a("192.168.1.20:4000"));
        l.allow(None, true);
        l.observe(a("198.51.100.7:5000"));
        l.observe(a("198.51.100.7:5000"));
        assert_eq!(l.latched(), Some(a("198.51.100.7:5000")));
    }

    #[test]
    fn packets_from_another_source_are_ignored_once_latched() {
        let mut l = natted();
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("203.0.113.5:61000"));
        assert_eq!(l.observe(a("203.0.113.5:4444")), LatchVerdict::Foreign);
        assert!(!l.accepts(a("203.0.113.5:4444")));
        assert!(
            l.accepts_rtcp(a("203.0.113.5:61001")),
            "RTCP from the latched address, port above"
        );
        assert_eq!(l.destination(a("192.168.1.20:4000")), a("203.0.113.5:61000"));
    }

    #[test]
    fn an_interleaved_sender_cannot_latch_before_the_real_source() {
        let mut l = Latch::default();
        l.allow(None, true);
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("198.51.100.66:4444"));
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("198.51.100.66:4444"));
        // Neither has two in a row yet; the next two from one source decide.
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("203.0.113.5:61000"));
        assert_eq!(l.latched(), Some(a("203.0.113.5:61000")));
    }

    #[test]
    fn reset_allows_a_new_source_after_renegotiation() {
        let mut l = natted();
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("203.0.113.5:61000"));
        l.reset();
        l.set_signalled(a("198.51.100.7:5000"));
        l.observe(a("198.51.100.7:5000"));
        l.observe(a("198.51.100.7:5000"));
        assert_eq!(l.latched(), Some(a("198.51.100.7:5000")));
    }
}
