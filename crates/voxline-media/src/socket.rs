//! A non-blocking UDP socket for RTP and RTCP that the media clock drains
//! once per frame, instead of a receive task per call: no reactor
//! registration, no wake-up per packet. The kernel stamps each datagram's
//! arrival (`SO_TIMESTAMPNS`), so the jitter estimate sees when a packet
//! really came, not when the clock got to it.

use crate::MediaError;
use nix::sys::socket::{recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage};
use nix::sys::time::TimeSpec;
use std::cell::RefCell;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Datagrams taken by one `try_recv_batch` call at most.
pub const BATCH: usize = 4;
/// Largest datagram kept whole (longer ones are truncated, and so invalid).
pub const MAX_DATAGRAM: usize = 1536;
/// Receive buffers for one batch.
pub type BatchBuffers = [[u8; MAX_DATAGRAM]; BATCH];

thread_local! {
    /// `recvmmsg` headers with room for a timestamp each, one set per thread
    /// (they hold raw pointers, so they cannot live in a session).
    static HEADERS: RefCell<MultiHeaders<SockaddrStorage>> =
        RefCell::new(MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))));
}

/// A datagram taken off a [`MediaSocket`].
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    /// Its length in the receive buffer.
    pub len: usize,
    /// Where it came from.
    pub from: SocketAddr,
    /// When the kernel received it.
    pub arrival: Instant,
}

/// A bound, non-blocking UDP socket with kernel receive timestamps.
#[derive(Debug)]
pub struct MediaSocket {
    socket: UdpSocket,
}

impl MediaSocket {
    /// Binds `addr` (non-blocking, receive timestamps on).
    pub fn bind(addr: SocketAddr) -> Result<MediaSocket, MediaError> {
        let io = |context: &str, source| MediaError::Io {
            context: format!("{context} {addr}"),
            source,
        };
        let socket = UdpSocket::bind(addr).map_err(|e| io("binding", e))?;
        socket.set_nonblocking(true).map_err(|e| io("configuring", e))?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)
            .map_err(|e| io("enabling receive timestamps on", e.into()))?;
        Ok(MediaSocket { socket })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends without waiting: a full socket buffer is an error, not a delay.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.socket.send_to(buf, to)
    }

    /// Takes every queued datagram (at most `max`, `BATCH` per system call)
    /// and hands each one's bytes and details to `f`.
    pub fn drain(
        &self,
        bufs: &mut BatchBuffers,
        max: usize,
        now: (Instant, SystemTime),
        mut f: impl FnMut(&[u8], &Datagram),
    ) {
        let mut out = [None; BATCH];
        for _ in 0..max.div_ceil(BATCH) {
            let n = self.try_recv_batch(bufs, &mut out, now).unwrap_or(0);
            for (buf, d) in bufs.iter().zip(&out).take(n) {
                if let Some(d) = d {
                    f(&buf[..d.len.min(MAX_DATAGRAM)], d);
                }
            }
            if n < BATCH {
                break;
            }
        }
    }

    /// Takes up to `BATCH` queued datagrams in one system call into `bufs`;
    /// returns how many, their details in `out`. Zero when none is queued.
    pub fn try_recv_batch(
        &self,
        bufs: &mut BatchBuffers,
        out: &mut [Option<Datagram>; BATCH],
        now: (Instant, SystemTime),
    ) -> std::io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        HEADERS.with(|h| {
            let Ok(mut headers) = h.try_borrow_mut() else {
                return Err(std::io::Error::other("receive headers busy"));
            };
            let mut iovs = bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
            let results = match recvmmsg(fd, &mut headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None) {
                Ok(r) => r,
                Err(nix::errno::Errno::EAGAIN) => return Ok(0),
                Err(e) => return Err(e.into()),
            };
            let (mut n, mut complete) = (0, true);
            for (slot, msg) in out.iter_mut().zip(results) {
                n += 1;
                let mut stamped = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmTimestampns(ts) = c {
                            stamped = Some(to_instant(ts, now));
                        }
                    }
                }
                let from = msg.address.as_ref().and_then(to_socket_addr);
                complete &= stamped.is_some() && from.is_some();
                *slot = from.map(|from| Datagram {
                    len: msg.bytes,
                    from,
                    arrival: stamped.unwrap_or(now.0),
                });
            }
            if !complete {
                // The kernel shrank a header's address or control length to
                // what that datagram had, and `recvmmsg` does not restore
                // them: start again from fresh headers.
                *headers = MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec)));
            }
            Ok(n)
        })
    }
}

fn to_socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Maps a wall-clock kernel timestamp onto the monotonic clock, through a
/// (monotonic, wall-clock) pair read together. The pair may be older than
/// the packet (read once for many sockets): then the packet came after it.
fn to_instant(ts: TimeSpec, (mono, wall): (Instant, SystemTime)) -> Instant {
    let stamped = UNIX_EPOCH + Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().clamp(0, 999_999_999) as u32);
    match wall.duration_since(stamped) {
        Ok(age) => mono.checked_sub(age).unwrap_or(mono),
        Err(e) => mono + e.duration(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One datagram off the socket, through `drain`.
    fn one(a: &MediaSocket, now: (Instant, SystemTime)) -> Option<(Vec<u8>, Datagram)> {
        let mut bufs = [[0u8; MAX_DATAGRAM]; BATCH];
        let mut got = None;
        a.drain(&mut bufs, 1, now, |data, d| got = Some((data.to_vec(), *d)));
        got
    }

    #[test]
    fn datagrams_carry_their_kernel_arrival_time() {
        let a = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let now = || (Instant::now(), SystemTime::now());
        assert!(one(&a, now()).is_none(), "nothing queued yet");
        b.send_to(b"hello", a.local_addr().unwrap()).unwrap();
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let (data, d) = one(&a, now()).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(d.from, b.local_addr().unwrap());
        // Read 30 ms later, but stamped when it arrived.
        let lag = d.arrival.saturating_duration_since(sent);
        assert!(lag < Duration::from_millis(15), "arrival stamped {lag:?} after sending");
        assert!(one(&a, now()).is_none());
        // A (monotonic, wall) pair read before the packet came.
        let before = now();
        std::thread::sleep(Duration::from_millis(10));
        b.send_to(b"late", a.local_addr().unwrap()).unwrap();
        let sent = Instant::now();
        let (_, d) = one(&a, before).unwrap();
        let off = if d.arrival > sent {
            d.arrival - sent
        } else {
            sent - d.arrival
        };
        assert!(off < Duration::from_millis(3), "arrival off by {off:?}");
    }

    #[test]
    fn a_batch_takes_every_queued_datagram_in_order_with_its_time() {
        let a = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bufs = [[0u8; MAX_DATAGRAM]; BATCH];
        let mut out = [None; BATCH];
        let now = || (Instant::now(), SystemTime::now());
        assert_eq!(a.try_recv_batch(&mut bufs, &mut out, now()).unwrap(), 0);
        let sent = Instant::now();
        for i in 0..6u8 {
            b.send_to(&[i; 10], a.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(a.try_recv_batch(&mut bufs, &mut out, now()).unwrap(), BATCH);
        for (i, d) in out.iter().enumerate() {
            let d = d.expect("an IP source");
            assert_eq!((d.len, bufs[i][0]), (10, i as u8));
            assert_eq!(d.from, b.local_addr().unwrap());
            assert!(d.arrival.saturating_duration_since(sent) < Duration::from_millis(10));
        }
        assert_eq!(a.try_recv_batch(&mut bufs, &mut out, now()).unwrap(), 2);
        assert_eq!(bufs[1][0], 5);
    }
}
