//! The server configuration file (`sip-config/voxline.toml`): loading,
//! path resolution and validation with errors that name the file and field.
//! Its sections: `[asr]` (`asr`), `[llm]` and `[tts]` (`speech`), and each
//! route's handler parameters (`routes`). Nothing here depends on the
//! handlers: they take what this layer parsed.

pub mod analysis;
pub mod asr;
pub mod http;
pub mod routes;
pub mod speech;
pub mod webhook;
pub mod webrtc;

pub use http::HttpConfig;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use voxline_sip::config::{validate, FieldError};
use voxline_sip::routing::ParamValue;
use voxline_sip::{RouteConfig, SecurityConfig, SipConfig, TrunkConfig, UserConfig};

/// A configuration error: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// Dotted field path (`-` when the file itself is the problem).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// `[node]`: this server's identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Name written in call records (tells nodes apart on shared PostgreSQL).
    #[serde(default = "default_node")]
    pub name: String,
}

fn default_node() -> String {
    "voxline-1".into()
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: default_node() }
    }
}

/// `[media]`: RTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Local address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Address written in SDP (the public one behind NAT); defaults to `bind_ip`.
    #[serde(default)]
    pub advertise_ip: Option<IpAddr>,
    /// Lowest RTP port.
    #[serde(default = "default_rtp_min")]
    pub rtp_port_min: u16,
    /// Highest RTP port.
    #[serde(default = "default_rtp_max")]
    pub rtp_port_max: u16,
    /// End a call when no RTP came for this many seconds while the far end
    /// should be sending (not on hold); 0 = never.
    #[serde(default = "default_media_timeout")]
    pub timeout_secs: u64,
    /// Record calls (stereo WAV, caller left, voxline right).
    #[serde(default)]
    pub record: bool,
    /// Where recordings go.
    #[serde(default = "default_recordings")]
    pub recordings_dir: PathBuf,
    /// Whose RTP a call takes (decision 0064).
    #[serde(default)]
    pub rtp_sources: RtpSources,
}

/// `[media] rtp_sources`: which sources a call's media latches onto.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RtpSources {
    /// The address in the peer's SDP or the one its SIP came from (NAT:
    /// any port of that address).
    #[default]
    Signalled,
    /// Whoever sends first (a proxy in front that neither fixes SDP nor
    /// relays media): open to anyone spraying the port range.
    Any,
}

fn default_media_timeout() -> u64 {
    30
}
fn default_rtp_min() -> u16 {
    20000
}
fn default_rtp_max() -> u16 {
    30000
}
fn default_recordings() -> PathBuf {
    PathBuf::from("~/.cache/voxline/recordings")
}

impl MediaConfig {
    /// The address to put in SDP.
    pub fn advertised(&self) -> IpAddr {
        self.advertise_ip.unwrap_or(self.bind_ip)
    }

    /// An RTP session on a free port of the range, taking media only from
    /// the sources `rtp_sources` allows; `peer` is where the call's SIP
    /// came from (inbound calls).
    pub async fn bind_rtp(&self, peer: Option<IpAddr>) -> Result<voxline_media::RtpSession, voxline_media::MediaError> {
        let rtp = voxline_media::RtpSession::bind(self.bind_ip, self.rtp_port_min, self.rtp_port_max).await?;
        rtp.allow_sources(peer, self.rtp_sources == RtpSources::Any);
        Ok(rtp)
    }
}

/// `[store]`: where call records go.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created when missing) or `postgres://USER:PASS@HOST/DB`.
    pub url: String,
    /// Where record writes waiting for the store are kept on disk (one
    /// folder per node name), to be written at the next start when the node
    /// stops or crashes first.
    #[serde(default = "default_spool")]
    pub spool_dir: PathBuf,
}

fn default_spool() -> PathBuf {
    PathBuf::from("~/.cache/voxline/record-spool")
}

impl StoreConfig {
    /// The spool folder of node `node` (its name made safe for a path).
    pub fn spool_of(&self, node: &str) -> PathBuf {
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.spool_dir.join(safe.trim_start_matches('.'))
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL without its password.
        f.debug_struct("StoreConfig")
            .field("url", &voxline_store::redact(&self.url))
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[node]`.
    #[serde(default)]
    pub node: NodeConfig,
    /// `[sip]` and `[[sip.listener]]`.
    pub sip: SipConfig,
    /// `[security]`.
    #[serde(default)]
    pub security: SecurityConfig,
    /// `[[trunk]]`.
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// `[[route]]`.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[[user]]`.
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    /// `[media]`.
    pub media: MediaConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[http]`.
    #[serde(default)]
    pub http: HttpConfig,
    /// `[[webhook]]`.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<webhook::WebhookConfig>,
    /// The receivers of `[[webhook]]`, their secrets read (at load).
    #[serde(skip)]
    pub webhook_targets: Vec<voxline_campaign::WebhookTarget>,
    /// `[asr]`: speech recognition (used by routes that listen).
    #[serde(default)]
    pub asr: crate::config::asr::AsrConfig,
    /// `[llm]`: the language model of agent routes.
    #[serde(default)]
    pub llm: crate::config::speech::LlmConfig,
    /// `[tts]`: the voice of agent routes.
    #[serde(default)]
    pub tts: crate::config::speech::TtsSection,
    /// `[campaigns]`: how this node dials outbound campaigns.
    #[serde(default)]
    pub campaigns: CampaignsConfig,
    /// `[analysis]`: the language model of the work after a call.
    #[serde(default)]
    pub analysis: crate::config::analysis::AnalysisConfig,
    /// `[webrtc]`: browser calls to routes with `webrtc = true`.
    #[serde(default)]
    pub webrtc: crate::config::webrtc::WebRtcConfig,
    /// The directory relative paths are resolved against (the file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[campaigns]`: how this node takes part in outbound campaigns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignsConfig {
    /// This node dials the store's running campaigns (`voxline serve`).
    #[serde(default = "default_true")]
    pub dial: bool,
    /// Campaign calls up at once on this node, all campaigns together (its
    /// agent capacity: the model and voice are shared by every call).
    #[serde(default = "default_campaign_calls")]
    pub max_calls: u32,
}

fn default_true() -> bool {
    true
}

fn default_campaign_calls() -> u32 {
    4
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            dial: true,
            max_calls: default_campaign_calls(),
        }
    }
}

/// Expands `~/` and makes a relative path relative to `base`.
pub fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Resolves `~` and relative paths in a `sqlite://` URL.
fn resolve_store_url(base: &Path, url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) => {
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            let resolved = resolve_path(base, Path::new(path));
            match query {
                Some(q) => format!("sqlite://{}?{q}", resolved.display()),
                None => format!("sqlite://{}", resolved.display()),
            }
        }
        None => url.to_string(),
    }
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let err = |field: &str, reason: String| ConfigError {
            file: file.clone(),
            field: field.to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err("-", format!("cannot read: {e}")))?;
        let de = toml::Deserializer::parse(&text).map_err(|e| err("-", one_line(&e.to_string())))?;
        let mut cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            err(
                if field == "." { "-" } else { &field },
                one_line(&e.inner().to_string()),
            )
        })?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if cfg.base_dir.as_os_str().is_empty() {
            cfg.base_dir = PathBuf::from(".");
        }
        for l in cfg.sip.listeners.iter_mut() {
            l.cert = l.cert.as_ref().map(|p| resolve_path(&cfg.base_dir, p));
            l.key = l.key.as_ref().map(|p| resolve_path(&cfg.base_dir, p));
        }
        cfg.media.recordings_dir = resolve_path(&cfg.base_dir, &cfg.media.recordings_dir);
        cfg.store.url = resolve_store_url(&cfg.base_dir, &cfg.store.url);
        cfg.store.spool_dir = resolve_path(&cfg.base_dir, &cfg.store.spool_dir);
        cfg.asr.resolve_paths(&cfg.base_dir);
        cfg.llm.resolve_paths(&cfg.base_dir);
        cfg.tts.resolve_paths(&cfg.base_dir);
        cfg.analysis.resolve_paths(&cfg.base_dir);
        let base = cfg.base_dir.clone();
        cfg.http.read_files(&base).map_err(|e| err(&e.field, e.reason))?;
        cfg.webhook_targets = cfg
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| w.target(i, &base))
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e.field, e.reason))?;
        cfg.validate().map_err(|e| err(&e.field, e.reason))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), FieldError> {
        validate(&self.sip, &self.trunks, &self.routes, &self.users, &self.security)?;
        if self.media.rtp_port_min >= self.media.rtp_port_max || self.media.rtp_port_min < 1024 {
            return Err(FieldError::new(
                "media.rtp_port_min",
                "must be at least 1024 and below media.rtp_port_max",
            ));
        }
        // A call takes an even port for RTP and the odd one above for RTCP.
        let first_even = u32::from(self.media.rtp_port_min) + u32::from(self.media.rtp_port_min & 1);
        if first_even + 1 > u32::from(self.media.rtp_port_max) {
            return Err(FieldError::new(
                "media.rtp_port_max",
                "the range holds no even port with the port above it (RTP and RTCP)",
            ));
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(FieldError::new("store.url", "must start with sqlite:// or postgres://"));
        }
        if self.node.name.is_empty() {
            return Err(FieldError::new("node.name", "must not be empty"));
        }
        if !(1..=1000).contains(&self.campaigns.max_calls) {
            return Err(FieldError::new("campaigns.max_calls", "must be 1 to 1000"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            crate::config::routes::validate_route(r, &self.base_dir)
                .map_err(|(field, reason)| FieldError::new(format!("route[{i}].{field}"), reason))?;
            if r.webrtc && !crate::config::routes::TALKING.contains(&r.handler.as_str()) {
                return Err(FieldError::new(
                    format!("route[{i}].webrtc"),
                    format!(
                        "browser calls reach agent routes only (this route's handler is {:?})",
                        r.handler
                    ),
                ));
            }
            if let Some(ParamValue::Str(name)) = r.params.get("transfer_trunk") {
                match self.trunks.iter().find(|t| &t.name == name) {
                    None => {
                        return Err(FieldError::new(
                            format!("route[{i}].params.transfer_trunk"),
                            format!("no [[trunk]] named {name:?}"),
                        ))
                    }
                    Some(t) if t.host.is_none() => {
                        return Err(FieldError::new(
                            format!("route[{i}].params.transfer_trunk"),
                            format!("trunk {name:?} has no host to send calls to"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        self.http.validate()?;
        self.webrtc.validate()?;
        self.asr.validate()?;
        if self
            .routes
            .iter()
            .any(|r| crate::config::routes::LISTENING.contains(&r.handler.as_str()))
        {
            self.asr.check_files()?;
        }
        let talking = self
            .routes
            .iter()
            .any(|r| crate::config::routes::TALKING.contains(&r.handler.as_str()));
        self.llm.validate(talking)?;
        self.tts.validate(talking)?;
        self.analysis.choice()?;
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("voxline-cfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("voxline.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const MINIMAL: &str = r#"
[sip]
[[sip.listener]]
transport = "udp"
bind = "127.0.0.1:5060"
[media]
bind_ip = "127.0.0.1"
[store]
url = "sqlite://calls.db"
"#;

    #[test]
    fn a_minimal_file_loads_and_relative_paths_follow_the_file() {
        let p = write("min", MINIMAL);
        let c = Config::load(&p).unwrap();
        assert!(c.store.url.ends_with("/calls.db"));
        assert!(c.store.url.contains(&format!("voxline-cfg-{}-min", std::process::id())));
        assert_eq!(c.security.rate_limit_requests, 16);
    }

    #[test]
    fn no_password_shows_in_debug_output() {
        let text = MINIMAL.replace("sqlite://calls.db", "postgres://vox:pg-secret-1@db.example/calls")
            + "[[trunk]]\nname = \"carrier\"\nkind = \"register\"\nhost = \"sip.example\"\nusername = \"acct\"\npassword = \"trunk-secret-2\"\n"
            + "[[user]]\nusername = \"desk\"\npassword = \"phone-secret-3\"\n";
        let c = Config::load(&write("secrets", &text)).unwrap();
        let shown = format!("{c:?} {c:#?}");
        for secret in ["pg-secret-1", "trunk-secret-2", "phone-secret-3"] {
            assert!(!shown.contains(secret), "{secret} in Debug output");
        }
        assert!(shown.contains("postgres://***@db.example/calls") && shown.contains("acct") && shown.contains("desk"));
        assert_eq!(
            c.trunks[0].password.as_deref(),
            Some("trunk-secret-2"),
            "the value itself is kept"
        );
    }

    #[test]
    fn a_transfer_trunk_must_name_a_trunk_that_sends_calls() {
        let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank");
        let route = |trunk: &str| {
            format!(
                "{MINIMAL}\n[[trunk]]\nname = \"inbound-only\"\nkind = \"ip\"\nallow = [\"10.0.0.0/8\"]\n\n[[route]]\nname = \"bank\"\ntrunk = \"inbound-only\"\nhandler = \"agent\"\nparams = {{ domain = \"{}\", transfer_trunk = \"{trunk}\" }}\n",
                pack.display()
            )
        };
        let e = Config::load(&write("transfer-trunk-unknown", &route("nowhere"))).unwrap_err();
        assert_eq!(e.field, "route[0].params.transfer_trunk", "{e}");
        assert!(e.reason.contains("no [[trunk]] named \"nowhere\""), "{e}");
        let e = Config::load(&write("transfer-trunk-no-host", &route("inbound-only"))).unwrap_err();
        assert_eq!(e.field, "route[0].params.transfer_trunk", "{e}");
        assert!(e.reason.contains("has no host"), "{e}");
    }

    #[test]
    fn a_type_error_names_the_field() {
        let p = write(
            "type",
            &MINIMAL.replace("bind = \"127.0.0.1:5060\"", "bind = \"nowhere\""),
        );
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e.field, "sip.listener[0].bind", "{e}");
        assert!(e.to_string().starts_with(&p.display().to_string()));
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let p = write(
            "unknown",
            &format!("{MINIMAL}\n[[trunk]]\nname = \"t\"\nkind = \"ip\"\nallow = [\"10.0.0.0/8\"]\nmax_call = 3\n"),
        );
        let e = Config::load(&p).unwrap_err();
        assert!(e.field.starts_with("trunk"), "{e}");
        assert!(e.reason.contains("max_call"), "{e}");
    }

    #[test]
    fn a_semantic_error_names_the_field() {
        let p = write("cidr", &format!("{MINIMAL}\n[[trunk]]\nname = \"t\"\nkind = \"ip\"\n"));
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e.field, "trunk[0].allow", "{e}");
        let p = write(
            "route",
            &format!("{MINIMAL}\n[[route]]\nname = \"r\"\ntrunk = \"nope\"\nhandler = \"playback\"\n"),
        );
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e.field, "route[0].trunk", "{e}");
    }

    #[test]
    fn an_rtp_range_without_an_rtp_rtcp_pair_is_refused() {
        let range = |min: u16, max: u16| {
            MINIMAL.replace(
                "bind_ip = \"127.0.0.1\"",
                &format!("bind_ip = \"127.0.0.1\"\nrtp_port_min = {min}\nrtp_port_max = {max}"),
            )
        };
        let e = Config::load(&write("odd", &range(20001, 20002))).unwrap_err();
        assert_eq!(e.field, "media.rtp_port_max", "{e}");
        assert!(Config::load(&write("pair", &range(20000, 20001))).is_ok());
    }

    #[test]
    fn a_trunk_trusting_the_whole_internet_is_refused() {
        let p = write(
            "slash0",
            &format!("{MINIMAL}\n[[trunk]]\nname = \"t\"\nkind = \"ip\"\nallow = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n"),
        );
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e.field, "trunk[0].allow[1]", "{e}");
    }

    #[test]
    fn api_tokens_are_hashes_or_files_and_a_bad_one_is_named() {
        let with = |name: &str, tokens: &str| Config::load(&write(name, &format!("{MINIMAL}[http]\n{tokens}")));
        let good = format!(
            "[[http.token]]\nname = \"crm\"\nscope = \"write\"\nhash = \"{}\"\n",
            http::hash_of("vxl_0123456789abcdef")
        );
        let c = with("tok-hash", &good).unwrap();
        assert_eq!(c.http.tokens[0].scope, http::Scope::Write);
        let e = with("tok-bad", "[[http.token]]\nname = \"crm\"\nhash = \"md5:abc\"\n").unwrap_err();
        assert_eq!(e.field, "http.token[0].hash", "{e}");
        let e = with("tok-none", "[[http.token]]\nname = \"crm\"\n").unwrap_err();
        assert_eq!(e.field, "http.token[0].hash", "{e}");
        let e = with(
            "tok-scope",
            "[[http.token]]\nname = \"crm\"\nscope = \"admin\"\nhash = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "http.token[0].scope", "{e}");
        let e = with("tok-twice", &format!("{good}{good}")).unwrap_err();
        assert_eq!(e.field, "http.token[1].name", "{e}");
        // A file holding the token, relative to the config file.
        let e = with("tok-nofile", "[[http.token]]\nname = \"local\"\nfile = \"api-token\"\n").unwrap_err();
        assert_eq!(e.field, "http.token[0].file", "{e}");
        let p = write(
            "tok-file",
            &format!("{MINIMAL}[http]\n[[http.token]]\nname = \"local\"\nfile = \"api-token\"\n"),
        );
        std::fs::write(p.with_file_name("api-token"), "vxl_0123456789abcdef\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(
            c.http.tokens[0].hash.as_deref(),
            Some(http::hash_of("vxl_0123456789abcdef").as_str())
        );
        std::fs::write(p.with_file_name("api-token"), "short\n").unwrap();
        assert_eq!(Config::load(&p).unwrap_err().field, "http.token[0].file");
    }

    #[test]
    fn a_webhook_needs_an_address_and_a_secret_named_by_field() {
        let with = |name: &str, hook: &str| Config::load(&write(name, &format!("{MINIMAL}[[webhook]]\n{hook}")));
        let c = with(
            "hook-ok",
            "url = \"https://crm.example/hook\"\nsecret = \"0123456789abcdef\"\nevents = [\"call.ended\"]\n",
        )
        .unwrap();
        assert_eq!(c.webhook_targets[0].events, ["call.ended"]);
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "no secret in Debug");
        let field = |name: &str, hook: &str| with(name, hook).unwrap_err().field;
        assert_eq!(
            field("hook-short", "url = \"https://x\"\nsecret = \"short\"\n"),
            "webhook[0].secret"
        );
        assert_eq!(field("hook-none", "url = \"https://x\"\n"), "webhook[0].secret");
        assert_eq!(
            field("hook-url", "url = \"crm.example\"\nsecret = \"0123456789abcdef\"\n"),
            "webhook[0].url"
        );
        assert_eq!(
            field(
                "hook-event",
                "url = \"https://x\"\nsecret = \"0123456789abcdef\"\nevents = [\"call.rang\"]\n"
            ),
            "webhook[0].events"
        );
        assert_eq!(
            field("hook-file", "url = \"https://x\"\nsecret_file = \"missing-secret\"\n"),
            "webhook[0].secret_file"
        );
    }

    #[test]
    fn a_missing_file_is_reported() {
        let e = Config::load(Path::new("/nonexistent/voxline.toml")).unwrap_err();
        assert!(e.reason.contains("cannot read"), "{e}");
    }
}
