//! `voxline-demo-bank`: the small business service the demo packs'
//! tools call (`domains/demo-bank/tools.toml`, `domains/demo-renewal/tools.toml`,
//! and the energy endpoints of `domains/demo-energy/tools.toml`),
//! so a new user can try tool calls end to end. Accounts and cards are made up and held in memory;
//! every request is logged with its arguments. A binary of its own: it is
//! not part of `voxline`, the production binary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tracing::info;

/// The demo bank's business service (balances, card blocking, identity
/// checks) for the demo packs' tools. Accounts are made up, held in memory.
#[derive(clap::Parser, Debug)]
#[command(name = "voxline-demo-bank", version, about)]
struct DemoServiceArgs {
    /// Where to listen (the demo pack's tools call 127.0.0.1:8091).
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
}

#[derive(Default)]
struct Bank {
    /// Blocked cards, by last four digits.
    blocked: Mutex<HashMap<String, u32>>,
    /// Power cuts reported (the next reference number).
    outages: Mutex<u32>,
}

#[derive(Deserialize)]
struct ReadingArgs {
    account: String,
    reading: String,
}

#[derive(Deserialize)]
struct OutageArgs {
    account: String,
}

#[derive(Deserialize)]
struct BalanceArgs {
    account: String,
}

#[derive(Deserialize)]
struct VerifyArgs {
    birth_year: String,
}

/// The demo card holder's year of birth (the renewal script's security check).
const DEMO_BIRTH_YEAR: &str = "1985";

#[derive(Deserialize)]
struct BlockArgs {
    card_last4: String,
}

fn digits(s: &str, n: usize) -> Result<(), (StatusCode, Json<Value>)> {
    if s.len() == n && s.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": format!("expected {n} digits") })),
        ))
    }
}

/// A made-up but stable balance for an account number.
fn balance_of(account: &str) -> String {
    let seed = account
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let cents = seed % 500_000;
    format!("{}.{:02}", cents / 100, cents % 100)
}

async fn balance(Json(a): Json<BalanceArgs>) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    digits(&a.account, 8)?;
    let balance = balance_of(&a.account);
    info!(account = %a.account, %balance, "balance looked up");
    Ok(Json(json!({ "balance": balance, "last4": &a.account[4..] })))
}

async fn verify(Json(a): Json<VerifyArgs>) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    digits(&a.birth_year, 4)?;
    let verified = a.birth_year == DEMO_BIRTH_YEAR;
    info!(birth_year = %a.birth_year, verified, "identity check");
    if verified {
        Ok(Json(json!({ "verified": true })))
    } else {
        Err((StatusCode::FORBIDDEN, Json(json!({ "error": "details do not match" }))))
    }
}

async fn block(
    State(bank): State<Arc<Bank>>,
    Json(a): Json<BlockArgs>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    digits(&a.card_last4, 4)?;
    if let Ok(mut b) = bank.blocked.lock() {
        *b.entry(a.card_last4.clone()).or_default() += 1;
    }
    info!(card_last4 = %a.card_last4, "card blocked");
    Ok(Json(json!({ "last4": a.card_last4, "blocked": true, "days": 5 })))
}

/// The energy pack's meter reading: recorded (logged) and confirmed.
async fn reading(Json(a): Json<ReadingArgs>) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    digits(&a.account, 8)?;
    digits(&a.reading, 5)?;
    info!(account = %a.account, reading = %a.reading, "meter reading recorded");
    Ok(Json(json!({ "last4": &a.account[4..], "reading": a.reading })))
}

/// The energy pack's power cut report: a reference number per report.
async fn outage(
    State(bank): State<Arc<Bank>>,
    Json(a): Json<OutageArgs>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    digits(&a.account, 8)?;
    let reference = match bank.outages.lock() {
        Ok(mut n) => {
            *n += 1;
            format!("PC{:04}", *n)
        }
        Err(_) => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "outage register unavailable" })),
            ))
        }
    };
    info!(account = %a.account, %reference, "power cut reported");
    Ok(Json(json!({ "last4": &a.account[4..], "reference": reference })))
}

/// Runs the service until interrupted.
fn main() -> std::process::ExitCode {
    let args = <DemoServiceArgs as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voxline-demo-bank: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxline-demo-bank: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: DemoServiceArgs) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/balance", post(balance))
        .route("/cards/block", post(block))
        .route("/verify", post(verify))
        .route("/energy/readings", post(reading))
        .route("/energy/outages", post(outage))
        .with_state(Arc::new(Bank::default()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    info!(addr = %args.listen, "demo bank service listening");
    axum::serve(listener, app).await?;
    Ok(())
}
