//! `voxline call`: place one call (a test softphone, and the outbound
//! primitive); with `--agent ROUTE`, an agent talks on it (`call_agent`);
//! with `--after-quiet-ms`, its lines take turns with the far end (`call_turns`).

use crate::cli::call_turns::{Turn, TurnLine, TurnStep, Turns, When};
use crate::config::Config;
use crate::handlers::agent_route::CallOut;
use crate::leg::{rtp_target, RunningMedia};
use crate::records::{call_end, new_call_id, new_record_id, OutboundStart, Records};
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use voxline_media::{CallRecorder, MediaEvent, MediaPort, PortInput, RtpSession};
use voxline_sip::config::ListenerConfig;
use voxline_sip::outbound::PlaceCall;
use voxline_sip::{CallEvent, EndReason, Party, SipConfig, SipEndpoint, SipEndpointOptions};
use voxline_store::CallStore;

/// Arguments of `voxline call`.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// Who to call: `sip:user@host[:port]`, or a number with `--trunk`.
    target: String,
    /// From URI (default: the trunk's caller-ID, else sip:voxline@<local address>).
    #[arg(long)]
    from: Option<String>,
    /// Send the call through this trunk of the configuration.
    #[arg(long)]
    trunk: Option<String>,
    /// Let this agent route of the configuration talk on the call (it speaks
    /// first once answered); the call is recorded in the store.
    #[arg(long, conflicts_with_all = ["play", "record", "dtmf", "max_seconds"])]
    agent: Option<String>,
    /// A contact variable for `--agent` (`NAME=VALUE`, repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "agent", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// WAV to play once answered (16-bit, 8/16/22.05/24/48 kHz); repeat it
    /// for several lines (back to back, or one per turn with `--after-quiet-ms`,
    /// where `dtmf:DIGITS` keys the digits as a turn and `over:MS:LINE` starts
    /// LINE MS after the far end starts speaking, talking over it).
    #[arg(long)]
    play: Vec<PathBuf>,
    /// Take turns: each `--play` line starts once the far end has spoken and
    /// then been quiet this long, ms (a test caller that waits like a person).
    #[arg(long, requires = "play")]
    after_quiet_ms: Option<u64>,
    /// With `--after-quiet-ms`: hang up once the far end has answered the
    /// last line and gone quiet.
    #[arg(long, requires = "after_quiet_ms")]
    hangup_after_reply: bool,
    /// The far end's silence after the last answer that ends the call, ms
    /// (default: `--after-quiet-ms`); longer to hear what it says after a wait.
    #[arg(long, requires = "hangup_after_reply")]
    hangup_quiet_ms: Option<u64>,
    /// Write what is heard (left) and sent (right) to this WAV.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Send these DTMF digits (RFC 4733, 100 ms each) after the answer.
    #[arg(long)]
    dtmf: Option<String>,
    /// When to send `--dtmf`, ms after the answer (e.g. after the far end's prompt).
    #[arg(long, default_value_t = 500)]
    dtmf_after_ms: u64,
    /// Hang up after this many seconds of talk.
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
    /// Send CANCEL after this many seconds of ringing.
    #[arg(long)]
    ring_timeout: Option<u64>,
    /// Local IP for SIP and RTP (default: the first listener's address in the config, else 127.0.0.1).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Configuration file (trunks, codecs, call store); used when it exists.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
}

/// One `--play` value: a WAV; taking turns, also `dtmf:DIGITS` (keys) and
/// `over:MS:LINE` (the line MS after the far end starts speaking).
fn turn_line(value: &Path, turns: bool) -> anyhow::Result<Turn> {
    let text = value.to_string_lossy();
    if turns {
        if let Some(rest) = text.strip_prefix("over:") {
            let (ms, line) = rest
                .split_once(':')
                .with_context(|| format!("--play {text}: over:MS:LINE expected"))?;
            let ms: u64 = ms.parse().with_context(|| format!("--play {text}: {ms:?} is not ms"))?;
            let inner = turn_line(Path::new(line), true)?;
            return Ok(Turn {
                when: When::IntoSpeech(Duration::from_millis(ms)),
                what: inner.what,
            });
        }
        if let Some(digits) = text.strip_prefix("dtmf:") {
            return Ok(Turn {
                when: When::AfterQuiet,
                what: TurnLine::Keys(digits.to_string()),
            });
        }
    }
    let prompt = voxline_media::load_wav_mono(value).with_context(|| format!("--play {text}"))?;
    Ok(Turn {
        when: When::AfterQuiet,
        what: TurnLine::Audio(prompt),
    })
}

/// `NAME=VALUE` of `--var`.
fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// Places the call; exit code 0 when it was answered, 1 when not.
pub async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let cfg = if args.config.exists() {
        Some(Config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?)
    } else if args.trunk.is_some() || args.agent.is_some() {
        anyhow::bail!(
            "--trunk and --agent need a configuration file ({} not found)",
            args.config.display()
        );
    } else {
        None
    };
    let ip = args
        .bind
        .or_else(|| cfg.as_ref().and_then(|c| c.sip.listeners.first()).map(|l| l.bind.ip()))
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let bind = SocketAddr::new(ip, 0);
    let sip: SipConfig = match &cfg {
        Some(c) => SipConfig {
            listeners: vec![ListenerConfig::udp(bind)],
            ..c.sip.clone()
        },
        None => SipConfig::client(bind),
    };
    let endpoint = SipEndpoint::start(
        SipEndpointOptions {
            sip,
            trunks: cfg.as_ref().map(|c| c.trunks.clone()).unwrap_or_default(),
            routes: Vec::new(),
            users: Vec::new(),
            security: cfg.as_ref().map(|c| c.security.clone()).unwrap_or_default(),
            accept_inbound: false,
        },
        None,
    )
    .await?;
    if let (Some(route), Some(cfg)) = (&args.agent, &cfg) {
        let out = CallOut {
            target: args.target.clone(),
            from: args.from.clone(),
            trunk: args.trunk.clone(),
            ring_timeout: args.ring_timeout.map(Duration::from_secs),
            variables: args.vars.iter().cloned().collect(),
            call_id: None,
            answering: None,
            pace: None,
        };
        return crate::cli::call_agent::run(cfg, Arc::new(endpoint), route, out).await;
    }

    let records = match &cfg {
        Some(c) => Some(Records::new(
            CallStore::open(&c.store.url, &c.node.name).await.context("store.url")?,
            None,
            None,
            None,
        )?),
        None => None,
    };
    let (port_min, port_max) = cfg
        .as_ref()
        .map(|c| (c.media.rtp_port_min, c.media.rtp_port_max))
        .unwrap_or((40000, 49999));
    let rtp = RtpSession::bind(ip, port_min, port_max).await?;
    let recorder = match &args.record {
        Some(p) => Some(CallRecorder::create(p)?),
        None => None,
    };
    let lines = args
        .play
        .iter()
        .map(|p| turn_line(p, args.after_quiet_ms.is_some()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let media = RunningMedia::start(&rtp, &voxline_media::MediaClock::start(1), recorder);

    let call_id = new_call_id();
    let record_id = new_record_id();
    let from_text = args.from.clone().unwrap_or_default();
    if let Some(r) = &records {
        r.outbound_started(&OutboundStart {
            id: &record_id,
            call_id: &call_id,
            from: &from_text,
            to: &args.target,
            trunk: args.trunk.as_deref(),
            route: None,
            handler: "call",
        })
        .await;
    }
    let started = Instant::now();
    let progress_rtp = rtp.clone();
    let result = endpoint
        .place_call(
            PlaceCall {
                target: args.target.clone(),
                from: args.from.clone(),
                trunk: args.trunk.clone(),
                media: rtp.local_addr(),
                ring_timeout: args.ring_timeout.map(Duration::from_secs),
                call_id: Some(call_id.clone()),
                abandon: None,
            },
            move |status, early| {
                println!(
                    "progress: {status}{}",
                    if early.is_some() { " (early media)" } else { "" }
                );
                if let Some(n) = early {
                    progress_rtp.set_target(rtp_target(n));
                }
            },
        )
        .await?;

    let mut call = match result {
        Ok(c) => c,
        Err(failure) => {
            println!("not answered: {failure} call-id={call_id}");
            media.stop().await;
            if let Some(r) = &records {
                let end = EndReason {
                    by: Party::Remote,
                    reason: failure.reason.clone(),
                    status: failure.status,
                };
                r.ended(&record_id, &call_end(false, &end, false, None, None)).await;
                r.close().await;
            }
            endpoint.shutdown();
            return Ok(ExitCode::from(1));
        }
    };
    let answered_at = Instant::now();
    println!(
        "answered: codec={} after {} ms call-id={}{}",
        call.negotiated.codec.name(),
        answered_at.duration_since(started).as_millis(),
        call_id,
        if call.early_media { " (had early media)" } else { "" }
    );
    rtp.set_target(rtp_target(&call.negotiated));
    if let Some(r) = &records {
        r.answered(
            &record_id,
            call.negotiated.codec.name(),
            call.negotiated.srtp_suite(),
            args.record.as_ref().map(|p| p.display().to_string()).as_deref(),
        )
        .await;
    }
    // Taking turns, the far end's audio is listened to (its events too).
    let (mut port, mut turns) = match args.after_quiet_ms {
        Some(ms) => {
            let port = match MediaPort::open(&rtp) {
                Ok(p) => Some(p),
                Err(e) => {
                    // Without its audio the turns cannot be taken: none are.
                    eprintln!("the far end cannot be listened to: {e}");
                    None
                }
            };
            let turns = Turns::new(
                lines,
                Duration::from_millis(ms),
                args.hangup_after_reply
                    .then(|| Duration::from_millis(args.hangup_quiet_ms.unwrap_or(ms))),
            );
            let turns = port.is_some().then_some(turns);
            (port, turns)
        }
        None => {
            for line in &lines {
                if let TurnLine::Audio(prompt) = &line.what {
                    rtp.play_prompt(prompt)?;
                }
            }
            (None, None)
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut dtmf = args.dtmf.clone();
    let dtmf_at = tokio::time::sleep(Duration::from_millis(args.dtmf_after_ms));
    tokio::pin!(dtmf_at);

    let deadline = tokio::time::sleep(Duration::from_secs(args.max_seconds));
    tokio::pin!(deadline);
    // RFC 4733 events from the far end (SIP INFO digits come as call events).
    let mut media_events = rtp.take_events();
    let end = loop {
        tokio::select! {
            Some(ev) = async { match media_events.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                if let MediaEvent::Dtmf(d) = ev {
                    println!("dtmf: {} (rtp event, {} ms)", d.digit, d.duration_ms);
                }
            }
            input = async { match port.as_mut() { Some(p) => p.recv().await, None => std::future::pending().await } } => {
                match input {
                    Some(PortInput::Frame(f)) => {
                        if let Some(t) = turns.as_mut() {
                            t.hear(&f, Instant::now());
                        }
                    }
                    Some(PortInput::Event(MediaEvent::Dtmf(d))) => {
                        println!("dtmf: {} (rtp event, {} ms)", d.digit, d.duration_ms);
                    }
                    Some(PortInput::Event(_)) => {}
                    None => port = None,
                }
            }
            _ = tick.tick(), if turns.is_some() => {
                let step = turns.as_mut().and_then(|t| t.next(rtp.queued_samples(), Instant::now()));
                match step {
                    Some(TurnStep::Say { n, line: TurnLine::Audio(prompt) }) => match rtp.play_prompt(&prompt) {
                        Ok(()) => println!("line {n} said at {:.1} s", answered_at.elapsed().as_secs_f64()),
                        Err(e) => println!("line {n} not said: {e}"),
                    },
                    Some(TurnStep::Say { n, line: TurnLine::Keys(digits) }) => match rtp.send_dtmf(&digits, 100) {
                        Ok(()) => println!("line {n} keyed at {:.1} s: {digits}", answered_at.elapsed().as_secs_f64()),
                        Err(e) => println!("line {n} not keyed: {e}"),
                    },
                    Some(TurnStep::HangUp) => {
                        call.hangup().await.ok();
                        break EndReason { by: Party::Local, reason: "script_done".into(), status: None };
                    }
                    None => {}
                }
            }
            _ = &mut dtmf_at, if dtmf.is_some() => {
                if let Some(digits) = dtmf.take() {
                    rtp.send_dtmf(&digits, 100)?;
                    println!("dtmf sent: {digits}");
                }
            }
            ev = call.next_event() => match ev {
                CallEvent::Ended(e) => break e,
                CallEvent::Dtmf { digit, .. } => println!("dtmf: {digit}"),
                CallEvent::MediaChanged(_) => {}
            },
            _ = &mut deadline => {
                call.hangup().await.ok();
                break EndReason { by: Party::Local, reason: "max_duration".into(), status: None };
            }
            _ = tokio::signal::ctrl_c() => {
                call.hangup().await.ok();
                break EndReason { by: Party::Local, reason: "interrupted".into(), status: None };
            }
        }
    };
    media.stop().await;
    let stats = rtp.stats();
    let (sent, received) = (
        stats.packets_sent.load(Ordering::Relaxed),
        stats.packets_received.load(Ordering::Relaxed),
    );
    println!(
        "ended: by={} reason={} talk={:.1}s rtp_sent={sent} rtp_received={received}",
        end.by.outbound_name(),
        end.reason,
        answered_at.elapsed().as_secs_f64()
    );
    if let Some(r) = &records {
        r.ended(&record_id, &call_end(true, &end, false, Some(&stats), None))
            .await;
        r.close().await;
    }
    // Let the BYE's transaction finish before the endpoint closes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    endpoint.shutdown();
    Ok(ExitCode::SUCCESS)
}
