//! `voxline campaign start|pause|resume|stop|status|export`: a campaign's
//! life in the store, which every node of `voxline serve` reads (a running
//! campaign is dialled by the nodes that serve its route; a pause takes
//! effect within half a second), where it stands, and its results.

use crate::cli::campaign::{campaign, open, ExportArgs, NameArgs, StatusArgs};
use crate::ops::campaigns::{self as ops, Move};
use crate::ops::OpError;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use voxline_campaign::dialer::state;
use voxline_store::{CallStore, CampaignRow};

/// Starts a campaign once everything it needs is there: its settings, an
/// agent route, a trunk that can dial out, contacts.
pub async fn start(a: NameArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&a.config).await?;
    let (row, settings) = campaign(&store, &a.name).await?;
    ops::start(&cfg, &store, &row, &settings).await.map_err(|e| match e {
        OpError::Invalid { field, message } if field == "trunk" => {
            anyhow::anyhow!("trunk: {message} (create it with --trunk NAME)")
        }
        other => other.into(),
    })?;
    println!(
        "campaign {} running: the voxline serve nodes with route {} dial it (follow it: voxline campaign status {} --watch)",
        row.name, row.route, row.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Pauses a running campaign.
pub async fn pause(a: NameArgs) -> anyhow::Result<ExitCode> {
    change(a, Move::Pause, "paused: no new calls; calls up go on").await
}

/// Resumes a paused campaign.
pub async fn resume(a: NameArgs) -> anyhow::Result<ExitCode> {
    change(a, Move::Resume, "running again").await
}

/// Stops a campaign for good.
pub async fn stop(a: NameArgs) -> anyhow::Result<ExitCode> {
    change(a, Move::Stop, "stopped: no new calls; calls up go on").await
}

async fn change(a: NameArgs, m: Move, done: &str) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    ops::change(&store, &row, m).await?;
    println!("campaign {} {done}", row.name);
    Ok(ExitCode::SUCCESS)
}

/// Where the campaign stands, once or (`--watch`) live until it is no
/// longer running.
pub async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    if a.watch {
        let tty = std::io::stdout().is_terminal();
        let mut last = String::new();
        loop {
            let now = store
                .campaign_by_id(&row.id)
                .await?
                .context("the campaign was removed")?;
            let line = status_line(&store, &now).await?;
            if line != last {
                if tty {
                    print!("\r\x1b[2K{line}");
                    std::io::stdout().flush().ok();
                } else {
                    println!("{line}");
                }
                last = line;
            }
            if now.state != state::RUNNING {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if tty {
            println!();
        }
    }
    let now = store
        .campaign_by_id(&row.id)
        .await?
        .context("the campaign was removed")?;
    let counts = store.contact_counts(&now.id).await?;
    let total: i64 = counts.by_state.iter().map(|(_, n)| n).sum();
    println!(
        "campaign {} on route {}: {}, {total} contacts",
        now.name, now.route, now.state
    );
    for (state, n) in &counts.by_state {
        println!("  {state}: {n}");
    }
    for (disposition, n) in &counts.by_disposition {
        println!("  outcome {disposition}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One line: state, contacts done of all, calls under way, the rate of the
/// last minute and the time left at that rate.
async fn status_line(store: &CallStore, c: &CampaignRow) -> anyhow::Result<String> {
    let p = ops::progress(store, c).await?;
    let eta = p
        .eta_seconds
        .map(|s| format!(", {} left", human_minutes(s as f64 / 60.0)))
        .unwrap_or_default();
    Ok(format!(
        "{}: {} | {}/{} done, {} calling, {} waiting | {} calls in the last minute{eta}",
        p.name, p.state, p.done, p.total, p.dialing, p.pending, p.calls_last_minute,
    ))
}

fn human_minutes(mins: f64) -> String {
    if mins < 1.0 {
        "under a minute".into()
    } else if mins < 90.0 {
        format!("about {mins:.0} min")
    } else {
        format!("about {:.1} h", mins / 60.0)
    }
}

/// Every contact with its outcome as CSV: number, state, disposition,
/// attempts, the last result and SIP status, time zone, the line it came
/// from, then its variables (one column each).
pub async fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    let rows = match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("--out {}", path.display()))?;
            let rows = ops::export_csv(&store, &row, std::io::BufWriter::new(file)).await?;
            println!("{rows} contacts of campaign {} written to {}", row.name, path.display());
            rows
        }
        None => ops::export_csv(&store, &row, std::io::stdout().lock()).await?,
    };
    tracing::debug!(rows, "exported");
    Ok(ExitCode::SUCCESS)
}
