//! `voxline bench media`: media capacity. Places N concurrent calls to a
//! voxline server (the playback route), sends 20 ms G.711 packets on each
//! from one paced loop, and measures what comes back: packets lost
//! (sequence gaps), frames never sent (fewer packets than 20 ms periods: an
//! overloaded clock), the spacing of the server's packets by their kernel
//! arrival time (its send-interval jitter, seen on loopback), and the
//! server's CPU per call. Prints one table row per N.

use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use voxline_media::socket::MediaSocket;
use voxline_sip::outbound::PlaceCall;
use voxline_sip::{SecurityConfig, SipConfig, SipEndpoint, SipEndpointOptions};

/// Arguments of `voxline bench media`.
#[derive(clap::Args, Debug)]
pub struct BenchMediaArgs {
    /// Where to call (a playback route with max_seconds above the test length).
    #[arg(long, default_value = "sip:demo@127.0.0.1:5060")]
    target: String,
    /// Concurrent calls per step, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,250,500,1000")]
    calls: Vec<usize>,
    /// Seconds of measurement per step (after all calls are up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server's process id, to report its CPU per call.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Local IP for SIP and RTP.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

#[derive(Default)]
struct CallStats {
    received: u64,
    expected: u64,
    /// |interval − 20 ms| in microseconds, per received packet.
    deviations_us: Vec<u32>,
    /// Arrival and sequence number of the previous packet.
    last: Option<(Instant, u16)>,
    /// Arrival of the first packet measured.
    first: Option<Instant>,
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Runs the benchmark.
pub async fn run(args: BenchMediaArgs) -> anyhow::Result<()> {
    let endpoint = SipEndpoint::start(
        SipEndpointOptions {
            sip: SipConfig {
                user_agent: "voxline-bench".into(),
                codecs: vec!["PCMU".into()],
                ring_timeout_secs: 10,
                ..SipConfig::client(SocketAddr::new(args.bind, 0))
            },
            trunks: Vec::new(),
            routes: Vec::new(),
            users: Vec::new(),
            security: SecurityConfig::default(),
            accept_inbound: false,
        },
        None,
    )
    .await?;
    let endpoint = Arc::new(endpoint);
    println!(
        "{:>6} {:>9} {:>10} {:>9} {:>8} {:>9} {:>12} {:>12} {:>14}",
        "calls", "answered", "received", "lost", "loss%", "unsent", "jitter_p50", "jitter_p99", "cpu_per_call"
    );
    for &n in &args.calls {
        // Set the calls up at ~250 calls/s.
        let mut setups = Vec::new();
        for _ in 0..n {
            let endpoint = endpoint.clone();
            let target = args.target.clone();
            let bind = args.bind;
            setups.push(tokio::spawn(async move { place(endpoint, target, bind).await }));
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        let mut calls = Vec::new();
        for s in setups {
            if let Ok(Ok(Some(c))) = s.await {
                calls.push(c);
            }
        }
        let answered = calls.len();
        // One loop drives every call's media: a packet per call every 20 ms
        // (absolute deadlines), and a drain of what came back, timed by the
        // kernel's receive timestamps so this loop's own delays don't count.
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let silence = bytes::Bytes::from_static(&[0xFF; 160]);
        let mut bufs = [[0u8; voxline_media::socket::MAX_DATAGRAM]; voxline_media::socket::BATCH];
        let warmup = Instant::now() + Duration::from_secs(2);
        let mut measure_from: Option<(Instant, Option<u64>)> = None;
        let end_at = warmup + Duration::from_secs(args.seconds);
        let mut seq = 0u16;
        loop {
            tick.tick().await;
            let now = Instant::now();
            if measure_from.is_none() && now >= warmup {
                measure_from = Some((now, args.server_pid.and_then(cpu_ticks)));
            }
            if now >= end_at {
                break;
            }
            let wall = (Instant::now(), SystemTime::now());
            for (i, c) in calls.iter_mut().enumerate() {
                let ssrc = 0x1000_0000 + i as u32;
                if let Some(pkt) = voxline_media::rtp_packet(0, false, seq, u32::from(seq) * 160, ssrc, silence.clone())
                {
                    let _ = c.socket.send_to(&pkt, c.remote);
                }
                let stats = &mut c.stats;
                c.socket.drain(&mut bufs, 64, wall, |data, d| {
                    // The server's RTCP goes to our port + 1, which may be another
                    // call's RTP socket here: count RTP only.
                    if data.len() < 12 || voxline_media::rtcp_report::is_rtcp(data) || measure_from.is_none() {
                        return;
                    }
                    stats.observe(u16::from_be_bytes([data[2], data[3]]), d.arrival);
                });
            }
            seq = seq.wrapping_add(1);
        }
        let elapsed = measure_from.map(|(t, _)| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        let cpu0 = measure_from.and_then(|(_, c)| c);
        let cpu1 = args.server_pid.and_then(cpu_ticks);
        let (mut received, mut expected, mut due, mut devs) = (0u64, 0u64, 0u64, Vec::new());
        for c in &calls {
            received += c.stats.received;
            expected += c.stats.expected;
            due += c.stats.due_by_time();
            devs.extend_from_slice(&c.stats.deviations_us);
        }
        for mut c in calls {
            c.call.hangup().await.ok();
        }
        devs.sort_unstable();
        let q = |p: f64| {
            devs.get(((devs.len() as f64 * p) as usize).min(devs.len().saturating_sub(1)))
                .copied()
        };
        let lost = expected.saturating_sub(received);
        let missing = due.saturating_sub(received);
        let cpu = match (cpu0, cpu1) {
            (Some(a), Some(b)) if answered > 0 && elapsed > 0.0 => {
                let hz = 100.0; // USER_HZ on Linux
                format!("{:.3}%", (b - a) as f64 / hz / elapsed * 100.0 / answered as f64)
            }
            _ => "-".into(),
        };
        println!(
            "{:>6} {:>9} {:>10} {:>9} {:>7.3}% {:>9} {:>10.2}ms {:>10.2}ms {:>14}",
            n,
            answered,
            received,
            lost,
            if expected > 0 {
                lost as f64 * 100.0 / expected as f64
            } else {
                0.0
            },
            missing,
            q(0.5).unwrap_or(0) as f64 / 1000.0,
            q(0.99).unwrap_or(0) as f64 / 1000.0,
            cpu
        );
        // Let the BYEs finish before the next step.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    endpoint.shutdown();
    Ok(())
}

/// One answered benchmark call.
struct BenchCall {
    call: voxline_sip::outbound::OutboundCall,
    socket: MediaSocket,
    remote: SocketAddr,
    stats: CallStats,
}

impl CallStats {
    /// Counts one packet from the server and its spacing from the previous one.
    fn observe(&mut self, seq: u16, arrival: Instant) {
        self.received += 1;
        self.first.get_or_insert(arrival);
        match self.last {
            Some((t, prev)) => {
                let gap = seq.wrapping_sub(prev);
                if gap > 0 && gap < 1000 {
                    self.expected += u64::from(gap);
                    if gap == 1 {
                        let dev = (arrival.saturating_duration_since(t).as_micros() as i64 - 20_000).unsigned_abs();
                        self.deviations_us.push(dev.min(u64::from(u32::MAX)) as u32);
                    }
                }
            }
            None => self.expected += 1,
        }
        self.last = Some((arrival, seq));
    }

    /// Frames the server should have sent between the first and the last
    /// packet measured, at one per 20 ms (its pacing, whatever the sequence
    /// numbers say: an overloaded clock skips frames without a gap).
    fn due_by_time(&self) -> u64 {
        match (self.first, self.last) {
            (Some(a), Some((b, _))) => (b.saturating_duration_since(a).as_secs_f64() / 0.02).round() as u64 + 1,
            _ => 0,
        }
    }
}

async fn place(endpoint: Arc<SipEndpoint>, target: String, bind: IpAddr) -> anyhow::Result<Option<BenchCall>> {
    let socket = MediaSocket::bind(SocketAddr::new(bind, 0)).context("RTP socket")?;
    let media = socket.local_addr()?;
    let result = endpoint
        .place_call(
            PlaceCall {
                target,
                from: None,
                trunk: None,
                media,
                ring_timeout: Some(Duration::from_secs(10)),
                call_id: None,
                abandon: None,
            },
            |_, _| {},
        )
        .await?;
    Ok(result.ok().map(|call| BenchCall {
        remote: call.negotiated.remote_rtp,
        call,
        socket,
        stats: CallStats::default(),
    }))
}
