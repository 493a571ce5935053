//! `voxline bench media`: media capacity. Places N concurrent calls to a
//! voxline server (the playback route), sends 20 ms G.711 packets on each,
//! and measures what comes back: packets lost, the spacing of the server's
//! packets (its send-interval jitter, seen on loopback), and the server's CPU
//! per call. Prints one table row per N.

use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
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
        "{:>6} {:>9} {:>9} {:>8} {:>12} {:>12} {:>14}",
        "calls", "answered", "lost", "loss%", "jitter_p50", "jitter_p99", "cpu_per_call"
    );
    for &n in &args.calls {
        let stop = Arc::new(tokio::sync::Notify::new());
        let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        let stats: Vec<Arc<Mutex<CallStats>>> = (0..n).map(|_| Arc::default()).collect();
        for (i, st) in stats.iter().enumerate() {
            let endpoint = endpoint.clone();
            let target = args.target.clone();
            let stop = stop.clone();
            let measuring = measuring.clone();
            let st = st.clone();
            let bind = args.bind;
            tasks.push(tokio::spawn(async move {
                one_call(endpoint, target, bind, stop, measuring, st, i).await
            }));
            // Ramp up at ~250 calls/s.
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu0 = args.server_pid.and_then(cpu_ticks);
        let t0 = Instant::now();
        measuring.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        measuring.store(false, std::sync::atomic::Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu1 = args.server_pid.and_then(cpu_ticks);
        stop.notify_waiters();
        let mut answered = 0;
        for t in tasks {
            if let Ok(Ok(true)) = t.await {
                answered += 1;
            }
        }
        let (mut received, mut expected, mut devs) = (0u64, 0u64, Vec::new());
        for st in &stats {
            let s = st.lock().await;
            received += s.received;
            expected += s.expected;
            devs.extend_from_slice(&s.deviations_us);
        }
        devs.sort_unstable();
        let q = |p: f64| {
            devs.get(((devs.len() as f64 * p) as usize).min(devs.len().saturating_sub(1)))
                .copied()
        };
        let lost = expected.saturating_sub(received);
        let cpu = match (cpu0, cpu1) {
            (Some(a), Some(b)) if answered > 0 => {
                let hz = 100.0; // USER_HZ on Linux
                format!("{:.3}%", (b - a) as f64 / hz / elapsed * 100.0 / answered as f64)
            }
            _ => "-".into(),
        };
        println!(
            "{:>6} {:>9} {:>9} {:>7.3}% {:>10.2}ms {:>10.2}ms {:>14}",
            n,
            answered,
            lost,
            if expected > 0 {
                lost as f64 * 100.0 / expected as f64
            } else {
                0.0
            },
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

async fn one_call(
    endpoint: Arc<SipEndpoint>,
    target: String,
    bind: IpAddr,
    stop: Arc<tokio::sync::Notify>,
    measuring: Arc<std::sync::atomic::AtomicBool>,
    stats: Arc<Mutex<CallStats>>,
    index: usize,
) -> anyhow::Result<bool> {
    let socket = Arc::new(UdpSocket::bind(SocketAddr::new(bind, 0)).await.context("RTP socket")?);
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
            },
            |_, _| {},
        )
        .await?;
    let Ok(mut call) = result else {
        return Ok(false);
    };
    let remote = call.negotiated.remote_rtp;
    let stopped = stop.notified();
    tokio::pin!(stopped);
    let sender = {
        let socket = socket.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let ssrc = 0x1000_0000 + index as u32;
            let silence = bytes::Bytes::from_static(&[0xFF; 160]);
            for seq in 0u16.. {
                tick.tick().await;
                if let Some(pkt) = voxline_media::rtp_packet(0, false, seq, u32::from(seq) * 160, ssrc, silence.clone())
                {
                    let _ = socket.send_to(&pkt, remote).await;
                }
            }
        })
    };
    let mut buf = [0u8; 2048];
    let mut last: Option<(Instant, u16)> = None;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            r = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                if n < 12 { continue; }
                let now = Instant::now();
                let seq = u16::from_be_bytes([buf[2], buf[3]]);
                if measuring.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut s = stats.lock().await;
                    s.received += 1;
                    match last {
                        Some((t, prev)) => {
                            let gap = seq.wrapping_sub(prev);
                            if gap > 0 && gap < 1000 {
                                s.expected += u64::from(gap);
                                if gap == 1 {
                                    let dev = (now.duration_since(t).as_micros() as i64 - 20_000).unsigned_abs();
                                    s.deviations_us.push(dev.min(u64::from(u32::MAX)) as u32);
                                }
                            }
                        }
                        None => s.expected += 1,
                    }
                }
                last = Some((now, seq));
            }
        }
    }
    sender.abort();
    call.hangup().await.ok();
    Ok(true)
}
