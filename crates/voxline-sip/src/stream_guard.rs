//! voxline's own accept loops for the TCP and TLS listeners, in front of
//! rsipstack's connection handling (decision 0067).
//!
//! rsipstack accepts every connection, gives it ~128 KiB of buffers at once
//! and keeps it until 300 s of silence; its TLS handshake has no deadline.
//! Here a connection is first checked against the per-source and node caps
//! ([`ConnectionTable`]), then must send its first byte (TCP) or finish its
//! handshake (TLS) within the setup time, and only then becomes a
//! connection of the stack. A source whose connections are refused or time
//! out is counted by the rate limiter like a request, so a flood ends in a
//! ban.

use crate::security::{source_key, RateLimiter};
use crate::udp_guard::admit;
use ipnet::IpNet;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Limits on stream (TCP, TLS) connections.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Connections one source may hold (exempt sources: no cap of their own).
    pub per_source: u32,
    /// Connections the node holds in all.
    pub total: u32,
    /// Time to the first byte (TCP) or the end of the handshake (TLS).
    pub setup: Duration,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source holds its share.
    SourceFull,
    /// The node holds its share.
    NodeFull,
}

#[derive(Debug, Default)]
struct Held {
    per_source: HashMap<IpAddr, u32>,
    total: u32,
}

/// Figures about stream connections since start (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connections held now (set up or being set up).
    pub held: u32,
    /// Connections refused at accept: over a cap.
    pub refused: u64,
    /// Connections closed because the first byte / handshake did not come in time.
    pub setup_timeouts: u64,
    /// TLS handshakes that failed.
    pub handshake_failures: u64,
}

/// Counts the stream connections held, per source and in all.
#[derive(Debug)]
pub struct ConnectionTable {
    limits: StreamLimits,
    exempt: Vec<IpNet>,
    held: Mutex<Held>,
    refused: AtomicU64,
    setup_timeouts: AtomicU64,
    handshake_failures: AtomicU64,
}

/// One held connection's place in the table, given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    table: Arc<ConnectionTable>,
    key: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.table.held.lock() {
            held.total = held.total.saturating_sub(1);
            if let Some(key) = self.key {
                if let Some(n) = held.per_source.get_mut(&key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        held.per_source.remove(&key);
                    }
                }
            }
        }
    }
}

impl ConnectionTable {
    /// A table enforcing `limits`; `exempt` sources have no per-source cap.
    pub fn new(limits: StreamLimits, exempt: Vec<IpNet>) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable {
            limits,
            exempt,
            held: Mutex::new(Held::default()),
            refused: AtomicU64::new(0),
            setup_timeouts: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
        })
    }

    /// Takes a place for a connection from `ip`, or says which cap is full.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let ip = crate::security::canonical(ip);
        let key = (!self.exempt.iter().any(|n| n.contains(&ip))).then(|| source_key(ip));
        let Ok(mut held) = self.held.lock() else {
            return Err(Refusal::NodeFull);
        };
        let refusal = if held.total >= self.limits.total {
            Some(Refusal::NodeFull)
        } else if key.is_some_and(|k| held.per_source.get(&k).copied().unwrap_or(0) >= self.limits.per_source) {
            Some(Refusal::SourceFull)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(r);
        }
        held.total += 1;
        if let Some(k) = key {
            *held.per_source.entry(k).or_insert(0) += 1;
        }
        Ok(ConnectionSlot {
            table: self.clone(),
            key,
        })
    }

    /// Figures so far.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            held: self.held.lock().map(|h| h.total).unwrap_or(0),
            refused: self.refused.load(Ordering::Relaxed),
            setup_timeouts: self.setup_timeouts.load(Ordering::Relaxed),
            handshake_failures: self.handshake_failures.load(Ordering::Relaxed),
        }
    }
}

/// What an accept loop hands its connections to.
#[derive(Clone)]
pub struct StreamAcceptor {
    /// Where set-up connections go (the stack's transport layer).
    pub stack: Arc<rsipstack::transaction::endpoint::EndpointInner>,
    /// The per-source limiter shared with the UDP path.
    pub limiter: Arc<RateLimiter>,
    /// The caps.
    pub table: Arc<ConnectionTable>,
    /// Ban length, for the log.
    pub ban_seconds: u64,
    /// Ends the loop and every connection's wait.
    pub cancel: CancellationToken,
}

/// How connections of one listener are set up.
#[derive(Clone)]
pub enum StreamKind {
    /// Plain TCP: wait for the first byte.
    Tcp,
    /// TLS: finish the handshake.
    Tls(tokio_rustls::TlsAcceptor),
}

impl StreamAcceptor {
    /// Accepts on `listener` until cancelled; `local` is the address the
    /// stack advertises for it.
    pub fn spawn(&self, listener: TcpListener, local: SipAddr, kind: StreamKind) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = this.cancel.cancelled() => break,
                    a = listener.accept() => a,
                };
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off briefly
                        // instead of spinning on the error.
                        warn!(error = %e, listener = %local, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                this.take(stream, remote, &local, &kind);
            }
            debug!(listener = %local, "stream listener stopped");
        });
    }

    /// Checks one accepted connection and sets it up in a task of its own.
    fn take(&self, stream: TcpStream, remote: SocketAddr, local: &SipAddr, kind: &StreamKind) {
        let ip = remote.ip();
        if self.limiter.is_banned(ip, Instant::now()) {
            return;
        }
        let slot = match self.table.try_take(ip) {
            Ok(slot) => slot,
            Err(refusal) => {
                debug!(source = %remote, ?refusal, "stream connection refused");
                admit(&self.limiter, ip, self.ban_seconds);
                return;
            }
        };
        let this = self.clone();
        let local = local.clone();
        let kind = kind.clone();
        tokio::spawn(async move {
            let token = this.cancel.child_token();
            let connection = tokio::select! {
                _ = this.cancel.cancelled() => return,
                c = this.set_up(stream, remote, local, kind, token.clone()) => c,
            };
            let Some(connection) = connection else {
                return;
            };
            this.stack.transport_layer.add_connection(connection);
            // The stack cancels the connection's token when it retires it
            // (closed, idle, failed): then its place is free again.
            token.cancelled().await;
            drop(slot);
        });
    }

    async fn set_up(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        local: SipAddr,
        kind: StreamKind,
        token: CancellationToken,
    ) -> Option<SipConnection> {
        let setup = self.table.limits.setup;
        let timed_out = |what: &str| {
            self.table.setup_timeouts.fetch_add(1, Ordering::Relaxed);
            debug!(source = %remote, what, "stream connection closed: nothing in time");
            admit(&self.limiter, remote.ip(), self.ban_seconds);
        };
        match kind {
            StreamKind::Tcp => {
                // `peek` waits for a byte (or the end) without taking it;
                // `readable()` alone may wake early on a fresh socket.
                let mut first = [0u8; 1];
                if tokio::time::timeout(setup, stream.peek(&mut first)).await.is_err() {
                    timed_out("first byte");
                    return None;
                }
                match TcpConnection::from_stream(stream, local, Some(token)) {
                    Ok(c) => Some(SipConnection::Tcp(c)),
                    Err(e) => {
                        debug!(source = %remote, error = %e, "tcp connection lost at set-up");
                        None
                    }
                }
            }
            StreamKind::Tls(acceptor) => {
                let tls = match tokio::time::timeout(setup, acceptor.accept(stream)).await {
                    Err(_) => {
                        timed_out("tls handshake");
                        return None;
                    }
                    Ok(Err(e)) => {
                        self.table.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        debug!(source = %remote, error = %e, "tls handshake failed");
                        admit(&self.limiter, remote.ip(), self.ban_seconds);
                        return None;
                    }
                    Ok(Ok(tls)) => tls,
                };
                let remote_addr = SipAddr {
                    r#type: Some(rsipstack::sip::transport::Transport::Tls),
                    addr: remote.into(),
                };
                match TlsConnection::from_server_stream(tls, local, remote_addr, Some(token)).await {
                    Ok(c) => Some(SipConnection::Tls(c)),
                    Err(e) => {
                        debug!(source = %remote, error = %e, "tls connection lost at set-up");
                        None
                    }
                }
            }
        }
    }
}

/// Binds a listening socket for a stream listener (SO_REUSEADDR, so a
/// restart does not wait out TIME_WAIT).
pub fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(per_source: u32, total: u32, exempt: &[&str]) -> Arc<ConnectionTable> {
        ConnectionTable::new(
            StreamLimits {
                per_source,
                total,
                setup: Duration::from_secs(1),
            },
            exempt.iter().map(|n| n.parse().expect("net")).collect(),
        )
    }

    #[test]
    fn each_source_gets_its_share_and_gives_it_back() {
        let t = table(2, 10, &[]);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let s1 = t.try_take(a).expect("first");
        let _s2 = t.try_take(a).expect("second");
        assert_eq!(t.try_take(a).err(), Some(Refusal::SourceFull));
        // The same source written as IPv4-mapped IPv6 is the same source.
        assert_eq!(
            t.try_take("::ffff:192.0.2.1".parse().expect("ip")).err(),
            Some(Refusal::SourceFull)
        );
        let _s3 = t.try_take(b).expect("another source");
        drop(s1);
        let _s4 = t.try_take(a).expect("a place came free");
        assert_eq!(t.stats().held, 3);
        assert_eq!(t.stats().refused, 2);
    }

    #[test]
    fn ipv6_sources_share_their_64() {
        let t = table(1, 10, &[]);
        let _s = t.try_take("2001:db8:1:2::1".parse().expect("ip")).expect("first");
        assert_eq!(
            t.try_take("2001:db8:1:2:ffff::9".parse().expect("ip")).err(),
            Some(Refusal::SourceFull)
        );
        let _o = t.try_take("2001:db8:1:3::1".parse().expect("ip")).expect("another /64");
    }

    #[test]
    fn the_node_cap_holds_for_exempt_sources_too() {
        let t = table(1, 3, &["198.51.100.0/24"]);
        let trunk: IpAddr = "198.51.100.7".parse().expect("ip");
        let held: Vec<_> = (0..3).map(|_| t.try_take(trunk).expect("exempt: no own cap")).collect();
        assert_eq!(t.try_take(trunk).err(), Some(Refusal::NodeFull));
        assert_eq!(
            t.try_take("192.0.2.1".parse().expect("ip")).err(),
            Some(Refusal::NodeFull)
        );
        drop(held);
        assert_eq!(t.stats().held, 0);
        let _s = t.try_take("192.0.2.1".parse().expect("ip")).expect("free again");
    }
}
