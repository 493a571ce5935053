//! Per-source-IP request rate limiting with a temporary ban, in the manner of
//! Kamailio's pike module: a source that sends more than N requests within a
//! window is ignored (its packets are dropped unanswered) for a while.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
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

/// The per-source counter table.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    ban: Duration,
    exempt: Vec<IpNet>,
    sources: Mutex<HashMap<IpAddr, SourceState>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` packets per `window`, banning for `ban`.
    pub fn new(limit: u32, window: Duration, ban: Duration, exempt: Vec<IpNet>) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            ban,
            exempt,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` is banned now (does not count anything).
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources
            .lock()
            .ok()
            .and_then(|s| s.get(&ip).and_then(|st| st.banned_until))
            .is_some_and(|until| now < until)
    }

    /// Bans `ip` from `now` for the ban time (not an exempt source): for
    /// a source caught at something worse than sending too much (failing
    /// authentication again and again). Returns whether it was banned.
    pub fn ban(&self, ip: IpAddr, now: Instant) -> bool {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        let Ok(mut sources) = self.sources.lock() else {
            return false;
        };
        let s = sources.entry(ip).or_insert(SourceState {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        s.banned_until = Some(now + self.ban);
        true
    }

    /// Counts one request from `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return Verdict::Allow;
        }
        let Ok(mut sources) = self.sources.lock() else {
            return Verdict::Allow;
        };
        if sources.len() > 100_000 {
            // Bound memory under a spoofed-source flood: forget idle entries.
            let window = self.window;
            sources
                .retain(|_, s| s.banned_until.is_some_and(|b| b > now) || now.duration_since(s.window_start) < window);
        }
        let s = sources.entry(ip).or_insert(SourceState {
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
    fn exempt_networks_are_never_limited() {
        let l = limiter();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(l.check(ip, t), Verdict::Allow);
        }
    }
}
