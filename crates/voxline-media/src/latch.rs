//! Symmetric RTP ("latching"): send to where the far end's packets really
//! come from (it may be behind NAT), and once latched, ignore packets from
//! anywhere else so nobody can hijack the media stream.

use std::net::SocketAddr;

/// How many valid packets from one source it takes to latch onto it.
pub const LATCH_AFTER: u32 = 2;

/// The latching state of one RTP session.
#[derive(Debug, Clone, Default)]
pub struct Latch {
    candidate: Option<(SocketAddr, u32)>,
    latched: Option<SocketAddr>,
}

/// What to do with a packet from some source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// Use it.
    Accept,
    /// Drop it: another source is latched.
    Foreign,
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

    /// Forgets the latch (the far end renegotiated media: re-INVITE, transfer).
    pub fn reset(&mut self) {
        *self = Latch::default();
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

    #[test]
    fn sends_to_the_signalled_address_until_packets_arrive() {
        let l = Latch::default();
        assert_eq!(l.destination(a("192.0.2.10:4000")), a("192.0.2.10:4000"));
    }

    #[test]
    fn latches_onto_the_real_source_behind_nat() {
        let mut l = Latch::default();
        assert_eq!(l.observe(a("203.0.113.5:61000")), LatchVerdict::Accept);
        assert_eq!(l.latched(), None);
        assert_eq!(l.observe(a("203.0.113.5:61000")), LatchVerdict::Accept);
        assert_eq!(l.destination(a("192.168.1.20:4000")), a("203.0.113.5:61000"));
    }

    #[test]
    fn packets_from_another_source_are_ignored_once_latched() {
        let mut l = Latch::default();
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("203.0.113.5:61000"));
        assert_eq!(l.observe(a("198.51.100.66:4444")), LatchVerdict::Foreign);
        assert_eq!(l.destination(a("192.168.1.20:4000")), a("203.0.113.5:61000"));
    }

    #[test]
    fn an_interleaved_attacker_cannot_latch_before_the_real_source() {
        let mut l = Latch::default();
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
        let mut l = Latch::default();
        l.observe(a("203.0.113.5:61000"));
        l.observe(a("203.0.113.5:61000"));
        l.reset();
        l.observe(a("198.51.100.7:5000"));
        l.observe(a("198.51.100.7:5000"));
        assert_eq!(l.latched(), Some(a("198.51.100.7:5000")));
    }
}
