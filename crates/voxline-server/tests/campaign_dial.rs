//! A campaign dialled by `voxline serve` over SIP to a callee farm (SIPp,
//! `load-tests/sipp/uas_callee_farm.xml`: a person, busy, not found, no
//! answer, a decline, early media, a hang-up), with the demo renewal agent
//! talking on the answered calls: each contact gets the disposition of its
//! callee, busy is retried, the do-not-call number is never dialled, the
//! farm sees no call the store does not hold and never more than the
//! limits, and the agent greets the contact by name. And answering-machine
//! detection and the opt-out over SIP.

mod common;
use common::{Server, SippUas};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODELS: &[&str] = common::AGENT_MODELS;

fn campaign(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .arg("campaign")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .expect("voxline runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "voxline campaign {args:?}: {text}");
    text
}

/// The demo renewal agent's route (not recording: the callee's recording
/// of the same call has the same name, its Call-ID).
fn renewal_route() -> String {
    common::agent_route("renewal", "renewal", "demo-renewal", ", record = false")
}

/// The number of callee kind `kind` (the farm's last digit), `n`-th of its kind.
fn number(kind: u32, n: u32) -> String {
    format!("+442079460{n:02}{kind}")
}

/// INVITEs the farm received (distinct Call-IDs) per dialled number, from
/// its message trace.
fn invites_by_number(trace: &str) -> HashMap<String, Vec<String>> {
    let mut by_number: HashMap<String, Vec<String>> = HashMap::new();
    for msg in trace.split("----------------------------------------------- ") {
        let Some(start) = msg.find("INVITE sip:") else {
            continue;
        };
        if !msg[..start].contains("received") {
            continue;
        }
        let rest = &msg[start + "INVITE sip:".len()..];
        let num = rest.split('@').next().unwrap_or_default().to_string();
        let call_id = msg
            .lines()
            .find_map(|l| l.trim().strip_prefix("Call-ID:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let ids = by_number.entry(num).or_default();
        if !ids.contains(&call_id) {
            ids.push(call_id);
        }
    }
    by_number
}

#[test]
fn a_campaign_gives_each_callee_its_disposition_within_the_limits() {
    let _one = common::one_at_a_time();
    if voxline_models::fetched_for_test(MODELS).is_none() {
        return;
    }
    let farm = SippUas::start_with(
        "uas_callee_farm.xml",
        1000,
        &["-trace_msg", "-message_file", "farm-messages.log"],
    );
    let trunk = format!(
        r#"
[campaigns]
max_calls = 2

[[trunk]]
name = "farm"
kind = "ip"
allow = ["127.0.0.9/32"]
host = "127.0.0.1:{}"
max_calls = 2
max_cps = 2
"#,
        farm.port
    );
    let routes = renewal_route();
    let server = Server::start("campaign-dial", &trunk, Some(&routes));
    let cfg = server.config.clone();
    let cfg = cfg.as_path();
    campaign(
        cfg,
        &[
            "create",
            "reminders",
            "--route",
            "renewal",
            "--trunk",
            "farm",
            "--timezone",
            "Europe/London",
            "--country",
            "GB",
            "--window",
            "mon-sun=00:00-24:00",
            "--max-calls",
            "2",
            "--max-cps",
            "2",
            "--ring-timeout",
            "5",
            "--max-attempts",
            "2",
            "--retry-busy",
            "1",
            "--retry-no-answer",
            "none",
            "--retry-failed",
            "none",
        ],
    );
    // Kinds (the last digit): 1 person, 2 busy, 3 not found, 4 no answer,
    // 5 declines, 6 early media then a person, 7 answers and hangs up at once.
    let list: Vec<(u32, u32, &str)> = vec![
        (1, 1, "Ana"),
        (1, 2, "Ben"),
        (2, 1, "Cy"),
        (3, 1, "Di"),
        (4, 1, "Ed"),
        (5, 1, "Fay"),
        (6, 1, "Gus"),
        (7, 1, "Hal"),
        (1, 3, "Ivy"),
    ];
    let mut csv = String::from("phone,first_name\n");
    for (k, n, name) in &list {
        csv.push_str(&format!("{},{name}\n", number(*k, *n)));
    }
    let file = server.dir.join("contacts.csv");
    std::fs::write(&file, csv).expect("contacts");
    campaign(cfg, &["import", "reminders", file.to_str().expect("path")]);
    // Put on the list after the import: read at dial time.
    let dnc = number(1, 3);
    campaign(cfg, &["dnc", &dnc]);
    let started = Instant::now();
    let out = campaign(cfg, &["start", "reminders"]);
    assert!(out.contains("campaign reminders running"), "{out}");

    // Follow it live until it is finished (bounded).
    let mut watch = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["campaign", "status", "reminders", "--watch", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let deadline = Instant::now() + Duration::from_secs(180);
    while watch.try_wait().expect("watch").is_none() {
        assert!(
            Instant::now() < deadline,
            "the campaign did not finish:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let watched = watch.wait_with_output().expect("watch output");
    let watched = String::from_utf8_lossy(&watched.stdout).to_string();
    eprintln!("{watched}\nfinished in {:.1} s", started.elapsed().as_secs_f64());
    assert!(watched.contains("reminders: running |"), "{watched}");
    assert!(
        watched.contains("campaign reminders on route renewal: finished, 9 contacts"),
        "{watched}"
    );

    // One final disposition per contact, the right one for its callee.
    let export = campaign(cfg, &["export", "reminders"]);
    let mut got: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut lines = export.lines();
    let header = lines.next().expect("header");
    assert_eq!(
        header,
        "number,state,disposition,attempts,last_result,sip_status,timezone,source_line,first_name"
    );
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[1], "done", "{l}");
        got.insert(f[0].to_string(), (f[2].to_string(), f[3].to_string(), f[5].to_string()));
    }
    let want = |d: &str, attempts: &str, sip: &str| (d.to_string(), attempts.to_string(), sip.to_string());
    let expected: BTreeMap<String, (String, String, String)> = [
        (number(1, 1), want("answered", "1", "")),
        (number(1, 2), want("answered", "1", "")),
        (number(2, 1), want("attempts_exhausted", "2", "486")),
        (number(3, 1), want("invalid_number", "1", "404")),
        (number(4, 1), want("no_answer", "1", "487")),
        (number(5, 1), want("rejected", "1", "603")),
        (number(6, 1), want("answered", "1", "")),
        (number(7, 1), want("answered", "1", "")),
        (dnc.clone(), want("dnc", "0", "")),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{export}");

    // The farm saw exactly the attempts the store holds, the DNC number never.
    let trace_file = farm.dir.join("farm-messages.log");
    let trace = std::fs::read_to_string(&trace_file).unwrap_or_else(|e| panic!("{}: {e}", trace_file.display()));
    let invites = invites_by_number(&trace);
    assert!(!invites.contains_key(&dnc), "{invites:?}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt
        .block_on(voxline_store::CallStore::open(&server.db_url, "reader"))
        .expect("store");
    let c = rt
        .block_on(store.campaign_by_name("reminders"))
        .expect("read")
        .expect("campaign");
    let attempts = rt.block_on(store.attempts(&c.id)).expect("attempts");
    let mut stored: HashMap<String, Vec<String>> = HashMap::new();
    for (_, _, call_id, number, result) in &attempts {
        assert!(result.is_some(), "an attempt left open: {attempts:?}");
        stored.entry(number.clone()).or_default().push(call_id.clone());
    }
    for (number, ids) in &stored {
        let mut seen = invites.get(number).cloned().unwrap_or_default();
        let mut ids = ids.clone();
        seen.sort();
        ids.sort();
        assert_eq!(seen, ids, "{number}: the farm's INVITEs against the store's attempts");
    }
    assert_eq!(invites.len(), stored.len(), "{invites:?}");

    // Never more than 2 calls up at once (their records' INVITE to end).
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for (_, _, call_id, _, _) in &attempts {
        let records = rt.block_on(store.find_by_call_id(call_id)).expect("records");
        let r = records
            .iter()
            .find(|r| r.direction == "outbound")
            .unwrap_or_else(|| panic!("no record of {call_id}"));
        spans.push((r.invite_at, r.end_at.expect("ended")));
    }
    let most = spans
        .iter()
        .map(|(start, _)| spans.iter().filter(|(s, e)| s <= start && start < e).count())
        .max()
        .unwrap_or(0);
    assert!((1..=2).contains(&most), "{most} calls at once: {spans:?}");

    // The agent spoke first on a person's call, greeting them by name.
    let ana = &stored[&number(1, 1)][0];
    let records = rt.block_on(store.find_by_call_id(ana)).expect("records");
    let record = records.iter().find(|r| r.direction == "outbound").expect("record");
    let lines = rt.block_on(store.transcript(&record.id)).expect("transcript");
    let first = lines.iter().find(|l| l.speaker == "agent").expect("the agent spoke");
    assert!(
        first.text.starts_with("Hello Ana, this is Ava from Harbor Bank"),
        "{lines:?}"
    );
}

/// espeak-ng's `text` (voice en-us) at 16 kHz.
fn espeak16(dir: &Path, name: &str, text: &str) -> Vec<i16> {
    let wav = dir.join(format!("{name}-espeak.wav"));
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng")
        .success();
    assert!(ok, "espeak-ng failed");
    let mut r = hound::WavReader::open(&wav).expect("espeak wav");
    let rate = r.spec().sample_rate as usize;
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    // To 16 kHz by nearest sample (a test voice; the line is narrower still).
    let n = samples.len() * 16_000 / rate;
    (0..n)
        .map(|i| samples[(i * rate / 16_000).min(samples.len() - 1)])
        .collect()
}

/// The Piper voice's `text` (`voxline say`) at 16 kHz.
fn piper16(dir: &Path, name: &str, text: &str) -> Vec<i16> {
    let wav = dir.join(format!("{name}-piper.wav"));
    let out = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["say", text, "--out"])
        .arg(&wav)
        .output()
        .expect("voxline say");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = voxline_media::read_wav_mono(&wav).expect("said");
    voxline_media::rtp_session::resample_clip(&said.samples, said.rate, 16_000)
        .expect("resample")
        .to_vec()
}

fn silence16(secs: f32) -> Vec<i16> {
    vec![0; (secs * 16_000.0) as usize]
}

/// When `channel` of the stereo recording first carries sound after `from` s.
fn first_sound(path: &Path, channel: usize, from: f32) -> Option<f32> {
    let mut r = hound::WavReader::open(path).expect("recording");
    let spec = r.spec();
    let ch = usize::from(spec.channels);
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let rate = spec.sample_rate as usize;
    let win = rate / 50;
    let start = (from * rate as f32) as usize;
    (start / win..samples.len() / ch / win).find_map(|w| {
        let sum: f64 = (w * win..(w + 1) * win)
            .map(|i| f64::from(samples[i * ch + channel]).powi(2))
            .sum();
        ((sum / win as f64).sqrt() > 500.0).then_some((w * win) as f32 / rate as f32)
    })
}

/// Answering-machine detection over SIP, the server calling itself through
/// a trunk: a voicemail greeting with a beep gets the campaign's message
/// after the beep (`voicemail_left`); a person saying "Hello?" hears the
/// agent within 2 s of the end of it; one who then says "Stop calling me"
/// is `opted_out` and on the do-not-call list.
#[test]
fn a_machine_gets_the_message_after_its_beep_and_a_person_hears_the_agent() {
    let _one = common::one_at_a_time();
    if voxline_models::fetched_for_test(MODELS).is_none() {
        return;
    }
    let dir = common::test_dir("amd-callees");
    let greeting = espeak16(
        &dir,
        "machine",
        "Hi, you have reached Sam. I can't take your call. Please leave a message after the tone.",
    );
    let mut machine = silence16(0.4);
    machine.extend(&greeting);
    let beep_ends = (machine.len() as f32 / 16_000.0) + 0.3 + 0.5;
    machine.extend(silence16(0.3));
    machine
        .extend((0..8000).map(|i| (9000.0 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin()) as i16));
    machine.extend(silence16(15.0));
    common::write_wav_rate(&dir.join("machine.wav"), &machine, 16_000);
    let hello = espeak16(&dir, "person", "Hello?");
    let mut person = silence16(0.4);
    person.extend(&hello);
    let hello_ends = person.len() as f32 / 16_000.0;
    person.extend(silence16(12.0));
    common::write_wav_rate(&dir.join("person.wav"), &person, 16_000);
    // A person who answers, lets the agent start, and asks not to be called.
    let mut optout = silence16(0.4);
    optout.extend(piper16(&dir, "optout-hello", "Hello?"));
    optout.extend(silence16(9.0));
    optout.extend(piper16(&dir, "optout-stop", "No. Stop calling me."));
    optout.extend(silence16(12.0));
    common::write_wav_rate(&dir.join("optout.wav"), &optout, 16_000);

    let machine_no = "+442079460501";
    let person_no = "+442079460511";
    let optout_no = "+442079460521";
    let routes = [
        common::playback_route("machine", machine_no, &dir.join("machine.wav"), 25),
        common::playback_route("person", person_no, &dir.join("person.wav"), 10),
        common::playback_route("optout", optout_no, &dir.join("optout.wav"), 30),
        renewal_route(),
    ]
    .concat();
    // The campaign's trunk leads back to this server.
    let server = Server::start_with("campaign-amd", "", Some(&routes), |text| {
        common::with_self_trunk(text, "[campaigns]\nmax_calls = 2")
    });
    let cfg = server.config.clone();
    let cfg = cfg.as_path();
    campaign(
        cfg,
        &[
            "create",
            "amd",
            "--route",
            "renewal",
            "--trunk",
            "self",
            "--timezone",
            "Europe/London",
            "--window",
            "mon-sun=00:00-24:00",
            "--ring-timeout",
            "10",
            "--amd",
            "message",
            "--voicemail",
            "Hello {first_name}, this is Harbor Bank about your new card. Please call us back.",
        ],
    );
    let file = server.dir.join("amd.csv");
    std::fs::write(
        &file,
        format!("phone,first_name\n{machine_no},Sam\n{person_no},Ana\n{optout_no},Bo\n"),
    )
    .expect("contacts");
    campaign(cfg, &["import", "amd", file.to_str().expect("path")]);
    campaign(cfg, &["start", "amd"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = campaign(cfg, &["status", "amd"]);
        if status.contains(": finished,") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished: {status}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let export = campaign(cfg, &["export", "amd"]);
    assert!(
        export.contains(&format!("{machine_no},done,voicemail_left,1")),
        "{export}"
    );
    assert!(export.contains(&format!("{person_no},done,answered,1")), "{export}");
    assert!(export.contains(&format!("{optout_no},done,opted_out,1")), "{export}");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt
        .block_on(voxline_store::CallStore::open(&server.db_url, "reader"))
        .expect("store");
    let c = rt
        .block_on(store.campaign_by_name("amd"))
        .expect("read")
        .expect("campaign");
    let attempts = rt.block_on(store.attempts(&c.id)).expect("attempts");
    // "Stop calling me": on the do-not-call list at once.
    assert!(rt.block_on(store.is_dnc("another campaign", optout_no)).expect("dnc"));
    // Per number: the agent side's verdict and when, the callee's recording.
    let sides = |number: &str| {
        let call_id = &attempts.iter().find(|a| a.3 == number).expect("attempt").2;
        let records = rt.block_on(store.find_by_call_id(call_id)).expect("records");
        let agent = records.iter().find(|r| r.direction == "outbound").expect("agent side");
        let callee = records.iter().find(|r| r.direction == "inbound").expect("callee side");
        let rec = PathBuf::from(callee.recording_path.as_deref().expect("recording"));
        let rec = if rec.is_absolute() { rec } else { server.dir.join(rec) };
        (agent.amd.clone().unwrap_or_default(), agent.amd_ms, rec)
    };
    // The machine: told by its words or beep, the message after the beep.
    let (amd, amd_ms, rec) = sides(machine_no);
    assert!(amd.starts_with("machine"), "{amd}");
    let message_at = first_sound(&rec, 0, 0.0).expect("the machine heard the message");
    eprintln!("machine: {amd} at {amd_ms:?} ms; message at {message_at:.2} s, beep ends {beep_ends:.2} s");
    assert!(
        message_at >= beep_ends,
        "the message started at {message_at} s, before the beep ended at {beep_ends} s"
    );
    let heard = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .arg("transcribe")
        .arg(&rec)
        .output()
        .expect("transcribe");
    let heard = String::from_utf8_lossy(&heard.stdout).to_lowercase();
    assert!(heard.contains("call us back"), "the message: {heard}");

    // The person: heard the agent within 2 s of the end of "Hello?".
    let (amd, amd_ms, rec) = sides(person_no);
    assert!(amd.starts_with("human"), "{amd}");
    let agent_at = first_sound(&rec, 0, 0.0).expect("the person heard the agent");
    eprintln!(
        "person: {amd} at {amd_ms:?} ms; agent heard {:.2} s after the greeting",
        agent_at - hello_ends
    );
    assert!(
        agent_at - hello_ends <= 2.0,
        "the agent came {:.2} s after the greeting",
        agent_at - hello_ends
    );
}

#[path = "../../voxline-store/tests/support/postgres.rs"]
mod postgres;

/// Two `voxline serve` nodes on one PostgreSQL dial one campaign through
/// the callee farm: each contact is dialled once (by one node or the
/// other, never both), both nodes dial, every contact ends with its
/// callee's disposition.
#[test]
fn two_nodes_on_one_postgres_share_a_campaign_without_dialling_twice() {
    let _one = common::one_at_a_time();
    if voxline_models::fetched_for_test(MODELS).is_none() {
        return;
    }
    let pg = postgres::Postgres::start();
    let url = pg.url();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(15);
    let store = loop {
        match rt.block_on(voxline_store::CallStore::open(&url, "reader")) {
            Ok(s) => break s,
            Err(e) => assert!(Instant::now() < deadline, "postgres: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let farm = SippUas::start_with(
        "uas_callee_farm.xml",
        1000,
        &["-trace_msg", "-message_file", "farm-messages.log"],
    );
    let trunk = format!(
        "\n[campaigns]\nmax_calls = 2\n\n[[trunk]]\nname = \"farm\"\nkind = \"ip\"\nallow = [\"127.0.0.9/32\"]\nhost = \"127.0.0.1:{}\"\nmax_calls = 2\nmax_cps = 4\n",
        farm.port
    );
    let routes = renewal_route();
    let node = |name: &'static str| {
        let url = url.clone();
        Server::start_with(&format!("campaign-{name}"), &trunk, Some(&routes), move |text| {
            common::on_store(text, &url).replace("name = \"test\"", &format!("name = \"{name}\""))
        })
    };
    let a = node("node-a");
    let b = node("node-b");
    let cfg = a.config.clone();
    campaign(
        &cfg,
        &[
            "create",
            "shared",
            "--route",
            "renewal",
            "--trunk",
            "farm",
            "--timezone",
            "Europe/London",
            "--window",
            "mon-sun=00:00-24:00",
            "--max-calls",
            "2",
            "--max-cps",
            "4",
            "--ring-timeout",
            "5",
            "--max-attempts",
            "1",
        ],
    );
    // People (kinds 0 and 1: 3 s on the line), not found (3), declines (5).
    let mut csv = String::from("phone,first_name\n");
    let mut want = BTreeMap::new();
    for n in 1..=4 {
        for (kind, disposition) in [(0, "answered"), (1, "answered"), (3, "invalid_number"), (5, "rejected")] {
            csv.push_str(&format!("{},N{n}{kind}\n", number(kind, n)));
            want.insert(number(kind, n), disposition.to_string());
        }
    }
    let file = a.dir.join("contacts.csv");
    std::fs::write(&file, csv).expect("contacts");
    campaign(&cfg, &["import", "shared", file.to_str().expect("path")]);
    campaign(&cfg, &["start", "shared"]);
    let c = rt
        .block_on(store.campaign_by_name("shared"))
        .expect("read")
        .expect("campaign");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = rt
            .block_on(store.campaign_by_id(&c.id))
            .expect("read")
            .expect("campaign");
        if now.state == "finished" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished:\nnode a:\n{}\nnode b:\n{}",
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let rows = rt.block_on(store.contacts_page(&c.id, 0, 100)).expect("contacts");
    let got: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r.number.clone(), r.disposition.clone().unwrap_or_default()))
        .collect();
    assert_eq!(got, want);
    assert!(rows.iter().all(|r| r.attempts == 1), "{rows:?}");
    // The farm got one INVITE per contact; each call's record names the node that placed it.
    let trace_file = farm.dir.join("farm-messages.log");
    let trace = std::fs::read_to_string(&trace_file).unwrap_or_else(|e| panic!("{}: {e}", trace_file.display()));
    let invites = invites_by_number(&trace);
    assert_eq!(invites.len(), want.len(), "{invites:?}");
    assert!(invites.values().all(|ids| ids.len() == 1), "dialled twice: {invites:?}");
    let attempts = rt.block_on(store.attempts(&c.id)).expect("attempts");
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, call_id, _, _) in &attempts {
        let records = rt.block_on(store.find_by_call_id(call_id)).expect("records");
        let r = records
            .iter()
            .find(|r| r.direction == "outbound")
            .expect("the call's record");
        *by_node.entry(r.node.clone()).or_default() += 1;
    }
    eprintln!("calls per node: {by_node:?}");
    assert_eq!(by_node.values().sum::<usize>(), want.len());
    assert!(
        by_node.get("node-a").is_some_and(|n| *n > 0) && by_node.get("node-b").is_some_and(|n| *n > 0),
        "both nodes dial: {by_node:?}"
    );
}
