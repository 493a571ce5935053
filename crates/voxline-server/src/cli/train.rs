//! `voxline train …`: training scenarios for human agents (a pack's
//! `training/*.toml`, see `voxline_analysis::training`). `check` reads each
//! scenario with its scorecard and says what is wrong with the file and
//! field (and which facts the pack's knowledge does not hold); a broken
//! scenario does not affect the others or the pack. `call` has a running
//! server's training route call a trainee; `report` prints a training
//! call's report, `list` the sessions of a trainee or a scenario.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use voxline_agent::Knowledge;
use voxline_analysis::training::load_scenarios;
use voxline_analysis::training_report::{grounding, TrainingReport};

/// `voxline train …`.
#[derive(clap::Subcommand, Debug)]
pub enum TrainCommand {
    /// Check the pack's training scenarios (exit 2 when one is refused).
    Check {
        /// The domain pack's folder.
        #[arg(long)]
        pack: PathBuf,
    },
    /// Have a running server's training route call a trainee's phone: the
    /// bot plays the scenario's customer (through the server's API).
    Call {
        /// The training route (`[[route]]` with `training = "…"`).
        #[arg(long)]
        route: String,
        /// The trainee's phone: a `sip:` URI, or a number with `--trunk`.
        #[arg(long)]
        to: String,
        /// The trainee's name in reports (else the called user).
        #[arg(long)]
        trainee: Option<String>,
        /// The trunk the call leaves by.
        #[arg(long)]
        trunk: Option<String>,
        /// The API token (else the file of the config's first write token).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Configuration file (the server's API address and tokens).
        #[arg(long, default_value = "sip-config/voxline.toml")]
        config: PathBuf,
    },
    /// Print a training call's report.
    Report {
        /// The call's SIP Call-ID.
        call_id: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (its store).
        #[arg(long, default_value = "sip-config/voxline.toml")]
        config: PathBuf,
    },
    /// List training sessions, newest first.
    List {
        /// Only this trainee's.
        #[arg(long)]
        trainee: Option<String>,
        /// Only this scenario's.
        #[arg(long)]
        scenario: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Configuration file (its store).
        #[arg(long, default_value = "sip-config/voxline.toml")]
        config: PathBuf,
    },
}

/// Runs `voxline train …`.
pub async fn run(command: TrainCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrainCommand::Check { pack } => check(&pack),
        TrainCommand::Call {
            route,
            to,
            trainee,
            trunk,
            token_file,
            config,
        } => call(&config, token_file.as_deref(), &route, &to, trainee, trunk).await,
        TrainCommand::Report { call_id, json, config } => report(&config, &call_id, json).await,
        TrainCommand::List {
            trainee,
            scenario,
            limit,
            config,
        } => list(&config, trainee, scenario, limit).await,
    }
}

/// Checks each scenario, and that the pack's knowledge holds each fact (the
/// report's better wording names where); exit 2 when one is refused.
fn check(pack: &Path) -> anyhow::Result<ExitCode> {
    let all = load_scenarios(pack)?;
    let knowledge_dir = pack.join("knowledge");
    let knowledge = Knowledge::load(&knowledge_dir).ok();
    let mut refused = 0;
    for r in &all {
        match r {
            Ok(s) => {
                println!(
                    "ok       {} — {} ({:?} customer, {} objection(s), {} fact(s), scorecard {})",
                    s.name,
                    s.title,
                    s.customer.mood,
                    s.customer.objection.len(),
                    s.facts.len(),
                    s.scorecard.file.display()
                );
                for (i, f) in s.facts.iter().enumerate() {
                    match knowledge.as_ref().map(|k| grounding(f, k)) {
                        Some(Some(section)) => println!("           fact {} is in {section}", f.id),
                        Some(None) => {
                            refused += 1;
                            println!(
                                "refused  {}: fact[{i}].holds: the pack's knowledge ({}) holds no section with {:?}",
                                s.file.display(),
                                knowledge_dir.display(),
                                f.holds
                            );
                        }
                        None => println!("           fact {}: the pack has no knowledge to check it in", f.id),
                    }
                }
            }
            Err(e) => {
                refused += 1;
                println!("refused  {e}");
            }
        }
    }
    println!("{} scenario(s), {refused} refused", all.len());
    Ok(if refused > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The API token: the file given, else the file of the config's first
/// write token.
fn api_token(cfg: &crate::config::Config, token_file: Option<&Path>) -> anyhow::Result<String> {
    let file = match token_file {
        Some(f) => f.to_path_buf(),
        None => cfg
            .http
            .tokens
            .iter()
            .filter(|t| t.scope == crate::config::http::Scope::Write)
            .find_map(|t| t.file.as_deref())
            .map(|f| crate::config::resolve_path(&cfg.base_dir, f))
            .context("no --token-file and no [[http.token]] with scope = \"write\" and a file in the config")?,
    };
    let token = std::fs::read_to_string(&file).with_context(|| format!("reading the token {}", file.display()))?;
    Ok(token.trim().to_string())
}

async fn call(
    config: &Path,
    token_file: Option<&Path>,
    route: &str,
    to: &str,
    trainee: Option<String>,
    trunk: Option<String>,
) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::Config::load(config)?;
    let bind = cfg
        .http
        .bind
        .context("http.bind: the server's API is off in this config")?;
    let host = if bind.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bind.port())
    } else {
        bind
    };
    let token = api_token(&cfg, token_file)?;
    let mut variables = serde_json::Map::new();
    if let Some(t) = trainee {
        variables.insert("trainee".into(), t.into());
    }
    let body = serde_json::json!({ "route": route, "to": to, "trunk": trunk, "variables": variables });
    let url = format!("http://{host}/api/calls");
    let reply = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = reply.status();
    let text = reply.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("POST {url}: {status}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("POST {url}: {text}"))?;
    println!(
        "calling {to} on {route}: call {} (voxline train report {} once it ends)",
        v["call_id"].as_str().unwrap_or("?"),
        v["call_id"].as_str().unwrap_or("CALL-ID")
    );
    Ok(ExitCode::SUCCESS)
}

async fn report(config: &Path, call_id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = crate::cli::campaign::open(config).await?;
    let records = store.find_by_call_id(call_id).await?;
    anyhow::ensure!(!records.is_empty(), "no call {call_id} in the call records");
    let mut found = false;
    for r in &records {
        let Some(t) = store.training_session(&r.id).await? else {
            continue;
        };
        found = true;
        match t.report.as_deref() {
            Some(text) => {
                let rep: TrainingReport =
                    serde_json::from_str(text).with_context(|| format!("the stored report of record {}", r.id))?;
                if as_json {
                    println!("{}", serde_json::to_string_pretty(&rep)?);
                } else {
                    print!("{}", rep.render());
                }
            }
            None => println!(
                "call {call_id}: the report is {}{}",
                t.state,
                t.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        }
    }
    anyhow::ensure!(found, "call {call_id} was not a training call");
    Ok(ExitCode::SUCCESS)
}

async fn list(
    config: &Path,
    trainee: Option<String>,
    scenario: Option<String>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!((1..=10_000).contains(&limit), "--limit: 1 to 10000");
    let (_, store) = crate::cli::campaign::open(config).await?;
    let filter = voxline_store::TrainingFilter {
        trainee,
        scenario,
        limit,
    };
    let rows = store.training_sessions(&filter).await?;
    println!("| answered (UTC) | trainee | scenario | state | score | passed | customer | missed | call |");
    println!("|---|---|---|---|---:|---|---|---:|---|");
    for l in &rows {
        let t = &l.session;
        let missed = t
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str::<TrainingReport>(r).ok())
            .map_or("–".to_string(), |r| r.missed().len().to_string());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {missed} | {} |",
            l.started_at.map_or("–".to_string(), utc_minute),
            t.trainee,
            t.scenario,
            t.state,
            t.score.map_or("–".to_string(), |s| format!("{s:.0}")),
            t.passed.map_or("–", |p| if p { "yes" } else { "no" }),
            t.outcome.as_deref().unwrap_or("–"),
            l.call_id.as_deref().unwrap_or("–"),
        );
    }
    println!("{} session(s)", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM-DD HH:MM` (UTC) of ms since the epoch.
fn utc_minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}
