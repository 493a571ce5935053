//! `voxline train …`: training scenarios for human agents (a pack's
//! `training/*.toml`, see `voxline_analysis::training`). `check` reads each
//! scenario with its scorecard and says what is wrong with the file and
//! field; a broken scenario does not affect the others or the pack.

use std::path::PathBuf;
use std::process::ExitCode;
use voxline_analysis::training::load_scenarios;

/// `voxline train …`.
#[derive(clap::Subcommand, Debug)]
pub enum TrainCommand {
    /// Check the pack's training scenarios (exit 2 when one is refused).
    Check {
        /// The domain pack's folder.
        #[arg(long)]
        pack: PathBuf,
    },
}

/// Runs `voxline train …`.
pub fn run(command: TrainCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrainCommand::Check { pack } => {
            let all = load_scenarios(&pack)?;
            let mut refused = 0;
            for r in &all {
                match r {
                    Ok(s) => println!(
                        "ok       {} — {} ({:?} customer, {} objection(s), {} fact(s), scorecard {})",
                        s.name,
                        s.title,
                        s.customer.mood,
                        s.customer.objection.len(),
                        s.facts.len(),
                        s.scorecard.file.display()
                    ),
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
    }
}
