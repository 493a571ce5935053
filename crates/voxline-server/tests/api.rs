//! The HTTP API of a running `voxline serve`, over loopback: tokens and
//! scopes, JSON errors that name the field, limits, every documented
//! endpoint routed; campaigns created, filled and run through it; an
//! agent's call placed, listed and hung up through it (the server calling
//! itself over SIP); the webhooks of all that, signed, retried after a
//! failure, and a receiver that never answers delaying nothing.

mod common;
use common::{Reply, Server, READ_TOKEN, WRITE_TOKEN};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The receivers' shared secret.
const SECRET: &str = "whsec_0123456789abcdef";

/// One request a receiver got: its headers (lower-case names) and body.
type Got = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// Webhook receivers on loopback: `/hook` keeps what it gets and answers
/// its first request 500 (then 204); `/slow` never answers in time.
struct Receivers {
    port: u16,
    got: Got,
    _rt: tokio::runtime::Runtime,
}

fn receivers() -> Receivers {
    use axum::http::{HeaderMap, StatusCode};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Got = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let keep = keep.clone();
                async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
                        .collect();
                    let mut got = keep.lock().unwrap();
                    got.push((headers, body));
                    if got.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        )
        .route(
            "/slow",
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }),
        );
    rt.spawn(async move { axum::serve(listener, app).await });
    Receivers { port, got, _rt: rt }
}

/// Checks `x-voxline-signature` of a request: HMAC-SHA256 of "t.body".
fn signed(headers: &[(String, String)], body: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(sig) = headers.iter().find(|(k, _)| k == "x-voxline-signature").map(|(_, v)| v) else {
        return false;
    };
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

fn error_of(r: &Reply) -> (String, Option<String>) {
    let v = r.json();
    (
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", r.body))
            .to_string(),
        v["field"].as_str().map(str::to_string),
    )
}

#[test]
fn the_api_needs_a_token_and_answers_in_json() {
    let server = Server::start("api-auth", "", None);

    // Open: liveness and the document.
    let r = server.request("GET", "/healthz", None, None);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let doc = server.request("GET", "/api/openapi.json", None, None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();

    // Gzip for a client that takes it (pages, scripts, JSON), the same
    // bytes once inflated; nothing compressed for a client that does not.
    for path in ["/web/console.js", "/console", "/api/openapi.json", "/web/console.css"] {
        let plain = server.request("GET", path, Some(READ_TOKEN), None);
        assert_eq!((plain.status, plain.header("content-encoding")), (200, None), "{path}");
        let (zipped, bytes) = server.get_taking_gzip(path);
        assert_eq!(zipped.header("content-encoding"), Some("gzip"), "{path}");
        let mut inflated = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes.as_slice()), &mut inflated)
            .unwrap_or_else(|e| panic!("{path}: not gzip: {e}"));
        assert_eq!(inflated, plain.body, "{path}");
        if plain.body.len() > 4096 {
            assert!(
                bytes.len() * 2 < plain.body.len(),
                "{path}: {} of {} bytes",
                bytes.len(),
                plain.body.len()
            );
        }
    }

    // No token, an unknown one, a read token writing.
    let r = server.request("GET", "/api/calls", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(error_of(&r).0, "unauthorized");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let r = server.request("GET", "/api/calls", Some("vxl_not_a_token_of_ours"), None);
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.contains("invalid_token")));
    let r = server.request("GET", "/metrics", None, None);
    assert_eq!(r.status, 401, "metrics need a token too");
    let r = server.request("GET", "/api/calls", Some(READ_TOKEN), None);
    assert_eq!(r.status, 200);
    assert!(r.json().as_array().is_some_and(Vec::is_empty), "{}", r.body);
    let dnc = json!({ "numbers": ["+442079460958"] });
    let r = server.request(
        "POST",
        "/api/dnc",
        Some(READ_TOKEN),
        Some(("application/json", dnc.to_string().into_bytes())),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(error_of(&r).0, "forbidden");
    assert!(server.request("GET", "/metrics", Some(READ_TOKEN), None).status == 200);

    // The do-not-call list: a bad number is named by its place.
    let r = server.api(
        "POST",
        "/api/dnc",
        Some(json!({ "numbers": ["+442079460958", "call me"] })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(error_of(&r), ("invalid".into(), Some("numbers[1]".into())));
    let r = server.api("GET", "/api/dnc", None);
    assert_eq!(r.json(), json!([]), "nothing half-added");
    let r = server.api(
        "POST",
        "/api/dnc",
        Some(json!({ "numbers": ["020 7946 0958"], "country": "GB" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["added"], 1);
    let r = server.api("GET", "/api/dnc", None);
    assert_eq!(r.json()[0]["number"], "+442079460958");
    assert_eq!(server.api("DELETE", "/api/dnc/%2B442079460958", None).status, 204);
    let r = server.api("DELETE", "/api/dnc/%2B442079460958", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "not_found"));

    // Not found, limits, bodies that do not fit.
    let r = server.api("GET", "/api/calls/no-such-call@nowhere", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "not_found"));
    let r = server.api("GET", "/api/calls/no-such-call@nowhere/transcript", None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = server.api("GET", "/api/calls?limit=0", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("limit")));
    let r = server.api("GET", "/api/calls?limit=1001", None);
    assert_eq!(r.status, 422);
    let r = server.api("GET", "/api/calls?limit=lots", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("query")));
    assert_eq!(server.api("GET", "/api/calls?limit=1000", None).status, 200);
    let r = server.api("GET", "/api/calls?direction=sideways", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("direction")));
    let r = server.api("GET", "/api/calls?channel=fax", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("channel")));
    let r = server.api("GET", "/api/calls?q=nothing%25said&party=x&since=0&until=1", None);
    assert_eq!((r.status, r.json()), (200, json!([])), "filters that pass nothing");
    let r = server.api("GET", "/api/calls/no-such-call@nowhere/recording", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "not_found"));
    let r = server.api("GET", "/api/nothing-here", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "no_route"));
    let r = server.api("DELETE", "/api/calls", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (405, "method_not_allowed"));
    let r = server.request(
        "POST",
        "/api/calls",
        Some(WRITE_TOKEN),
        Some(("application/json", b"route=demo".to_vec())),
    );
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("body")), "{}", r.body);
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "demo", "to": "sip:x@127.0.0.1", "colour": "red" })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["message"].as_str().is_some_and(|m| m.contains("colour")),
        "{}",
        r.body
    );
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "demo", "to": "sip:x@127.0.0.1" })),
    );
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("route")),
        "a playback route places no calls"
    );
    let r = server.api("POST", "/api/calls", Some(json!({ "route": "demo", "to": 5 })));
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("to")), "{}", r.body);
    let big = vec![b' '; 3 * 1024 * 1024];
    let r = server.request("POST", "/api/dnc", Some(WRITE_TOKEN), Some(("application/json", big)));
    assert_eq!((r.status, error_of(&r).0.as_str()), (413, "too_large"));
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "x", "route": "demo", "settings": { "timezone": "UTC", "windows": { "mon-fri": "09:00-17:00" } } })),
    );
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("route")),
        "{}",
        r.body
    );
    let r = server.api("GET", "/api/campaigns/none", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "not_found"));

    // Every documented endpoint is routed, with the documented methods.
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{call_id}", "none@nowhere")
            .replace("{campaign}", "none")
            .replace("{number}", "%2B442079460999")
            .replace("{turn}", "1")
            .replace("{route}", "none");
        for method in ops.as_object().expect("operations").keys() {
            let body = (method == "post").then(|| ("application/json", b"{}".to_vec()));
            let r = server.request(&method.to_uppercase(), &concrete, Some(WRITE_TOKEN), body);
            assert!(
                r.status != 405 && !r.body.contains("\"no_route\""),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
            if r.status >= 400 {
                r.json();
            }
        }
    }
}

const MODELS: &[&str] = common::AGENT_MODELS;

/// Waits up to `secs` for `done` on the JSON of GET `path`.
fn wait_for(server: &Server, path: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = server.api("GET", path, None);
        if r.status == 200 {
            let v = r.json();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{path}: {v}\n{}", server.log_text());
        } else {
            assert!(
                r.status == 404 && Instant::now() < deadline,
                "{path}: {} {}\n{}",
                r.status,
                r.body,
                server.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn campaigns_and_calls_run_through_the_api() {
    let _one = common::one_at_a_time();
    if voxline_models::fetched_for_test(MODELS).is_none() {
        return;
    }
    let person_no = "+442079460511";
    // The callee: 30 s of tone, longer than the call lasts here.
    let audio = common::test_dir("api-calls-audio");
    let long = audio.join("long.wav");
    common::write_tone_wav(&long, 30.0, 300.0);
    let routes = format!(
        "{}{}",
        common::playback_route("person", person_no, &long, 40),
        common::agent_route("renewal", "renewal", "demo-renewal", ", record = false")
    );
    let hooks = receivers();
    // The trunk "self" leads back to this server; one outbound call at a
    // time; every event to /hook, call ends also to /slow.
    let server = Server::start_with("api-calls", "", Some(&routes), |text| {
        let extra = format!(
            "[campaigns]\nmax_calls = 1\n\n\
             [[webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\n\n\
             [[webhook]]\nurl = \"http://127.0.0.1:{port}/slow\"\nsecret = \"{SECRET}\"\nevents = [\"call.ended\"]",
            port = hooks.port,
        );
        common::with_self_trunk(text, &extra)
    });

    // A campaign: bad settings are named, a good one created once.
    let settings = json!({
        "timezone": "America/Chicago",
        "default_country": "US",
        "windows": { "mon-sun": "00:00-24:00" },
    });
    let mut bad = settings.clone();
    bad["timezone"] = json!("Mars/Olympus_Mons");
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "renewals", "route": "renewal", "settings": bad })),
    );
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("settings.timezone")),
        "{}",
        r.body
    );
    let mut bad = settings.clone();
    bad["windows"] = json!({ "mon-fri": "" });
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "renewals", "route": "renewal", "settings": bad })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        error_of(&r).1.is_some_and(|f| f.starts_with("settings.windows")),
        "{}",
        r.body
    );
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "renewals", "route": "renewal", "settings": settings })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(r.json()["state"], "draft");
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "renewals", "route": "renewal", "settings": settings })),
    );
    assert_eq!((r.status, error_of(&r).0.as_str()), (409, "conflict"));
    assert_eq!(
        server.api("GET", &format!("/api/campaigns/{id}"), None).json()["name"],
        "renewals"
    );

    // Contacts: broken rows named by line; all or nothing stores nothing.
    let csv = std::fs::read(common::repo().join("crates/voxline-campaign/tests/data/contacts.csv")).expect("contacts");
    let upload = |query: &str, kind: &str| {
        server.request(
            "POST",
            &format!("/api/campaigns/renewals/contacts{query}"),
            Some(WRITE_TOKEN),
            Some((kind, csv.clone())),
        )
    };
    let r = upload("", "application/pdf");
    assert_eq!(r.status, 415, "{}", r.body);
    let r = upload("?all_or_nothing=true", "text/csv");
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["stored"], false);
    let p = server.api("GET", "/api/campaigns/renewals/progress", None).json();
    assert_eq!(p["total"], 0, "nothing half-imported: {p}");
    let r = upload("", "text/csv");
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    let lines: Vec<u64> = report["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [4, 7, 8, 10], "{report}");
    assert!(report["rejected"][0]["why"]
        .as_str()
        .is_some_and(|w| w.contains("not a number")));
    assert_eq!(
        (
            report["added"].as_u64(),
            report["merged"][0]["line"].as_u64(),
            report["merged"][0]["into"].as_u64()
        ),
        (Some(4), Some(6), Some(2)),
        "{report}"
    );

    // Started without a trunk: named; paused while a draft: a conflict.
    let r = server.api("POST", "/api/campaigns/renewals/start", None);
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("trunk")),
        "{}",
        r.body
    );
    let r = server.api("POST", "/api/campaigns/renewals/pause", None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (409, "conflict"));
    let r = server.api("POST", "/api/campaigns/renewals/stop", None);
    assert_eq!((r.status, r.json()["state"].as_str()), (200, Some("stopped")));

    // A campaign run through the API to its end: numbers nobody answers
    // here (404 from the server itself) end as invalid numbers.
    let mut dialling = settings.clone();
    dialling["trunk"] = json!("self");
    let r = server.api(
        "POST",
        "/api/campaigns",
        Some(json!({ "name": "unknowns", "route": "renewal", "settings": dialling })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let contacts = json!([
        { "phone": "+442079460901", "first_name": "Ann" },
        { "phone": "+442079460902", "first_name": "Ben" },
    ]);
    let r = server.request(
        "POST",
        "/api/campaigns/unknowns/contacts",
        Some(WRITE_TOKEN),
        Some(("application/json", contacts.to_string().into_bytes())),
    );
    assert_eq!((r.status, r.json()["added"].as_u64()), (200, Some(2)), "{}", r.body);
    let r = server.api("POST", "/api/campaigns/unknowns/start", None);
    assert_eq!(
        (r.status, r.json()["state"].as_str()),
        (200, Some("running")),
        "{}",
        r.body
    );
    let p = wait_for(&server, "/api/campaigns/unknowns/progress", 60, |p| {
        p["state"] == "finished"
    });
    assert_eq!((p["total"].as_i64(), p["done"].as_i64()), (Some(2), Some(2)), "{p}");
    assert_eq!(p["by_disposition"]["invalid_number"], 2, "{p}");
    let r = server.api("GET", "/api/campaigns/unknowns/results.csv", None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/csv")));
    assert!(r.body.starts_with("number,state,disposition,attempts"), "{}", r.body);
    assert!(
        r.body
            .contains("+442079460901,done,invalid_number,1,invalid_number,404"),
        "{}",
        r.body
    );
    let list = server.api("GET", "/api/campaigns", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    // An agent's call placed through the API, listed while up, hung up.
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "renewal", "to": person_no, "variables": { "first_name": "Ana" } })),
    );
    assert_eq!(
        (r.status, error_of_ok(&r)),
        (422, Some("trunk".into())),
        "a number needs a trunk"
    );
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "renewal", "to": person_no, "trunk": "self", "from": "sip:a@b\r\nX-Evil: 1" })),
    );
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("from")),
        "no header injection"
    );
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "renewal", "to": person_no, "trunk": "self", "variables": { "first_name": "Ana" } })),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let call_id = r.json()["call_id"].as_str().expect("call_id").to_string();
    let path = format!("/api/calls/{call_id}");
    wait_for(&server, &path, 20, |records| {
        records.as_array().is_some_and(|rs| {
            rs.iter()
                .any(|r| r["direction"] == "outbound" && !r["answer_at"].is_null())
        })
    });
    let transcript = format!("{path}/transcript");
    wait_for(&server, &transcript, 20, |t| t.to_string().contains("Ana"));
    let live = server.api("GET", "/api/live", None).json();
    assert!(
        live.as_array().is_some_and(|l| l
            .iter()
            .any(|c| c["call_id"] == call_id.as_str() && c["route"] == "renewal")),
        "{live}"
    );
    // The node's one outbound slot is taken.
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "renewal", "to": "+442079460512", "trunk": "self" })),
    );
    assert_eq!((r.status, error_of(&r).0.as_str()), (503, "busy"), "{}", r.body);
    let hung_up_at = voxline_store::now_ms();
    let r = server.api("POST", &format!("{path}/hangup"), None);
    assert_eq!(r.status, 202, "{}", r.body);
    let records = wait_for(&server, &path, 10, |records| {
        records
            .as_array()
            .is_some_and(|rs| rs.len() == 2 && rs.iter().all(|r| !r["end_at"].is_null()))
    });
    let rs = records.as_array().expect("records");
    let agent = rs.iter().find(|r| r["direction"] == "outbound").expect("agent side");
    let callee = rs.iter().find(|r| r["direction"] == "inbound").expect("callee side");
    assert_eq!(agent["end_reason"], "operator", "{agent}");
    // A receiver that never answers delays no call's end.
    let ended_in = agent["end_at"].as_i64().expect("end_at") - hung_up_at;
    assert!(ended_in < 3000, "the call ended {ended_in} ms after the hang-up");
    assert_eq!(callee["hangup_by"], "caller", "the callee got the BYE: {callee}");
    let r = server.api("POST", &format!("{path}/hangup"), None);
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "not_found"));
    let live = server.api("GET", "/api/live", None).json();
    assert_eq!(live, json!([]), "off the list once ended");

    // A number on the do-not-call list is not called.
    assert_eq!(
        server
            .api("POST", "/api/dnc", Some(json!({ "numbers": [person_no] })))
            .status,
        200
    );
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "renewal", "to": person_no, "trunk": "self" })),
    );
    assert_eq!((r.status, error_of(&r).0.as_str()), (409, "do_not_call"), "{}", r.body);

    // The webhooks of all that: each signed, its event in a header, the one
    // answered 500 sent again (5 s later), the campaign's calls with their
    // disposition, its end, the hung-up call's end.
    let deadline = Instant::now() + Duration::from_secs(40);
    let events = loop {
        let got = hooks.got.lock().unwrap().clone();
        let bodies: Vec<Value> = got
            .iter()
            .map(|(_, b)| serde_json::from_str(b).expect("JSON body"))
            .collect();
        let has = |f: &dyn Fn(&Value) -> bool| bodies.iter().any(f);
        let ids: Vec<&str> = bodies.iter().filter_map(|b| b["id"].as_str()).collect();
        let retried = ids.iter().any(|id| ids.iter().filter(|x| *x == id).count() > 1);
        let done = retried
            && has(&|b| b["event"] == "campaign.finished" && b["by_disposition"]["invalid_number"] == 2)
            && bodies
                .iter()
                .filter(|b| {
                    b["event"] == "call.ended"
                        && b["disposition"] == "invalid_number"
                        && b["campaign"]["name"] == "unknowns"
                })
                .filter_map(|b| b["id"].as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 2
            && has(&|b| {
                b["event"] == "call.ended"
                    && b["call"]["call_id"] == call_id.as_str()
                    && b["call"]["end_reason"] == "operator"
            })
            && has(&|b| b["event"] == "call.answered" && b["call"]["call_id"] == call_id.as_str());
        if done {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks so far: {bodies:#?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for (headers, body) in &events {
        let b: Value = serde_json::from_str(body).expect("JSON");
        assert!(signed(headers, body), "bad signature: {headers:?}");
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("x-voxline-event"), b["event"].as_str());
        assert_eq!(header("x-voxline-delivery"), b["id"].as_str());
    }
    let campaign_call = events
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).expect("JSON"))
        .find(|b| b["event"] == "call.ended" && b["contact"]["number"] == "+442079460901")
        .expect("the campaign call's end");
    assert_eq!(campaign_call["attempt"], 1, "{campaign_call}");
    assert_eq!(campaign_call["sip_status"], 404, "{campaign_call}");
    assert_eq!(
        campaign_call["contact"]["variables"]["first_name"], "Ann",
        "{campaign_call}"
    );
    // The slow receiver's deliveries: tried, timed out, waiting to be tried again.
    let slow = wait_for(&server, "/api/webhooks/deliveries?limit=1000", 20, |ds| {
        ds.as_array().is_some_and(|ds| {
            ds.iter().any(|d| {
                d["url"].as_str().is_some_and(|u| u.ends_with("/slow"))
                    && d["last_error"].as_str().is_some_and(|e| e.contains("no answer"))
            })
        })
    });
    let slow: Vec<&Value> = slow
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["url"].as_str().is_some_and(|u| u.ends_with("/slow")))
        .collect();
    assert!(slow.iter().all(|d| d["event"] == "call.ended"), "{slow:?}");
    assert!(slow.iter().all(|d| d["state"] != "delivered"), "{slow:?}");
    let r = server.api("GET", "/api/webhooks/deliveries?state=sent", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("state")));
}

/// The field of an error answer (`None` for a success).
fn error_of_ok(r: &Reply) -> Option<String> {
    (r.status >= 400).then(|| error_of(r).1).flatten()
}

/// Quality inspection after an agent's call: the demo bank's agent calls a
/// callee (the server calling itself over SIP), is hung up once it said its
/// greeting and the recording notice; the call is queued when it ends,
/// scored against the pack's scorecard from its stored transcript (each
/// verdict quoted from it), listed and filtered through the API, and
/// reported by the `call.analyzed` webhook. The callee's side (a playback
/// route, no scorecard) is not scored.
#[test]
fn an_agent_call_is_scored_against_its_pack_after_it_ends() {
    let _one = common::one_at_a_time();
    if voxline_models::fetched_for_test(MODELS).is_none() {
        return;
    }
    let person_no = "+442079460521";
    let audio = common::test_dir("api-qa-audio");
    let long = audio.join("long.wav");
    common::write_tone_wav(&long, 30.0, 300.0);
    let routes = format!(
        "{}{}",
        common::playback_route("person", person_no, &long, 40),
        common::agent_route("bank", "bank", "demo-bank", ", record = false")
    );
    let hooks = receivers();
    let server = Server::start_with("api-qa", "", Some(&routes), |text| {
        let extra = format!(
            "[[webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\nevents = [\"call.answered\", \"call.analyzed\"]",
            port = hooks.port,
        );
        common::with_self_trunk(text, &extra)
    });
    let r = server.api(
        "POST",
        "/api/calls",
        Some(json!({ "route": "bank", "to": person_no, "trunk": "self" })),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let call_id = r.json()["call_id"].as_str().expect("call_id").to_string();
    let path = format!("/api/calls/{call_id}");
    wait_for(&server, &format!("{path}/transcript"), 40, |t| {
        t.to_string().contains("recorded for quality")
    });
    assert_eq!(server.api("POST", &format!("{path}/hangup"), None).status, 202);

    // Scored once it ended: the greeting and the notice were said (quoted
    // from the transcript); nothing forbidden was promised.
    let qa = wait_for(&server, &format!("{path}/qa"), 60, |q| {
        q.as_array().is_some_and(|rs| {
            rs.len() == 2 && rs.iter().any(|r| r["state"] == "done") && rs.iter().any(|r| r["state"] == "none")
        })
    });
    let scored = qa
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["state"] == "done"))
        .expect("the agent's side");
    let items = scored["result"]["items"].as_array().expect("items");
    let item = |id: &str| {
        items
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {scored}"))
    };
    assert_eq!(item("greeting")["verdict"], "pass", "{scored:#}");
    assert_eq!(item("recording_notice")["verdict"], "pass", "{scored:#}");
    assert_eq!(item("no_forbidden_promise")["verdict"], "pass", "{scored:#}");
    let quote = item("recording_notice")["evidence"][0]["quote"]
        .as_str()
        .expect("a quote")
        .to_string();
    let transcript = server
        .api("GET", &format!("{path}/transcript"), None)
        .json()
        .to_string();
    assert!(transcript.contains(&quote), "{quote:?} is not in {transcript}");
    assert!(
        scored["score"].as_f64().is_some_and(|s| (0.0..=100.0).contains(&s)),
        "{scored}"
    );
    assert!(scored["scorecard"]
        .as_str()
        .is_some_and(|s| s.ends_with("demo-bank/qa.toml")));
    // The outcome item was put to the agents' model: judged with a quote
    // from the call, or left unsure with the model's reply as why.
    let resolved = item("resolved");
    match resolved["verdict"].as_str() {
        Some("pass" | "fail") => {
            let q = resolved["evidence"][0]["quote"].as_str().expect("the model's quote");
            assert!(transcript.contains(q), "{q:?} is not in {transcript}");
        }
        Some("unsure") => assert!(
            resolved["why"].as_str().is_some_and(|w| w.contains("the model")),
            "{resolved}"
        ),
        other => panic!("resolved: {other:?}"),
    }

    // The summary, written with the score: the model's draft when the call
    // holds every sentence of it, else the call's own sentences and why.
    let summaries = server.api("GET", &format!("{path}/summary"), None).json();
    let summary = summaries
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["state"] == "done"))
        .map(|r| r["summary"].clone())
        .unwrap_or_else(|| panic!("{summaries:#}"));
    assert!(
        summary["summary"].as_str().is_some_and(|t| !t.is_empty()),
        "{summary:#}"
    );
    let written = &summary["written_by"];
    match written["by"].as_str() {
        Some("model") => assert!(written["model"].is_string(), "{summary:#}"),
        Some("extractive") => assert!(written["model_refused"].is_string(), "the model was asked: {summary:#}"),
        other => panic!("written by {other:?}: {summary:#}"),
    }
    assert!(summaries
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["state"] == "none" && r["summary"].is_null())));
    assert_eq!(server.api("GET", "/api/calls/no-such-call/summary", None).status, 404);

    // Listed and filtered.
    let list = server.api("GET", "/api/qa", None).json();
    let row = list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["call_id"] == call_id.as_str()))
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!((row["route"].as_str(), &row["score"]), (Some("bank"), &scored["score"]));
    let filtered = server.api("GET", "/api/qa?failed_item=recording_notice", None).json();
    assert_eq!(filtered, json!([]), "the notice passed");
    let passed = scored["passed"].as_bool().expect("passed");
    let same = server.api("GET", &format!("/api/qa?passed={passed}"), None).json();
    assert!(same.as_array().is_some_and(|l| l.len() == 1), "{same}");
    let r = server.api("GET", "/api/qa?limit=0", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("limit")));
    let r = server.api("GET", "/api/qa?min_score=101", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("min_score")));
    let worst = server.api("GET", "/api/qa?order=worst&limit=1", None).json();
    assert_eq!(worst[0]["call_id"], call_id.as_str(), "{worst}");
    let r = server.api("GET", "/api/qa?order=best", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("order")));
    let r = server.api("GET", "/api/qa?colour=red", None);
    assert_eq!((r.status, error_of(&r).1.as_deref()), (422, Some("query")));
    let r = server.api("GET", "/api/calls/no-such-call/qa", None);
    assert_eq!(r.status, 404);

    // The period's report: each item's tally, the worst calls, every call as CSV.
    let csv = server.dir.join("qa.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["qa", "report", "--csv"])
        .arg(&csv)
        .arg("--config")
        .arg(&server.config)
        .output()
        .expect("voxline qa report");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("1 call(s) scored"), "{report}");
    assert!(
        report.contains("| recording_notice (critical) | 1 | 0 | 0 | 0 | 100% |"),
        "{report}"
    );
    assert!(report.contains(&format!("| {call_id} | bank |")), "{report}");
    let rows = std::fs::read_to_string(&csv).expect("the CSV");
    let mut lines = rows.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("record_id,call_id,route,analyzed_at,score,passed,"),
        "{header}"
    );
    assert!(header.contains("recording_notice"), "{header}");
    let row = lines.next().expect("one call");
    assert!(row.contains(&call_id) && row.contains(",bank,"), "{row}");
    assert!(lines.next().is_none(), "{rows}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["qa", "report", "--since", "2026-13-01", "--config"])
        .arg(&server.config)
        .output()
        .expect("voxline qa report");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"2026-13-01\": write YYYY-MM-DD"));

    // The webhook (its receiver answers the first request 500: sent again).
    let deadline = Instant::now() + Duration::from_secs(30);
    let analyzed = loop {
        let got = hooks.got.lock().unwrap().clone();
        let found = got.iter().find_map(|(headers, body)| {
            let b: Value = serde_json::from_str(body).expect("JSON body");
            (b["event"] == "call.analyzed").then(|| (headers.clone(), body.clone(), b))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "webhooks so far: {got:#?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let (headers, body, b) = analyzed;
    assert!(signed(&headers, &body), "bad signature");
    assert_eq!(b["call"]["call_id"], call_id.as_str(), "{b}");
    assert_eq!(b["score"], scored["score"], "{b}");
    assert_eq!(b["qa_url"], format!("{path}/qa"), "{b}");
    assert_eq!(b["summary_url"], format!("{path}/summary"), "{b}");
    assert_eq!(b["summary"], summary["summary"], "{b}");
}

#[path = "../../voxline-store/tests/support/postgres.rs"]
mod postgres;

/// Waits (15 s at most) until the store at `url` opens: the server waits
/// for nothing, PostgreSQL must take connections first.
fn pg_ready(url: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match rt.block_on(voxline_store::CallStore::open(url, "probe")) {
            Ok(s) => break rt.block_on(s.close()),
            Err(e) => assert!(Instant::now() < deadline, "postgres: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/healthz` answers for the store: 200 while PostgreSQL answers, 503
/// naming the store once it is gone (a load balancer takes the node out).
#[test]
fn healthz_says_when_the_store_is_gone() {
    let pg = postgres::Postgres::start();
    let url = pg.url();
    pg_ready(&url);
    let server = Server::start_with("healthz-pg", "", None, move |text| common::on_store(text, &url));
    let r = server.request("GET", "/healthz", None, None);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    drop(pg); // PostgreSQL stopped
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = server.request("GET", "/healthz", None, None);
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.starts_with("store: "), "{}", r.body);
}

/// A `voxline serve` on a fresh PostgreSQL, which is then stopped (the
/// store gone from under a running node): the database, its URL, the server.
fn server_on_a_stopped_postgres(name: &str) -> (postgres::Postgres, String, Server) {
    let mut pg = postgres::Postgres::start();
    let url = pg.url();
    pg_ready(&url);
    let db = url.clone();
    let server = Server::start_with(name, "", None, move |text| common::on_store(text, &db));
    pg.stop();
    (pg, url, server)
}

/// PostgreSQL stopped for 30 s while 20 calls come in and end: the calls
/// are served as usual, their record writes wait in the queue and are
/// tried again; once the store is back every record is written whole.
#[test]
fn records_wait_for_a_store_that_went_away_and_none_is_lost() {
    let (mut pg, _, server) = server_on_a_stopped_postgres("records-pg-down");
    let stopped = Instant::now();
    // 20 calls to the route that hangs up after its 1 s greeting, 10 at once.
    let run = common::sipp(
        &server,
        "uac_wait_bye.xml",
        "hangup",
        "127.0.0.1",
        // (A Call-ID per call: the helper's fixed one is for single calls.)
        &["-m", "20", "-l", "10", "-r", "10", "-cid_str", "pg-down-%u-%p@%s"],
    );
    assert!(
        run.ok,
        "calls failed while the store was down:\n{}\n{}",
        run.output,
        server.log_text()
    );
    assert!(run.output.contains("Successful call"), "{}", run.output);
    let waiting = server.metric("voxline_records_pending");
    assert!(waiting >= 20.0, "only {waiting} writes waiting with the store down");
    // The store stays away 30 s in all (the fault's length, not a wait for
    // an event).
    if let Some(left) = Duration::from_secs(30).checked_sub(stopped.elapsed()) {
        std::thread::sleep(left);
    }
    // (A try waits for the pool's connection timeout before it fails.)
    server.wait_for_log("call store unavailable: record writes wait", 1, Duration::from_secs(15));
    pg.start_again();
    let back = Instant::now();
    let deadline = back + Duration::from_secs(60);
    while server.metric("voxline_records_pending") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "writes still waiting a minute after the store came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "store down {:?}: {waiting} writes waited, all written {:?} after it came back, {} tries again",
        back.duration_since(stopped),
        back.elapsed(),
        server.metric("voxline_records_write_retries_total")
    );
    let records = server.all_records();
    let calls: Vec<_> = records.iter().filter(|r| r["direction"] == "inbound").collect();
    assert_eq!(calls.len(), 20, "{records:?}");
    for r in &calls {
        assert!(!r["end_at"].is_null() && !r["answer_at"].is_null(), "{r}");
        assert!(r["end_reason"].is_string(), "{r}");
    }
    assert_eq!(server.metric("voxline_records_write_refused_total"), 0.0);
}

/// PostgreSQL stopped, 10 calls served, then the node crashes before the
/// store is back: what the calls wrote waited in the spool on disk, and the
/// next start writes it; every record is whole and the spool is emptied.
#[test]
fn record_writes_spooled_while_the_store_is_down_survive_a_crash() {
    let (mut pg, url, mut server) = server_on_a_stopped_postgres("records-spool");
    let run = common::sipp(
        &server,
        "uac_wait_bye.xml",
        "hangup",
        "127.0.0.1",
        &["-m", "10", "-l", "10", "-r", "10", "-cid_str", "spool-%u-%p@%s"],
    );
    assert!(run.ok, "calls failed:\n{}\n{}", run.output, server.log_text());
    // Each lane spools once a try of its first write fails (after the
    // pool's connection timeout), then everything it holds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (pending, spooled) = loop {
        let pending = server.metric("voxline_records_pending");
        let spooled = server.metric("voxline_records_spooled_total");
        if pending >= 30.0 && spooled >= pending {
            break (pending, spooled);
        }
        assert!(
            Instant::now() < deadline,
            "{spooled} of {pending} waiting writes spooled\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    server.crash();
    let spool = server.dir.join("spool").join("test");
    let lines: usize = std::fs::read_dir(&spool)
        .unwrap_or_else(|e| panic!("{}: {e}", spool.display()))
        .filter_map(Result::ok)
        .filter(|f| f.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|f| std::fs::read_to_string(f.path()).expect("spool file").lines().count())
        .sum();
    assert_eq!(lines as f64, spooled, "spool files hold every spooled write");
    eprintln!("crashed with {pending} writes waiting, {lines} of them in the spool");

    pg.start_again();
    pg_ready(&url);
    server.restart();
    server.wait_for_log("record writes left by an earlier run", 1, Duration::from_secs(15));
    let calls: Vec<Value> = server
        .ended_records(10)
        .into_iter()
        .filter(|r| r["direction"] == "inbound")
        .collect();
    assert_eq!(calls.len(), 10, "{calls:?}\n{}", server.log_text());
    for r in &calls {
        assert_eq!(r["status"], "completed", "{r}");
        assert!(!r["answer_at"].is_null() && r["end_reason"].is_string(), "{r}");
        assert!(r["call_id"].as_str().is_some_and(|c| c.starts_with("spool-")), "{r}");
    }
    let left: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool folder")
        .filter_map(Result::ok)
        .map(|f| f.file_name())
        .collect();
    assert!(left.is_empty(), "spool files left after catching up: {left:?}");
}
