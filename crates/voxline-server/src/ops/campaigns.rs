//! Campaign operations: create one on an agent route, import its contacts,
//! start / pause / resume / stop it, where it stands, its results as CSV,
//! the do-not-call lists. The nodes of `voxline serve` dial the running
//! ones (`crate::campaigns`).

use super::OpError;
use crate::config::Config;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use voxline_campaign::contacts::{self, CountryZones, ImportOptions, ImportReport};
use voxline_campaign::dialer::state;
use voxline_campaign::CampaignSettings;
use voxline_store::{now_ms, CallStore, CampaignRow, NewContact, StoredImport};

/// Longest campaign name.
const MAX_NAME: usize = 64;

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The agent route its calls run on.
    pub route: String,
    /// draft, running, paused, stopped or finished.
    pub state: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Its settings (webhook secrets hidden).
    pub settings: CampaignSettings,
}

impl CampaignView {
    /// The view of a stored campaign with its settings.
    pub fn of(row: &CampaignRow, settings: &CampaignSettings) -> CampaignView {
        CampaignView {
            id: row.id.clone(),
            name: row.name.clone(),
            route: row.route.clone(),
            state: row.state.clone(),
            created_at: row.created_at,
            settings: CampaignSettings {
                webhooks: settings.webhooks.iter().map(|w| w.redacted()).collect(),
                ..settings.clone()
            },
        }
    }
}

/// The settings stored with `row`.
pub fn settings_of(row: &CampaignRow) -> Result<CampaignSettings, OpError> {
    serde_json::from_str(&row.settings).map_err(|e| {
        OpError::invalid(
            "settings",
            format!("campaign {:?}: its stored settings are not readable: {e}", row.name),
        )
    })
}

/// The campaign whose id or name is `key`, with its settings.
pub async fn find(store: &CallStore, key: &str) -> Result<(CampaignRow, CampaignSettings), OpError> {
    let row = match store.campaign_by_id(key).await? {
        Some(row) => row,
        None => store
            .campaign_by_name(key)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("no campaign named {key:?}")))?,
    };
    let settings = settings_of(&row)?;
    Ok((row, settings))
}

/// Every campaign, oldest first.
pub async fn list(store: &CallStore) -> Result<Vec<CampaignView>, OpError> {
    let mut out = Vec::new();
    for row in store.campaigns().await? {
        let settings = settings_of(&row)?;
        out.push(CampaignView::of(&row, &settings));
    }
    Ok(out)
}

/// Checks that `route` is an agent route of `cfg`; `field` names the input.
pub fn agent_route(cfg: &Config, route: &str, field: &str) -> Result<(), OpError> {
    let r = cfg
        .routes
        .iter()
        .find(|r| r.name == route)
        .ok_or_else(|| OpError::invalid(field, format!("no route named {route:?} in the configuration")))?;
    if r.handler != "agent" {
        return Err(OpError::invalid(
            field,
            format!("route {route:?} has handler {:?}, not \"agent\"", r.handler),
        ));
    }
    Ok(())
}

/// Checks that trunk `name` of `cfg` can carry calls out (it exists and has
/// a host); `field` names the input.
pub fn dialable_trunk(cfg: &Config, name: &str, field: &str) -> Result<(), OpError> {
    let trunk = cfg
        .trunks
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| OpError::invalid(field, format!("no [[trunk]] named {name:?} in the configuration")))?;
    if trunk.host.is_none() {
        return Err(OpError::invalid(
            field,
            format!("[[trunk]] {name:?} has no host to send calls to"),
        ));
    }
    Ok(())
}

/// Creates campaign `name` on agent route `route` (state `draft`).
pub async fn create(
    cfg: &Config,
    store: &CallStore,
    name: &str,
    route: &str,
    settings: CampaignSettings,
) -> Result<CampaignRow, OpError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(OpError::invalid("name", format!("1 to {MAX_NAME} characters")));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
    {
        return Err(OpError::invalid(
            "name",
            "letters, digits, spaces, '-', '_' and '.' only",
        ));
    }
    agent_route(cfg, route, "route")?;
    settings.check()?;
    if let Some(t) = &settings.trunk {
        dialable_trunk(cfg, t, "settings.trunk")?;
    }
    if store.campaign_by_name(name).await?.is_some() {
        return Err(OpError::Conflict(format!("a campaign named {name:?} exists already")));
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let text =
        serde_json::to_string(&settings).map_err(|e| OpError::invalid("settings", format!("not storable: {e}")))?;
    store.create_campaign(&id, name, route, &text).await?;
    store
        .campaign_by_id(&id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("campaign {name:?} vanished after it was created")))
}

/// Contacts to import, as given.
pub enum ContactsInput<'a> {
    /// A CSV file with a header row and a phone/number column.
    Csv(&'a [u8]),
    /// A JSON array of objects.
    Json(&'a str),
}

/// What an import read and stored.
#[derive(Debug)]
pub struct Imported {
    /// What was read: the contacts, the rows merged and rejected.
    pub report: ImportReport,
    /// What was stored; `None` when nothing was (all or nothing, with
    /// rejected rows).
    pub stored: Option<StoredImport>,
}

/// Where an import's progress goes (the CLI's bar; the API has none).
pub trait ImportProgress: Send + Sync {
    /// `n` bytes of the input's `of` read.
    fn read(&self, _n: u64, _of: u64) {}
    /// `n` contacts of `of` stored.
    fn stored(&self, _n: u64, _of: u64) {}
}

/// No progress shown.
pub struct Quiet;

impl ImportProgress for Quiet {}

/// A reader over the input telling `progress` how far it is.
struct Counting<'a> {
    input: &'a [u8],
    at: u64,
    of: u64,
    progress: &'a dyn ImportProgress,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.at += n as u64;
        self.progress.read(self.at, self.of);
        Ok(n)
    }
}

/// Reads contacts into campaign `row`: every good row is stored in one
/// transaction; with `all_or_nothing`, nothing is stored when a row is bad.
pub async fn import(
    store: &CallStore,
    row: &CampaignRow,
    settings: &CampaignSettings,
    input: ContactsInput<'_>,
    all_or_nothing: bool,
    progress: &dyn ImportProgress,
) -> Result<Imported, OpError> {
    let checked = settings.check()?;
    let opts = ImportOptions {
        default_country: checked.default_country,
        default_tz: checked.timezone,
        country_zones: CountryZones::system().map_err(|e| OpError::invalid("timezone database", e.to_string()))?,
    };
    let report = match input {
        ContactsInput::Csv(bytes) => {
            let counting = Counting {
                input: bytes,
                at: 0,
                of: bytes.len() as u64,
                progress,
            };
            contacts::import_csv(counting, &opts)
        }
        ContactsInput::Json(text) => {
            let r = contacts::import_json(text, &opts);
            progress.read(text.len() as u64, text.len() as u64);
            r
        }
    }
    .map_err(|e| OpError::invalid("contacts", e.to_string()))?;
    if all_or_nothing && !report.rejected.is_empty() {
        return Ok(Imported { report, stored: None });
    }
    let rows = report
        .contacts
        .iter()
        .map(|c| NewContact {
            number: c.number.clone(),
            tz: c.tz.name().to_string(),
            // A map of strings always serialises.
            variables: serde_json::to_string(&c.variables).unwrap_or_else(|_| "{}".into()),
            source_line: c.line as i64,
        })
        .collect::<Vec<_>>();
    let of = rows.len() as u64;
    let stored = store
        .add_contacts_telling(&row.id, &rows, &|n| progress.stored(n, of))
        .await?;
    Ok(Imported {
        report,
        stored: Some(stored),
    })
}

/// Starts a campaign once everything it needs is there: its settings, an
/// agent route, a trunk that can dial out, contacts.
pub async fn start(
    cfg: &Config,
    store: &CallStore,
    row: &CampaignRow,
    settings: &CampaignSettings,
) -> Result<(), OpError> {
    settings.check()?;
    agent_route(cfg, &row.route, "route")?;
    let trunk = settings.trunk.as_deref().ok_or_else(|| {
        OpError::invalid(
            "trunk",
            format!(
                "campaign {:?} has no trunk to dial out by (set settings.trunk)",
                row.name
            ),
        )
    })?;
    dialable_trunk(cfg, trunk, "trunk")?;
    if store.open_contacts(&row.id).await? == 0 {
        return Err(OpError::invalid(
            "contacts",
            format!(
                "campaign {:?} has no contacts left to call: import some first",
                row.name
            ),
        ));
    }
    move_to(store, row, &[state::DRAFT, state::PAUSED], state::RUNNING).await
}

/// A change of a campaign's state other than starting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// No new calls; calls up go on.
    Pause,
    /// Dial again after a pause.
    Resume,
    /// No new calls, for good.
    Stop,
}

/// Pauses, resumes or stops a campaign.
pub async fn change(store: &CallStore, row: &CampaignRow, m: Move) -> Result<(), OpError> {
    match m {
        Move::Pause => move_to(store, row, &[state::RUNNING], state::PAUSED).await,
        Move::Resume => move_to(store, row, &[state::PAUSED], state::RUNNING).await,
        Move::Stop => {
            move_to(
                store,
                row,
                &[state::DRAFT, state::RUNNING, state::PAUSED],
                state::STOPPED,
            )
            .await
        }
    }
}

async fn move_to(store: &CallStore, row: &CampaignRow, from: &[&str], to: &str) -> Result<(), OpError> {
    if store.set_campaign_state(&row.id, from, to).await? {
        return Ok(());
    }
    let now = store
        .campaign_by_id(&row.id)
        .await?
        .map_or_else(|| "gone".to_string(), |c| c.state);
    Err(OpError::Conflict(format!(
        "campaign {:?} is {now}: it cannot be made {to} from there",
        row.name
    )))
}

/// Where a campaign stands.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Contacts in all.
    pub total: i64,
    /// Contacts with their final disposition.
    pub done: i64,
    /// Contacts being called now.
    pub dialing: i64,
    /// Contacts waiting for a (first or next) call.
    pub pending: i64,
    /// Contacts by state.
    pub by_state: BTreeMap<String, i64>,
    /// Contacts by final disposition.
    pub by_disposition: BTreeMap<String, i64>,
    /// Calls started in the last minute (the current rate).
    pub calls_last_minute: i64,
    /// Seconds until every contact is called at that rate (while any are left).
    pub eta_seconds: Option<u64>,
}

/// Where campaign `row` stands now.
pub async fn progress(store: &CallStore, row: &CampaignRow) -> Result<Progress, OpError> {
    let counts = store.contact_counts(&row.id).await?;
    let by_state: BTreeMap<String, i64> = counts.by_state.into_iter().collect();
    let of = |s: &str| by_state.get(s).copied().unwrap_or(0);
    let per_min = store.attempts_since(&row.id, now_ms() - 60_000).await?;
    let left = of("pending") + of("dialing");
    let eta_seconds = (per_min > 0 && left > 0).then(|| (left as f64 * 60.0 / per_min as f64).ceil() as u64);
    Ok(Progress {
        name: row.name.clone(),
        state: row.state.clone(),
        total: by_state.values().sum(),
        done: of("done"),
        dialing: of("dialing"),
        pending: of("pending"),
        by_disposition: counts.by_disposition.into_iter().collect(),
        by_state,
        calls_last_minute: per_min,
        eta_seconds,
    })
}

/// Contacts read per store query when exporting.
const PAGE: i64 = 1000;

/// Every contact of `row` with its outcome as CSV into `w`: number, state,
/// disposition, attempts, the last result and SIP status, time zone, the
/// line it came from, then its variables (one column each). Returns the
/// contacts written.
pub async fn export_csv(store: &CallStore, row: &CampaignRow, w: impl std::io::Write) -> Result<u64, OpError> {
    // First pass: the variables' names, for the header.
    let mut names = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store.contacts_page(&row.id, after, PAGE).await?;
        for c in &page {
            names.extend(variables(&c.variables).into_iter().map(|(k, _)| k));
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    let written = |e: csv::Error| OpError::invalid("output", e.to_string());
    let mut w = csv::Writer::from_writer(w);
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
    w.write_record(&header).map_err(written)?;
    let mut after = 0;
    let mut rows = 0u64;
    loop {
        let page = store.contacts_page(&row.id, after, PAGE).await?;
        for c in &page {
            let vars = variables(&c.variables);
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
            w.write_record(&record).map_err(written)?;
            rows += 1;
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    w.flush().map_err(|e| OpError::invalid("output", e.to_string()))?;
    Ok(rows)
}

/// A contact's stored variables (written by [`import`] as a JSON object).
fn variables(text: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The do-not-call list of campaign `key` (id or name), or the global one
/// (`None`): its scope in the store.
pub async fn dnc_scope(store: &CallStore, key: Option<&str>) -> Result<String, OpError> {
    match key {
        Some(k) => Ok(find(store, k).await?.0.id),
        None => Ok(String::new()),
    }
}

/// `numbers` in E.164; those without a country code are read in `country`
/// (ISO 3166). A bad one is named by its place (`numbers[2]`).
pub fn normalise_numbers(numbers: &[String], country: Option<&str>) -> Result<Vec<String>, OpError> {
    let country = match country {
        Some(cc) => Some(
            cc.trim()
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| OpError::invalid("country", format!("{cc:?} is not an ISO 3166 country code")))?,
        ),
        None => None,
    };
    if numbers.is_empty() {
        return Err(OpError::invalid("numbers", "no numbers given"));
    }
    numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            contacts::normalise(n, country)
                .map(|(e164, _)| e164)
                .map_err(|why| OpError::invalid(format!("numbers[{i}]"), why))
        })
        .collect()
}
