//! Inbound routing: which trunk a request came from, per-trunk call limits,
//! and which route (handler) takes a dialled number.

use crate::config::{RouteConfig, TrunkConfig};
use regex::Regex;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::config::toml_value::Value as ParamValue;

/// Calls up against a ceiling: the node's (`[sip] max_calls`), a phone
/// user's (`[[user]] max_calls`) or a trunk's.
#[derive(Debug)]
pub struct CallCounter {
    active: AtomicU32,
    max: u32,
}

impl CallCounter {
    /// A counter allowing `max` calls at once (0 = no limit).
    pub fn new(max: u32) -> Arc<CallCounter> {
        Arc::new(CallCounter {
            active: AtomicU32::new(0),
            max,
        })
    }

    /// Calls up now.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Takes a slot, or None when `max` calls are up.
    pub fn take(self: &Arc<Self>) -> Option<CallPermit> {
        let prev = self.active.fetch_add(1, Ordering::Relaxed);
        if self.max > 0 && prev >= self.max {
            self.active.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(CallPermit {
            slots: vec![self.clone()],
        })
    }
}

/// A trunk at run time: its config plus live counters.
#[derive(Debug)]
pub struct Trunk {
    /// The configuration.
    pub config: TrunkConfig,
    active: Arc<CallCounter>,
    cps: Mutex<(Instant, u32)>,
}

/// Why a trunk refused a new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// `max_calls` calls are up.
    Concurrent,
    /// `max_cps` calls started in the last second.
    Rate,
}

/// Holds a call's slots (the node's, its trunk's or user's) until dropped.
#[derive(Debug, Default)]
pub struct CallPermit {
    slots: Vec<Arc<CallCounter>>,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        for c in &self.slots {
            c.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl CallPermit {
    /// This permit holding `other`'s slots as well.
    pub fn with(mut self, mut other: CallPermit) -> CallPermit {
        self.slots.append(&mut other.slots);
        self
    }
}

impl Trunk {
    fn new(config: TrunkConfig) -> Trunk {
        Trunk {
            active: CallCounter::new(config.max_calls),
            config,
            cps: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Calls up on this trunk now.
    pub fn active_calls(&self) -> u32 {
        self.active.active()
    }

    /// Takes a call slot, or says which limit is in the way.
    pub fn admit(self: &Arc<Self>) -> Result<CallPermit, LimitExceeded> {
        let permit = self.active.take().ok_or(LimitExceeded::Concurrent)?;
        if self.config.max_cps > 0 {
            let now = Instant::now();
            if let Ok(mut w) = self.cps.lock() {
                if now.duration_since(w.0) >= Duration::from_secs(1) {
                    *w = (now, 0);
                }
                if w.1 >= self.config.max_cps {
                    return Err(LimitExceeded::Rate); // permit drops: slot released
                }
                w.1 += 1;
            }
        }
        Ok(permit)
    }
}

/// A route with its number matcher compiled.
#[derive(Debug)]
pub struct Route {
    /// The configuration.
    pub config: RouteConfig,
    regex: Option<Regex>,
}

impl Route {
    fn matches(&self, trunk: &str, number: &str) -> bool {
        if let Some(t) = &self.config.trunk {
            if t != trunk {
                return false;
            }
        }
        let m = &self.config.number;
        if let Some(e) = &m.exact {
            return e == number;
        }
        if let Some(p) = &m.prefix {
            return number.starts_with(p.as_str());
        }
        if let Some(re) = &self.regex {
            return re.is_match(number);
        }
        true
    }

    /// The handler parameters.
    pub fn params(&self) -> &BTreeMap<String, ParamValue> {
        &self.config.params
    }
}

/// Trunks and routes, compiled.
#[derive(Debug, Default)]
pub struct Router {
    trunks: Vec<Arc<Trunk>>,
    routes: Vec<Arc<Route>>,
}

impl Router {
    /// Compiles validated configuration. Regexes were checked by `validate`;
    /// one that fails here is skipped with a warning.
    pub fn new(trunks: &[TrunkConfig], routes: &[RouteConfig]) -> Router {
        Router {
            trunks: trunks.iter().cloned().map(|t| Arc::new(Trunk::new(t))).collect(),
            routes: routes
                .iter()
                .filter_map(|r| {
                    let regex = match &r.number.regex {
                        Some(re) => match Regex::new(re) {
                            Ok(re) => Some(re),
                            Err(e) => {
                                tracing::warn!(route = %r.name, error = %e, "route regex invalid, route skipped");
                                return None;
                            }
                        },
                        None => None,
                    };
                    Some(Arc::new(Route {
                        config: r.clone(),
                        regex,
                    }))
                })
                .collect(),
        }
    }

    /// The trunk whose `allow` networks contain `ip` (first one in config order).
    pub fn trunk_for_source(&self, ip: IpAddr) -> Option<Arc<Trunk>> {
        let ip = crate::security::canonical(ip);
        self.trunks
            .iter()
            .find(|t| t.config.allow.iter().any(|n| n.contains(&ip)))
            .cloned()
    }

    /// A trunk by name.
    pub fn trunk(&self, name: &str) -> Option<Arc<Trunk>> {
        self.trunks.iter().find(|t| t.config.name == name).cloned()
    }

    /// All trunks.
    pub fn trunks(&self) -> &[Arc<Trunk>] {
        &self.trunks
    }

    /// The first route matching calls from `trunk` (a trunk name, or `users`)
    /// to `number`.
    pub fn route(&self, trunk: &str, number: &str) -> Option<Arc<Route>> {
        self.routes.iter().find(|r| r.matches(trunk, number)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NumberMatch, TrunkKind};

    fn trunk(name: &str, cidr: &str, max_calls: u32, max_cps: u32) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            kind: TrunkKind::Ip,
            allow: vec![cidr.parse().unwrap()],
            host: None,
            transport: Default::default(),
            outbound_proxy: None,
            username: None,
            password: None,
            auth_username: None,
            expires: 300,
            max_calls,
            max_cps,
            caller_id: None,
        }
    }

    fn route(name: &str, trunk: Option<&str>, number: NumberMatch) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            trunk: trunk.map(Into::into),
            number,
            handler: "playback".into(),
            params: Default::default(),
            webrtc: false,
        }
    }

    #[test]
    fn first_matching_route_wins() {
        let r = Router::new(
            &[trunk("carrier", "192.0.2.0/24", 0, 0)],
            &[
                route(
                    "exact",
                    Some("carrier"),
                    NumberMatch {
                        exact: Some("1000".into()),
                        ..Default::default()
                    },
                ),
                route(
                    "uk",
                    None,
                    NumberMatch {
                        prefix: Some("+44".into()),
                        ..Default::default()
                    },
                ),
                route(
                    "digits",
                    None,
                    NumberMatch {
                        regex: Some("^[0-9]{4}$".into()),
                        ..Default::default()
                    },
                ),
                route("any", Some("carrier"), NumberMatch::default()),
            ],
        );
        assert_eq!(r.route("carrier", "1000").unwrap().config.name, "exact");
        assert_eq!(r.route("users", "1000").unwrap().config.name, "digits");
        assert_eq!(r.route("carrier", "+4420").unwrap().config.name, "uk");
        assert_eq!(r.route("carrier", "sales").unwrap().config.name, "any");
        assert!(r.route("users", "sales").is_none());
    }

    #[test]
    fn source_ip_selects_the_trunk_including_v4_mapped_v6() {
        let r = Router::new(&[trunk("local", "127.0.0.1/32", 0, 0)], &[]);
        assert!(r.trunk_for_source("127.0.0.1".parse().unwrap()).is_some());
        assert!(r.trunk_for_source("::ffff:127.0.0.1".parse().unwrap()).is_some());
        assert!(r.trunk_for_source("127.0.0.2".parse().unwrap()).is_none());
    }

    #[test]
    fn concurrent_limit_is_enforced_and_released() {
        let r = Router::new(&[trunk("t", "10.0.0.0/8", 2, 0)], &[]);
        let t = r.trunk("t").unwrap();
        let a = t.admit().unwrap();
        let _b = t.admit().unwrap();
        assert_eq!(t.admit().unwrap_err(), LimitExceeded::Concurrent);
        drop(a);
        assert!(t.admit().is_ok());
    }

    #[test]
    fn rate_limit_is_enforced_and_does_not_leak_slots() {
        let r = Router::new(&[trunk("t", "10.0.0.0/8", 0, 3)], &[]);
        let t = r.trunk("t").unwrap();
        let permits: Vec<_> = (0..3).map(|_| t.admit().unwrap()).collect();
        assert_eq!(t.admit().unwrap_err(), LimitExceeded::Rate);
        assert_eq!(t.active_calls(), 3);
        drop(permits);
        assert_eq!(t.active_calls(), 0);
    }

    #[test]
    fn a_permit_holds_every_slot_it_was_given_until_dropped() {
        let node = CallCounter::new(2);
        let user = CallCounter::new(1);
        let first = node.take().unwrap().with(user.take().unwrap());
        assert_eq!((node.active(), user.active()), (1, 1));
        assert!(user.take().is_none(), "the user's one slot is taken");
        assert_eq!(user.active(), 1, "a refused take leaves the count as it was");
        let second = node.take().unwrap();
        assert!(node.take().is_none());
        drop(first);
        assert_eq!((node.active(), user.active()), (1, 0));
        drop(second);
        assert_eq!(node.active(), 0);
        let unlimited = CallCounter::new(0);
        let held: Vec<_> = (0..50).map(|_| unlimited.take().unwrap()).collect();
        assert_eq!(unlimited.active(), 50);
        drop(held);
        assert_eq!(unlimited.active(), 0);
    }
}
