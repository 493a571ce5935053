//! `voxline campaign start|pause|resume|stop|status|export`: a campaign's
//! life in the store, which every node of `voxline serve` reads (a running
//! campaign is dialled by the nodes that serve its route; a pause takes
//! effect within half a second), where it stands, and its results.

use crate::cli::campaign::{campaign, open, ExportArgs, NameArgs, StatusArgs};
use crate::config::Config;
use anyhow::Context;
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use voxline_campaign::dialer::state;
use voxline_store::{now_ms, CallStore, CampaignRow};

/// Checks that trunk `name` of `cfg` can carry calls out (it exists and
/// has a host).
pub fn dialable_trunk(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let trunk = cfg
        .trunks
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("trunk: no [[trunk]] named {name:?} in the configuration"))?;
    if trunk.host.is_none() {
        anyhow::bail!("trunk: [[trunk]] {name:?} has no host to send calls to");
    }
    Ok(())
}

/// Starts a campaign once everything it needs is there: its settings, an
/// agent route, a trunk that can dial out, contacts.
pub async fn start(a: NameArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&a.config).await?;
    let (row, settings) = campaign(&store, &a.name).await?;
    settings
        .check()
        .with_context(|| format!("campaign {:?}: its settings", row.name))?;
    let route = cfg
        .routes
        .iter()
        .find(|r| r.name == row.route)
        .with_context(|| format!("route: no route named {:?} in the configuration", row.route))?;
    if route.handler != "agent" {
        anyhow::bail!(
            "route: route {:?} has handler {:?}, not \"agent\"",
            row.route,
            route.handler
        );
    }
    let trunk = settings.trunk.as_deref().with_context(|| {
        format!(
            "trunk: campaign {:?} has no trunk to dial out by (create it with --trunk NAME)",
            row.name
        )
    })?;
    dialable_trunk(&cfg, trunk)?;
    if store.open_contacts(&row.id).await? == 0 {
        anyhow::bail!(
            "campaign {:?} has no contacts left to call: import some first (voxline campaign import)",
            row.name
        );
    }
    move_to(&store, &row, &[state::DRAFT, state::PAUSED], state::RUNNING).await?;
    println!(
        "campaign {} running: the voxline serve nodes with route {} dial it (follow it: voxline campaign status {} --watch)",
        row.name, row.route, row.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Pauses a running campaign.
pub async fn pause(a: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    move_to(&store, &row, &[state::RUNNING], state::PAUSED).await?;
    println!("campaign {} paused: no new calls; calls up go on", row.name);
    Ok(ExitCode::SUCCESS)
}

/// Resumes a paused campaign.
pub async fn resume(a: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    move_to(&store, &row, &[state::PAUSED], state::RUNNING).await?;
    println!("campaign {} running again", row.name);
    Ok(ExitCode::SUCCESS)
}

/// Stops a campaign for good.
pub async fn stop(a: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    move_to(
        &store,
        &row,
        &[state::DRAFT, state::RUNNING, state::PAUSED],
        state::STOPPED,
    )
    .await?;
    println!("campaign {} stopped: no new calls; calls up go on", row.name);
    Ok(ExitCode::SUCCESS)
}

async fn move_to(store: &CallStore, row: &CampaignRow, from: &[&str], to: &str) -> anyhow::Result<()> {
    if store.set_campaign_state(&row.id, from, to).await? {
        return Ok(());
    }
    let now = store
        .campaign_by_id(&row.id)
        .await?
        .map_or_else(|| "gone".to_string(), |c| c.state);
    anyhow::bail!("campaign {:?} is {now}: it cannot be made {to} from there", row.name)
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
    let counts = store.contact_counts(&c.id).await?;
    let of = |s: &str| counts.by_state.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let total: i64 = counts.by_state.iter().map(|(_, n)| n).sum();
    let per_min = store.attempts_since(&c.id, now_ms() - 60_000).await?;
    let left = of("pending") + of("dialing");
    let eta = if per_min > 0 && left > 0 {
        let mins = left as f64 / per_min as f64;
        format!(", about {} left", human_minutes(mins))
    } else {
        String::new()
    };
    Ok(format!(
        "{}: {} | {}/{total} done, {} calling, {} waiting | {per_min} calls in the last minute{eta}",
        c.name,
        c.state,
        of("done"),
        of("dialing"),
        of("pending"),
    ))
}

fn human_minutes(mins: f64) -> String {
    if mins < 1.0 {
        "under a minute".into()
    } else if mins < 90.0 {
        format!("{mins:.0} min")
    } else {
        format!("{:.1} h", mins / 60.0)
    }
}

/// Every contact with its outcome as CSV: number, state, disposition,
/// attempts, the last result and SIP status, time zone, the line it came
/// from, then its variables (one column each).
pub async fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, _) = campaign(&store, &a.name).await?;
    const PAGE: i64 = 1000;
    // First pass: the variables' names, for the header.
    let mut names = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store.contacts_page(&row.id, after, PAGE).await?;
        for c in &page {
            let vars: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&c.variables).unwrap_or_default();
            names.extend(vars.into_iter().map(|(k, _)| k));
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    let sink: Box<dyn Write> = match &a.out {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("--out {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(sink);
    let mut header = vec![
        "number",
        "state",
        "disposition",
        "attempts",
        "last_result",
        "sip_status",
        "timezone",
        "source_line",
    ];
    header.extend(names.iter().map(String::as_str));
    w.write_record(&header)?;
    let mut after = 0;
    let mut rows = 0u64;
    loop {
        let page = store.contacts_page(&row.id, after, PAGE).await?;
        for c in &page {
            let vars: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&c.variables).unwrap_or_default();
            let mut record = vec![
                c.number.clone(),
                c.state.clone(),
                c.disposition.clone().unwrap_or_default(),
                c.attempts.to_string(),
                c.last_result.clone().unwrap_or_default(),
                c.sip_status.map(|s| s.to_string()).unwrap_or_default(),
                c.tz.clone(),
                c.source_line.to_string(),
            ];
            record.extend(names.iter().map(|n| match vars.get(n) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            }));
            w.write_record(&record)?;
            rows += 1;
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    w.flush()?;
    if let Some(path) = &a.out {
        println!("{rows} contacts of campaign {} written to {}", row.name, path.display());
    }
    Ok(ExitCode::SUCCESS)
}
