//! Where a browser call's ICE binds and what it tells the browser.

use std::net::IpAddr;
use std::time::Duration;

/// A STUN or TURN server the browser and voxline both use to find a path
/// through NAT (`[[webrtc.ice_server]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`...
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub username: String,
    /// TURN password.
    #[serde(default)]
    pub credential: String,
}

/// How browser calls' ICE is set up.
#[derive(Debug, Clone)]
pub struct WebRtcSettings {
    /// The address ICE binds its UDP socket on (its host candidate).
    pub bind: IpAddr,
    /// UDP ports ICE may bind (inclusive; `0..=0`: any free port).
    pub ports: (u16, u16),
    /// The address the browser reaches this host at, when it is not
    /// `bind` (1:1 NAT, a cloud instance's public IP): host candidates carry
    /// it instead.
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN servers (none on a private network).
    pub ice_servers: Vec<IceServer>,
    /// The longest ICE plus DTLS may take once the answer is sent.
    pub connect_timeout: Duration,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        WebRtcSettings {
            bind: IpAddr::from([127, 0, 0, 1]),
            ports: (0, 0),
            public_ip: None,
            ice_servers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
