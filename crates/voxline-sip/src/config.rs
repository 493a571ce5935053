//! SIP configuration: listeners, trunks, routes, users and security limits.
//! Parsed by the server from `sip-config/voxline.toml`; `validate` names the
//! offending field on error.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A configuration mistake, with the field it is about.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `trunk[1].allow[0]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// SIP transport of a listener or trunk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// UDP (the default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// `[[sip.listener]]`: one socket voxline receives SIP on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// udp, tcp or tls.
    pub transport: TransportKind,
    /// Address and port to bind.
    pub bind: SocketAddr,
    /// Address:port to advertise instead of `bind` (behind NAT).
    #[serde(default)]
    pub external: Option<SocketAddr>,
    /// TLS only: PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// TLS only: PEM private key.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `[security]`: per-source rate limiting (like Kamailio's pike module).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Requests one source IP may send per window before it is banned.
    pub rate_limit_requests: u32,
    /// Length of the counting window, in milliseconds.
    pub rate_limit_window_ms: u64,
    /// How long a source that went over the limit is ignored, in seconds.
    pub ban_seconds: u64,
    /// Sources never rate-limited (in addition to IP-authenticated trunks).
    pub exempt: Vec<IpNet>,
    /// Realm used in digest challenges to `[[user]]` phones.
    pub realm: String,
    /// TCP/TLS connections one source may hold at once (trunks' networks
    /// and `exempt` sources are not capped per source).
    pub max_connections_per_source: u32,
    /// TCP/TLS connections the node holds at once, all sources together.
    pub max_connections: u32,
    /// Milliseconds a new TCP connection has to send its first byte, and a
    /// TLS connection to finish its handshake, before it is closed.
    pub connection_setup_ms: u64,
    /// Seconds a TCP/TLS connection may stay silent (no message, no
    /// keep-alive) before it is closed (0: never).
    pub connection_idle_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            rate_limit_requests: 16,
            rate_limit_window_ms: 2000,
            ban_seconds: 300,
            exempt: Vec::new(),
            realm: "voxline".into(),
            max_connections_per_source: 32,
            max_connections: 2048,
            connection_setup_ms: 5000,
            connection_idle_secs: 300,
        }
    }
}

/// How a trunk proves who it is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrunkKind {
    /// Calls are accepted from the listed CIDRs (carrier, PBX).
    Ip,
    /// voxline registers to the provider with a username and password.
    Register,
}

/// `[[trunk]]`: a carrier or PBX voxline exchanges calls with.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Unique name, used by routes and `voxline call --trunk`.
    pub name: String,
    /// `ip` or `register`.
    pub kind: TrunkKind,
    /// Source networks calls from this trunk come from (both kinds; required for `ip`).
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// Where calls to this trunk are sent: `host[:port]`.
    #[serde(default)]
    pub host: Option<String>,
    /// Transport for outbound requests.
    #[serde(default)]
    pub transport: TransportKind,
    /// Send every outbound request through this proxy (`host[:port]`).
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Digest username (register trunks, and challenges on outbound calls).
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password.
    #[serde(default)]
    pub password: Option<String>,
    /// Authentication id when it differs from `username`.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Registration expiry asked for, seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// Most calls at once on this trunk (both directions); 0 = no limit.
    #[serde(default)]
    pub max_calls: u32,
    /// Most new calls per second on this trunk; 0 = no limit.
    #[serde(default)]
    pub max_cps: u32,
    /// Caller-ID for outbound calls (`sip:` URI or a number).
    #[serde(default)]
    pub caller_id: Option<String>,
}

fn default_expires() -> u32 {
    300
}

/// What `Debug` shows of a password: whether there is one.
const HIDDEN: &str = "********";

impl std::fmt::Debug for TrunkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password (configurations are logged and printed).
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("allow", &self.allow)
            .field("host", &self.host)
            .field("transport", &self.transport)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| HIDDEN))
            .field("auth_username", &self.auth_username)
            .field("expires", &self.expires)
            .field("max_calls", &self.max_calls)
            .field("max_cps", &self.max_cps)
            .field("caller_id", &self.caller_id)
            .finish()
    }
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &HIDDEN)
            .field("max_calls", &self.max_calls)
            .finish()
    }
}

/// How a route matches the dialled number.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NumberMatch {
    /// Exact user part.
    #[serde(default)]
    pub exact: Option<String>,
    /// Prefix of the user part.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Regular expression on the user part (anchored by you).
    #[serde(default)]
    pub regex: Option<String>,
}

/// `[[route]]`: where an inbound call goes. First match wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name, stored in the call record.
    pub name: String,
    /// Only calls from this trunk (or `[[user]]` phones when `"users"`); any when absent.
    #[serde(default)]
    pub trunk: Option<String>,
    /// Dialled-number match; absent = any number.
    #[serde(default, rename = "number")]
    pub number: NumberMatch,
    /// The handler that takes the call (e.g. `playback`).
    pub handler: String,
    /// Handler parameters.
    #[serde(default)]
    pub params: BTreeMap<String, toml_value::Value>,
    /// Browsers may call this route too (`/talk/<name>`, over WebRTC); SIP
    /// calls still reach it by its other selectors.
    #[serde(default)]
    pub webrtc: bool,
}

/// Route parameter values (a small copy of TOML's scalar types).
pub mod toml_value {
    use serde::Deserialize;
    /// A parameter value.
    #[derive(Debug, Clone, Deserialize, PartialEq)]
    #[serde(untagged)]
    pub enum Value {
        /// true/false.
        Bool(bool),
        /// An integer.
        Int(i64),
        /// A float.
        Float(f64),
        /// A string.
        Str(String),
    }
}

/// `[[user]]`: a SIP phone allowed to call in with digest authentication.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Calls this phone may have up at once (0 = no limit); more get 503.
    #[serde(default = "default_user_calls")]
    pub max_calls: u32,
}

fn default_user_calls() -> u32 {
    2
}

/// Everything the SIP layer needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Sent in User-Agent/Server headers.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Codecs voxline accepts, in its order of preference when it offers.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// Encrypted media (SRTP keyed in SDP, RFC 4568): `off`, `optional`
    /// (RTP/SAVP offers answered with SRTP; voxline offers plain RTP) or
    /// `required` (plain offers get 488; voxline offers RTP/SAVP).
    #[serde(default)]
    pub srtp: crate::sdes::SrtpPolicy,
    /// Seconds an outbound INVITE may ring before voxline sends CANCEL.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    /// Calls up at once on this node, inbound and outbound together (0 = no
    /// limit); a new INVITE past it gets 503 before it rings.
    #[serde(default = "default_node_calls")]
    pub max_calls: u32,
    /// Sockets to listen on.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
}

impl ListenerConfig {
    /// A UDP listener on `bind`.
    pub fn udp(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            transport: TransportKind::Udp,
            bind,
            external: None,
            cert: None,
            key: None,
        }
    }
}

impl SipConfig {
    /// The defaults of the config file with one UDP listener on `bind`: what a
    /// client-only endpoint (`voxline call`, a benchmark) needs.
    pub fn client(bind: SocketAddr) -> SipConfig {
        SipConfig {
            user_agent: default_user_agent(),
            codecs: default_codecs(),
            srtp: crate::sdes::SrtpPolicy::default(),
            ring_timeout_secs: default_ring_timeout(),
            // A client (`voxline call`, a benchmark) places what it is told to.
            max_calls: 0,
            listeners: vec![ListenerConfig::udp(bind)],
        }
    }
}

fn default_user_agent() -> String {
    format!("voxline/{}", env!("CARGO_PKG_VERSION"))
}
fn default_codecs() -> Vec<String> {
    vec!["PCMU".into(), "PCMA".into(), "opus".into()]
}
fn default_ring_timeout() -> u64 {
    60
}
fn default_node_calls() -> u32 {
    1000
}

/// Checks the parts of the SIP configuration serde cannot.
pub fn validate(
    sip: &SipConfig,
    trunks: &[TrunkConfig],
    routes: &[RouteConfig],
    users: &[UserConfig],
    security: &SecurityConfig,
) -> Result<(), FieldError> {
    if sip.listeners.is_empty() {
        return Err(FieldError::new("sip.listener", "at least one listener is required"));
    }
    for (i, l) in sip.listeners.iter().enumerate() {
        if l.transport == TransportKind::Tls {
            for (name, v) in [("cert", &l.cert), ("key", &l.key)] {
                let f = format!("sip.listener[{i}].{name}");
                let p = v
                    .as_ref()
                    .ok_or_else(|| FieldError::new(&f, "required for a tls listener"))?;
                if !p.is_file() {
                    return Err(FieldError::new(f, format!("{} is not a readable file", p.display())));
                }
            }
        }
    }
    if sip.codecs.is_empty() {
        return Err(FieldError::new("sip.codecs", "at least one codec is required"));
    }
    for (i, c) in sip.codecs.iter().enumerate() {
        if crate::sdp::AudioCodec::from_name(c).is_none() {
            return Err(FieldError::new(
                format!("sip.codecs[{i}]"),
                format!("unknown codec {c:?} (PCMU, PCMA)"),
            ));
        }
    }
    if security.rate_limit_requests == 0 || security.rate_limit_window_ms == 0 {
        return Err(FieldError::new("security.rate_limit_requests", "must be above 0"));
    }
    for (field, value) in [
        (
            "security.max_connections_per_source",
            u64::from(security.max_connections_per_source),
        ),
        ("security.max_connections", u64::from(security.max_connections)),
        ("security.connection_setup_ms", security.connection_setup_ms),
    ] {
        if value == 0 {
            return Err(FieldError::new(field, "must be above 0"));
        }
    }
    let mut names = HashSet::new();
    for (i, t) in trunks.iter().enumerate() {
        let f = |n: &str| format!("trunk[{i}].{n}");
        if t.name.is_empty() || !names.insert(t.name.as_str()) {
            return Err(FieldError::new(
                f("name"),
                format!("{:?} is empty or used twice", t.name),
            ));
        }
        for (j, net) in t.allow.iter().enumerate() {
            if net.prefix_len() == 0 {
                return Err(FieldError::new(
                    format!("trunk[{i}].allow[{j}]"),
                    format!("{net} trusts every address on the internet; list the carrier's networks"),
                ));
            }
        }
        match t.kind {
            TrunkKind::Ip if t.allow.is_empty() => {
                return Err(FieldError::new(f("allow"), "an ip trunk needs at least one CIDR"));
            }
            TrunkKind::Register => {
                if t.username.as_deref().unwrap_or("").is_empty() {
                    return Err(FieldError::new(f("username"), "required for a register trunk"));
                }
                if t.password.is_none() {
                    return Err(FieldError::new(f("password"), "required for a register trunk"));
                }
                if t.host.is_none() {
                    return Err(FieldError::new(
                        f("host"),
                        "required for a register trunk (the registrar)",
                    ));
                }
                if t.expires < 30 {
                    return Err(FieldError::new(f("expires"), "must be at least 30 seconds"));
                }
            }
            _ => {}
        }
        for (field, v) in [("host", &t.host), ("outbound_proxy", &t.outbound_proxy)] {
            if let Some(h) = v {
                crate::endpoint::parse_host_port(h).map_err(|e| FieldError::new(f(field), e))?;
            }
        }
    }
    for (i, r) in routes.iter().enumerate() {
        let f = |n: &str| format!("route[{i}].{n}");
        if let Some(t) = &r.trunk {
            if t != "users" && !names.contains(t.as_str()) {
                return Err(FieldError::new(f("trunk"), format!("no trunk named {t:?}")));
            }
        }
        let set = [&r.number.exact, &r.number.prefix, &r.number.regex]
            .iter()
            .filter(|x| x.is_some())
            .count();
        if set > 1 {
            return Err(FieldError::new(f("number"), "use only one of exact, prefix, regex"));
        }
        if let Some(re) = &r.number.regex {
            regex::Regex::new(re).map_err(|e| FieldError::new(f("number.regex"), e.to_string()))?;
        }
    }
    let mut user_names = HashSet::new();
    for (i, u) in users.iter().enumerate() {
        if u.username.is_empty() || !user_names.insert(u.username.as_str()) {
            return Err(FieldError::new(format!("user[{i}].username"), "empty or used twice"));
        }
        if u.password.len() < 8 {
            return Err(FieldError::new(
                format!("user[{i}].password"),
                "must be at least 8 characters",
            ));
        }
    }
    Ok(())
}
