//! Test harness: a real `voxline serve` process on loopback with its own
//! ports and files, and a real SIPp to call it.

#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A scenario file under load-tests/sipp.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("load-tests/sipp").join(name)
}

/// Ports `free_port` returned in this test process.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A port free for both UDP and TCP on 127.0.0.1 (even, with port+1 free
/// too), never one returned before in this process. Drawn from 10000–19999:
/// below the kernel's ephemeral range (32768–60999), so no outgoing
/// connection made meanwhile (a server starting takes seconds) can take it
/// before the server binds it, and below the tests' RTP ranges.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let start = seed.finish();
    for i in 0..2000u64 {
        let p = 10_000 + ((start.wrapping_add(i * 7919) % 5000) * 2) as u16;
        let ok = TcpListener::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 1)).is_ok();
        // Free now, but maybe handed out a moment ago and not bound yet
        // (a server's SIP and HTTP ports are taken one after the other).
        if ok && HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner()).insert(p) {
            return p;
        }
    }
    panic!("no free port");
}

/// Taken by tests that run a whole agent (Whisper, the model and the voice
/// behind a server, a caller on real RTP) so that they run one at a time:
/// two at once on 2 cores overload the machine (late replies, lost
/// packets), which is not what they test.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory for one test.
pub fn test_dir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("voxline-it-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("test dir");
    d
}

/// Writes an 8 kHz mono 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[i16]) {
    write_wav_rate(path, samples, 8000);
}

/// Writes a mono 16-bit WAV at `rate`.
#[allow(dead_code)]
pub fn write_wav_rate(path: &Path, samples: &[i16], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("finalize");
}

/// Writes an 8 kHz mono WAV of a tone.
pub fn write_tone_wav(path: &Path, seconds: f32, freq: f32) {
    let n = (8000.0 * seconds) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| ((2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    write_wav(path, &samples);
}

/// Writes headerless μ-law audio of a tone (what SIPp's rtp_stream plays).
pub fn write_tone_ulaw(path: &Path, seconds: f32, freq: f32) {
    let n = (8000.0 * seconds) as usize;
    let pcm: Vec<i16> = (0..n)
        .map(|i| ((2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let out: Vec<u8> = pcm.iter().map(|&s| voxline_media::g711::linear_to_ulaw(s)).collect();
    std::fs::write(path, out).expect("ulaw");
}

/// RMS of one channel of a stereo WAV between `from` and `to` seconds.
pub fn channel_rms(path: &Path, channel: usize, from: f32, to: f32) -> f64 {
    let mut r = hound::WavReader::open(path).expect("open recording");
    let spec = r.spec();
    let ch = usize::from(spec.channels);
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let frames = samples.len() / ch;
    let a = ((from * spec.sample_rate as f32) as usize).min(frames);
    let b = ((to * spec.sample_rate as f32) as usize).min(frames);
    if b <= a {
        return 0.0;
    }
    let sum: f64 = (a..b).map(|i| f64::from(samples[i * ch + channel]).powi(2)).sum();
    (sum / (b - a) as f64).sqrt()
}

/// The generated config `text` with its SQLite store replaced by `url`
/// (a PostgreSQL test cluster's).
pub fn on_store(text: String, url: &str) -> String {
    let sqlite = text
        .lines()
        .find(|l| l.starts_with("url = \"sqlite://"))
        .expect("the store's url")
        .to_string();
    text.replace(&sqlite, &format!("url = \"{url}\""))
}

/// A running `voxline serve`.
pub struct Server {
    child: Option<Child>,
    pub sip_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub db_url: String,
    pub log: PathBuf,
}

/// Routes every test server has: "hangup" (BYE after a 1 s greeting),
/// "ring" (rings 30 s), "echo" (sends the caller's audio back), anything
/// else plays a 2 s greeting for up to 20 s.
pub const DEFAULT_ROUTES: &str = r#"
[[route]]
name = "bye-after-greeting"
trunk = "local"
number = { exact = "hangup" }
handler = "playback"
params = { greeting = "short.wav", hangup_after_greeting = true }

[[route]]
name = "ringing"
trunk = "local"
number = { exact = "ring" }
handler = "playback"
params = { greeting = "greeting.wav", ring_ms = 30000 }

[[route]]
name = "echo"
trunk = "local"
number = { exact = "echo" }
handler = "echo"
params = { max_seconds = 20 }

[[route]]
name = "users"
trunk = "users"
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = 20 }

[[route]]
name = "demo"
trunk = "local"
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = 20 }
"#;

/// The model files an agent route loads (the small defaults).
pub const AGENT_MODELS: &[&str] = &[
    "whisper-tiny-en/ggml-model.bin",
    "silero-vad/silero_vad.onnx",
    "onnxruntime/libonnxruntime.so.1.31.1",
    "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf",
    "piper-en-us-joe-medium/en_US-joe-medium.onnx",
    "smart-turn/smart-turn-v3.2-cpu.onnx",
];

/// An agent route `name` on the demo pack `pack` (domains/PACK), dialled
/// as `number` (`extra`: more params, `, key = value` pairs).
pub fn agent_route(name: &str, number: &str, pack: &str, extra: &str) -> String {
    format!(
        r#"
[[route]]
name = "{name}"
trunk = "local"
number = {{ exact = "{number}" }}
handler = "agent"
params = {{ domain = "{}", max_seconds = 60{extra} }}
"#,
        repo().join("domains").join(pack).display()
    )
}

/// A playback route `name` dialled as `number`, playing `greeting`.
pub fn playback_route(name: &str, number: &str, greeting: &Path, max_seconds: u32) -> String {
    format!(
        r#"
[[route]]
name = "{name}"
trunk = "local"
number = {{ exact = "{number}" }}
handler = "playback"
params = {{ greeting = "{}", max_seconds = {max_seconds} }}
"#,
        greeting.display()
    )
}

/// A config edit (for `Server::start_with`): `extra` and a trunk "self"
/// leading back to the server's own SIP port (it calls itself).
pub fn with_self_trunk(text: String, extra: &str) -> String {
    let port: String = text
        .split("bind = \"127.0.0.1:")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .expect("listener port");
    format!("{text}\n{extra}\n\n[[trunk]]\nname = \"self\"\nkind = \"ip\"\nallow = [\"127.0.0.9/32\"]\nhost = \"127.0.0.1:{port}\"\n")
}

/// Phones (`users`) may dial "desk" only, a 2 s greeting.
pub const DESK_ROUTE: &str = r#"
[[route]]
name = "desk"
trunk = "users"
number = { exact = "desk" }
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = 20 }
"#;

/// One phone account, `frontdesk` / `correct-horse`.
pub const USERS: &str = r#"
[[user]]
username = "frontdesk"
password = "correct-horse"
"#;

/// The API token of the read scope in every test server's config.
pub const READ_TOKEN: &str = "vxl_test_read_0123456789";
/// The API token of the write scope.
pub const WRITE_TOKEN: &str = "vxl_test_write_0123456789";

/// `[[http.token]] hash` of `token`.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(token.as_bytes())))
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The body as JSON (a panic naming it when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts a server whose config is the base plus `extra` (trunks, users...)
    /// and `routes` (DEFAULT_ROUTES when None).
    pub fn start(name: &str, extra: &str, routes: Option<&str>) -> Server {
        Server::start_with(name, extra, routes, |text| text)
    }

    /// Like `start`, with a last edit of the generated config text.
    pub fn start_with(name: &str, extra: &str, routes: Option<&str>, edit: impl Fn(String) -> String) -> Server {
        let dir = test_dir(name);
        write_tone_wav(&dir.join("greeting.wav"), 2.0, 440.0);
        write_tone_wav(&dir.join("short.wav"), 1.0, 660.0);
        let sip_port = free_port();
        let http_port = free_port();
        let db = dir.join("calls.db");
        let db_url = format!("sqlite://{}", db.display());
        let config = dir.join("voxline.toml");
        let text = format!(
            r#"
[node]
name = "test"
[sip]
[[sip.listener]]
transport = "udp"
bind = "127.0.0.1:{sip_port}"
[[sip.listener]]
transport = "tcp"
bind = "127.0.0.1:{sip_port}"
[security]
rate_limit_requests = 16
rate_limit_window_ms = 2000
ban_seconds = 60
[media]
bind_ip = "127.0.0.1"
rtp_port_min = 30000
rtp_port_max = 39999
record = true
recordings_dir = "recordings"
[store]
url = "{db_url}"
spool_dir = "spool"
[http]
bind = "127.0.0.1:{http_port}"
[[http.token]]
name = "test-read"
scope = "read"
hash = "{read_hash}"
[[http.token]]
name = "test-write"
scope = "write"
hash = "{write_hash}"

[[trunk]]
name = "local"
kind = "ip"
allow = ["127.0.0.1/32"]
host = "127.0.0.1:5999"
max_calls = 1000
max_cps = 1000
{extra}
{routes}
"#,
            routes = routes.unwrap_or(DEFAULT_ROUTES),
            read_hash = token_hash(READ_TOKEN),
            write_hash = token_hash(WRITE_TOKEN),
        );
        std::fs::write(&config, edit(text)).expect("config");
        let log = dir.join("serve.log");
        let log_file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_voxline"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("VOXLINE_LOG", "info,rsipstack=warn,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start voxline serve");
        let server = Server {
            child: Some(child),
            sip_port,
            http_port,
            dir,
            config,
            db_url,
            log,
        };
        // Loading three models and pinning the fixed lines' audio takes a
        // few seconds alone, far longer beside another test's calls.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.log_text().contains("voxline ready") {
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Waits up to `within` for the log to hold `n` lines containing
    /// `text`; panics with the log otherwise.
    pub fn wait_for_log(&self, text: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.log_text().lines().filter(|l| l.contains(text)).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {n} log lines with {text:?} within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The "call ended" log line of the call whose log names `call_id`
    /// (`""`: the first call to end). Panics with the log when there is none.
    pub fn ended_line(&self, call_id: &str) -> String {
        let log = self.log_text();
        log.lines()
            .find(|l| l.contains(call_id) && l.contains("call ended"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no \"call ended\" line for {call_id:?}:\n{log}"))
    }

    /// A request to the HTTP API with `token` (none: no Authorization) and
    /// `body` (its content type and bytes). Panics only when the server
    /// cannot be reached.
    pub fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<(&str, Vec<u8>)>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (status, headers, bytes) = self.send(method, path, token, body, &[]);
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Reply { status, headers, body }
    }

    /// GET `path` (with the read token) from a client that takes gzip: the
    /// headers and the bytes as sent (compressed or not), on a 200.
    pub fn get_taking_gzip(&self, path: &str) -> (Reply, Vec<u8>) {
        let accept = [("accept-encoding", "gzip")];
        let (status, headers, bytes) = self.send(reqwest::Method::GET, path, Some(READ_TOKEN), None, &accept);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&bytes));
        let reply = Reply {
            status,
            headers,
            body: String::new(),
        };
        (reply, bytes)
    }

    /// Sends one request (with `extra` headers) and reads the whole answer:
    /// status, headers, body bytes. Panics when the server cannot be reached.
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        extra: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method, &url)
                .timeout(Duration::from_secs(30));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some((kind, bytes)) = body {
                req = req.header("content-type", kind).body(bytes);
            }
            for (name, value) in extra {
                req = req.header(*name, *value);
            }
            let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let bytes = resp
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{url}: body: {e}"))
                .to_vec();
            (status, headers, bytes)
        })
    }

    /// A request with the write token and an optional JSON body.
    pub fn api(&self, method: &str, path: &str, json: Option<serde_json::Value>) -> Reply {
        let body = json.map(|v| ("application/json", v.to_string().into_bytes()));
        self.request(method, path, Some(WRITE_TOKEN), body)
    }

    /// GET with the read token; the body of a 200, else a panic naming the
    /// status and body.
    pub fn http_get(&self, path: &str) -> String {
        let r = self.request("GET", path, Some(READ_TOKEN), None);
        assert_eq!(r.status, 200, "GET {path}: {}\n{}", r.body, self.log_text());
        r.body
    }

    /// Call records with this Call-ID, waiting up to 5 s for `done` to
    /// hold (the last ones read then; `Null` when there were none).
    pub fn records_until(&self, call_id: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        let path = format!("/api/calls/{call_id}");
        loop {
            let r = self.request("GET", &path, Some(READ_TOKEN), None);
            let v = match r.status {
                200 => r.json(),
                404 => serde_json::Value::Null,
                other => panic!("GET {path}: {other} {}\n{}", r.body, self.log_text()),
            };
            if v.as_array().and_then(|a| a.first()).is_some_and(&done) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The completed record of a call (waits for end_at).
    pub fn record(&self, call_id: &str) -> serde_json::Value {
        let v = self.records_until(call_id, |r| !r["end_at"].is_null());
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("no record for {call_id}: {v}\n{}", self.log_text()))
    }

    /// All records, newest first.
    pub fn all_records(&self) -> Vec<serde_json::Value> {
        let body = self.http_get("/api/calls?limit=1000");
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .unwrap_or_else(|e| panic!("/api/calls is not a list of records: {e}: {body}"))
    }

    /// All call records, once at least `n` of them have ended (`end_at`
    /// set); panics with the log when that takes over 10 s.
    pub fn ended_records(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.all_records();
            if records.iter().filter(|r| !r["end_at"].is_null()).count() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{n} ended call records not seen: {records:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// Sockets the server process holds open (UDP and TCP), from /proc.
    pub fn open_sockets(&self) -> usize {
        let pid = self.child.as_ref().map(Child::id).expect("server running");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("server fds")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Resident memory of the server process, KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().map(Child::id).expect("server running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
    }

    /// One series' value from `/metrics` (`name` with the `voxline_`
    /// prefix and any suffix such as `_total`).
    pub fn metric(&self, name: &str) -> f64 {
        let body = self.http_get("/metrics");
        body.lines()
            .find_map(|l| {
                let (series, value) = l.split_once(' ')?;
                (series == name).then(|| value.trim().parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no series {name} in /metrics:\n{body}"))
    }

    /// Kills the process with SIGKILL (a crash: no clean shutdown).
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process with SIGTERM (a clean shutdown) and waits for it.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !matches!(c.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("voxline did not stop within 10 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the server again on the same config, ports and database.
    pub fn restart(&mut self) {
        self.crash();
        let log_file = std::fs::OpenOptions::new().append(true).open(&self.log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_voxline"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("VOXLINE_LOG", "info,rsipstack=warn,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("restart voxline serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log_text().matches("voxline ready").count() < 2 {
            assert!(
                Instant::now() < deadline,
                "server did not restart:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM so the server hangs up and completes records, then wait.
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The result of one SIPp run.
pub struct SippRun {
    pub ok: bool,
    pub output: String,
    pub call_id: String,
}

/// Runs SIPp with `scenario` (a file under load-tests/sipp, or `-sn NAME`)
/// for one call to `service` at the server, from `local_ip`.
pub fn sipp(server: &Server, scenario_file: &str, service: &str, local_ip: &str, extra: &[&str]) -> SippRun {
    sipp_port(server.sip_port, scenario_file, service, local_ip, extra)
}

/// `sipp` against a SIP port (usable from another thread).
pub fn sipp_port(port: u16, scenario_file: &str, service: &str, local_ip: &str, extra: &[&str]) -> SippRun {
    sipp_in(&test_dir("sipp"), port, scenario_file, service, local_ip, extra)
}

/// `sipp` run in `dir` (where a scenario finds its pcap files).
pub fn sipp_in(dir: &Path, port: u16, scenario_file: &str, service: &str, local_ip: &str, extra: &[&str]) -> SippRun {
    write_tone_ulaw(&dir.join("caller.ulaw"), 3.0, 300.0);
    // 150 packets (3 s) with 4 missing: 20, 21, 22 (a burst) and 50.
    write_rtp_pcap(&dir.join("lossy.pcap"), 150, &[20, 21, 22, 50]);
    // A port found free can be taken by a parallel test before SIPp binds
    // it; SIPp then stops before sending anything, and is run again on
    // other ports.
    for _ in 0..3 {
        let run = sipp_once(dir, port, scenario_file, service, local_ip, extra);
        if run.ok || !run.output.contains("Address already in use") {
            return run;
        }
    }
    sipp_once(dir, port, scenario_file, service, local_ip, extra)
}

/// One SIPp run of [`sipp_in`], on ports found free just before.
fn sipp_once(dir: &Path, port: u16, scenario_file: &str, service: &str, local_ip: &str, extra: &[&str]) -> SippRun {
    let sip_port = free_port().to_string();
    let media_port = free_port().to_string();
    let call_id = format!(
        "it-{}-{}@{local_ip}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut cmd = Command::new("sipp");
    if let Some(builtin) = scenario_file.strip_prefix("builtin:") {
        cmd.args(["-sn", builtin]);
    } else {
        cmd.arg("-sf").arg(scenario(scenario_file));
    }
    cmd.arg(format!("127.0.0.1:{port}"))
        .args(["-s", service, "-m", "1", "-l", "1", "-i", local_ip, "-p", &sip_port])
        .args(["-mi", local_ip, "-mp", &media_port, "-timeout", "30", "-nostdin"])
        .args(["-cid_str", &call_id])
        .args(extra)
        .current_dir(dir);
    let out: Output = cmd.output().expect("run sipp (is sip-tester installed?)");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    SippRun {
        ok: out.status.success(),
        output,
        call_id,
    }
}

/// Sends one UDP datagram to the server from `from` and returns the reply, if any.
pub fn udp_exchange(server: &Server, from: &str, msg: &[u8], wait: Duration) -> Option<String> {
    let s = UdpSocket::bind((from, 0)).expect("bind");
    s.set_read_timeout(Some(wait)).ok();
    s.send_to(msg, ("127.0.0.1", server.sip_port)).expect("send");
    let mut buf = vec![0u8; 65536];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        Err(_) => None,
    }
}

/// The first final response (not 1xx) arriving on `s` within `wait`, or
/// None.
pub fn final_answer_on(s: &UdpSocket, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok();
        let Ok((n, _)) = s.recv_from(&mut buf) else { break };
        let reply = String::from_utf8_lossy(&buf[..n]).to_string();
        if !reply.starts_with("SIP/2.0 1") {
            return Some(reply);
        }
    }
    None
}

/// The three-digit status of a response, if there was one.
pub fn status_of(reply: &Option<String>) -> Option<String> {
    reply.as_deref().and_then(|r| r.get(8..11)).map(str::to_owned)
}

/// A well-formed OPTIONS from `local` to the server.
pub fn options_request(server: &Server, local: &std::net::SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopt{n}x{pid}\r\nFrom: <sip:probe@{local}>;tag=t{n}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\nCall-ID: opt-{n}-{pid}@test\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        port = server.sip_port,
        pid = std::process::id()
    )
}

/// Writes a pcap of a PCMU RTP stream (a tone, 20 ms packets) for SIPp's
/// `play_pcap_audio`, leaving out the packets whose index is in `skip`
/// (real sequence gaps on the wire).
pub fn write_rtp_pcap(path: &Path, packets: u16, skip: &[u16]) {
    let frames = (0..packets).filter(|i| !skip.contains(i)).map(|i| {
        let samples: Vec<i16> = (0..160)
            .map(|n| {
                let t = (u32::from(i) * 160 + n) as f32 / 8000.0;
                ((2.0 * std::f32::consts::PI * 400.0 * t).sin() * 8000.0) as i16
            })
            .collect();
        (i, samples)
    });
    write_pcmu_pcap(path, frames);
}

/// Writes a pcap of `speech` (8 kHz) as a PCMU RTP stream in 20 ms packets
/// for SIPp's `play_pcap_audio`.
pub fn write_speech_pcap(path: &Path, speech: &[i16]) {
    let frames = speech.chunks(160).enumerate().map(|(i, c)| {
        let mut samples = c.to_vec();
        samples.resize(160, 0);
        (i as u16, samples)
    });
    write_pcmu_pcap(path, frames);
}

/// Writes RTP packets (index, 160 samples) at 20 ms each into a pcap.
fn write_pcmu_pcap(path: &Path, frames: impl Iterator<Item = (u16, Vec<i16>)>) {
    let mut out: Vec<u8> = Vec::new();
    // Global header: magic, v2.4, zone, sigfigs, snaplen, Ethernet.
    out.extend(0xa1b2c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (i, samples) in frames {
        let pcm: Vec<u8> = samples
            .iter()
            .map(|&s| voxline_media::g711::linear_to_ulaw(s))
            .collect();
        let rtp = voxline_media::rtp_packet(
            0,
            false,
            1000u16.wrapping_add(i),
            u32::from(i) * 160,
            0x5eed_5eed,
            pcm.into(),
        )
        .expect("rtp packet");
        let udp_len = 8 + rtp.len() as u16;
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend([0x08, 0x00]);
        frame.extend([0x45, 0x00]);
        frame.extend(ip_len.to_be_bytes());
        frame.extend([0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend(4000u16.to_be_bytes());
        frame.extend(4002u16.to_be_bytes());
        frame.extend(udp_len.to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(&rtp);
        let micros = u64::from(i) * 20_000;
        out.extend(((micros / 1_000_000) as u32).to_le_bytes());
        out.extend(((micros % 1_000_000) as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    }
    std::fs::write(path, out).expect("pcap");
}

/// The value of `key=` in a "call ended" log line; panics when it is
/// missing or not a number.
pub fn ended_field(line: &str, key: &str) -> u64 {
    line.split(&format!(" {key}="))
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// A TLS listener on a free port with a fresh certificate (made in test
/// folder `name`): the port, the config lines and the certificate a client
/// trusts.
pub fn tls_listener(name: &str) -> (u16, String, PathBuf) {
    let certs = test_dir(name);
    make_cert(&certs);
    let tls_port = free_port();
    let extra = format!(
        "[[sip.listener]]\ntransport = \"tls\"\nbind = \"127.0.0.1:{tls_port}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    (tls_port, extra, certs.join("cert.pem"))
}

/// A fresh self-signed certificate for `localhost` and 127.0.0.1 (its own
/// CA: a client trusts it as `cert.pem`), and its key, in `dir`.
pub fn make_cert(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
}

/// Calls `service` with baresip offering only `codec` (its baresip module
/// and name, e.g. `("g711", "PCMU")`, `("opus", "opus")`), `mic` as its
/// microphone (8 kHz); returns the folder where baresip's sndfile module
/// wrote what it sent and heard.
pub fn baresip_call_with(server: &Server, service: &str, mic: &[i16], codec: (&str, &str)) -> std::path::PathBuf {
    let dial = format!("sip:{service}@127.0.0.1:{}", server.sip_port);
    run_baresip(&dial, mic, codec, "", "")
}

/// Calls `service` over TLS on `tls_port` with baresip trusting the
/// certificate in `cafile`, offering PCMU with `mediaenc` (`srtp-mand`:
/// RTP/SAVP with SDES keys; `None`: plain RTP); returns baresip's sndfile
/// folder like [`baresip_call_with`].
pub fn baresip_call_tls(
    service: &str,
    mic: &[i16],
    tls_port: u16,
    cafile: &Path,
    mediaenc: Option<&str>,
) -> std::path::PathBuf {
    let dial = format!("sip:{service}@127.0.0.1:{tls_port};transport=tls");
    let account = mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default();
    let config = format!("sip_cafile {}\nmodule srtp.so\n", cafile.display());
    run_baresip(&dial, mic, ("g711", "PCMU"), &account, &config)
}

/// Runs baresip once: dials `dial` offering `codec`, with `account_params`
/// added to its account and `config_lines` to its config.
fn run_baresip(
    dial: &str,
    mic: &[i16],
    codec: (&str, &str),
    account_params: &str,
    config_lines: &str,
) -> std::path::PathBuf {
    let dir = test_dir("baresip-ua");
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).expect("snd dir");
    write_wav(&dir.join("mic.wav"), mic);
    let port = free_port();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player aubridge,x\naudio_source aufile,{mic}\naudio_alert aubridge,x\nausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\nmodule_path /usr/lib/baresip/modules\nmodule {module}.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {snd}\n{config_lines}",
        mic = dir.join("mic.wav").display(),
        snd = snd.display(),
        module = codec.0,
    );
    std::fs::write(dir.join("config"), config).expect("config");
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:tester@127.0.0.1>;regint=0;audio_codecs={}{account_params}\n",
            codec.1
        ),
    )
    .expect("accounts");
    // baresip quits after this many seconds (a guard kills it 20 s later).
    let quit_after = (mic.len() / 8000 + 1).max(10);
    let status = Command::new("timeout")
        .arg((quit_after + 20).to_string())
        .args(["baresip", "-f"])
        .arg(&dir)
        .args(["-e", &format!("/dial {dial}"), "-t", &quit_after.to_string()])
        // What it printed stays next to its files (`baresip.log`).
        .stdout(std::fs::File::create(dir.join("baresip.log")).map_or_else(|_| Stdio::null(), Stdio::from))
        .stderr(Stdio::null())
        .status()
        .expect("run baresip (is it installed?)");
    assert!(status.code().is_some(), "baresip did not run");
    snd
}

/// The file of baresip's sndfile dump ending in `suffix` (`-dec.wav`: what it heard).
pub fn dump(snd: &std::path::Path, suffix: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(snd)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(suffix))
}

/// A SIPp UAS on a free port, running `scenario` for `calls` calls.
pub struct SippUas {
    child: Option<Child>,
    /// Its SIP port.
    pub port: u16,
    /// The folder it runs in (its trace files).
    pub dir: PathBuf,
}

impl SippUas {
    /// Starts it.
    pub fn start(scenario_file: &str, calls: u32) -> SippUas {
        SippUas::start_with(scenario_file, calls, &[])
    }

    /// Starts it with more SIPp arguments (`-trace_msg`…).
    pub fn start_with(scenario_file: &str, calls: u32, extra: &[&str]) -> SippUas {
        let dir = test_dir("uas");
        let port = free_port();
        let media_port = free_port();
        let mut cmd = Command::new("sipp");
        if let Some(b) = scenario_file.strip_prefix("builtin:") {
            cmd.args(["-sn", b]);
        } else {
            cmd.arg("-sf").arg(scenario(scenario_file));
        }
        let child = cmd
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", &calls.to_string()])
            .args([
                "-mi",
                "127.0.0.1",
                "-mp",
                &media_port.to_string(),
                // Its clock starts now, before the server under test loads
                // its models (up to ~15 s on a slow machine) and before the
                // call that reaches it: a ringing colleague was cancelled 49 s
                // after start once, past a 40 s limit.
                "-timeout",
                "120",
                "-nostdin",
            ])
            .args(extra)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp uas");
        std::thread::sleep(Duration::from_millis(300));
        SippUas {
            child: Some(child),
            port,
            dir,
        }
    }

    /// Waits for SIPp to finish; true when every call succeeded.
    pub fn finish(mut self) -> bool {
        let mut c = self.child.take().expect("child");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the `voxline` binary in `dir`; its stdout (panics with its
/// stderr when it fails).
pub fn voxline(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run voxline");
    assert!(
        out.status.success(),
        "voxline {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The caller's side as a script: for each line, the silence before it and
/// the words (the Piper voice), then `tail` seconds of silence, at 16 kHz.
/// Returns the file and when each line starts and ends (s).
pub fn caller_script(dir: &Path, name: &str, lines: &[(f32, &str)], tail: f32) -> (PathBuf, Vec<(f32, f32)>) {
    let mut all: Vec<i16> = Vec::new();
    let mut spans = Vec::new();
    for (i, (pause, text)) in lines.iter().enumerate() {
        let spoken = dir.join(format!("{name}-said-{i}.wav"));
        voxline(&["say", text, "--out", spoken.to_str().unwrap_or_default()], dir);
        let said = voxline_media::read_wav_mono(&spoken).expect("said");
        let speech = voxline_media::rtp_session::resample_clip(&said.samples, said.rate, 16_000).expect("resample");
        all.extend(std::iter::repeat_n(0, (pause * 16_000.0) as usize));
        let start = all.len() as f32 / 16_000.0;
        all.extend_from_slice(&speech);
        spans.push((start, all.len() as f32 / 16_000.0));
    }
    all.extend(std::iter::repeat_n(0, (tail * 16_000.0) as usize));
    let path = dir.join(format!("{name}.wav"));
    write_wav_rate(&path, &all, 16_000);
    (path, spans)
}

/// The call records once every one is complete (its end written, so its
/// transcript and turns are too) and one of them is as `want`ed; waits up
/// to 15 s for that.
pub fn settled_records(server: &Server, want: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let records = server.all_records();
        if records.iter().any(&want) && records.iter().all(|r| !r["end_at"].is_null()) {
            return records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no complete record as wanted: {records:?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The call's transcript lines as (speaker, text).
pub fn transcript_lines(server: &Server, call_id: &str) -> Vec<(String, String)> {
    let body = server.http_get(&format!("/api/calls/{call_id}/transcript"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[0]["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l["speaker"].as_str().unwrap_or_default().to_string(),
                l["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
