//! Browser calls with a real browser: Debian's Chromium, headless, driven
//! by chromedriver over WebDriver, its microphone a WAV file of a question
//! said by the Piper voice. The page at /talk/<route> calls the agent over
//! WebRTC (ICE on loopback, DTLS-SRTP, Opus); the tests check what the
//! page shows, the call's record, and that the browser logged no error.
//! Screenshots of the page go to docs/screenshots/.

mod common;

use common::{
    caller_script, free_port, one_at_a_time, repo, settled_records, test_dir, transcript_lines, Server, DEFAULT_ROUTES,
    WRITE_TOKEN,
};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo bank's agent on route "bank", reachable from browsers too.
fn browser_routes() -> String {
    bank_routes(&repo().join("domains").join("demo-bank"), true)
}

/// The pack at `domain` on route "bank" (`webrtc`: browsers may call it),
/// beside the default routes.
fn bank_routes(domain: &Path, webrtc: bool) -> String {
    format!(
        r#"
[[route]]
name = "bank"
trunk = "local"
number = {{ exact = "bank" }}
handler = "agent"
webrtc = {webrtc}
params = {{ domain = "{}", max_seconds = 60 }}
{DEFAULT_ROUTES}"#,
        domain.display()
    )
}

/// Browser calls connect in well under this on loopback.
const WEBRTC: &str = "[webrtc]\nconnect_timeout_s = 5\nmax_calls = 4\n";

/// Chromium under chromedriver, with `mic` as its microphone.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
}

/// chromedriver's own command for the browser's console (not in W3C WebDriver).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium whose
    /// microphone plays `mic` once (then silence).
    fn start(name: &str, mic: &Path) -> Browser {
        let dir = test_dir(&format!("chromium-{name}"));
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed: make deps");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1100,820",
                    format!("--user-data-dir={}", dir.join("profile").display()),
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    format!("--use-file-for-fake-audio-capture={}%noloop", mic.display()),
                    "--autoplay-policy=no-user-gesture-required",
                    // ICE over loopback: the only interface a test may use.
                    "--allow-loopback-in-peer-connection",
                ],
            },
        });
        let caps = caps.as_object().cloned().expect("an object");
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Browser {
            rt,
            client: Some(client),
            driver,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open")
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).expect("page loads");
    }

    /// Runs `js` (a function body) in the page; what it returns.
    fn eval(&self, js: &str) -> serde_json::Value {
        self.rt
            .block_on(self.client().execute(js, vec![]))
            .unwrap_or_else(|e| panic!("{js}: {e}"))
    }

    /// Waits up to `within` for `js` to return something truthy; returns it.
    fn wait_until(&self, js: &str, within: Duration, what: &str) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(js);
            let truthy = match &v {
                serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                serde_json::Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not seen within {within:?}; the page shows: {}",
                self.eval("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn click(&self, css: &str) {
        self.rt
            .block_on(async {
                let e = self.client().find(Locator::Css(css)).await?;
                e.click().await
            })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Saves a screenshot of the page to docs/screenshots/NAME.png.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.client().screenshot()).expect("screenshot");
        let dir = repo().join("docs").join("screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Panics with them if the page logged any error.
    fn assert_no_console_errors(&self) {
        let errors = self.console_errors();
        assert!(errors.is_empty(), "the browser logged errors: {errors:?}");
    }

    /// What the page logged at the error level (console errors, failed loads).
    fn console_errors(&self) -> Vec<String> {
        let v = self
            .rt
            .block_on(self.client().issue_cmd(BrowserLog))
            .expect("chromedriver's browser log");
        v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The page's transcript: (speaker class, words) per line.
const TRANSCRIPT_JS: &str = "return [...document.querySelectorAll('#transcript li')].map(li => [li.className.replace('line ', ''), li.querySelector('.said').textContent]);";

fn page_lines(b: &Browser) -> Vec<(String, String)> {
    b.eval(TRANSCRIPT_JS)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l[0].as_str().unwrap_or_default().to_string(),
                l[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A browser calls the demo bank from /talk/bank and asks where the
/// Downtown branch is: the page shows the agent's answer with the
/// branch's address as it is said, keys from its keypad reach the
/// conversation, the hang-up button ends the call, and
/// the record is a WebRTC call (Opus, DTLS-SRTP) whose transcript holds
/// the question and the address; the browser logged no error.
#[test]
fn a_browser_calls_the_agent_and_hears_the_pack_s_answer() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let server = Server::start("browser-call", WEBRTC, Some(&browser_routes()));
    // The greeting and the recording notice take ~7 s after the connection.
    let (mic, _) = caller_script(&server.dir, "downtown", &[(9.0, "Where is the Downtown branch?")], 1.0);
    let b = Browser::start("call", &mic);
    b.goto(&format!(
        "http://127.0.0.1:{}/talk/bank#token={WRITE_TOKEN}&autostart=1",
        server.http_port
    ));
    b.wait_until(
        "return document.getElementById('status').dataset.state === 'connected'",
        Duration::from_secs(20),
        "the connected state",
    );
    b.wait_until(
        "return [...document.querySelectorAll('#transcript li.agent .said')].some(s => s.textContent.includes('Harbor Street'))",
        Duration::from_secs(60),
        "the agent's answer with the Downtown branch's address",
    );
    let shown = page_lines(&b);
    eprintln!("page: {shown:?}");
    assert!(
        shown
            .iter()
            .any(|(who, text)| who == "caller" && text.to_lowercase().contains("downtown")),
        "the page shows the caller's question: {shown:?}"
    );
    let call_id = b.eval("return document.getElementById('call-id').textContent");
    let call_id = call_id.as_str().expect("the page shows the call's id").to_string();
    b.screenshot("talk");
    // Keys from the page's keypad go in-band (RFC 4733) through the relay
    // and reach the conversation (nothing is asked for: they are kept as
    // typed ahead for the next prompt, and logged without the digit).
    for key in ["4", "2", "#"] {
        b.eval(&format!(
            "[...document.querySelectorAll('#keypad button')].find(x => x.textContent === '{key}').click(); return true"
        ));
    }
    server.wait_for_log("the caller keyed a digit", 3, Duration::from_secs(15));
    b.click("#hangup");
    b.wait_until(
        "return document.getElementById('status').dataset.state === 'ended'",
        Duration::from_secs(10),
        "the ended state",
    );
    let records = settled_records(&server, |r| r["call_id"] == call_id.as_str());
    let r = records
        .iter()
        .find(|r| r["call_id"] == call_id.as_str())
        .expect("the call's record");
    assert_eq!(r["channel"], "webrtc", "{r}");
    assert_eq!(r["codec"], "opus", "{r}");
    assert_eq!(r["srtp"], "dtls-srtp", "{r}");
    assert_eq!(r["route"], "bank", "{r}");
    assert_eq!(r["from_uri"], "webrtc:test-write", "{r}");
    assert_eq!(r["end_reason"], "hangup", "{r}");
    assert_eq!(r["hangup_by"], "caller", "{r}");
    assert!(
        r["packets_received"].as_u64().unwrap_or(0) > 100,
        "the browser's audio arrived: {r}"
    );
    let lines = transcript_lines(&server, &call_id);
    assert!(
        lines
            .iter()
            .any(|(who, t)| who == "agent" && t.contains("Harbor Street")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(who, t)| who == "caller" && t.to_lowercase().contains("downtown")),
        "{lines:?}"
    );
    b.assert_no_console_errors();
}

/// A caller in the browser talks over the agent's answer: the agent stops
/// (the log says so), the page shows the answer cut where the caller came
/// in, and the next question is answered.
#[test]
fn a_browser_caller_cuts_the_agent_off() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let server = Server::start("browser-barge-in", WEBRTC, Some(&browser_routes()));
    // The opening hours take several seconds to say; the caller cuts in
    // about two seconds into them (the answer starts ~1 s after the question).
    let (mic, _) = caller_script(
        &server.dir,
        "cut-answer",
        &[
            (9.0, "What are the opening hours of your branches?"),
            (3.5, "Sorry, where is the Riverside branch?"),
        ],
        1.0,
    );
    let b = Browser::start("barge-in", &mic);
    b.goto(&format!(
        "http://127.0.0.1:{}/talk/bank#token={WRITE_TOKEN}&autostart=1",
        server.http_port
    ));
    let cut = b.wait_until(
        "return [...document.querySelectorAll('#transcript li.agent .said')].map(s => s.textContent).find(t => t.endsWith('[cut off by the caller]')) || ''",
        Duration::from_secs(60),
        "an answer cut off by the caller",
    );
    // Whisper may hear "river side": the words run together count.
    b.wait_until(
        "return [...document.querySelectorAll('#transcript li.caller .said')].some(s => s.textContent.toLowerCase().replace(/\\s+/g, '').includes('riverside'))",
        Duration::from_secs(30),
        "the caller's second question",
    );
    eprintln!(
        "cut: {cut}
page: {:?}",
        page_lines(&b)
    );
    b.screenshot("talk-barge-in");
    assert!(
        server.log_text().contains("barge-in: the agent stopped"),
        "{}",
        server.log_text()
    );
    b.click("#hangup");
    b.wait_until(
        "return document.getElementById('status').dataset.state === 'ended'",
        Duration::from_secs(10),
        "the ended state",
    );
    b.assert_no_console_errors();
}

/// The console with a call the test places over SIP (`voxline call`, a
/// real SIP/RTP caller asking where the Downtown branch is): the live page
/// is pushed the call and its transcript as it is said and hangs it up;
/// the history finds it by words of its transcript (and not by others);
/// the call's page shows its facts, the transcript, each turn's stages,
/// and plays its recording; the latency chart holds the call's turns. No
/// page logs an error; each is screenshotted.
#[test]
fn the_console_shows_a_sip_call_live_then_in_the_history_and_on_its_page() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let server = Server::start("console", WEBRTC, Some(&browser_routes()));
    let (question, _) = caller_script(&server.dir, "console-q", &[(0.2, "Where is the Downtown branch?")], 0.2);
    let b = Browser::start("console", &question);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    b.goto(&format!("{base}/console#token={WRITE_TOKEN}"));
    b.wait_until(
        "return document.getElementById('live-state').dataset.state === 'connected'",
        Duration::from_secs(10),
        "the live socket",
    );
    // The caller asks once the agent is quiet, then stays on the line
    // until the console hangs it up.
    let target = format!("sip:bank@127.0.0.1:{}", server.sip_port);
    let caller = {
        let (dir, target, play) = (server.dir.clone(), target.clone(), question.clone());
        std::thread::spawn(move || {
            common::voxline(
                &[
                    "call",
                    &target,
                    "--play",
                    play.to_str().unwrap_or_default(),
                    "--after-quiet-ms",
                    "2500",
                    "--max-seconds",
                    "90",
                ],
                &dir,
            )
        })
    };
    b.wait_until(
        "return [...document.querySelectorAll('.live .line.agent .said')].some(s => s.textContent.includes('Harbor Street'))",
        Duration::from_secs(60),
        "the agent's answer pushed to the live page",
    );
    let live = b.eval(
        "const c = document.querySelector('.live'); return { id: c.dataset.call, text: c.innerText, \
         lines: [...c.querySelectorAll('.line')].map(l => l.className + ': ' + l.querySelector('.said').textContent) }",
    );
    eprintln!("live: {live}");
    let call_id = live["id"].as_str().expect("the live call's id").to_string();
    let text = live["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("inbound") && text.contains("bank") && text.contains("sip"),
        "{text}"
    );
    assert!(
        live["lines"].as_array().is_some_and(|l| l.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("line caller") && l.to_lowercase().contains("downtown")))),
        "the caller's question pushed: {live}"
    );
    b.screenshot("console-live");
    b.click(".live button.hangup");
    b.wait_until(
        "return document.querySelectorAll('.live').length === 0 && document.getElementById('live-empty').hidden === false",
        Duration::from_secs(15),
        "the call gone from the live page",
    );
    let out = caller.join().expect("the caller");
    eprintln!("{out}");
    let records = settled_records(&server, |r| r["call_id"] == call_id.as_str());
    let r = records
        .iter()
        .find(|r| r["call_id"] == call_id.as_str())
        .expect("the call's record");
    assert_eq!(r["end_reason"], "operator", "hung up from the console: {r}");
    assert!(r["recording_path"].is_string(), "{r}");

    // The history: found by words the agent said, in another case; not by others.
    b.goto(&format!("{base}/console/calls?q=HARBOR%20street&channel=sip"));
    b.wait_until(
        &format!("return document.body.dataset.loaded === 'calls' && !!document.querySelector('tr[data-call=\"{call_id}\"]')"),
        Duration::from_secs(10),
        "the call in the history searched by its transcript",
    );
    assert_eq!(
        b.eval("return document.querySelector('form#filters').elements.q.value"),
        "HARBOR street",
        "the filter shown is the one searched"
    );
    b.screenshot("console-history");
    b.eval("const f = document.getElementById('filters'); f.elements.q.value = 'lighthouse keeper'; f.requestSubmit(); return true");
    b.wait_until(
        "return document.getElementById('calls-count').textContent === '0 calls'",
        Duration::from_secs(10),
        "no call for words nobody said",
    );

    // The call's page.
    b.goto(&format!("{base}/console/calls/{call_id}"));
    b.wait_until(
        "return document.body.dataset.loaded === 'call'",
        Duration::from_secs(15),
        "the call page",
    );
    let page = b.eval(
        "return { facts: document.getElementById('call-facts').innerText, \
         lines: [...document.querySelectorAll('#call-transcript .line')].map(l => l.innerText), \
         turns: document.querySelectorAll('#waterfall .turn').length, \
         packet_bars: document.querySelectorAll('#waterfall .bar-part.first_rtp').length, \
         asked: [...document.querySelectorAll('#waterfall .asked')].map(a => a.textContent), \
         tools: document.querySelectorAll('#tools tbody tr').length, \
         no_tools: !document.getElementById('no-tools').hidden }",
    );
    eprintln!("call page: {page}");
    // A question only: no tool rows, and the page says so.
    assert_eq!(
        (page["tools"].as_u64(), page["no_tools"].as_bool()),
        (Some(0), Some(true)),
        "{page}"
    );
    assert!(page["facts"].as_str().is_some_and(|f| f.contains("operator")), "{page}");
    assert!(
        page["lines"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("Harbor Street")))),
        "{page}"
    );
    assert!(page["turns"].as_u64().unwrap_or(0) >= 1, "{page}");
    assert!(page["packet_bars"].as_u64().unwrap_or(0) >= 1, "{page}");
    let seconds = b.wait_until(
        "const p = document.getElementById('player'); return p.readyState >= 1 && p.duration > 1 ? p.duration : 0",
        Duration::from_secs(15),
        "the recording loaded in the player",
    );
    eprintln!("recording: {seconds} s");
    // The recording goes as it is, with its length, even to a client that
    // takes gzip (the pages and JSON are compressed).
    let (rec, wav) = server.get_taking_gzip(&format!("/api/calls/{call_id}/recording"));
    assert_eq!(rec.header("content-encoding"), None);
    assert_eq!(rec.header("content-length"), Some(wav.len().to_string().as_str()));
    assert!(wav.starts_with(b"RIFF"), "a WAV file");
    // A line's time seeks the recording there.
    b.eval("document.querySelectorAll('#call-transcript .line')[1].click(); return true");
    b.wait_until(
        "return document.getElementById('player').currentTime > 0.5",
        Duration::from_secs(10),
        "the player moved to the line's time",
    );
    b.screenshot("console-call");

    // Latency and load over time: the call's turns are in it.
    let load = server.request("GET", "/api/load?minutes=15", Some(common::READ_TOKEN), None);
    assert_eq!(load.status, 200, "{}", load.body);
    let load = load.json();
    let spans: Vec<&serde_json::Value> = load["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&load["now"]))
        .filter(|s| s["turns"].as_u64().unwrap_or(0) > 0)
        .collect();
    assert!(!spans.is_empty(), "the call's turns are in the load history: {load}");
    assert!(
        spans.iter().all(|s| s["v2v_p50_ms"].as_f64().is_some_and(|ms| ms > 0.0)
            && s["v2v_p95_ms"].as_f64() >= s["v2v_p50_ms"].as_f64()),
        "{load}"
    );
    b.goto(&format!("{base}/console/load"));
    b.wait_until(
        "return document.body.dataset.loaded === 'load' && document.querySelectorAll('#chart-v2v .dot.p50').length > 0",
        Duration::from_secs(15),
        "the voice-to-voice chart with the call's turns",
    );
    let summary = b.eval("return document.getElementById('load-now').textContent");
    assert!(summary.as_str().is_some_and(|t| t.contains("turn")), "{summary}");
    b.screenshot("console-load");
    b.assert_no_console_errors();
}

/// A campaign run from the console: created with a CSV uploaded through
/// the page's file input (a bad line refused and named), started from its
/// page, dialled over SIP through a trunk back to this server (which
/// answers these numbers 404), its progress and dispositions shown until
/// it is finished, the attempts over time charted; no console errors.
#[test]
fn the_console_runs_a_campaign_from_a_csv_upload() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let routes = common::agent_route("renewal", "renewal", "demo-renewal", ", record = false");
    let server = Server::start_with("console-campaign", "", Some(&routes), |text| {
        common::with_self_trunk(text, "[campaigns]\nmax_calls = 2\n")
    });
    let csv = server.dir.join("december.csv");
    std::fs::write(
        &csv,
        "first_name,phone\nAda,+1 415 555 0101\nBob,(415) 555-0102\nCy,not a number\nDi,+1 415 555 0104\n",
    )
    .expect("contacts");
    let b = Browser::start("console-campaign", &server.dir.join("short.wav"));
    let base = format!("http://127.0.0.1:{}", server.http_port);
    b.goto(&format!("{base}/console/campaigns#token={WRITE_TOKEN}"));
    b.wait_until(
        "return document.body.dataset.loaded === 'campaigns'",
        Duration::from_secs(10),
        "the campaigns page",
    );
    assert_eq!(
        b.eval("return document.getElementById('campaigns-empty').hidden"),
        false,
        "no campaigns yet"
    );
    b.eval(
        "const f = document.getElementById('new-campaign').elements; \
         f.name.value = 'december'; f.route.value = 'renewal'; f.trunk.value = 'self'; \
         f.timezone.value = 'America/Chicago'; f.default_country.value = 'us'; \
         f.window.value = 'mon-sun 00:00-24:00'; f.max_calls.value = '2'; return true",
    );
    b.rt.block_on(async {
        let input = b.client().find(Locator::Css("#new-campaign input[type=file]")).await?;
        input.send_keys(&csv.display().to_string()).await
    })
    .expect("the CSV chosen in the file input");
    b.click("#new-campaign button[type=submit]");
    let note = b.wait_until(
        "return document.body.dataset.loaded === 'campaign' && document.getElementById('error').textContent",
        Duration::from_secs(15),
        "the campaign's page with the upload's report",
    );
    eprintln!("upload: {note}");
    let note = note.as_str().unwrap_or_default();
    assert!(note.contains("3 contacts added"), "{note}");
    assert!(note.contains("line 4") && note.contains("not a number"), "{note}");
    assert_eq!(b.eval("return document.body.dataset.campaignState"), "draft");
    b.click("button[data-move=start]");
    b.wait_until(
        "return document.body.dataset.campaignState === 'finished'",
        Duration::from_secs(60),
        "the campaign finished",
    );
    let shown = b.wait_until(
        "const r = document.querySelector('tr[data-disposition=invalid_number]'); \
         return r && document.querySelectorAll('#chart-attempts .dot').length > 0 ? r.innerText : ''",
        Duration::from_secs(10),
        "the dispositions and the attempts chart",
    );
    assert!(shown.as_str().is_some_and(|t| t.contains('3')), "{shown}");
    let progress = b.eval("return document.getElementById('campaign-progress').textContent");
    assert!(
        progress.as_str().is_some_and(|t| t.starts_with("3 of 3 contacts done")),
        "{progress}"
    );
    let api = server
        .api("GET", "/api/campaigns/december/timeline?bucket_s=3600", None)
        .json();
    let dialled: u64 = api["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["results"]["invalid_number"].as_u64())
        .sum();
    assert_eq!(dialled, 3, "{api}");
    b.screenshot("console-campaign");
    b.goto(&format!("{base}/console/campaigns"));
    b.wait_until(
        "return document.body.dataset.loaded === 'campaigns' && !!document.querySelector('tr[data-campaign=december]')",
        Duration::from_secs(10),
        "the campaign listed",
    );
    b.assert_no_console_errors();
}

/// `src` copied into `dst`, folders and all.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("folder");
    for e in std::fs::read_dir(src).expect("read folder").flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

/// The packs in the console: the list, one pack's knowledge and rules; the
/// test chat asks the demo bank's agent (the real model) a question it
/// answers from its knowledge and one it cannot; the second answer is
/// marked wrong and given right on the page, and asking again gets the
/// right one (the pack, a copy, was written and reloaded); a question that
/// needs a tool gets the tool told, not run; no console errors.
#[test]
fn the_console_s_test_chat_answers_and_takes_a_correction() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let pack = test_dir("console-pack-copy").join("bank");
    copy_tree(&repo().join("domains").join("demo-bank"), &pack);
    let routes = bank_routes(&pack, false);
    let server = Server::start("console-pack", "", Some(&routes));
    let b = Browser::start("console-pack", &server.dir.join("short.wav"));
    let base = format!("http://127.0.0.1:{}", server.http_port);
    b.goto(&format!("{base}/console/packs#token={WRITE_TOKEN}"));
    b.wait_until(
        "return document.body.dataset.loaded === 'packs' && !!document.querySelector('tr[data-route=bank]')",
        Duration::from_secs(10),
        "the packs listed",
    );
    b.goto(&format!("{base}/console/packs/bank"));
    b.wait_until(
        "return document.body.dataset.loaded === 'pack' && document.querySelectorAll('#knowledge details').length > 0",
        Duration::from_secs(10),
        "the pack's knowledge",
    );
    assert!(
        b.eval("return document.getElementById('rules').innerText")
            .as_str()
            .is_some_and(|t| t.contains("rules.toml")),
        "the rules file is shown"
    );
    let ask = |question: &str, want: &str, what: &str| -> String {
        let before = b.eval("return Number(document.getElementById('chat').dataset.answers || 0)");
        b.eval(&format!(
            "const f = document.getElementById('chat-form'); f.elements.said.value = {}; f.requestSubmit(); return true",
            serde_json::Value::from(question)
        ));
        b.wait_until(
            &format!(
                "const l = document.getElementById('chat'); return Number(l.dataset.answers || 0) > {before} && \
                 [...l.querySelectorAll('.line.answer .said, .line.say .said')].slice({before}).map(s => s.textContent).join(' | ').includes({})",
                serde_json::Value::from(want)
            ),
            Duration::from_secs(60),
            what,
        );
        b.eval(&format!(
            "return [...document.querySelectorAll('#chat .line.answer .said, #chat .line.say .said')].slice({before}).map(s => s.textContent).join(' | ')"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    let known = ask(
        "Where is the Downtown branch?",
        "Harbor Street",
        "the answer from the knowledge",
    );
    eprintln!("known: {known}");
    let unknown = ask(
        "Do you have a branch in Springfield?",
        "",
        "an answer about Springfield",
    );
    eprintln!("unknown: {unknown}");
    assert!(!unknown.contains("Elm Road"), "{unknown}");
    b.eval("const w = [...document.querySelectorAll('#chat .wrong')]; w[w.length - 1].click(); return true");
    b.eval(
        "const f = document.querySelector('#chat form.teach'); \
         f.elements.answer.value = 'Yes: our Springfield branch is at 4 Elm Road, open weekdays from nine to five.'; \
         f.requestSubmit(); return true",
    );
    b.wait_until(
        "return [...document.querySelectorAll('#chat .note')].some(n => n.textContent.startsWith('Corrected')) && \
         document.getElementById('curated').innerText.includes('Springfield')",
        Duration::from_secs(30),
        "the correction saved and listed",
    );
    let corrected = ask(
        "Do you have a branch in Springfield?",
        "4 Elm Road",
        "the corrected answer",
    );
    eprintln!("corrected: {corrected}");
    // Tools do not run from the test chat: the agent's call is only told.
    b.eval(
        "const f = document.getElementById('chat-form'); \
         f.elements.said.value = \"What's my balance? My account number is 1 2 3 4 5 6 7 8.\"; f.requestSubmit(); return true",
    );
    let told = b.wait_until(
        "const l = document.getElementById('chat'); return Number(l.dataset.replies || 0) >= 4 && \
         [...l.querySelectorAll('.line.note .said')].map(s => s.textContent).find(t => t.startsWith('would call check_balance')) || ''",
        Duration::from_secs(60),
        "the balance tool told, not run",
    );
    eprintln!("told: {told}");
    assert!(
        told.as_str()
            .is_some_and(|t| t.contains("12345678") && t.contains("tools do not run here")),
        "{told}"
    );
    let curated = std::fs::read_dir(&pack)
        .expect("pack")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|t| t.contains("4 Elm Road"));
    assert!(curated, "the correction is written into the pack's files");
    b.screenshot("console-pack");
    b.assert_no_console_errors();
}

/// A browser-like offer: Opus and telephone-event (or only `codecs`), one
/// host candidate at `candidate` where nothing answers.
fn offer(codecs: &str, candidate: &str) -> String {
    let formats: Vec<&str> = codecs
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:")?.split(' ').next())
        .collect();
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2130706431 {candidate} typ host\r\n\
a=ice-ufrag:Zx9q\r\na=ice-pwd:Tq0v4kP8mW2rLs6yBn1cDf3g\r\n\
a=fingerprint:sha-256 3A:1F:9C:4B:27:D0:88:E5:61:0A:B3:7C:54:F2:19:AD:C6:3E:90:12:7B:E8:45:D1:0F:A2:6C:93:58:B7:24:E1\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n{codecs}",
        formats.join(" ")
    )
}

const OPUS: &str =
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:126 telephone-event/8000\r\n";
const G711_ONLY: &str = "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A page's socket to `route`; `script` is sent in order (text frames;
/// `bin:` for a binary one); returns every message the server sent until
/// it closed the socket (panics if it stays open 15 s). `ping:` sends a
/// WebSocket ping.
async fn page_socket(port: u16, route: &str, script: &[String]) -> Vec<serde_json::Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    // A route's call socket, or the path of another socket.
    let path = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/api/talk/{route}")
    };
    let (mut ws, _): (Socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
        .await
        .expect("the socket opens");
    for m in script {
        let frame = if let Some(b) = m.strip_prefix("bin:") {
            Message::Binary(b.as_bytes().to_vec().into())
        } else if m == "ping:" {
            Message::Ping(Vec::new().into())
        } else {
            Message::Text(m.clone().into())
        };
        // The server may close before the whole script is sent (a flood).
        if ws.send(frame).await.is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("the server kept the socket open 15 s; it sent {got:?}"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return got,
            Ok(Some(Ok(Message::Text(t)))) => {
                got.push(serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}")))
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The console's live-calls socket.
const LIVE: &str = "/api/live/socket";

fn hello(token: &str) -> String {
    serde_json::json!({"type": "hello", "token": token}).to_string()
}

fn offer_message(sdp: &str) -> String {
    serde_json::json!({"type": "offer", "sdp": sdp}).to_string()
}

/// The error the server sent (every bad input gets one; a call that had
/// started is then `ended` too).
fn error_of(case: &str, got: &[serde_json::Value]) -> String {
    let errors: Vec<&serde_json::Value> = got.iter().filter(|m| m["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{case}: one error: {got:?}");
    if let Some(last) = got.last().filter(|m| m["type"] != "error") {
        assert_eq!(last["type"], "ended", "{case}: only the end follows the error: {got:?}");
    }
    errors[0]["message"].as_str().unwrap_or_default().to_string()
}

/// Bad input on the browser side: garbage, binary frames, a wrong token, a
/// route that takes no browser calls, a malformed offer, an offer without
/// Opus, a flood of messages, an offer whose ICE never completes, a message
/// over the size limit; on the console's live-calls socket: another message
/// than hello, a wrong token, a second hello, a flood; more sockets than
/// the node takes. Each gets a clear error and a closed socket; the
/// server stays healthy, every attempt that got
/// as far as an offer has a complete record, and the server holds no more
/// sockets or tasks after the barrage than before it.
#[test]
fn bad_browser_input_gets_a_clear_error_and_leaks_nothing() {
    let _one = one_at_a_time();
    if voxline_models::fetched_for_test(common::AGENT_MODELS).is_none() {
        return;
    }
    let server = Server::start("browser-bad-input", WEBRTC, Some(&browser_routes()));
    let port = server.http_port;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let write = hello(WRITE_TOKEN);
    let barrage = |rt: &tokio::runtime::Runtime| -> Vec<(String, Vec<serde_json::Value>)> {
        let flood: Vec<String> = std::iter::once(write.clone())
            .chain((0..400).map(|_| "ping:".to_string()))
            .collect();
        let cases: Vec<(&str, &str, Vec<String>)> = vec![
            ("garbage", "bank", vec!["hello??".into()]),
            ("binary", "bank", vec!["bin:\u{1}\u{2}".into()]),
            ("wrong token", "bank", vec![hello("vxl_nobody")]),
            ("read token", "bank", vec![hello(common::READ_TOKEN)]),
            ("not a browser route", "echo", vec![write.clone()]),
            (
                "malformed offer",
                "bank",
                vec![write.clone(), offer_message("v=0\r\nnonsense")],
            ),
            (
                "no Opus",
                "bank",
                vec![write.clone(), offer_message(&offer(G711_ONLY, "127.0.0.1 9"))],
            ),
            ("flood", "bank", flood),
            (
                "ICE never completes",
                "bank",
                vec![write.clone(), offer_message(&offer(OPUS, "127.0.0.1 9"))],
            ),
            (
                "oversized",
                "bank",
                vec![write.clone(), offer_message(&"a".repeat(200 * 1024))],
            ),
            // The console's live-calls socket.
            (
                "console garbage",
                LIVE,
                vec!["{\"type\":\"offer\",\"sdp\":\"\"}".into()],
            ),
            ("console wrong token", LIVE, vec![hello("vxl_nobody")]),
            (
                "console hello twice",
                LIVE,
                vec![hello(common::READ_TOKEN), hello(common::READ_TOKEN)],
            ),
            (
                "console flood",
                LIVE,
                std::iter::once(hello(common::READ_TOKEN))
                    .chain((0..400).map(|_| "ping:".to_string()))
                    .collect(),
            ),
        ];
        cases
            .into_iter()
            .map(|(name, route, script)| (name.to_string(), rt.block_on(page_socket(port, route, &script))))
            .collect()
    };
    // A first round starts what starts once (the webrtc stack's pools);
    // the second must leave nothing behind.
    let first = barrage(&rt);
    let settle = |server: &Server| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.metric("voxline_browser_calls_active") != 0.0 {
            assert!(
                Instant::now() < deadline,
                "browser calls stay up:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    settle(&server);
    let sockets_before = server.open_sockets();
    let tasks_before = server.metric("voxline_runtime_tasks");
    let second = barrage(&rt);
    for (name, got) in first.iter().chain(second.iter()) {
        let expect = match name.as_str() {
            "garbage" => "not a message this socket takes",
            "binary" => "binary frames are not taken",
            "wrong token" => "the token is not known",
            "read token" => "has the read scope",
            "not a browser route" => "no route \"echo\" takes browser calls",
            "malformed offer" => "bad SDP offer",
            "no Opus" => "no audio with Opus/48000 (offered: pcmu/8000, pcma/8000)",
            "flood" => "more than 20 messages in a second",
            "ICE never completes" => "not established within 5 s",
            "console garbage" => "not a message this socket takes",
            "console wrong token" => "the token is not known",
            "console hello twice" => "hello is sent once",
            "console flood" => "more than 20 messages in a second",
            "oversized" => {
                // The frame is refused while it is read: the error is sent
                // when the socket still takes it, else the socket is closed.
                if got.iter().all(|m| m["type"] == "ready") {
                    continue;
                }
                "Message too long"
            }
            other => panic!("unexpected case {other}"),
        };
        let message = error_of(name, got);
        assert!(message.contains(expect), "{name}: {message:?} lacks {expect:?}");
    }
    // A console with a read token is sent the live calls first.
    let twice = &second.iter().find(|(n, _)| n == "console hello twice").expect("case").1;
    assert_eq!(
        twice.first().map(|m| m["type"].clone()),
        Some("calls".into()),
        "{twice:?}"
    );
    // ICE that never completes was answered first, then timed out.
    let ice = &second.iter().find(|(n, _)| n == "ICE never completes").expect("case").1;
    assert_eq!(ice.first().map(|m| m["type"].clone()), Some("ready".into()), "{ice:?}");
    assert_eq!(ice.get(1).map(|m| m["type"].clone()), Some("answer".into()), "{ice:?}");
    settle(&server);
    // Nothing left behind: sockets and tasks back to where they were.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (sockets, tasks) = (server.open_sockets(), server.metric("voxline_runtime_tasks"));
        if sockets <= sockets_before && tasks <= tasks_before {
            eprintln!("sockets {sockets_before} -> {sockets}, tasks {tasks_before} -> {tasks}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind after the barrage: sockets {sockets_before} -> {sockets}, tasks {tasks_before} -> {tasks}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Each offer that reached the media side is a complete, unanswered record.
    let records = settled_records(&server, |r| r["end_reason"] == "ice_timeout");
    let reasons: Vec<&str> = records.iter().filter_map(|r| r["end_reason"].as_str()).collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "ice_timeout").count(),
        2,
        "{reasons:?}"
    );
    assert_eq!(reasons.iter().filter(|r| **r == "bad_offer").count(), 4, "{reasons:?}");
    assert!(
        records
            .iter()
            .all(|r| r["channel"] == "webrtc" && r["answer_at"].is_null()),
        "{records:?}"
    );
    // Sockets that never say hello hold at most the node's places for
    // page sockets (4 browser calls + 128): one more is refused with a
    // 503, and the places come back when they close.
    let url = |path: &str| format!("ws://127.0.0.1:{port}{path}");
    let held: Vec<Socket> = rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..4 + 128 {
            let path = if i % 2 == 0 {
                LIVE.to_string()
            } else {
                "/api/talk/bank".to_string()
            };
            let (ws, _) = tokio_tungstenite::connect_async(url(&path))
                .await
                .unwrap_or_else(|e| panic!("socket {i}: {e}"));
            held.push(ws);
        }
        held
    });
    let refused = rt.block_on(tokio_tungstenite::connect_async(url(LIVE)));
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!(
            "the socket over the limit was not refused: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match rt.block_on(tokio_tungstenite::connect_async(url(LIVE))) {
            Ok((ws, _)) => break ws,
            Err(e) => assert!(Instant::now() < deadline, "no place came back: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(again);
    let health = server.request("GET", "/healthz", None, None);
    assert_eq!(health.status, 200, "the server is unaffected: {}", health.body);
}
