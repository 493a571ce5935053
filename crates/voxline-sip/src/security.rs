//! Per-source-IP request rate limiting with a temporary ban, in the manner of
//! Kamailio's pike module: a source that sends more than N requests within a
//! window is ignored (its packets are dropped unanswered) for a while.
//!
//! Sources are counted by address, an IPv4-mapped IPv6 address as the IPv4
//! one it maps, and an IPv6 source by its /64 (one customer's network: a
//! host picks any of 2^64 addresses, so counting per /128 limits nothing).
//! The table holds at most [`MAX_SOURCES`]; idle entries are swept at most
//! once per window, so a spoofed-source flood costs no full scan per packet.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct SourceState {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

/// What the limiter decided about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Allow,
    /// Drop it: this packet pushed the source over the limit (log once).
    NewlyBanned,
    /// Drop it: the source is banned.
    Banned,
}

/// Most sources the table tracks at once (about 50 bytes each).
pub const MAX_SOURCES: usize = 200_000;

/// The address as it is matched against networks: IPv4-mapped IPv6 as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key a source is counted under: its IPv4 address, or its IPv6 /64.
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

#[derive(Debug)]
struct Table {
    sources: HashMap<IpAddr, SourceState>,
    last_sweep: Option<Instant>,
    /// Requests from sources that found the table full (not counted).
    untracked: u64,
}

/// The per-source counter table.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    ban: Duration,
    exempt: Vec<IpNet>,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// A limiter allowing `limit` packets per `window`, banning for `ban`.
    pub fn new(limit: u32, window: Duration, ban: Duration, exempt: Vec<IpNet>) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            ban,
            exempt,
            table: Mutex::new(Table {
                sources: HashMap::new(),
                last_sweep: None,
                untracked: 0,
            }),
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.exempt.iter().any(|n| n.contains(&ip))
    }

    /// Sources tracked now, and requests let through uncounted because the
    /// table was full.
    pub fn tracked(&self) -> (usize, u64) {
        self.table
            .lock()
            .map(|t| (t.sources.len(), t.untracked))
            .unwrap_or((0, 0))
    }

    /// Whether `ip` is banned now (does not count anything).
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.table
            .lock()
            .ok()
            .and_then(|t| t.sources.get(&source_key(ip)).and_then(|st| st.banned_until))
            .is_some_and(|until| now < until)
    }

    /// Bans `ip` from `now` for the ban time (not an exempt source): for
    /// a source caught at something worse than sending too much (failing
    /// authentication again and again). Returns whether it was banned.
    pub fn ban(&self, ip: IpAddr, now: Instant) -> bool {
        if self.exempt(ip) {
            return false;
        }
        let Ok(mut table) = self.table.lock() else {
            return false;
        };
        // A ban is kept even when the table is full.
        let s = table.sources.entry(source_key(ip)).or_insert(SourceState {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        s.banned_until = Some(now + self.ban);
        true
    }

    /// Counts one request from `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        if self.exempt(ip) {
            return Verdict::Allow;
        }
        let Ok(mut table) = self.table.lock() else {
            return Verdict::Allow;
        };
        let key = source_key(ip);
        let table = &mut *table;
        if table.sources.len() >= MAX_SOURCES
            && !table.sources.contains_key(&key)
            && table.last_sweep.is_none_or(|t| now.duration_since(t) >= self.window)
        {
            // Forget idle entries, at most once per window.
            let window = self.window;
            table.last_sweep = Some(now);
            table
                .sources
                .retain(|_, s| s.banned_until.is_some_and(|b| b > now) || now.duration_since(s.window_start) < window);
        }
        if table.sources.len() >= MAX_SOURCES && !table.sources.contains_key(&key) {
            // Full of live sources (a spoofed flood): let it through uncounted
            // rather than refuse real callers; authentication still applies.
            table.untracked += 1;
            return Verdict::Allow;
        }
        let s = table.sources.entry(key).or_insert(SourceState {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        if let Some(until) = s.banned_until {
            if now < until {
                return Verdict::Banned;
            }
            s.banned_until = None;
            s.count = 0;
            s.window_start = now;
        }
        if now.duration_since(s.window_start) >= self.window {
            s.window_start = now;
            s.count = 0;
        }
        s.count += 1;
        if s.count > self.limit {
            s.banned_until = Some(now + self.ban);
            return Verdict::NewlyBanned;
        }
        Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            16,
            Duration::from_secs(2),
            Duration::from_secs(60),
            vec!["10.0.0.0/8".parse().unwrap()],
        )
    }

    #[test]
    fn sixteen_requests_pass_the_seventeenth_bans() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for i in 0..16 {
            assert_eq!(l.check(ip, t + Duration::from_millis(i)), Verdict::Allow);
        }
        assert_eq!(l.check(ip, t + Duration::from_millis(20)), Verdict::NewlyBanned);
        assert_eq!(l.check(ip, t + Duration::from_secs(30)), Verdict::Banned);
        // Another source is unaffected.
        assert_eq!(l.check("192.0.2.2".parse().unwrap(), t), Verdict::Allow);
    }

    #[test]
    fn the_ban_expires() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for _ in 0..17 {
            l.check(ip, t);
        }
        assert_eq!(l.check(ip, t + Duration::from_secs(61)), Verdict::Allow);
    }

    #[test]
    fn a_steady_rate_under_the_limit_is_never_banned() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for i in 0..200u64 {
            // 7 per second = 14 per 2 s window.
            assert_eq!(
                l.check(ip, t + Duration::from_millis(i * 143)),
                Verdict::Allow,
                "packet {i}"
            );
        }
    }

    #[test]
    fn a_source_banned_outright_is_dropped_unless_exempt() {
        let l = limiter();
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(l.ban(ip, t));
        assert_eq!(l.check(ip, t), Verdict::Banned);
        assert!(l.is_banned(ip, t));
        let trusted: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(!l.ban(trusted, t));
        assert_eq!(l.check(trusted, t), Verdict::Allow);
    }

    #[test]
    fn checking_a_ban_counts_nothing() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t = Instant::now();
        for _ in 0..100 {
            assert!(!l.is_banned(ip, t));
        }
        for _ in 0..17 {
            l.check(ip, t);
        }
        assert!(l.is_banned(ip, t));
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let l = limiter();
        let t = Instant::now();
        // Seventeen addresses of one /64: banned together.
        for i in 0..17u16 {
            l.check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i)), t);
        }
        assert!(l.is_banned("2001:db8:1:2:ffff::1".parse().unwrap(), t));
        assert!(
            !l.is_banned("2001:db8:1:3::1".parse().unwrap(), t),
            "the next /64 is another source"
        );
        // A v4-mapped address is its IPv4 source, for counting and exemption.
        for _ in 0..17 {
            l.check("::ffff:192.0.2.7".parse().unwrap(), t);
        }
        assert!(l.is_banned("192.0.2.7".parse().unwrap(), t));
        for _ in 0..100 {
            assert_eq!(l.check("::ffff:10.9.9.9".parse().unwrap(), t), Verdict::Allow);
        }
        assert!(!l.ban("::ffff:10.9.9.9".parse().unwrap(), t));
    }

    #[test]
    fn a_full_table_is_swept_once_per_window_and_then_lets_new_sources_through_uncounted() {
        let l = limiter();
        let t = Instant::now();
        let v4 = |i: u32| IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 + i));
        for i in 0..MAX_SOURCES as u32 {
            assert_eq!(l.check(v4(i), t), Verdict::Allow);
        }
        assert_eq!(l.tracked(), (MAX_SOURCES, 0));
        // All live: a new source is not tracked (no sweep frees anything).
        assert_eq!(l.check(v4(u32::MAX - 1), t), Verdict::Allow);
        assert_eq!(l.tracked(), (MAX_SOURCES, 1));
        // Within the same window no second sweep runs, whatever comes.
        for i in 0..1000 {
            l.check(v4(u32::MAX - 2 - i), t + Duration::from_millis(1));
        }
        assert_eq!(l.tracked(), (MAX_SOURCES, 1001));
        // A tracked source is still counted and banned.
        for _ in 0..17 {
            l.check(v4(5), t);
        }
        assert!(l.is_banned(v4(5), t));
        // After a window the idle entries go; the banned one stays.
        assert_eq!(l.check(v4(u32::MAX - 5000), t + Duration::from_secs(3)), Verdict::Allow);
        assert_eq!(l.tracked().0, 2);
        assert!(l.is_banned(v4(5), t + Duration::from_secs(3)));
    }

    #[test]
    fn exempt_networks_are_never_limited() {
        let l = limiter();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(l.check(ip, t), Verdict::Allow);
        }
    }
}
