//! Nothing fails quietly: settings that would lose data or peers, what the
//! log says at debug level and in which format, and counts that real
//! clients would distort.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Arguments that make the tracker run as a user who cannot write `dir`:
/// as root, `nobody` (the directory is root's); otherwise the directory is
/// made read-only.
fn unwritable(dir: &std::path::Path) -> Vec<&'static str> {
    if is_root() {
        vec!["--user", "65534", "--group", "65534"]
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        vec![]
    }
}

#[test]
fn a_state_file_that_cannot_be_written_refuses_to_start() {
    let dir = scratch("state-unwritable");
    let state = dir.join("tracker.state");
    let mut args = vec![
        "-p",
        "0",
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "off",
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend(unwritable(&dir));
    let out = run_tracker(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let msgs = log_messages(&err);
    let last = msgs.last().map(String::as_str).unwrap_or("");
    assert!(
        last.contains("tracker.state.tmp")
            && last.contains("Permission denied")
            && last.contains("the swarms could not be saved"),
        "{err}"
    );
    assert!(!err.contains("listening on"), "it never served: {err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_last_save_that_fails_is_an_error_and_a_failed_exit() {
    let dir = scratch("state-lost");
    let state = dir.join("tracker.state");
    let mut args = vec!["--udp", "--state", state.to_str().unwrap()];
    if is_root() {
        // nobody may write the directory while the tracker starts...
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        args.extend(["--user", "65534", "--group", "65534"]);
    }
    let t = Tracker::start(&args);
    let mut u = Udp::connect(t.v4());
    u.announce(hash(0, 1), peer_id(1), 0, 2, -1, 6001);
    // ...and then no longer.
    if is_root() {
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    } else {
        unwritable(&dir);
    }
    let (status, log) = t.stop();
    assert!(
        !status.success(),
        "exit status {status}; log:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("ERROR")
            && l.contains("the swarms were not saved")
            && l.contains("Permission denied")),
        "{}",
        log.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn intervals_in_the_wrong_unit_are_warned_about() {
    // --interval takes milliseconds: 600 is 0.6 s.
    let t = Tracker::start(&["--udp", "--interval", "600"]);
    let warn = t.wait_for_log(0, "WARN", Duration::from_secs(5));
    assert!(
        warn.contains("the announce interval is 1 s")
            && warn.contains("--interval takes milliseconds"),
        "{warn}"
    );
    drop(t);
    // `interval` in the file takes seconds: 600000 is a week.
    let dir = scratch("interval-file");
    let file = dir.join("t.toml");
    std::fs::write(&file, "interval = 600000\n").unwrap();
    let t = Tracker::start(&["--udp", "--config", file.to_str().unwrap()]);
    let warn = t.wait_for_log(0, "WARN", Duration::from_secs(5));
    assert!(
        warn.contains("600000 s (6.9 days)") && warn.contains("takes seconds"),
        "{warn}"
    );
    drop(t);
    // The default is not warned about.
    let t = Tracker::start(&["--udp"]);
    assert!(!t.log().iter().any(|l| l.contains("WARN")), "{:?}", t.log());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn peers_outlive_a_short_interval_for_clients_that_announce_less_often() {
    // A 1 s interval: libtorrent waits at least 300 s and rtorrent 600 s
    // between announces, whatever the tracker says; their peers must stay.
    let t = Tracker::start(&["--udp", "--interval", "1000"]);
    assert!(
        t.log()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("rtorrent")),
        "{:?}",
        t.log()
    );
    let mut u = Udp::connect(t.v4());
    let h = hash(0, 2);
    u.announce(h, peer_id(1), 0, 2, -1, 6001);
    // Twice the interval and more: without a floor on the time-to-live the
    // first peer would be gone.
    std::thread::sleep(Duration::from_millis(3500));
    let r = u.announce(h, peer_id(2), 100, 2, -1, 6002);
    assert_eq!((r.seeders, r.leechers), (1, 1));
    assert_eq!(r.ports(), vec![6001]);
}

#[test]
fn debug_logs_every_request_in_one_line_and_info_none() {
    let t = Tracker::start(&["--log-level", "debug"]);
    let (h, x) = (hash(0, 3), hash(1, 4));
    let mut u = Udp::connect(t.v4());
    u.announce(h, peer_id(1), 0, 2, -1, 6001);
    let r = get(
        t.v4(),
        &announce_target(x, peer_id(2), 6002, 5, "&event=started"),
    );
    assert_eq!(r.status, 200);
    get(t.v4(), "/announce?info_hash=short");
    let mut ws = ws_open(&t, "/");
    ws_call(
        &mut ws,
        json!({"action": "announce", "info_hash": binary(&h), "peer_id": binary(&peer_id(3)),
               "left": 0, "event": "started", "offers": []}),
    );
    let wait = |text: &str| t.wait_for_log(0, text, Duration::from_secs(10));
    let line = wait(&format!("udp announce 127.0.0.1:6001 {}", hex(&h)));
    assert_eq!(parse_log_line(&line).0, "DEBUG");
    assert!(
        line.ends_with(": ok, event \"started\", 1 seeders 0 leechers, 0 peers"),
        "{line}"
    );
    let line = wait(&format!("http announce 127.0.0.1:6002 {}", hex(&x)));
    assert!(
        line.ends_with(": ok, event \"started\", 0 seeders 1 leechers, 0 peers"),
        "{line}"
    );
    let line = wait("http announce 127.0.0.1: refused:");
    assert!(line.contains("info_hash"), "{line}");
    let line = wait(&format!("ws announce 127.0.0.1 {}", hex(&h)));
    assert!(
        line.ends_with(": ok, event \"started\", 2 seeders 0 leechers"),
        "{line}"
    );
    wait("udp connect 127.0.0.1:");
    // Every line the tracker wrote is in the one format, listening lines too.
    for l in t.log() {
        parse_log_line(&l);
    }
    drop(ws);
    drop(t);

    // At the default level the same traffic logs nothing per request.
    let t = Tracker::start(&[]);
    let mut u = Udp::connect(t.v4());
    u.announce(h, peer_id(1), 0, 2, -1, 6001);
    get(
        t.v4(),
        &announce_target(x, peer_id(2), 6002, 5, "&event=started"),
    );
    std::thread::sleep(Duration::from_millis(200));
    let log = t.log();
    assert!(
        log.iter().all(|l| parse_log_line(l).0 != "DEBUG"),
        "{log:?}"
    );
    assert_eq!(log.len(), 3, "the three listening lines only: {log:?}");
}

#[test]
fn a_seeder_that_says_completed_on_every_start_downloads_nothing() {
    let t = Tracker::start(&[]);
    let h = hash(1, 5);
    // A WebTorrent seeder: each page load opens a connection whose first
    // announce says `completed` with `left: 0`.
    for _ in 0..3 {
        let mut ws = ws_open(&t, "/");
        let r = ws_call(
            &mut ws,
            json!({"action": "announce", "info_hash": binary(&h), "peer_id": binary(&peer_id(9)),
                   "left": 0, "event": "completed", "offers": []}),
        );
        assert_eq!(
            (r["complete"].as_u64(), r["incomplete"].as_u64()),
            (Some(1), Some(0)),
            "{r}"
        );
        ws.close(None).unwrap();
        // Its peer leaves with the connection.
        assert!(eventually(
            || Udp::connect(t.v4()).scrape(&[h]) == vec![(0, 0, 0)]
        ));
    }
    // Over UDP and HTTP, a first announce that says completed is no download either.
    let mut u = Udp::connect(t.v4());
    u.announce(h, peer_id(1), 0, 1, -1, 6001);
    get(
        t.v4(),
        &announce_target(h, peer_id(2), 6002, 0, "&event=completed"),
    );
    assert_eq!(u.scrape(&[h]), vec![(2, 0, 0)]);
    // A leecher that completes is one download, over every protocol.
    u.announce(h, peer_id(3), 50, 2, -1, 6003);
    u.announce(h, peer_id(3), 0, 1, -1, 6003);
    get(
        t.v4(),
        &announce_target(h, peer_id(4), 6004, 50, "&event=started"),
    );
    get(
        t.v4(),
        &announce_target(h, peer_id(4), 6004, 0, "&event=completed"),
    );
    let mut ws = ws_open(&t, "/");
    for (left, event) in [(50, "started"), (0, "completed")] {
        ws_call(
            &mut ws,
            json!({"action": "announce", "info_hash": binary(&h), "peer_id": binary(&peer_id(5)),
                   "left": left, "event": event, "offers": []}),
        );
    }
    assert_eq!(
        u.scrape(&[h]),
        vec![(5, 3, 0)],
        "(seeders, completed, leechers)"
    );
}

#[test]
fn offers_that_are_not_a_list_are_ignored_and_the_announce_answered() {
    let t = Tracker::start(&["--ws"]);
    let mut ws = ws_open(&t, "/");
    for offers in [json!({"x": 1}), json!("none"), json!(null)] {
        let r = ws_call(
            &mut ws,
            json!({"action": "announce", "info_hash": binary(&hash(0, 6)), "peer_id": binary(&peer_id(1)),
                   "left": 0, "event": "started", "offers": offers}),
        );
        assert_eq!(
            (
                r["action"].as_str(),
                r["complete"].as_u64(),
                r.get("failure reason")
            ),
            (Some("announce"), Some(1), None),
            "offers {offers}: {r}"
        );
    }
}
