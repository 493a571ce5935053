//! `voxline teach`: an expert's corrections and good marks into a domain
//! pack (see `crate::ops::teach`), and the pack's fine-tuning set out of it.
//! A running server picks the change up on its next call (the pack is
//! reloaded when its files change).

use crate::ops::teach::{self, Correction, Marked};
use std::path::PathBuf;
use std::process::ExitCode;

/// `voxline teach …`.
#[derive(clap::Subcommand, Debug)]
pub enum TeachCommand {
    /// Mark an answer wrong and give the right one: a curated answer.
    Wrong(WrongArgs),
    /// Mark an answer good: kept for the fine-tuning set.
    Good(GoodArgs),
    /// List the pack's curated answers and good turns.
    List(PackArg),
    /// Write the curated answers and good turns as chat-format JSONL.
    Export(ExportArgs),
}

/// The pack taught.
#[derive(clap::Args, Debug)]
pub struct PackArg {
    /// The domain pack's folder.
    #[arg(long)]
    pack: PathBuf,
}

/// What the mark is on: a stored call's turn, or a question (from a chat).
#[derive(clap::Args, Debug)]
pub struct On {
    /// The call's SIP Call-ID (with --turn): the question and answer are
    /// read from its record.
    #[arg(long, requires = "turn", conflicts_with = "question")]
    call: Option<String>,
    /// The agent turn of that call, from 1 (`GET /api/calls/{id}/turns`).
    #[arg(long)]
    turn: Option<i64>,
    /// The configuration naming the call store.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
    /// The question (a chat's, or one put by the expert).
    #[arg(long, required_unless_present = "call")]
    question: Option<String>,
    /// What the agent said to it.
    #[arg(long)]
    said: Option<String>,
    /// Who marks it.
    #[arg(long)]
    by: Option<String>,
}

/// `voxline teach wrong`.
#[derive(clap::Args, Debug)]
pub struct WrongArgs {
    #[command(flatten)]
    pack: PackArg,
    #[command(flatten)]
    on: On,
    /// The right answer, spoken as written.
    #[arg(long)]
    answer: String,
    /// Another wording of the question (repeat for more).
    #[arg(long = "also-asked")]
    also_asked: Vec<String>,
    /// A fact the answer must hold in the question set (repeat); default:
    /// the figures it states.
    #[arg(long)]
    holds: Vec<String>,
}

/// `voxline teach good`.
#[derive(clap::Args, Debug)]
pub struct GoodArgs {
    #[command(flatten)]
    pack: PackArg,
    #[command(flatten)]
    on: On,
}

/// `voxline teach export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pack: PackArg,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `voxline teach …`.
pub async fn run(command: TeachCommand) -> anyhow::Result<ExitCode> {
    match command {
        TeachCommand::Wrong(a) => {
            let marked = marked(&a.on).await?;
            let correction = Correction {
                asked: String::new(),
                answer: a.answer,
                also_asked: a.also_asked,
                holds: a.holds,
                by: a.on.by.clone(),
            };
            let i = teach::correct(&a.pack.pack, &marked, &correction)?;
            println!(
                "curated answer {} in {}: \"{}\" ({}); kept in the question set {}",
                i + 1,
                a.pack.pack.join(voxline_agent::curated::FILE).display(),
                marked.asked,
                marked.source,
                voxline_agent::curated::QUESTION_SET
            );
        }
        TeachCommand::Good(a) => {
            let marked = marked(&a.on).await?;
            teach::mark_good(&a.pack.pack, &marked, a.on.by.clone())?;
            println!("good turn kept in {}: \"{}\"", a.pack.pack.display(), marked.asked);
        }
        TeachCommand::List(a) => {
            let pack = voxline_agent::DomainPack::load(&a.pack)?;
            let file = pack.curated.file();
            println!(
                "{} curated answer(s), {} good turn(s)",
                file.answer.len(),
                file.good.len()
            );
            for (i, c) in file.answer.iter().enumerate() {
                println!("{:>3}. {}", i + 1, c.asked.join(" | "));
                println!("     → {}", c.say);
                if let Some(src) = &c.source {
                    println!(
                        "       ({src}{})",
                        c.by.as_deref().map(|b| format!(", by {b}")).unwrap_or_default()
                    );
                }
            }
            for g in &file.good {
                println!("good: {} → {}", g.asked, g.said);
            }
        }
        TeachCommand::Export(a) => {
            let lines = teach::export(&a.pack.pack)?;
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            match &a.out {
                Some(path) => {
                    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    eprintln!("{} example(s) written to {}", lines.len(), path.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The question and answer the mark is on.
async fn marked(on: &On) -> anyhow::Result<Marked> {
    match (&on.call, on.turn) {
        (Some(call), Some(turn)) => {
            let (_, store) = crate::cli::campaign::open(&on.config).await?;
            let m = teach::turn_of_call(&store, call, turn).await;
            store.close().await;
            Ok(m?)
        }
        _ => Ok(Marked {
            asked: on.question.clone().unwrap_or_default(),
            said: on.said.clone(),
            source: "chat".into(),
        }),
    }
}
