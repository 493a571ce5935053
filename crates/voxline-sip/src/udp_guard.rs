//! The UDP socket under the SIP stack, with voxline's checks in front: every
//! datagram is inspected raw ([`crate::ingress`]) before rsipstack parses it,
//! so malformed requests get a 400 (or 501) instead of silence, and sources
//! sending them are rate-limited like everyone else.

use crate::ingress::{inspect, Ingress};
use crate::security::{RateLimiter, Verdict};
use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, warn};

/// Counts a packet from `ip`; false when the source is (now) banned.
pub fn admit(limiter: &RateLimiter, ip: IpAddr, ban_seconds: u64) -> bool {
    match limiter.check(ip, Instant::now()) {
        Verdict::Allow => true,
        Verdict::NewlyBanned => {
            warn!(source = %ip, ban_seconds, "request rate limit exceeded: source banned");
            false
        }
        Verdict::Banned => false,
    }
}

/// A UDP socket that filters what the stack receives.
pub struct GuardedUdpSocket {
    socket: tokio::net::UdpSocket,
    limiter: Arc<RateLimiter>,
    ban_seconds: u64,
}

impl GuardedUdpSocket {
    /// Binds `addr` with a 4 MiB receive buffer (bursts of INVITEs at high call rates).
    pub fn bind(addr: SocketAddr, limiter: Arc<RateLimiter>, ban_seconds: u64) -> std::io::Result<GuardedUdpSocket> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        let sock_ref = socket2::SockRef::from(&std_socket);
        if let Err(e) = sock_ref.set_recv_buffer_size(4 << 20) {
            debug!(error = %e, "could not enlarge the SIP receive buffer");
        }
        std_socket.set_nonblocking(true)?;
        Ok(GuardedUdpSocket {
            socket: tokio::net::UdpSocket::from_std(std_socket)?,
            limiter,
            ban_seconds,
        })
    }
}

#[async_trait::async_trait]
impl StackUdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (n, src) = self.socket.recv_from(buf).await?;
            match inspect(&buf[..n]) {
                // Requests count toward the source's limit; responses to our own
                // requests (a callee answering `voxline call`) do not.
                Ingress::Pass => {
                    let is_response = buf[..n].starts_with(b"SIP/2.0 ");
                    if is_response || admit(&self.limiter, src.ip(), self.ban_seconds) {
                        return Ok((n, src));
                    }
                }
                Ingress::Rewrite(plain) => {
                    // The same request written plainly; it fits the stack's
                    // buffer unless it grew past it (then it is dropped).
                    if plain.len() <= buf.len() && admit(&self.limiter, src.ip(), self.ban_seconds) {
                        buf[..plain.len()].copy_from_slice(&plain);
                        return Ok((plain.len(), src));
                    }
                }
                Ingress::Reply(response) => {
                    if admit(&self.limiter, src.ip(), self.ban_seconds) {
                        let status = String::from_utf8_lossy(&response[..response.len().min(40)])
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        debug!(source = %src, %status, "malformed request refused");
                        self.socket.send_to(&response, src).await.ok();
                    }
                }
                Ingress::Drop(why) => {
                    admit(&self.limiter, src.ip(), self.ban_seconds);
                    debug!(source = %src, reason = why, "datagram dropped");
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// Rate-limits each request on stream transports (TCP, TLS): the transport
/// whitelist only sees new connections there (and only refuses banned
/// sources), so one connection could otherwise flood. UDP requests are
/// counted by `GuardedUdpSocket`.
pub struct StreamRateLimit {
    limiter: Arc<RateLimiter>,
    ban_seconds: u64,
}

impl StreamRateLimit {
    /// A limiter sharing `limiter`'s table with the UDP path.
    pub fn new(limiter: Arc<RateLimiter>, ban_seconds: u64) -> StreamRateLimit {
        StreamRateLimit { limiter, ban_seconds }
    }
}

#[async_trait::async_trait]
impl rsipstack::transaction::endpoint::TransportEventInspector for StreamRateLimit {
    async fn handle(
        &self,
        event: rsipstack::transport::TransportEvent,
    ) -> Option<rsipstack::transport::TransportEvent> {
        if let rsipstack::transport::TransportEvent::Incoming(rsipstack::sip::SipMessage::Request(_), conn, from) =
            &event
        {
            if conn.is_reliable() {
                if let Ok(addr) = from.get_socketaddr() {
                    if !admit(&self.limiter, addr.ip(), self.ban_seconds) {
                        return None;
                    }
                }
            }
        }
        Some(event)
    }
}
