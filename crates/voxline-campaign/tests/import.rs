//! Contacts files as operators write them: national and international
//! numbers, a broken row, a duplicate, an unknown time zone. Each bad row is
//! reported with its line and why; the rest are taken.

use chrono_tz::Tz;
use std::path::Path;
use voxline_campaign::contacts::{import_csv_file, import_json, CountryZones, ImportOptions, TzSource};

/// A `zone1970.tab` excerpt: GB has one zone, US many.
const ZONES: &str = "# comment\nGB,GG,IM,JE\t+513030-0000731\tEurope/London\n\
US\t+404251-0740023\tAmerica/New_York\nUS\t+340308-1181434\tAmerica/Los_Angeles\n";

fn opts() -> ImportOptions {
    ImportOptions {
        default_country: Some("US".parse().expect("country")),
        default_tz: "America/Chicago".parse().expect("tz"),
        country_zones: CountryZones::parse(ZONES),
    }
}

#[test]
fn a_csv_with_broken_rows_is_taken_row_by_row_with_each_fault_named() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/contacts.csv");
    let report = import_csv_file(&file, &opts()).expect("the file reads");
    let numbers: Vec<&str> = report.contacts.iter().map(|c| c.number.as_str()).collect();
    assert_eq!(
        numbers,
        ["+14155552671", "+14155552672", "+442079460958", "+442079460959"],
        "{report:#?}"
    );
    let ada = &report.contacts[0];
    assert_eq!(ada.line, 2);
    assert_eq!(ada.variables.get("first_name").map(String::as_str), Some("Ada"));
    assert_eq!(ada.variables.get("due_date").map(String::as_str), Some("2026-12-20"));
    // US has several zones: the campaign's; GB one: London; a column wins.
    assert_eq!(
        (ada.tz, ada.tz_source),
        ("America/Chicago".parse::<Tz>().unwrap(), TzSource::Campaign)
    );
    let bob = &report.contacts[1];
    assert_eq!(bob.tz_source, TzSource::Column);
    assert_eq!(bob.tz, "America/Los_Angeles".parse::<Tz>().unwrap());
    let di = &report.contacts[2];
    assert_eq!(
        (di.tz, di.tz_source),
        ("Europe/London".parse::<Tz>().unwrap(), TzSource::Country)
    );

    // Ed (line 6) is Ada's number again: merged into line 2.
    assert_eq!(report.merged, vec![(6, 2)]);
    let rejected: Vec<(usize, &str)> = report.rejected.iter().map(|r| (r.line, r.why.as_str())).collect();
    assert_eq!(rejected.len(), 4, "{rejected:#?}");
    assert_eq!(rejected[0].0, 4);
    assert!(
        rejected[0].1.contains("\"not a number\" is not a phone number"),
        "{rejected:?}"
    );
    assert_eq!(rejected[1].0, 7);
    assert!(
        rejected[1]
            .1
            .contains("\"Mars/Olympus_Mons\" is not a tz database name"),
        "{rejected:?}"
    );
    assert_eq!(rejected[2], (8, "2 fields, the header row has 4"));
    assert_eq!(rejected[3], (10, "no number"));
}

#[test]
fn a_national_number_needs_a_default_country_and_a_file_needs_a_number_column() {
    let mut o = opts();
    o.default_country = None;
    let report = import_csv_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/contacts.csv"),
        &o,
    )
    .unwrap();
    let bob = report.rejected.iter().find(|r| r.line == 3).expect("line 3 rejected");
    assert!(bob.why.contains("no country code"), "{bob:?}");
    assert!(report.contacts.iter().any(|c| c.number == "+442079460958"));

    let e = voxline_campaign::contacts::import_csv("name,email\nAda,a@example.com\n".as_bytes(), &opts()).unwrap_err();
    assert!(
        e.to_string().contains("no number column") && e.to_string().contains("name, email"),
        "{e}"
    );
}

#[test]
fn json_contacts_follow_the_same_rules() {
    let text = r#"[
        {"phone": "+1 415 555 2671", "first_name": "Ada", "balance": 12.5},
        {"number": "415-555-2671", "first_name": "Ada again", "plan": "gold"},
        {"phone": "+44 20 7946 0958", "tags": ["a"]},
        "not an object",
        {"first_name": "nobody"}
    ]"#;
    let report = import_json(text, &opts()).expect("json reads");
    assert_eq!(report.contacts.len(), 1);
    let ada = &report.contacts[0];
    assert_eq!(ada.variables.get("balance").map(String::as_str), Some("12.5"));
    // The duplicate fills what the first left out, never overwrites.
    assert_eq!(ada.variables.get("first_name").map(String::as_str), Some("Ada"));
    assert_eq!(ada.variables.get("plan").map(String::as_str), Some("gold"));
    assert_eq!(report.merged, vec![(2, 1)]);
    let why: Vec<(usize, &str)> = report.rejected.iter().map(|r| (r.line, r.why.as_str())).collect();
    assert_eq!(
        why,
        [
            (3, "tags: a value must be a string or a number"),
            (4, "not an object"),
            (5, "no number field (phone, number, phone_number, msisdn)"),
        ]
    );
    assert!(import_json("{\"phone\": 1}", &opts()).is_err());
}

#[test]
fn the_systems_tz_database_gives_single_zone_countries() {
    let zones = CountryZones::system().expect("tzdata installed (make deps)");
    assert_eq!(zones.only_zone("FR"), Some("Europe/Paris".parse().unwrap()));
    assert_eq!(zones.only_zone("US"), None, "the US has several zones");
}
