//! `[webrtc]`: browser calls (the "talk to the agent" page). A route with
//! `webrtc = true` takes calls from browsers at `/talk/<route>`; the
//! page's offer comes over the HTTP listener's WebSocket, the media over
//! ICE on `bind` (a port of `port_min..=port_max`).

use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;
use voxline_sip::config::FieldError;
use voxline_webrtc::{IceServer, WebRtcSettings};

/// `[webrtc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebRtcConfig {
    /// The address ICE binds (its host candidate). Default: `media.bind_ip`.
    #[serde(default)]
    pub bind_ip: Option<IpAddr>,
    /// The address browsers reach this host at, when it is behind 1:1 NAT
    /// (a cloud instance's public IP): host candidates carry it instead.
    #[serde(default)]
    pub public_ip: Option<IpAddr>,
    /// UDP ports ICE may bind (both 0: any free port).
    #[serde(default)]
    pub port_min: u16,
    /// See `port_min`.
    #[serde(default)]
    pub port_max: u16,
    /// `[[webrtc.ice_server]]`: STUN/TURN servers for browsers behind NAT.
    #[serde(default, rename = "ice_server")]
    pub ice_servers: Vec<IceServer>,
    /// The longest ICE and DTLS may take once the answer is sent, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: u64,
    /// Browser calls up at once on this node at most; more are refused.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
}

fn default_connect_timeout() -> u64 {
    10
}

fn default_max_calls() -> usize {
    20
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            bind_ip: None,
            public_ip: None,
            port_min: 0,
            port_max: 0,
            ice_servers: Vec::new(),
            connect_timeout_s: default_connect_timeout(),
            max_calls: default_max_calls(),
        }
    }
}

impl WebRtcConfig {
    /// Checks the section; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let any = self.port_min == 0 && self.port_max == 0;
        if !any && (self.port_min < 1024 || self.port_min > self.port_max) {
            return Err(FieldError::new(
                "webrtc.port_min",
                "must be at least 1024 and not above webrtc.port_max (both 0: any free port)",
            ));
        }
        if !(1..=120).contains(&self.connect_timeout_s) {
            return Err(FieldError::new("webrtc.connect_timeout_s", "must be 1 to 120"));
        }
        if !(1..=10_000).contains(&self.max_calls) {
            return Err(FieldError::new("webrtc.max_calls", "must be 1 to 10000"));
        }
        for (i, s) in self.ice_servers.iter().enumerate() {
            if s.urls.is_empty() {
                return Err(FieldError::new(
                    format!("webrtc.ice_server[{i}].urls"),
                    "must not be empty",
                ));
            }
            for u in &s.urls {
                let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p));
                if !scheme_ok {
                    return Err(FieldError::new(
                        format!("webrtc.ice_server[{i}].urls"),
                        format!("{u:?} must start with stun:, stuns:, turn: or turns:"),
                    ));
                }
                if u.starts_with("turn") && (s.username.is_empty() || s.credential.is_empty()) {
                    return Err(FieldError::new(
                        format!("webrtc.ice_server[{i}].username"),
                        "a TURN server needs a username and a credential",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The settings a browser call is set up with; `media_ip` is the
    /// default bind address.
    pub fn settings(&self, media_ip: IpAddr) -> WebRtcSettings {
        WebRtcSettings {
            bind: self.bind_ip.unwrap_or(media_ip),
            ports: (self.port_min, self.port_max),
            public_ip: self.public_ip,
            ice_servers: self.ice_servers.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> WebRtcConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn defaults_are_valid_and_bind_the_media_address() {
        let c = WebRtcConfig::default();
        c.validate().expect("valid");
        let s = c.settings(IpAddr::from([10, 0, 0, 5]));
        assert_eq!(s.bind, IpAddr::from([10, 0, 0, 5]));
        assert_eq!(s.ports, (0, 0));
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, field) in [
            ("port_min = 100\nport_max = 200", "webrtc.port_min"),
            ("port_min = 50000\nport_max = 40000", "webrtc.port_min"),
            ("connect_timeout_s = 0", "webrtc.connect_timeout_s"),
            ("max_calls = 0", "webrtc.max_calls"),
            ("[[ice_server]]\nurls = [\"http://x\"]", "webrtc.ice_server[0].urls"),
            (
                "[[ice_server]]\nurls = [\"turn:t.example:3478\"]",
                "webrtc.ice_server[0].username",
            ),
        ] {
            let e = parse(text).validate().expect_err(text);
            assert_eq!(e.field, field, "{text}");
        }
        parse("[[ice_server]]\nurls = [\"stun:stun.example:3478\"]\n[[ice_server]]\nurls = [\"turn:t.example:3478\"]\nusername = \"u\"\ncredential = \"p\"")
            .validate()
            .expect("STUN and TURN with credentials");
    }
}
