//! `voxline campaign` against a real SQLite store: a campaign created on
//! an agent route, contacts imported from a file with broken rows (each
//! named by line; the good ones stored once), its status, the do-not-call
//! list; bad settings named by their field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A config with a SQLite store in a fresh folder, an agent route and an echo route.
fn config(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("voxline-campaign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let text = format!(
        r#"
[sip]
[[sip.listener]]
transport = "udp"
bind = "127.0.0.1:{port}"
[media]
bind_ip = "127.0.0.1"
[store]
url = "sqlite://{db}"

[[route]]
name = "renewal"
handler = "agent"
params = {{ domain = "{pack}" }}

[[route]]
name = "echo"
handler = "echo"
"#,
        db = dir.join("calls.db").display(),
        pack = repo().join("domains/demo-renewal").display(),
    );
    let file = dir.join("voxline.toml");
    std::fs::write(&file, text).expect("config");
    (dir, file)
}

fn campaign(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxline"))
        .arg("campaign")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .expect("voxline runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_campaign_is_created_its_contacts_imported_and_counted() {
    let (dir, cfg) = config("life");
    let create = |name: &str, route: &str, window: &str| {
        campaign(
            &cfg,
            &[
                "create",
                name,
                "--route",
                route,
                "--timezone",
                "America/Chicago",
                "--country",
                "US",
                "--window",
                window,
                "--window",
                "sat=10:00-16:00",
                "--holiday",
                "2026-12-25",
            ],
        )
    };
    let o = create("renewals", "renewal", "mon-fri=09:00-20:00");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("campaign renewals created on route renewal"),
        "{}",
        text(&o)
    );

    // Refused, each with its reason.
    let o = create("renewals", "renewal", "mon-fri=09:00-20:00");
    assert!(
        !o.status.success() && text(&o).contains("exists already"),
        "{}",
        text(&o)
    );
    let o = create("night", "renewal", "mon-fri=20:00-09:00");
    assert!(
        !o.status.success() && text(&o).contains("windows.mon-fri"),
        "{}",
        text(&o)
    );
    let o = create("echoes", "echo", "mon-fri=09:00-20:00");
    assert!(
        !o.status.success() && text(&o).contains("not \"agent\""),
        "{}",
        text(&o)
    );
    let o = create("lost", "nowhere", "mon-fri=09:00-20:00");
    assert!(
        !o.status.success() && text(&o).contains("no route named \"nowhere\""),
        "{}",
        text(&o)
    );

    // Broken rows are named by line; with --all-or-nothing nothing is stored.
    let contacts = repo().join("crates/voxline-campaign/tests/data/contacts.csv");
    let contacts = contacts.to_str().expect("utf-8 path");
    let o = campaign(&cfg, &["import", "renewals", contacts, "--all-or-nothing"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing stored"), "{}", text(&o));
    let o = campaign(&cfg, &["status", "renewals"]);
    assert!(text(&o).contains("0 contacts"), "{}", text(&o));

    // Without it the good rows are stored; the exit code still says rows were rejected.
    let o = campaign(&cfg, &["import", "renewals", contacts]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("4 contacts, 1 merged, 4 rejected"), "{out}");
    assert!(
        out.contains("line 4: rejected: \"not a number\" is not a phone number"),
        "{out}"
    );
    assert!(out.contains("line 6: the number of line 2 again, merged"), "{out}");
    assert!(out.contains("4 added, 0 already there"), "{out}");

    // A clean file: exit 0; a number already in the campaign is left as it was.
    let more = dir.join("more.json");
    std::fs::write(
        &more,
        r#"[{"phone": "+14155552671", "first_name": "Ada"}, {"phone": "+1 415 555 2675", "first_name": "Jo"}]"#,
    )
    .expect("json");
    let o = campaign(&cfg, &["import", "renewals", more.to_str().expect("path")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 added, 1 already there"), "{}", text(&o));

    let o = campaign(&cfg, &["status", "renewals"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("draft, 5 contacts") && text(&o).contains("pending: 5"),
        "{}",
        text(&o)
    );

    let o = campaign(&cfg, &["dnc", "(415) 555-2671", "+14155552671", "--country", "us"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 number(s) added to the global do-not-call list (1 already on it)"),
        "{}",
        text(&o)
    );
    let o = campaign(&cfg, &["dnc", "12345"]);
    assert!(
        !o.status.success() && text(&o).contains("no country code"),
        "{}",
        text(&o)
    );
    let o = campaign(&cfg, &["status", "nope"]);
    assert!(
        !o.status.success() && text(&o).contains("no campaign named \"nope\""),
        "{}",
        text(&o)
    );
}
