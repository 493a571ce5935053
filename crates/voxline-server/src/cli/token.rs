//! `voxline token new`: a bearer token for the HTTP API, printed once with
//! the `[[http.token]]` lines (its hash) to paste into the configuration.

/// `voxline token …`
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token: prints it (keep it secret) and its [[http.token]] lines.
    New(NewArgs),
}

/// Arguments of `voxline token new`.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Who holds it (shown in the logs of what it did).
    #[arg(long)]
    name: String,
    /// read (records, campaigns, metrics) or write (also places calls, runs campaigns).
    #[arg(long, default_value = "read", value_parser = ["read", "write"])]
    scope: String,
    /// Write the token into this new file (readable by its owner only)
    /// instead of printing it; the config names the file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Runs the command.
pub fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::New(a) => {
            let name = a.name.trim();
            if name.is_empty() || name.contains(['"', '\\', '\n']) {
                anyhow::bail!("--name: a name without quotes, backslashes or line breaks");
            }
            let token = format!("vxl_{}", hex::encode(rand::random::<[u8; 32]>()));
            match &a.out {
                Some(path) => {
                    write_secret(path, &token)?;
                    println!("token written to {}", path.display());
                    println!();
                    println!("[[http.token]]");
                    println!("name = \"{name}\"");
                    println!("scope = \"{}\"", a.scope);
                    println!("file = \"{}\"", path.display());
                }
                None => {
                    println!("token: {token}");
                    println!("(shown once; the configuration keeps only its hash)");
                    println!();
                    println!("[[http.token]]");
                    println!("name = \"{name}\"");
                    println!("scope = \"{}\"", a.scope);
                    println!("hash = \"{}\"", crate::http::hash_of(&token));
                }
            }
            Ok(())
        }
    }
}

/// Writes `token` into a new file only its owner can read.
fn write_secret(path: &std::path::Path, token: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("--out: {}", dir.display()))?;
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("--out {}: (an existing file is never overwritten)", path.display()))?;
    writeln!(f, "{token}").with_context(|| format!("--out {}", path.display()))?;
    Ok(())
}

/// The token local tools use: `given`, else `$VOXLINE_API_TOKEN`, else the
/// file `make run` makes (`~/.cache/voxline/api-token`, or under
/// `$VOXLINE_CACHE`).
pub fn local_token(given: Option<&str>) -> anyhow::Result<String> {
    use anyhow::Context;
    if let Some(t) = given {
        return Ok(t.to_string());
    }
    if let Ok(t) = std::env::var("VOXLINE_API_TOKEN") {
        return Ok(t.trim().to_string());
    }
    let cache = std::env::var_os("VOXLINE_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/voxline")))
        .context("no API token: give --api-token or set VOXLINE_API_TOKEN")?;
    let file = cache.join("api-token");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no API token: give --api-token, set VOXLINE_API_TOKEN or make {} (make run does)",
            file.display()
        )
    })?;
    Ok(text.trim().to_string())
}
