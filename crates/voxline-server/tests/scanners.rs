//! sipvicious, the scanner toll-fraud attempts start with, against a node
//! with a phone account (`[[user]] frontdesk`, allowed to dial `desk`).
//! Here 127.0.0.1, where sipvicious sends from, is outside every trunk.
//! svwar (REGISTER and INVITE scans of a list holding the phone's name and
//! the route's number) finds no extension: every name gets the same answer;
//! svcrack guessing the phone's password (the right one is 30th of its
//! list) is banned before its 20th guess (by its failures or, at its pace,
//! by the request rate limit) and never finds it.

mod common;

use common::*;
use std::process::Command;

/// A server whose only trusted network is 127.0.0.2: sipvicious (which
/// sends from 127.0.0.1) is a stranger.
fn exposed_server(name: &str) -> Server {
    let desk = format!("{USERS}{DESK_ROUTE}");
    Server::start_with(name, &desk, Some(""), |text| {
        text.replacen("allow = [\"127.0.0.1/32\"]", "allow = [\"127.0.0.2/32\"]", 1)
    })
}

/// Runs a sipvicious tool (bounded to 90 s); what it printed.
fn sipvicious(tool: &str, args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new("timeout")
        .arg("90")
        .arg(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {tool} (is sipvicious installed?): {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn svwar_finds_no_extension() {
    let server = exposed_server("svwar");
    let words = server.dir.join("names.txt");
    std::fs::write(&words, "frontdesk\ndesk\nadmin\n100\n1000\noperator\n").expect("names");
    let port = server.sip_port.to_string();
    let words = words.to_string_lossy().to_string();
    for method in ["INVITE", "REGISTER", "OPTIONS"] {
        let out = sipvicious(
            "svwar",
            &["-d", &words, "-m", method, "-p", &port, "127.0.0.1"],
            &server.dir,
        );
        eprintln!("svwar -m {method}:\n{out}");
        assert!(
            out.contains("found nothing"),
            "svwar -m {method} found something:\n{out}"
        );
        assert!(!out.contains("| Extension"), "{out}");
    }
    // Every name got the same answer: nothing was banned for this (6 names a
    // scan, under the rate limit), so the answers were the server's own.
    assert!(!server.log_text().contains("source banned"), "{}", server.log_text());
}

#[test]
fn svcrack_is_banned_before_its_twentieth_guess() {
    let server = exposed_server("svcrack");
    let words: Vec<String> = (1..30)
        .map(|i| format!("guess{i}"))
        .chain(["correct-horse".to_string()])
        .chain((30..40).map(|i| format!("guess{i}")))
        .collect();
    let list = server.dir.join("passwords.txt");
    std::fs::write(&list, words.join("\n") + "\n").expect("passwords");
    let port = server.sip_port.to_string();
    let uri = format!("sip:desk@127.0.0.1:{port}");
    let out = sipvicious(
        "svcrack",
        &[
            "-u",
            "frontdesk",
            "-m",
            "INVITE",
            "--requesturi",
            &uri,
            "-d",
            &list.to_string_lossy(),
            "-p",
            &port,
            "127.0.0.1",
        ],
        &server.dir,
    );
    eprintln!("svcrack:\n{out}");
    let log = server.log_text();
    let refused = log.matches("INVITE with bad credentials refused").count();
    eprintln!("guesses the server answered: {refused}");
    // Banned by its failures (10 by default) or, going as fast as svcrack
    // does, by the request rate limit (its guesses and their ACKs) first.
    assert!(
        log.contains("too many failures from this source") || log.contains("source banned source=127.0.0.1"),
        "svcrack was not banned:\n{out}\n{log}"
    );
    assert!(
        (1..20).contains(&refused),
        "{refused} guesses answered before the ban\n{log}"
    );
    assert!(!out.contains("correct-horse"), "svcrack found the password:\n{out}");
    assert!(out.contains("found nothing"), "{out}");
}
