//! Contacts of a campaign, imported from CSV or JSON: each number
//! normalised to E.164 (a default country for national numbers), a time
//! zone per contact (its own column, else the only zone of its number's
//! country, else the campaign's), the other columns kept as variables for
//! the pack's lines (`{first_name}`). Bad rows are reported with their line
//! and why; a number given twice is one contact.

use chrono_tz::Tz;
use phonenumber::country::Id as Country;
use phonenumber::Mode;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Column names (any case) that hold the number.
const NUMBER_COLUMNS: &[&str] = &["phone", "number", "phone_number", "msisdn"];
/// Column names (any case) that hold the time zone.
const TZ_COLUMNS: &[&str] = &["timezone", "time_zone", "tz"];

/// A file that could not be read as contacts at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file's structure is wrong (no number column, not a JSON array…).
    #[error("{0}")]
    Format(String),
    /// Reading failed.
    #[error("reading the contacts: {0}")]
    Io(#[from] std::io::Error),
}

/// How contacts are read.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The country of numbers written without a country code ("US", "GB");
    /// without one, such numbers are rejected.
    pub default_country: Option<Country>,
    /// The time zone of contacts whose own cannot be told.
    pub default_tz: Tz,
    /// Countries with a single time zone (from the system's tz database,
    /// [`CountryZones::system`]).
    pub country_zones: CountryZones,
}

/// Where a contact's time zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TzSource {
    /// The contact's own column.
    Column,
    /// The only zone of its number's country.
    Country,
    /// The campaign's default.
    Campaign,
}

/// One contact to call.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// The line (CSV) or entry (JSON, from 1) it was first given on.
    pub line: usize,
    /// The number in E.164 (`+14155550100`).
    pub number: String,
    /// Its time zone.
    pub tz: Tz,
    /// Where the time zone came from.
    pub tz_source: TzSource,
    /// Every other column, by its header.
    pub variables: BTreeMap<String, String>,
}

/// A row that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Its line (CSV) or entry number (JSON, from 1).
    pub line: usize,
    /// Why.
    pub why: String,
}

/// The outcome of reading a contacts file.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The contacts, in file order, one per number.
    pub contacts: Vec<Contact>,
    /// Rows not taken.
    pub rejected: Vec<RejectedRow>,
    /// Rows whose number was given before: (line, line of the contact it
    /// was merged into). Its variables fill the ones the first row left empty.
    pub merged: Vec<(usize, usize)>,
}

/// Countries with exactly one time zone, from a tz database `zone1970.tab`.
#[derive(Debug, Clone, Default)]
pub struct CountryZones(HashMap<String, Tz>);

impl CountryZones {
    /// Debian's tz database table (package `tzdata`).
    pub const SYSTEM_TABLE: &'static str = "/usr/share/zoneinfo/zone1970.tab";

    /// Reads the system's table; the error names the file.
    pub fn system() -> Result<CountryZones, ImportError> {
        let text = std::fs::read_to_string(Self::SYSTEM_TABLE).map_err(|e| {
            ImportError::Format(format!(
                "{}: {e} (the tz database, Debian package tzdata)",
                Self::SYSTEM_TABLE
            ))
        })?;
        Ok(CountryZones::parse(&text))
    }

    /// Reads a `zone1970.tab` text: `CC[,CC…] <tab> coordinates <tab> zone`.
    pub fn parse(text: &str) -> CountryZones {
        let mut zones: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let (Some(codes), Some(_), Some(zone)) = (cols.next(), cols.next(), cols.next()) else {
                continue;
            };
            for cc in codes.split(',') {
                zones
                    .entry(cc.trim().to_string())
                    .or_default()
                    .push(zone.trim().to_string());
            }
        }
        CountryZones(
            zones
                .into_iter()
                .filter(|(_, z)| z.len() == 1)
                .filter_map(|(cc, z)| Some((cc, z[0].parse().ok()?)))
                .collect(),
        )
    }

    /// The zone of `country` when it has only one.
    pub fn only_zone(&self, country: &str) -> Option<Tz> {
        self.0.get(country).copied()
    }
}

/// Reads a CSV file of contacts (a header row; a number column named
/// phone, number, phone_number or msisdn).
pub fn import_csv_file(path: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Format(format!("{}: {e}", path.display())))?;
    import_csv(file, opts)
}

/// Reads CSV contacts from `input`.
pub fn import_csv(input: impl std::io::Read, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Format(format!("the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let number_col = find_column(&headers, NUMBER_COLUMNS).ok_or_else(|| {
        ImportError::Format(format!(
            "no number column: the header row must name one of {} (it has {})",
            NUMBER_COLUMNS.join(", "),
            headers.join(", ")
        ))
    })?;
    let tz_col = find_column(&headers, TZ_COLUMNS);
    let mut import = Import::new(opts);
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                import.reject(line, format!("not readable as CSV: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != headers.len() {
            import.reject(
                line,
                format!("{} fields, the header row has {}", record.len(), headers.len()),
            );
            continue;
        }
        let mut variables = BTreeMap::new();
        for (i, value) in record.iter().enumerate() {
            if i != number_col && Some(i) != tz_col && !value.is_empty() {
                variables.insert(headers[i].clone(), value.to_string());
            }
        }
        import.row(line, &record[number_col], tz_col.map(|c| &record[c]), variables);
    }
    Ok(import.report)
}

/// Reads JSON contacts: an array of objects, each with a number field
/// (as in CSV) and string or number values.
pub fn import_json(text: &str, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ImportError::Format(format!("not JSON: {e}")))?;
    let entries = value
        .as_array()
        .ok_or_else(|| ImportError::Format("the contacts must be a JSON array of objects".into()))?;
    let mut import = Import::new(opts);
    for (i, entry) in entries.iter().enumerate() {
        let line = i + 1;
        let Some(fields) = entry.as_object() else {
            import.reject(line, "not an object".into());
            continue;
        };
        let mut values = BTreeMap::new();
        let mut bad = None;
        for (k, v) in fields {
            match v {
                serde_json::Value::String(s) => values.insert(k.clone(), s.trim().to_string()),
                serde_json::Value::Number(n) => values.insert(k.clone(), n.to_string()),
                serde_json::Value::Null => None,
                _ => {
                    bad = Some(format!("{k}: a value must be a string or a number"));
                    break;
                }
            };
        }
        if let Some(why) = bad {
            import.reject(line, why);
            continue;
        }
        let keys: Vec<String> = values.keys().cloned().collect();
        let Some(number_key) = find_column(&keys, NUMBER_COLUMNS).map(|i| keys[i].clone()) else {
            import.reject(line, format!("no number field ({})", NUMBER_COLUMNS.join(", ")));
            continue;
        };
        let tz_key = find_column(&keys, TZ_COLUMNS).map(|i| keys[i].clone());
        let number = values.remove(&number_key).unwrap_or_default();
        let tz = tz_key.and_then(|k| values.remove(&k));
        values.retain(|_, v| !v.is_empty());
        import.row(line, &number, tz.as_deref(), values);
    }
    Ok(import.report)
}

fn find_column(headers: &[String], names: &[&str]) -> Option<usize> {
    headers
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

/// Rows being turned into contacts.
struct Import<'a> {
    opts: &'a ImportOptions,
    report: ImportReport,
    by_number: HashMap<String, usize>,
}

impl<'a> Import<'a> {
    fn new(opts: &'a ImportOptions) -> Import<'a> {
        Import {
            opts,
            report: ImportReport::default(),
            by_number: HashMap::new(),
        }
    }

    fn reject(&mut self, line: usize, why: String) {
        self.report.rejected.push(RejectedRow { line, why });
    }

    fn row(&mut self, line: usize, number: &str, tz: Option<&str>, variables: BTreeMap<String, String>) {
        let (number, country) = match normalise(number, self.opts.default_country) {
            Ok(n) => n,
            Err(why) => return self.reject(line, why),
        };
        let (tz, tz_source) = match tz.map(str::trim).filter(|t| !t.is_empty()) {
            Some(name) => match name.parse::<Tz>() {
                Ok(tz) => (tz, TzSource::Column),
                Err(_) => {
                    return self.reject(
                        line,
                        format!("time zone {name:?} is not a tz database name (such as America/New_York)"),
                    )
                }
            },
            None => match country.as_deref().and_then(|c| self.opts.country_zones.only_zone(c)) {
                Some(tz) => (tz, TzSource::Country),
                None => (self.opts.default_tz, TzSource::Campaign),
            },
        };
        if let Some(&first) = self.by_number.get(&number) {
            let contact = &mut self.report.contacts[first];
            for (k, v) in variables {
                contact.variables.entry(k).or_insert(v);
            }
            self.report.merged.push((line, contact.line));
            return;
        }
        self.by_number.insert(number.clone(), self.report.contacts.len());
        self.report.contacts.push(Contact {
            line,
            number,
            tz,
            tz_source,
            variables,
        });
    }
}

/// A number in E.164 and its country code (ISO 3166), or why not. A
/// leading `00` is read as `+`.
pub fn normalise(number: &str, default_country: Option<Country>) -> Result<(String, Option<String>), String> {
    let written = number.trim();
    if written.is_empty() {
        return Err("no number".into());
    }
    if !written.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("{written:?} is not a phone number"));
    }
    // "00" is the international prefix in most of the world (ITU-T E.164
    // recommends it); read it as "+" whatever the default country.
    let plus;
    let written = match written.strip_prefix("00") {
        Some(rest) => {
            plus = format!("+{rest}");
            plus.as_str()
        }
        None => written,
    };
    let international = written.starts_with('+');
    if !international && default_country.is_none() {
        return Err(format!(
            "{written:?} has no country code and the campaign has no default country"
        ));
    }
    let parsed =
        phonenumber::parse(default_country, written).map_err(|e| format!("{written:?} is not a phone number ({e})"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(format!("{written:?} is not a valid number"));
    }
    let country = parsed.country().id().map(|c| format!("{c:?}"));
    Ok((parsed.format().mode(Mode::E164).to_string(), country))
}
