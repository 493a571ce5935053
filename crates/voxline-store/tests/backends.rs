//! The same call-record life cycle on both backends: SQLite (a temp file) and
//! a real PostgreSQL server started for the test (Debian's postgresql package).

#[path = "support/postgres.rs"]
mod postgres;
use postgres::Postgres;
use std::time::{Duration, Instant};
use voxline_store::{
    now_ms, AgentTurn, AnalysisFilter, AttemptEnd, CallDirection, CallEnd, CallFilter, CallStore, FlowStep,
    ItemVerdict, ListedAnalysis, NewCall, NewContact, NewDelivery, NextStep, StoreError, ToolUse, TrainingFilter,
    TranscriptLine,
};

fn new_call(id: &str) -> NewCall {
    NewCall {
        id: id.into(),
        call_id: format!("cid-{id}"),
        direction: CallDirection::Inbound,
        from_uri: "sip:alice@127.0.0.1".into(),
        to_uri: "sip:demo@127.0.0.1".into(),
        source_addr: Some("127.0.0.1:5070".into()),
        trunk: Some("local".into()),
        route: Some("demo".into()),
        handler: Some("playback".into()),
        invite_at: now_ms(),
        channel: "sip".into(),
    }
}

async fn life_cycle(url: &str) {
    let store = CallStore::open(url, "node-a").await.expect("open");
    // A completed call.
    store.call_started(&new_call("a")).await.expect("start");
    store
        .call_answered("a", "PCMA", Some("AES_CM_128_HMAC_SHA1_80"), Some("/rec/a.wav"))
        .await
        .expect("answer");
    store
        .call_ended(
            "a",
            &CallEnd {
                answered: true,
                reason: "bye".into(),
                hangup_by: "caller".into(),
                sip_status: Some(200),
                packets_sent: 500,
                packets_received: 498,
                packets_lost: 2,
                jitter_ms: 3.5,
                rtcp: Some(voxline_store::RtcpSummary {
                    rtt_ms: Some(42.5),
                    remote_lost: 7,
                    remote_jitter_ms: 1.25,
                }),
                detail: None,
            },
        )
        .await
        .expect("end");
    let a = &store.find_by_call_id("cid-a").await.expect("find")[0];
    assert_eq!(a.status, "completed");
    assert_eq!(a.codec.as_deref(), Some("PCMA"));
    assert_eq!(a.srtp.as_deref(), Some("AES_CM_128_HMAC_SHA1_80"));
    assert_eq!(a.channel, "sip");
    assert_eq!(a.packets_sent, Some(500));
    assert_eq!(a.packets_lost, Some(2));
    assert_eq!(a.jitter_ms, Some(3.5));
    assert_eq!(a.sip_status, Some(200));
    assert_eq!(
        (a.rtt_ms, a.remote_lost, a.remote_jitter_ms),
        (Some(42.5), Some(7), Some(1.25))
    );
    // Its transcript, written line by line, read back in order.
    let line = |seq: i64, speaker: &str, text: &str, latency: Option<f64>| TranscriptLine {
        seq,
        speaker: speaker.into(),
        start_ms: seq * 1000,
        end_ms: seq * 1000 + 800,
        text: text.into(),
        asr_latency_ms: latency,
    };
    store
        .transcript_line("a", &line(2, "agent", "We open at nine.", None))
        .await
        .expect("line 2");
    store
        .transcript_line("a", &line(1, "caller", "When do you open?", Some(12.5)))
        .await
        .expect("line 1");
    assert!(
        store
            .transcript_line("a", &line(1, "caller", "again", None))
            .await
            .is_err(),
        "seq is unique per call"
    );
    assert_eq!(
        store.transcript("a").await.expect("transcript"),
        vec![
            line(1, "caller", "When do you open?", Some(12.5)),
            line(2, "agent", "We open at nine.", None)
        ]
    );
    assert!(store.transcript("b").await.expect("empty").is_empty());
    // Its agent turns with their stage times (a stage that did not happen is NULL).
    let turn = |seq: i64, barge: Option<f64>| AgentTurn {
        seq,
        caller_end_ms: seq * 4000,
        caller_text: "When do you open?".into(),
        intent: "question".into(),
        started_on: if seq == 1 { "early_final" } else { "final" }.into(),
        end_declared_ms: Some(500.0),
        asr_final_ms: Some(520.25),
        llm_first_token_ms: Some(260.0),
        llm_prompt_read: Some(42),
        first_phrase_ms: Some(410.0),
        tts_first_audio_ms: Some(450.5),
        first_rtp_ms: if seq == 1 { Some(461.0) } else { None },
        barge_in_onset_ms: barge,
        barge_in_stop_ms: barge.map(|b| b + 210.0),
    };
    store.agent_turn("a", &turn(2, Some(1800.0))).await.expect("turn 2");
    store.agent_turn("a", &turn(1, None)).await.expect("turn 1");
    assert!(
        store.agent_turn("a", &turn(1, None)).await.is_err(),
        "seq is unique per call"
    );
    assert_eq!(
        store.agent_turns("a").await.expect("turns"),
        vec![turn(1, None), turn(2, Some(1800.0))]
    );
    assert!(store.agent_turns("b").await.expect("none").is_empty());
    // The flow steps it reached, in order.
    let step = |seq: i64, name: &str, via: &str| FlowStep {
        seq,
        flow: "card-renewal".into(),
        step: name.into(),
        via: via.into(),
        at_ms: seq * 3000,
    };
    store.flow_step("a", &step(2, "offer", "yes")).await.expect("step 2");
    store
        .flow_step("a", &step(1, "confirm", "start"))
        .await
        .expect("step 1");
    assert!(
        store.flow_step("a", &step(2, "x", "no")).await.is_err(),
        "seq is unique per call"
    );
    assert_eq!(
        store.flow_steps("a").await.expect("steps"),
        vec![step(1, "confirm", "start"), step(2, "offer", "yes")]
    );
    assert!(store.flow_steps("b").await.expect("none").is_empty());
    // The tools it called: one answered, one failed, one left by the call's end.
    let answered = ToolUse {
        seq: 1,
        tool: "check_balance".into(),
        args: [("account".to_string(), "(8 digits)".to_string())].into(),
        ok: true,
        error: None,
        at_ms: 4200,
        took_ms: Some(85),
    };
    let failed = ToolUse {
        seq: 2,
        tool: "block_card".into(),
        args: [
            ("card_last4".to_string(), "(4 digits)".to_string()),
            ("reason".to_string(), "stolen \"today\" — ünïcode".to_string()),
        ]
        .into(),
        ok: false,
        error: Some("calling http://127.0.0.1:9/block: no answer within 2000 ms".into()),
        at_ms: 9100,
        took_ms: Some(2001),
    };
    let left = ToolUse {
        seq: 3,
        tool: "transfer".into(),
        args: Default::default(),
        ok: false,
        error: Some("the call ended before the tool answered".into()),
        at_ms: 15000,
        took_ms: None,
    };
    for t in [&left, &answered, &failed] {
        store.tool_call("a", t).await.expect("tool call");
    }
    assert!(store.tool_call("a", &left).await.is_err(), "seq is unique per call");
    assert_eq!(
        store.tool_calls("a").await.expect("tools"),
        vec![answered, failed, left]
    );
    assert!(store.tool_calls("b").await.expect("none").is_empty());
    // A call left open by a crash of node-a, and one of node-b.
    store.call_started(&new_call("b")).await.expect("start b");
    store.heartbeat().await.expect("heartbeat");
    let other = CallStore::open(url, "node-b").await.expect("open b");
    other.call_started(&new_call("c")).await.expect("start c");
    let again = CallStore::open(url, "node-a").await.expect("reopen");
    assert_eq!(again.close_interrupted().await.expect("close"), 1);
    let b = &again.find_by_call_id("cid-b").await.expect("b")[0];
    assert_eq!(b.status, "interrupted");
    assert!(b.end_at.is_some());
    let c = &again.find_by_call_id("cid-c").await.expect("c")[0];
    assert_eq!(c.status, "ringing", "another node's live call is left alone");
    let recent = again
        .search(&CallFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("recent");
    assert_eq!(recent.len(), 3);
    // A browser's call: its channel is kept as written.
    let browser = NewCall {
        channel: "webrtc".into(),
        ..new_call("w")
    };
    again.call_started(&browser).await.expect("start a browser call");
    let w = &again.find_by_call_id("cid-w").await.expect("find")[0];
    assert_eq!(w.channel, "webrtc");
    call_search(&again).await;
    campaign_records(&again).await;
    webhook_outbox(&again).await;
    call_analysis(&again).await;
    training_sessions(&again).await;
    again.close().await;
    shared_leases(url).await;
    node_names(url).await;
}

/// The history's filters: transcript words in any case, the party, the
/// channel, the end, the time; LIKE's wildcards in a needle match only
/// themselves.
async fn call_search(store: &CallStore) {
    let ids = |rows: Vec<voxline_store::CallRecord>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let find = |f: CallFilter| async move { ids(store.search(&CallFilter { limit: 50, ..f }).await.expect("search")) };
    let all = find(CallFilter::default()).await;
    assert_eq!(all.len(), 4, "{all:?}");
    let said = |t: &str| CallFilter {
        text: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(find(said("OPEN AT nine")).await, ["a"]);
    assert!(find(said("closed")).await.is_empty());
    assert!(
        find(said("open%nine")).await.is_empty(),
        "% is a character, not a wildcard"
    );
    assert_eq!(find(said("  ")).await.len(), 4, "a blank needle filters nothing");
    let webrtc = find(CallFilter {
        channel: Some("webrtc".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(webrtc, ["w"]);
    let ended = find(CallFilter {
        end_reason: Some("bye".into()),
        direction: Some("inbound".into()),
        route: Some("demo".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(ended, ["a"]);
    assert_eq!(
        find(CallFilter {
            party: Some("ALICE".into()),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert!(find(CallFilter {
        since: Some(now_ms() + 60_000),
        ..Default::default()
    })
    .await
    .is_empty());
    let newest = ids(store
        .search(&CallFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("one"));
    assert_eq!(newest, ["w"], "newest first");
}

/// One live process per node name: a second is refused, takes over after a
/// clean stop or once the holder's heartbeat is stale; the displaced holder
/// learns it at its next heartbeat.
async fn node_names(url: &str) {
    let stale = Duration::from_secs(15);
    let first = CallStore::open(url, "node-n").await.expect("open first");
    assert_eq!(first.claim_node(stale).await.expect("first claim"), None);
    first.heartbeat().await.expect("holder's heartbeat");
    let second = CallStore::open(url, "node-n").await.expect("open second");
    let err = second
        .claim_node(stale)
        .await
        .expect_err("a live holder keeps its name");
    assert!(matches!(err, StoreError::NodeTaken { elsewhere: false, .. }), "{err:?}");
    assert!(err.to_string().contains("node.name \"node-n\" is in use"), "{err}");
    assert!(second.heartbeat().await.is_err(), "nor can it beat for the name");
    // A clean stop frees the name at once; the last heartbeat is handed on.
    first.release_node().await.expect("release");
    let last = second.claim_node(stale).await.expect("claim after release");
    assert!(last.is_some());
    second.heartbeat().await.expect("new holder's heartbeat");
    // A holder silent past the stale time is taken over ...
    let third = CallStore::open(url, "node-n").await.expect("open third");
    let beat = now_ms();
    while now_ms() <= beat + 1 {
        tokio::task::yield_now().await;
    }
    third.claim_node(Duration::ZERO).await.expect("stale holder taken over");
    // ... and learns it.
    assert!(matches!(second.heartbeat().await, Err(StoreError::NodeTaken { .. })));
    third.heartbeat().await.expect("third beats");
    for s in [first, second, third] {
        s.close().await;
    }
}

/// Webhook deliveries: leased one at a time, retried when due, given up,
/// taken over when the sender's lease ran out.
async fn webhook_outbox(store: &CallStore) {
    let d = |id: &str| NewDelivery {
        id: id.into(),
        owner: String::new(),
        url: "http://127.0.0.1:9/hook".into(),
        event: "call.ended".into(),
        body: format!("{{\"id\":\"{id}\"}}"),
    };
    store.enqueue_webhooks(&[d("w1"), d("w2")]).await.expect("enqueue");
    let lease = || store.lease_webhook(now_ms() + 60_000, 10);
    let first = lease().await.expect("lease").expect("one due");
    let second = lease().await.expect("lease").expect("another due");
    assert_ne!(first.id, second.id);
    assert_eq!((first.state.as_str(), first.attempts), ("sending", 1));
    assert!(lease().await.expect("lease").is_none(), "both are being sent");
    store
        .webhook_failed(&first.id, Some(500), "HTTP 500", Some(now_ms() - 1))
        .await
        .expect("failed");
    let again = lease().await.expect("lease").expect("due again");
    assert_eq!((again.id.as_str(), again.attempts), (first.id.as_str(), 2));
    assert_eq!(again.last_status, Some(500));
    store.webhook_delivered(&again.id, 204).await.expect("delivered");
    store
        .webhook_failed(&second.id, None, "timed out", None)
        .await
        .expect("given up");
    assert!(lease().await.expect("lease").is_none());
    let all = store.webhook_deliveries(None, 10).await.expect("list");
    let state = |id: &str| all.iter().find(|x| x.id == id).map(|x| x.state.clone());
    assert_eq!(state(&first.id).as_deref(), Some("delivered"));
    assert_eq!(state(&second.id).as_deref(), Some("failed"));
    assert_eq!(
        store
            .webhook_deliveries(Some("failed"), 10)
            .await
            .expect("failed")
            .len(),
        1
    );
    // A sender that stopped mid-try: its lease runs out, another takes it.
    store.enqueue_webhooks(&[d("w3")]).await.expect("enqueue");
    let taken = store.lease_webhook(now_ms() - 1, 10).await.expect("lease").expect("w3");
    let retaken = lease().await.expect("lease").expect("lease ran out");
    assert_eq!((retaken.id.as_str(), retaken.attempts), (taken.id.as_str(), 2));
    store.webhook_delivered(&retaken.id, 200).await.expect("delivered");
    // One receiver's sending deliveries up to the cap: the next waits, another receiver's goes.
    let to = |id: &str, url: &str| NewDelivery {
        url: url.into(),
        ..d(id)
    };
    store
        .enqueue_webhooks(&[
            to("a-slow", "http://slow/"),
            to("b-slow", "http://slow/"),
            to("c-fast", "http://fast/"),
        ])
        .await
        .expect("enqueue");
    let one = |cap| store.lease_webhook(now_ms() + 60_000, cap);
    assert_eq!(one(1).await.expect("lease").expect("a").id, "a-slow");
    assert_eq!(one(1).await.expect("lease").expect("c").id, "c-fast", "b waits for a");
    assert!(one(1).await.expect("lease").is_none());
    assert_eq!(one(2).await.expect("lease").expect("b").id, "b-slow");
}

/// Quality inspection: calls queued, leased one at a time (a lease that ran
/// out is taken again), scored, listed by verdict, score and failed item,
/// tallied per item; a failed try queued again or given up.
async fn call_analysis(store: &CallStore) {
    let card = "domains/demo-bank/qa.toml";
    for id in ["qa1", "qa2", "qa3"] {
        store.queue_analysis(id, card).await.expect("queue");
    }
    let lease = || store.lease_analysis(now_ms() + 60_000, 5);
    let first = lease().await.expect("lease").expect("one waits");
    assert_eq!(
        (first.record_id.as_str(), first.state.as_str(), first.attempts),
        ("qa1", "running", 1)
    );
    assert_eq!(first.scorecard, card);
    let second = lease().await.expect("lease").expect("another");
    let verdict = |item: &str, v: &str, critical| ItemVerdict {
        item: item.into(),
        verdict: v.into(),
        critical,
    };
    store
        .analysis_done(
            &first.record_id,
            Some(92.5),
            true,
            r#"{"passed":true}"#,
            Some(r#"{"summary":"A card was blocked."}"#),
            &[verdict("greeting", "pass", false), verdict("notice", "pass", true)],
        )
        .await
        .expect("done");
    store
        .analysis_done(
            &second.record_id,
            Some(40.0),
            false,
            r#"{"passed":false}"#,
            None,
            &[verdict("greeting", "fail", false), verdict("notice", "na", true)],
        )
        .await
        .expect("done");
    // A worker that stopped: its lease runs out and the call is taken again.
    let third = store
        .lease_analysis(now_ms() - 1, 5)
        .await
        .expect("lease")
        .expect("qa3");
    let again = lease().await.expect("lease").expect("lease ran out");
    assert_eq!(
        (again.record_id.as_str(), again.attempts),
        (third.record_id.as_str(), 2)
    );
    store
        .analysis_failed(&again.record_id, "transcript unreadable", true)
        .await
        .expect("retry");
    let retried = lease().await.expect("lease").expect("queued again");
    assert_eq!(retried.attempts, 3);
    store
        .analysis_failed(&retried.record_id, "transcript unreadable", false)
        .await
        .expect("give up");
    assert!(lease().await.expect("lease").is_none());
    let qa3 = store.analysis("qa3").await.expect("read").expect("qa3");
    assert_eq!(
        (qa3.state.as_str(), qa3.error.as_deref()),
        ("failed", Some("transcript unreadable"))
    );
    let qa1 = store.analysis("qa1").await.expect("read").expect("qa1");
    assert_eq!(
        (qa1.score, qa1.passed, qa1.result.as_deref()),
        (Some(92.5), Some(true), Some(r#"{"passed":true}"#))
    );
    assert_eq!(qa1.summary.as_deref(), Some(r#"{"summary":"A card was blocked."}"#));
    assert!(qa3.summary.is_none());
    assert!(store.analysis("nope").await.expect("read").is_none());
    let ids = |rows: Vec<ListedAnalysis>| rows.into_iter().map(|r| r.analysis.record_id).collect::<Vec<_>>();
    let all = AnalysisFilter {
        limit: 10,
        ..AnalysisFilter::default()
    };
    let listed = store.analyses(&all).await.expect("list");
    // Listed without a call record (the join keeps them), the call unknown.
    assert!(
        listed.iter().all(|l| l.call_id.is_none() && l.route.is_none()),
        "{listed:?}"
    );
    assert_eq!(ids(listed).len(), 2);
    let failed = AnalysisFilter {
        passed: Some(false),
        ..all.clone()
    };
    assert_eq!(ids(store.analyses(&failed).await.expect("list")), vec!["qa2"]);
    let by_item = AnalysisFilter {
        failed_item: Some("greeting".into()),
        ..all.clone()
    };
    assert_eq!(ids(store.analyses(&by_item).await.expect("list")), vec!["qa2"]);
    let high = AnalysisFilter {
        min_score: Some(90.0),
        ..all.clone()
    };
    assert_eq!(ids(store.analyses(&high).await.expect("list")), vec!["qa1"]);
    let worst = AnalysisFilter {
        worst_first: true,
        ..all.clone()
    };
    assert_eq!(ids(store.analyses(&worst).await.expect("list")), vec!["qa2", "qa1"]);
    let later = AnalysisFilter {
        since: Some(now_ms() + 60_000),
        ..all
    };
    assert!(store.analyses(&later).await.expect("list").is_empty());
    let tallies = store.item_tallies(0, i64::MAX).await.expect("tallies");
    let g = tallies.iter().find(|t| t.item == "greeting").expect("greeting");
    assert_eq!((g.passed, g.failed, g.critical), (1, 1, false));
    let n = tallies.iter().find(|t| t.item == "notice").expect("notice");
    assert_eq!((n.passed, n.not_applicable, n.critical), (1, 1, true));
    // A call whose workers keep stopping mid-score is given up.
    store.queue_analysis("qa4", card).await.expect("queue");
    for attempt in 1..=2 {
        let taken = store
            .lease_analysis(now_ms() - 1, 2)
            .await
            .expect("lease")
            .expect("qa4");
        assert_eq!((taken.record_id.as_str(), taken.attempts), ("qa4", attempt));
    }
    assert!(store
        .lease_analysis(now_ms() + 60_000, 2)
        .await
        .expect("lease")
        .is_none());
    let qa4 = store.analysis("qa4").await.expect("read").expect("qa4");
    assert_eq!(qa4.state, "failed", "{qa4:?}");
    // Queued again (a scorecard changed): scored from the start.
    store.queue_analysis("qa1", card).await.expect("requeue");
    let qa1 = store.analysis("qa1").await.expect("read").expect("qa1");
    assert_eq!((qa1.state.as_str(), qa1.score), ("pending", None));
}

/// Two nodes dial one campaign at once: each contact is leased by one of
/// them only, and what a node leaves `dialing` is found again (by itself
/// at its start, by the other once the lease runs out).
async fn shared_leases(url: &str) {
    let a = CallStore::open(url, "lease-a").await.expect("open a");
    let b = CallStore::open(url, "lease-b").await.expect("open b");
    a.create_campaign("lc", "leases", "renewal", "{}")
        .await
        .expect("create");
    let contacts: Vec<NewContact> = (0..40).map(|i| contact(&format!("+4420794610{i:02}"), i + 2)).collect();
    a.add_contacts("lc", &contacts).await.expect("import");
    let dial_all = |store: CallStore| async move {
        let mut taken = Vec::new();
        while let Some(c) = store.lease_contact("lc", now_ms() + 60_000).await.expect("lease") {
            let call_id = format!("{}-{}", store.node(), c.seq);
            store.attempt_started(&c, 1, &call_id).await.expect("attempt");
            let end = AttemptEnd {
                result: "answered".into(),
                sip_status: None,
                outcome: Some("completed".into()),
            };
            let next = NextStep::Final {
                disposition: "completed".into(),
            };
            store.attempt_ended("lc", c.seq, 1, &end, &next).await.expect("end");
            taken.push(c.seq);
        }
        taken
    };
    let (from_a, from_b) = tokio::join!(dial_all(a.clone()), dial_all(b.clone()));
    let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<i64>>(), "a: {from_a:?} b: {from_b:?}");
    let counts = a.contact_counts("lc").await.expect("counts");
    assert_eq!(counts.by_state, vec![("done".to_string(), 40)]);
    assert_eq!(counts.by_disposition, vec![("completed".to_string(), 40)]);
    assert_eq!(a.attempts("lc").await.expect("attempts").len(), 40);
    // Over time: all 40 in this minute's span (or the next one's), by outcome.
    let spans = a.attempts_over_time("lc", 3_600_000).await.expect("over time");
    assert!((1..=2).contains(&spans.len()), "{spans:?}");
    assert!(
        spans
            .iter()
            .all(|(at, result, _)| at % 3_600_000 == 0 && result == "completed"),
        "{spans:?}"
    );
    assert_eq!(spans.iter().map(|(_, _, n)| n).sum::<i64>(), 40);
    assert_eq!(a.open_contacts("lc").await.expect("open"), 0);

    // Node a takes two contacts and stops: one before its attempt was
    // written, one after (its INVITE may have left).
    a.create_campaign("ld", "left", "renewal", "{}").await.expect("create");
    a.add_contacts("ld", &contacts[..3]).await.expect("import");
    let until = now_ms() + 60_000;
    let first = a.lease_contact("ld", until).await.expect("lease").expect("due");
    let second = a.lease_contact("ld", until).await.expect("lease").expect("due");
    a.attempt_started(&second, 1, "left-call").await.expect("attempt");
    let mine = a.left_dialing("ld", true, now_ms()).await.expect("left");
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!((mine[0].contact.seq, mine[0].call_id.as_deref()), (first.seq, None));
    assert_eq!(
        (mine[1].contact.seq, mine[1].call_id.as_deref(), mine[1].answered),
        (second.seq, Some("left-call"), false)
    );
    // Node b sees them only once the lease has run out.
    assert!(b.left_dialing("ld", false, now_ms()).await.expect("left").is_empty());
    assert_eq!(b.left_dialing("ld", false, until + 1).await.expect("left").len(), 2);
    assert!(a.left_dialing("ld", true, now_ms()).await.expect("left").len() == 2);
    assert!(b.left_dialing("ld", true, now_ms()).await.expect("left").is_empty());
    // An attempt whose INVITE never left is taken back.
    a.attempt_withdrawn("ld", second.seq, 1).await.expect("withdraw");
    assert_eq!(a.left_dialing("ld", true, now_ms()).await.expect("left").len(), 1);
    assert!(a.attempts("ld").await.expect("attempts").is_empty());
    // A contact given back is due again; the third was never taken.
    a.release_contact("ld", first.seq, 0).await.expect("release");
    assert_eq!(a.next_due("ld").await.expect("due"), Some(0));
    assert!(
        a.set_campaign_state("ld", &["draft"], "running").await.expect("state"),
        "draft → running"
    );
    assert!(
        !a.set_campaign_state("ld", &["draft"], "running").await.expect("state"),
        "not draft any more"
    );
    assert_eq!(
        a.campaign_by_id("ld").await.expect("read").map(|c| c.state).as_deref(),
        Some("running")
    );
    a.close().await;
    b.close().await;
}

fn contact(number: &str, line: i64) -> NewContact {
    NewContact {
        number: number.into(),
        tz: "Europe/London".into(),
        variables: format!("{{\"line\":\"{line}\"}}"),
        source_line: line,
    }
}

/// A campaign, its contacts imported twice (the second time adding only the
/// new number), counts, and the do-not-call lists.
async fn campaign_records(store: &CallStore) {
    store
        .create_campaign("c1", "renewals", "renewal", "{}")
        .await
        .expect("create");
    assert!(
        store.create_campaign("c2", "renewals", "renewal", "{}").await.is_err(),
        "a campaign name is unique"
    );
    let c = store.campaign_by_name("renewals").await.expect("read").expect("found");
    assert_eq!(
        (c.id.as_str(), c.route.as_str(), c.state.as_str()),
        ("c1", "renewal", "draft")
    );
    assert_eq!(store.campaign_by_name("nope").await.expect("read"), None);

    let first = [contact("+442079460958", 2), contact("+442079460959", 3)];
    let done = store.add_contacts("c1", &first).await.expect("import");
    assert_eq!((done.added, done.already_there), (2, 0));
    let second = [contact("+442079460959", 2), contact("+442079460960", 3)];
    let told = std::sync::Mutex::new(Vec::new());
    let done = store
        .add_contacts_telling("c1", &second, &|n| told.lock().unwrap().push(n))
        .await
        .expect("import again");
    assert_eq!((done.added, done.already_there), (1, 1));
    assert_eq!(*told.lock().unwrap(), [2], "the end is told");
    let counts = store.contact_counts("c1").await.expect("counts");
    assert_eq!(counts.by_state, vec![("pending".to_string(), 3)]);
    assert!(counts.by_disposition.is_empty());

    assert_eq!(
        store.add_dnc("", &["+442079460958".into()]).await.expect("global dnc"),
        1
    );
    assert_eq!(
        store
            .add_dnc("c1", &["+442079460960".into(), "+442079460960".into()])
            .await
            .expect("campaign dnc"),
        1
    );
    assert!(store.is_dnc("c1", "+442079460958").await.expect("dnc"));
    assert!(store.is_dnc("c1", "+442079460960").await.expect("dnc"));
    assert!(!store.is_dnc("c1", "+442079460959").await.expect("dnc"));
    assert!(
        !store.is_dnc("other", "+442079460960").await.expect("dnc"),
        "another campaign's list"
    );
    let page = store.dnc_page("c1", "", 10).await.expect("dnc page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, "+442079460960");
    assert!(store
        .dnc_page("", "+442079460958", 10)
        .await
        .expect("page after")
        .is_empty());
    assert_eq!(
        store
            .remove_dnc("c1", &["+442079460960".into(), "+442079460999".into()])
            .await
            .expect("remove"),
        1,
        "only a number on the list counts"
    );
    assert!(!store.is_dnc("c1", "+442079460960").await.expect("dnc"));
    assert!(store.is_dnc("c1", "+442079460958").await.expect("global stays"));
}

#[tokio::test]
async fn sqlite_life_cycle() {
    let dir = std::env::temp_dir().join(format!("voxline-store-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    life_cycle(&format!("sqlite://{}/calls.db", dir.display())).await;
}

#[tokio::test]
async fn postgres_life_cycle() {
    let pg = Postgres::start();
    // The server accepts connections a moment after the port opens.
    let url = pg.url();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = CallStore::open(&url, "probe").await {
        eprintln!("probe: {e}");
        assert!(Instant::now() < deadline, "postgres not accepting connections");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    life_cycle(&url).await;
}

/// Training sessions: queued per trainee, leased one at a time apart from
/// the quality queue, reported, listed per trainee and scenario (with the
/// call's record when there is one); a failed try queued again.
async fn training_sessions(store: &CallStore) {
    let file = "domains/demo-bank/training/overdraft-fee.toml";
    store.call_started(&new_call("tr1")).await.expect("start");
    store.call_answered("tr1", "PCMU", None, None).await.expect("answer");
    store
        .queue_training("tr1", "maria", "overdraft-fee", file)
        .await
        .expect("queue");
    store
        .queue_training("tr2", "sam", "overdraft-fee", file)
        .await
        .expect("queue");
    store
        .queue_training("tr3", "maria", "card-lost", file)
        .await
        .expect("queue");
    let lease = || store.lease_training(now_ms() + 60_000, 3);
    let first = lease().await.expect("lease").expect("one waits");
    assert_eq!(
        (
            first.record_id.as_str(),
            first.trainee.as_str(),
            first.state.as_str(),
            first.attempts
        ),
        ("tr1", "maria", "running", 1)
    );
    assert_eq!(first.scenario_file, file);
    store
        .training_done(
            "tr1",
            Some(85.0),
            true,
            Some("satisfied"),
            r#"{"scenario":"overdraft-fee"}"#,
        )
        .await
        .expect("done");
    let second = lease().await.expect("lease").expect("tr2");
    store
        .training_failed(&second.record_id, "scenario unreadable", true)
        .await
        .expect("retry");
    let again = lease().await.expect("lease").expect("tr2 or tr3");
    assert_ne!(again.record_id, "tr1");
    let tr1 = store.training_session("tr1").await.expect("read").expect("tr1");
    assert_eq!(
        (tr1.state.as_str(), tr1.score, tr1.passed, tr1.outcome.as_deref()),
        ("done", Some(85.0), Some(true), Some("satisfied"))
    );
    assert!(store.training_session("nope").await.expect("read").is_none());
    let list = |trainee: Option<&str>, scenario: Option<&str>| {
        let f = TrainingFilter {
            trainee: trainee.map(String::from),
            scenario: scenario.map(String::from),
            limit: 10,
        };
        async move {
            let mut ids: Vec<String> = store
                .training_sessions(&f)
                .await
                .expect("list")
                .into_iter()
                .map(|l| l.session.record_id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(Some("maria"), None).await, vec!["tr1", "tr3"]);
    assert_eq!(list(Some("maria"), Some("overdraft-fee")).await, vec!["tr1"]);
    assert_eq!(list(None, None).await, vec!["tr1", "tr2", "tr3"]);
    let listed = store
        .training_sessions(&TrainingFilter {
            trainee: Some("maria".into()),
            scenario: Some("overdraft-fee".into()),
            limit: 10,
        })
        .await
        .expect("list");
    assert_eq!(listed[0].call_id.as_deref(), Some("cid-tr1"));
    assert!(listed[0].started_at.is_some());
    // The quality queue does not see training sessions.
    assert!(store
        .lease_analysis(now_ms() + 60_000, 5)
        .await
        .expect("lease")
        .is_none_or(|a| !a.record_id.starts_with("tr")));
}
