//! `voxline campaign`: outbound campaigns in the call store: create one on
//! an agent route, import its contacts and keep the do-not-call lists here;
//! start, pause, resume, stop, follow and export it in `campaign_run`
//! (the nodes of `voxline serve` dial the running ones).

use crate::cli::campaign_run;
use crate::config::Config;
use crate::ops::campaigns::{self as ops, ContactsInput};
use crate::ops::OpError;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use voxline_campaign::amd::MachineAction;
use voxline_campaign::contacts::{ImportReport, TzSource};
use voxline_campaign::{CampaignSettings, RetryPolicy};
use voxline_store::{CallStore, CampaignRow};

/// `voxline campaign …`
#[derive(clap::Subcommand, Debug)]
pub enum CampaignCommand {
    /// Create a campaign on an agent route, with its calling windows.
    Create(Box<CreateArgs>),
    /// Import contacts from a CSV or JSON file (bad rows are listed with their line).
    Import(ImportArgs),
    /// Start dialling (the nodes of `voxline serve` with its route dial it).
    Start(NameArgs),
    /// Pause: no new calls; calls up go on. `resume` goes on.
    Pause(NameArgs),
    /// Resume a paused campaign.
    Resume(NameArgs),
    /// Stop for good: no new calls; calls up go on.
    Stop(NameArgs),
    /// Where a campaign stands: contacts by state and outcome, rate, ETA.
    Status(StatusArgs),
    /// Every contact with its outcome, as CSV.
    Export(ExportArgs),
    /// Add numbers to the do-not-call list: every campaign's, or one's.
    Dnc(DncArgs),
}

/// Arguments of `voxline campaign create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The campaign's name (unique).
    name: String,
    /// The agent route (`[[route]]` name) its calls run on.
    #[arg(long)]
    route: String,
    /// Time zone of contacts whose own cannot be told (IANA, e.g. America/Chicago).
    #[arg(long)]
    timezone: String,
    /// Country of numbers written without a country code (ISO 3166, e.g. US).
    #[arg(long)]
    country: Option<String>,
    /// A calling window, DAYS=HH:MM-HH:MM[,HH:MM-HH:MM]: mon-fri=09:00-20:00, sat=10:00-16:00.
    #[arg(long = "window", required = true)]
    windows: Vec<String>,
    /// A day not called (YYYY-MM-DD); repeat for more.
    #[arg(long = "holiday")]
    holidays: Vec<String>,
    /// The last day contacts are called (YYYY-MM-DD); later, window_expired.
    #[arg(long)]
    last_day: Option<String>,
    /// The trunk (`[[trunk]]` name) calls leave by.
    #[arg(long)]
    trunk: Option<String>,
    /// The caller ID calls show (default: the trunk's).
    #[arg(long)]
    caller_id: Option<String>,
    /// Calls up at once, at most.
    #[arg(long, default_value_t = 2)]
    max_calls: u32,
    /// New calls per second, at most.
    #[arg(long, default_value_t = 1.0)]
    max_cps: f64,
    /// Seconds of ringing before a call counts as not answered.
    #[arg(long, default_value_t = 30)]
    ring_timeout: u64,
    /// Attempts per contact, at most.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Seconds before a busy number is tried again (`none`: busy is final).
    #[arg(long, default_value = "600")]
    retry_busy: RetryDelay,
    /// Seconds before an unanswered number is tried again (`none`: final).
    #[arg(long, default_value = "3600")]
    retry_no_answer: RetryDelay,
    /// Seconds before a failed call is tried again (`none`: final).
    #[arg(long, default_value = "900")]
    retry_failed: RetryDelay,
    /// Answering-machine detection: off, hangup (on a machine) or message
    /// (leave --voicemail after its beep).
    #[arg(long, default_value = "off", value_parser = parse_amd)]
    amd: MachineAction,
    /// The message left on a machine with --amd message ({first_name}… filled in).
    #[arg(long)]
    voicemail: Option<String>,
    /// Configuration file (its store and routes).
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
}

/// Arguments of `voxline campaign import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The campaign.
    name: String,
    /// A CSV file (a header row; a phone/number column) or a JSON array of objects.
    file: PathBuf,
    /// Store nothing when any row is rejected.
    #[arg(long)]
    all_or_nothing: bool,
    /// Configuration file.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
}

/// A campaign by name.
#[derive(clap::Args, Debug)]
pub struct NameArgs {
    /// The campaign.
    pub name: String,
    /// Configuration file.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    pub config: PathBuf,
}

/// Arguments of `voxline campaign status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The campaign.
    pub name: String,
    /// Keep a live status line until the campaign is no longer running.
    #[arg(long)]
    pub watch: bool,
    /// Configuration file.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    pub config: PathBuf,
}

/// Arguments of `voxline campaign export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The campaign.
    pub name: String,
    /// Write here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Configuration file.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    pub config: PathBuf,
}

/// `--amd`.
fn parse_amd(s: &str) -> Result<MachineAction, String> {
    match s.trim() {
        "off" => Ok(MachineAction::Off),
        "hangup" => Ok(MachineAction::Hangup),
        "message" => Ok(MachineAction::Message),
        other => Err(format!("{other:?}: off, hangup or message")),
    }
}

/// `--retry-*`: seconds, or `none` (that outcome is final).
#[derive(Debug, Clone, Copy)]
struct RetryDelay(Option<u64>);

impl std::str::FromStr for RetryDelay {
    type Err = String;

    fn from_str(s: &str) -> Result<RetryDelay, String> {
        match s.trim() {
            "none" | "off" => Ok(RetryDelay(None)),
            n => n
                .parse()
                .map(|d| RetryDelay(Some(d)))
                .map_err(|_| format!("{s:?} is not seconds or \"none\"")),
        }
    }
}

/// Arguments of `voxline campaign dnc`.
#[derive(clap::Args, Debug)]
pub struct DncArgs {
    /// Numbers (E.164, or national with --country).
    #[arg(required = true)]
    numbers: Vec<String>,
    /// Only this campaign's list (default: the list every campaign checks).
    #[arg(long)]
    campaign: Option<String>,
    /// Country of numbers written without a country code.
    #[arg(long)]
    country: Option<String>,
    /// Configuration file.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
}

/// Runs the command; exit 1 when an import rejected rows.
pub async fn run(cmd: CampaignCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CampaignCommand::Create(a) => create(*a).await,
        CampaignCommand::Import(a) => import(a).await,
        CampaignCommand::Start(a) => campaign_run::start(a).await,
        CampaignCommand::Pause(a) => campaign_run::pause(a).await,
        CampaignCommand::Resume(a) => campaign_run::resume(a).await,
        CampaignCommand::Stop(a) => campaign_run::stop(a).await,
        CampaignCommand::Status(a) => campaign_run::status(a).await,
        CampaignCommand::Export(a) => campaign_run::export(a).await,
        CampaignCommand::Dnc(a) => dnc(a).await,
    }
}

/// The configuration at `config` and its store.
pub async fn open(config: &Path) -> anyhow::Result<(Config, CallStore)> {
    let cfg = Config::load(config)?;
    let store = CallStore::open(&cfg.store.url, &cfg.node.name)
        .await
        .context("store.url")?;
    Ok((cfg, store))
}

/// The campaign named `name` and its settings.
pub async fn campaign(store: &CallStore, name: &str) -> anyhow::Result<(CampaignRow, CampaignSettings)> {
    Ok(ops::find(store, name).await?)
}

async fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&a.config).await?;
    let mut windows = BTreeMap::new();
    for w in &a.windows {
        let (days, hours) = w
            .split_once('=')
            .with_context(|| format!("--window {w:?}: write DAYS=HH:MM-HH:MM, e.g. mon-fri=09:00-20:00"))?;
        windows.insert(days.trim().to_string(), hours.trim().to_string());
    }
    let settings = CampaignSettings {
        default_country: a.country.clone(),
        timezone: a.timezone.clone(),
        windows,
        holidays: a.holidays.clone(),
        last_day: a.last_day.clone(),
        trunk: a.trunk.clone(),
        caller_id: a.caller_id.clone(),
        max_calls: a.max_calls,
        max_cps: a.max_cps,
        ring_timeout_s: a.ring_timeout,
        retry: RetryPolicy {
            max_attempts: a.max_attempts,
            busy_s: a.retry_busy.0,
            no_answer_s: a.retry_no_answer.0,
            machine_s: None,
            failed_s: a.retry_failed.0,
        },
        amd: a.amd,
        voicemail: a.voicemail.clone(),
        webhooks: Vec::new(),
    };
    let row = ops::create(&cfg, &store, &a.name, &a.route, settings)
        .await
        .map_err(|e| anyhow::anyhow!("{}", cli_field(e)))?;
    println!("campaign {} created on route {} (id {})", row.name, row.route, row.id);
    Ok(ExitCode::SUCCESS)
}

/// An error whose field is named as the option that sets it (`--timezone`).
fn cli_field(e: OpError) -> String {
    match e {
        OpError::Invalid { field, message } => {
            let flag = field.strip_prefix("settings.").unwrap_or(&field);
            let flag = flag.split(['.', '[']).next().unwrap_or(flag);
            let flag = match flag {
                "windows" => "window".to_string(),
                "holidays" => "holiday".to_string(),
                "default_country" => "country".to_string(),
                "ring_timeout_s" => "ring-timeout".to_string(),
                other => other.replace('_', "-"),
            };
            format!("--{flag} ({field}): {message}")
        }
        other => other.to_string(),
    }
}

async fn import(a: ImportArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let (row, settings) = campaign(&store, &a.name).await?;
    let bytes = std::fs::read(&a.file).with_context(|| a.file.display().to_string())?;
    let is_json = a.file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let text;
    let input = if is_json {
        text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", a.file.display()))?;
        ContactsInput::Json(&text)
    } else {
        ContactsInput::Csv(&bytes)
    };
    let bar = ImportBar::new();
    let done = ops::import(&store, &row, &settings, input, a.all_or_nothing, &bar)
        .await
        .with_context(|| a.file.display().to_string())?;
    bar.0.finish_and_clear();
    print_report(&a.file, &done.report, &settings.timezone);
    let Some(stored) = done.stored else {
        println!("nothing stored (--all-or-nothing): fix the rejected rows and import again");
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "stored in campaign {}: {} added, {} already there",
        row.name, stored.added, stored.already_there
    );
    Ok(if done.report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The import's progress bar on a terminal (nothing drawn otherwise).
struct ImportBar(indicatif::ProgressBar);

impl ImportBar {
    fn new() -> ImportBar {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template("{msg:8} [{bar:40}] {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        ImportBar(bar)
    }

    fn show(&self, what: &'static str, n: u64, of: u64) {
        if self.0.length() != Some(of) || self.0.message() != what {
            self.0.set_message(what);
            self.0.set_length(of);
        }
        self.0.set_position(n);
    }
}

impl ops::ImportProgress for ImportBar {
    fn read(&self, n: u64, of: u64) {
        self.show("reading", n, of);
    }

    fn stored(&self, n: u64, of: u64) {
        self.show("storing", n, of);
    }
}

fn print_report(file: &Path, r: &ImportReport, campaign_tz: &str) {
    let count = |s: TzSource| r.contacts.iter().filter(|c| c.tz_source == s).count();
    println!(
        "{}: {} contacts, {} merged, {} rejected; time zones: {} from the file, {} from the number's country, {} the campaign's ({campaign_tz})",
        file.display(),
        r.contacts.len(),
        r.merged.len(),
        r.rejected.len(),
        count(TzSource::Column),
        count(TzSource::Country),
        count(TzSource::Campaign),
    );
    for (line, into) in &r.merged {
        println!("  line {line}: the number of line {into} again, merged");
    }
    for bad in &r.rejected {
        println!("  line {}: rejected: {}", bad.line, bad.why);
    }
}

async fn dnc(a: DncArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&a.config).await?;
    let scope = ops::dnc_scope(&store, a.campaign.as_deref()).await?;
    let numbers =
        ops::normalise_numbers(&a.numbers, a.country.as_deref()).map_err(|e| anyhow::anyhow!("{}", cli_field(e)))?;
    let added = store.add_dnc(&scope, &numbers).await?;
    let list = a
        .campaign
        .as_deref()
        .map_or("the global".to_string(), |c| format!("campaign {c}'s"));
    println!(
        "{added} number(s) added to {list} do-not-call list ({} already on it)",
        numbers.len() as u64 - added
    );
    Ok(ExitCode::SUCCESS)
}
