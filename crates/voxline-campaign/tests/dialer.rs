//! The dialer's rules on a real SQLite store, the calls placed by a small
//! double that answers as each number's script says (the SIP tests of
//! voxline-server place real calls): pacing, retries by outcome, do-not-call
//! at dial time, windows, the last day, pause, and what a stopped node left.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use voxline_campaign::dialer::state;
use voxline_campaign::{
    AttemptReport, CampaignSettings, Dial, Dialer, NodeLimits, Placed, Placer, RetryPolicy, RunEnd,
};
use voxline_store::{now_ms, CallStore, NewContact};

/// How the double answers a number, by its last digit: 0-4 a person who
/// completes (held `hold`), 5 busy, 6 not found, 7 no answer, 8 declines
/// (603), 9 a person whose conversation gives no outcome.
#[derive(Default)]
struct Farm {
    hold: Duration,
    started: Mutex<Vec<(String, Instant)>>,
    up: Mutex<(usize, usize)>,
    /// The attempts' ends reported, and the campaigns finished.
    reports: Mutex<Vec<AttemptReport>>,
    finished: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Placer for Farm {
    fn new_call_id(&self) -> String {
        format!("{:032x}@test", rand_id())
    }

    async fn place(&self, dial: Dial) -> Placed {
        dial.pacer.wait().await;
        self.started.lock().unwrap().push((dial.number.clone(), Instant::now()));
        {
            let mut up = self.up.lock().unwrap();
            up.0 += 1;
            up.1 = up.1.max(up.0);
        }
        let last = dial.number.chars().last().and_then(|c| c.to_digit(10)).unwrap_or(0);
        let placed = |answered: bool, reason: &str, status: Option<u16>, outcome: Option<&str>| Placed {
            answered,
            reason: reason.into(),
            status,
            outcome: outcome.map(String::from),
            machine: false,
        };
        let p = match last {
            0..=4 => {
                tokio::time::sleep(self.hold).await;
                placed(true, "bye", None, Some("completed"))
            }
            5 => placed(false, "busy", Some(486), None),
            6 => placed(false, "rejected", Some(404), None),
            7 => placed(false, "no_answer", Some(487), None),
            8 => placed(false, "rejected", Some(603), None),
            _ => {
                tokio::time::sleep(self.hold).await;
                placed(true, "bye", None, None)
            }
        };
        self.up.lock().unwrap().0 -= 1;
        p
    }

    async fn attempt_done(&self, report: AttemptReport) {
        self.reports.lock().unwrap().push(report);
    }

    async fn campaign_finished(&self, campaign_id: &str) {
        self.finished.lock().unwrap().push(campaign_id.to_string());
    }
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    u128::from(N.fetch_add(1, Ordering::Relaxed)) << 32 | u128::from(std::process::id())
}

/// Windows open all week, all day.
fn always() -> BTreeMap<String, String> {
    [("mon-sun".to_string(), "00:00-24:00".to_string())].into()
}

fn settings(windows: BTreeMap<String, String>) -> CampaignSettings {
    CampaignSettings {
        default_country: Some("GB".into()),
        timezone: "Europe/London".into(),
        windows,
        holidays: Vec::new(),
        last_day: None,
        trunk: Some("carrier".into()),
        caller_id: None,
        max_calls: 3,
        max_cps: 5.0,
        ring_timeout_s: 30,
        retry: RetryPolicy {
            max_attempts: 2,
            busy_s: Some(1),
            no_answer_s: None,
            machine_s: None,
            failed_s: Some(1),
        },
        amd: voxline_campaign::amd::MachineAction::Off,
        voicemail: None,
        webhooks: Vec::new(),
    }
}

async fn store(name: &str) -> CallStore {
    let dir = std::env::temp_dir().join(format!("voxline-dialer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    CallStore::open(&format!("sqlite://{}/calls.db", dir.display()), "node-1")
        .await
        .expect("store")
}

/// A campaign `id` with numbers +44207946{0000 + i} for `last_digits`.
async fn campaign(store: &CallStore, id: &str, s: &CampaignSettings, numbers: &[String]) {
    let json = serde_json::to_string(s).unwrap();
    store.create_campaign(id, id, "renewal", &json).await.expect("create");
    let contacts: Vec<NewContact> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| NewContact {
            number: n.clone(),
            tz: "Europe/London".into(),
            variables: "{\"first_name\":\"Ana\"}".into(),
            source_line: i as i64 + 2,
        })
        .collect();
    store.add_contacts(id, &contacts).await.expect("import");
    assert!(store
        .set_campaign_state(id, &[state::DRAFT], state::RUNNING)
        .await
        .unwrap());
}

fn numbers(endings: &[u32]) -> Vec<String> {
    endings
        .iter()
        .enumerate()
        .map(|(i, d)| format!("+4420794{:03}{d}", 600 + i))
        .collect()
}

const NODE: NodeLimits = NodeLimits {
    max_calls: 0,
    max_cps: 0.0,
    max_call: Duration::from_secs(300),
};

/// Runs campaign `id` on `farm` until the dialer stops (30 s at most).
async fn run_to_end(store: &CallStore, id: &str, farm: Arc<Farm>) -> RunEnd {
    let campaign = store.campaign_by_id(id).await.unwrap().unwrap();
    let dialer = Dialer::new(store.clone(), campaign, farm, NODE).unwrap();
    tokio::time::timeout(Duration::from_secs(30), dialer.run(CancellationToken::new()))
        .await
        .expect("the campaign ends")
        .expect("runs")
}

async fn dispositions(store: &CallStore, id: &str) -> BTreeMap<String, String> {
    store
        .contacts_page(id, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.number, c.disposition.unwrap_or_else(|| format!("({})", c.state))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_stay_within_the_pacing_and_every_contact_ends_once() {
    let store = store("pacing").await;
    let list = numbers(&[0, 1, 2, 3, 4, 9, 0, 1, 2, 3, 4, 9]);
    campaign(&store, "pacing", &settings(always()), &list).await;
    let farm = Arc::new(Farm {
        hold: Duration::from_millis(1000),
        ..Farm::default()
    });
    let dialer = Dialer::new(
        store.clone(),
        store.campaign_by_id("pacing").await.unwrap().unwrap(),
        farm.clone(),
        NODE,
    )
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(30), dialer.run(CancellationToken::new()))
        .await
        .expect("the campaign ends")
        .expect("runs");
    assert_eq!(end, RunEnd::Finished);
    let started = farm.started.lock().unwrap().clone();
    assert_eq!(started.len(), 12, "one call per contact");
    // At most 3 up at once; new calls at least 200 ms apart (5 per second)
    // where the call leaves.
    assert_eq!(farm.up.lock().unwrap().1, 3);
    let gaps: Vec<u128> = started.windows(2).map(|w| (w[1].1 - w[0].1).as_millis()).collect();
    assert!(gaps.iter().all(|&g| g >= 200), "{gaps:?}");
    let d = dispositions(&store, "pacing").await;
    assert_eq!(d.values().filter(|v| *v == "completed").count(), 10, "{d:?}");
    assert_eq!(d.values().filter(|v| *v == "answered").count(), 2, "{d:?}");
    assert_eq!(store.attempts("pacing").await.unwrap().len(), 12);
    let c = store.campaign_by_id("pacing").await.unwrap().unwrap();
    assert_eq!(c.state, state::FINISHED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_retried_or_final_and_dnc_is_read_at_dial_time() {
    let store = store("outcomes").await;
    // busy, not found, no answer, declined, a person, and one put on the
    // do-not-call list after the import.
    let list = numbers(&[5, 6, 7, 8, 0, 1]);
    campaign(&store, "outcomes", &settings(always()), &list).await;
    store.add_dnc("", &[list[5].clone()]).await.unwrap();
    let farm = Arc::new(Farm::default());
    let end = run_to_end(&store, "outcomes", farm.clone()).await;
    assert_eq!(end, RunEnd::Finished);
    let d = dispositions(&store, "outcomes").await;
    let expect: BTreeMap<String, String> = list
        .iter()
        .cloned()
        .zip(
            [
                "attempts_exhausted",
                "invalid_number",
                "no_answer",
                "rejected",
                "completed",
                "dnc",
            ]
            .map(String::from),
        )
        .collect();
    assert_eq!(d, expect);
    // The busy number twice (a retry after 1 s), the others once, the DNC one never.
    let dialled: Vec<String> = farm.started.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(dialled.iter().filter(|n| **n == list[0]).count(), 2, "{dialled:?}");
    assert!(!dialled.contains(&list[5]), "{dialled:?}");
    assert_eq!(dialled.len(), 6, "{dialled:?}");
    let rows = store.contacts_page("outcomes", 0, 10).await.unwrap();
    assert_eq!(rows[0].sip_status, Some(486));
    assert_eq!(rows[1].sip_status, Some(404));
    assert_eq!(rows[0].attempts, 2);
    // Each attempt reported once it was written; the busy one's first with
    // its retry, its second final; the campaign's end once.
    let reports = farm.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 6, "{reports:?}");
    let busy: Vec<&AttemptReport> = reports.iter().filter(|r| r.number == list[0]).collect();
    assert_eq!(busy.len(), 2);
    assert!(busy[0].retry_at.is_some() && busy[0].disposition.is_none(), "{busy:?}");
    assert_eq!(busy[1].disposition.as_deref(), Some("attempts_exhausted"));
    assert_eq!((busy[1].attempt, busy[1].result.as_str()), (2, "busy"));
    let person = reports.iter().find(|r| r.number == list[4]).expect("the person");
    assert_eq!(person.outcome.as_deref(), Some("completed"));
    assert!(person.call_id.ends_with("@test"));
    assert_eq!(*farm.finished.lock().unwrap(), ["outcomes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_outside_its_window_waits_and_a_pause_stops_dialling() {
    let store = store("window").await;
    // Open for one minute a week, at an hour that is not now in London.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let hour = (chrono::Timelike::hour(&now) + 12) % 24;
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [chrono::Datelike::weekday(&now).num_days_from_monday() as usize];
    let windows: BTreeMap<String, String> = [(day.to_string(), format!("{hour:02}:00-{hour:02}:01"))].into();
    let list = numbers(&[0]);
    campaign(&store, "window", &settings(windows), &list).await;
    let farm = Arc::new(Farm::default());
    let campaign = store.campaign_by_id("window").await.unwrap().unwrap();
    let dialer = Dialer::new(store.clone(), campaign, farm.clone(), NODE).unwrap();
    let pausing = {
        let store = store.clone();
        async move {
            // Once the contact was given back with its next opening.
            loop {
                let due = store.next_due("window").await.unwrap();
                if due.is_some_and(|at| at > now_ms()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            store
                .set_campaign_state("window", &[state::RUNNING], state::PAUSED)
                .await
                .unwrap()
        }
    };
    let (end, paused) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), dialer.run(CancellationToken::new())),
        pausing
    );
    assert!(paused);
    assert_eq!(end.expect("the pause ends the run").expect("runs"), RunEnd::Paused);
    assert!(farm.started.lock().unwrap().is_empty(), "dialled outside its window");
    let c = &store.contacts_page("window", 0, 1).await.unwrap()[0];
    assert_eq!((c.state.as_str(), c.attempts), ("pending", 0));
    let opens = chrono::DateTime::from_timestamp_millis(c.next_at)
        .unwrap()
        .with_timezone(&chrono_tz::Europe::London);
    assert_eq!(
        (chrono::Timelike::hour(&opens), chrono::Timelike::minute(&opens)),
        (hour, 0),
        "{opens}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_last_day_a_contact_is_window_expired() {
    let store = store("last-day").await;
    let mut s = settings(always());
    s.last_day = Some("2020-01-01".into());
    campaign(&store, "last-day", &s, &numbers(&[0, 1])).await;
    let farm = Arc::new(Farm::default());
    let campaign = store.campaign_by_id("last-day").await.unwrap().unwrap();
    let dialer = Dialer::new(store.clone(), campaign, farm.clone(), NODE).unwrap();
    let end = dialer.run(CancellationToken::new()).await.expect("runs");
    assert_eq!(end, RunEnd::Finished);
    assert!(farm.started.lock().unwrap().is_empty());
    let d = dispositions(&store, "last-day").await;
    assert!(d.values().all(|v| v == "window_expired"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stopped_node_left_is_moved_on_and_nobody_is_called_twice() {
    let store = store("restart").await;
    let list = numbers(&[0, 1, 2, 3]);
    campaign(&store, "restart", &settings(always()), &list).await;
    // The node stopped with three contacts leased: one before its attempt
    // was written, one ringing (not answered), one answered whose
    // conversation had given its outcome.
    let until = now_ms() + 600_000;
    let never = store.lease_contact("restart", until).await.unwrap().unwrap();
    let ringing = store.lease_contact("restart", until).await.unwrap().unwrap();
    let answered = store.lease_contact("restart", until).await.unwrap().unwrap();
    store.attempt_started(&ringing, 1, "ringing-call").await.unwrap();
    store.attempt_started(&answered, 1, "answered-call").await.unwrap();
    let record = voxline_store::NewCall {
        id: "rec-answered".into(),
        call_id: "answered-call".into(),
        direction: voxline_store::CallDirection::Outbound,
        from_uri: "sip:voxline@127.0.0.1".into(),
        to_uri: answered.number.clone(),
        source_addr: None,
        trunk: Some("carrier".into()),
        route: Some("renewal".into()),
        handler: Some("agent".into()),
        invite_at: now_ms(),
        channel: "sip".into(),
    };
    store.call_started(&record).await.unwrap();
    store.call_answered("rec-answered", "PCMU", None, None).await.unwrap();
    store.call_outcome("rec-answered", "opted_out").await.unwrap();

    let farm = Arc::new(Farm::default());
    let end = run_to_end(&store, "restart", farm.clone()).await;
    assert_eq!(end, RunEnd::Finished);
    let d = dispositions(&store, "restart").await;
    // The answered one keeps its outcome and is not called again; the
    // ringing one is an attempt that failed (retried after 1 s); the one
    // never written and the fourth are called once each.
    assert_eq!(d[&answered.number], "opted_out");
    let dialled: Vec<String> = farm.started.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert!(!dialled.contains(&answered.number), "{dialled:?}");
    assert_eq!(dialled.iter().filter(|n| **n == never.number).count(), 1, "{dialled:?}");
    assert_eq!(
        dialled.iter().filter(|n| **n == ringing.number).count(),
        1,
        "{dialled:?}"
    );
    assert_eq!(dialled.len(), 3, "{dialled:?}");
    let rows = store.contacts_page("restart", 0, 10).await.unwrap();
    let ringing_row = rows.iter().find(|c| c.seq == ringing.seq).unwrap();
    assert_eq!((ringing_row.attempts, d[&ringing.number].as_str()), (2, "completed"));
    let attempts = store.attempts("restart").await.unwrap();
    let results: Vec<Option<String>> = attempts
        .iter()
        .filter(|a| a.1 == 1 && (a.2 == "ringing-call" || a.2 == "answered-call"))
        .map(|a| a.4.clone())
        .collect();
    assert_eq!(
        results,
        [Some("interrupted".to_string()), Some("interrupted".to_string())]
    );
    assert!(attempts.iter().all(|a| a.4.is_some()), "{attempts:?}");
}
