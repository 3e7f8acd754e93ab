//! Each mode of tracker-loadgen, briefly, against a real tracker on loopback
//! (started in-process through the library), the floor, and a broken
//! tracker that the validation must catch.

use bittorrent_tracker::{Server, ServerConfig};
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracker-loadgen"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn tracker() -> Server {
    Server::start(ServerConfig {
        port: 0,
        workers: 2,
        listen_v4: Some([127, 0, 0, 1].into()),
        listen_v6: None,
        log: bittorrent_tracker::config::LogLevel::Errors,
        // Each load connection stands for many browsers: relay every offer,
        // and let a load thread that a busy machine holds back fall behind
        // on its relays without being dropped as a slow reader.
        limits: bittorrent_tracker::config::Limits {
            ws_offer_rate: 0,
            ws_queue: 16_384,
            ..Default::default()
        },
        ..ServerConfig::default()
    })
    .expect("tracker starts")
}

fn n(v: &serde_json::Value, path: &str) -> u64 {
    let mut x = v;
    for k in path.split('.') {
        x = &x[k];
    }
    x.as_u64().unwrap_or_else(|| panic!("{path} in {v}"))
}

const SMALL: [&str; 8] = [
    "--torrents",
    "1000",
    "--peers",
    "2000",
    "--duration",
    "1",
    "--quiet",
    "--json",
];

#[test]
fn udp_closed_loop_against_the_tracker() {
    let t = tracker();
    let target = format!("127.0.0.1:{}", t.port());
    let r = json(&loadgen(
        &[&["udp", "--target", &target, "--sources", "4"][..], &SMALL].concat(),
    ));
    assert!(n(&r, "announce.answered") > 100, "{r}");
    assert!(n(&r, "scrape.answered") > 0, "{r}");
    assert_eq!(n(&r, "connect.answered"), 4, "one connect per source");
    for k in ["errors", "invalid", "timeouts"] {
        assert_eq!(n(&r, &format!("total.{k}")), 0, "{k}: {r}");
    }
    assert!(n(&r, "total.p50_us") > 0);
    assert_eq!(r["mode"], "closed loop, window 256 per thread");
    t.shutdown().expect("a clean stop");
}

#[test]
fn udp_open_loop_keeps_its_rate() {
    let t = tracker();
    let target = format!("127.0.0.1:{}", t.port());
    let r = json(&loadgen(
        &[&["udp", "--target", &target, "--rate", "2000"][..], &SMALL].concat(),
    ));
    let answered = n(&r, "total.answered");
    assert!(
        (1500..=2500).contains(&answered),
        "about 2000 in a second: {r}"
    );
    assert_eq!(n(&r, "total.invalid") + n(&r, "total.timeouts"), 0, "{r}");
    assert_eq!(r["mode"], "open loop at 2000/s, window 256 per thread");
    t.shutdown().expect("a clean stop");
}

#[test]
fn http_keep_alive_connections() {
    let t = tracker();
    let target = format!("127.0.0.1:{}", t.port());
    let r = json(&loadgen(
        &[
            &["http", "--target", &target, "--connections", "20"][..],
            &SMALL,
        ]
        .concat(),
    ));
    assert!(n(&r, "announce.answered") > 100, "{r}");
    assert_eq!(n(&r, "connect.sent"), 0, "no connects over HTTP");
    for k in ["errors", "invalid", "timeouts"] {
        assert_eq!(n(&r, &format!("total.{k}")), 0, "{k}: {r}");
    }
    t.shutdown().expect("a clean stop");
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn floor_answers_everything() {
    let port = free_udp_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut floor = Command::new(env!("CARGO_BIN_EXE_tracker-loadgen"))
        .args(["floor", "--listen", &listen, "--duration", "5"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = json(&loadgen(
        &[&["udp", "--target", &listen][..], &SMALL].concat(),
    ));
    assert!(n(&r, "total.answered") > 1000, "{r}");
    assert_eq!(
        n(&r, "total.invalid") + n(&r, "total.timeouts") + n(&r, "total.errors"),
        0,
        "{r}"
    );
    let _ = floor.kill();
    let _ = floor.wait();
}

/// `hashes` lists the workload's torrents, one per line, each once: an
/// access list for a tracker that serves only listed torrents.
#[test]
fn hashes_lists_every_torrent_of_the_workload() {
    let out = Command::new(env!("CARGO_BIN_EXE_tracker-loadgen"))
        .args(["hashes", "--torrents", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: std::collections::HashSet<&str> = text.lines().collect();
    assert_eq!(text.lines().count(), 1000);
    assert_eq!(lines.len(), 1000, "each once");
    assert!(lines
        .iter()
        .all(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit())));
}

/// The HTTP and WebSocket floors answer every request validly, over
/// keep-alive connections, scrapes with an entry for each hash named; the
/// WebSocket floor relays offers and their answers.
#[test]
fn tcp_floors_answer_everything() {
    for protocol in ["http", "ws"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut floor = Command::new(env!("CARGO_BIN_EXE_tracker-loadgen"))
            .args([
                "floor",
                "--protocol",
                protocol,
                "--listen",
                &listen,
                "--duration",
                "10",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Ready once it accepts.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the {protocol} floor does not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let r = json(&loadgen(
            &[
                &[protocol, "--target", &listen, "--connections", "20"][..],
                &SMALL,
            ]
            .concat(),
        ));
        assert!(n(&r, "announce.answered") > 100, "{protocol}: {r}");
        assert!(n(&r, "scrape.answered") > 0, "{protocol}: {r}");
        if protocol == "ws" {
            // Offers go to other connections, their answers come back.
            assert!(n(&r, "answer.answered") > 100, "{r}");
        }
        assert_eq!(
            n(&r, "total.invalid") + n(&r, "total.timeouts") + n(&r, "total.errors"),
            0,
            "{protocol}: {r}"
        );
        let _ = floor.kill();
        let _ = floor.wait();
    }
}

#[test]
fn broken_replies_are_counted_invalid() {
    // Answers connects correctly, announces with a peer list cut mid-peer.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target: SocketAddr = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = sock.recv_from(&mut buf) {
            let tid = &buf[12..16];
            let reply: Vec<u8> = match (len, buf[11]) {
                (16, 0) => [&[0, 0, 0, 0][..], tid, &[9; 8]].concat(),
                (_, 1) => [
                    &[0, 0, 0, 1][..],
                    tid,
                    &[0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 1],
                    &[1, 2, 3],
                ]
                .concat(),
                _ => [&[0, 0, 0, 3][..], tid, b"no"].concat(),
            };
            let _ = sock.send_to(&reply, from);
        }
    });
    let t = target.to_string();
    let r = json(&loadgen(
        &[
            &["udp", "--target", &t, "--sources", "1", "--window", "4"][..],
            &SMALL,
        ]
        .concat(),
    ));
    assert!(n(&r, "announce.invalid") > 10, "{r}");
    assert_eq!(n(&r, "announce.answered"), 0, "{r}");
    assert_eq!(n(&r, "scrape.invalid"), 0);
    assert_eq!(
        n(&r, "scrape.errors"),
        n(&r, "scrape.answered"),
        "error packets are errors: {r}"
    );
}

#[test]
fn compare_runs_trackers_in_rounds_and_prints_one_table() {
    let exe = env!("CARGO_BIN_EXE_tracker-loadgen");
    let port = free_udp_port();
    let target = format!("127.0.0.1:{port}");
    let floor = format!("a={exe} floor --listen {target}");
    let again = format!("b={exe} floor --listen {target}");
    let out = loadgen(&[
        "compare",
        "--tracker",
        &floor,
        "--tracker",
        &again,
        "--rounds",
        "2",
        "--target",
        &target,
        "--duration",
        "0.5",
        "--torrents",
        "100",
        "--peers",
        "100",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stderr.matches("round ").count(),
        4,
        "two trackers, two rounds: {stderr}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| a ") || l.starts_with("| b "))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    let cells: Vec<&str> = rows[0].split('|').map(str::trim).collect();
    assert_eq!(
        cells[3], "1.00",
        "the first tracker is the baseline: {stdout}"
    );
    assert!(cells[2].parse::<f64>().unwrap() > 100.0, "{stdout}");

    // A tracker that dies at start is reported, not waited on forever.
    let out = loadgen(&[
        "compare",
        "--tracker",
        "dead=sh -c 'echo cannot bind >&2; exit 3'",
        "--target",
        &target,
        "--duration",
        "0.5",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dead exited") && err.contains("cannot bind"),
        "{err}"
    );
}

#[test]
fn ws_announces_with_offers_and_answers() {
    let t = tracker();
    let target = format!("127.0.0.1:{}", t.port());
    // 40 peers on 4 torrents: every offer finds a peer to answer it.
    let out = loadgen(&[
        "ws",
        "--target",
        &target,
        "--connections",
        "40",
        "--torrents",
        "4",
        "--offers",
        "3",
        "--duration",
        "1",
        "--quiet",
        "--json",
    ]);
    let r = json(&out);
    assert!(n(&r, "announce.answered") > 100, "{r}");
    let (sent, got) = (n(&r, "answer.sent"), n(&r, "answer.answered"));
    assert!(got > 100, "answers come back to their offerers: {r}");
    assert!(
        got <= sent && got * 10 >= sent * 8,
        "nearly every answer sent arrives: {r}"
    );
    for k in ["errors", "invalid", "timeouts"] {
        assert_eq!(n(&r, &format!("total.{k}")), 0, "{k}: {r}");
    }
    assert_eq!(r["mode"], "closed loop, 40 connections");
    t.shutdown().expect("a clean stop");
}

#[test]
fn garbage_is_refused_and_honest_requests_still_answered() {
    let t = tracker();
    let target = format!("127.0.0.1:{}", t.port());
    for mode in ["udp", "http", "ws"] {
        let extra: &[&str] = match mode {
            "udp" => &["--sources", "4"],
            _ => &["--connections", "20"],
        };
        let r = json(&loadgen(
            &[
                &[mode, "--target", &target, "--garbage", "5"][..],
                extra,
                &SMALL,
            ]
            .concat(),
        ));
        let sent = n(&r, "garbage.sent");
        assert!(sent > 10, "{mode}: {r}");
        // UDP junk gets no reply; HTTP and WebSocket garbage gets a failure reason.
        let want = if mode == "udp" { 0 } else { sent };
        let answered = n(&r, "garbage.answered");
        assert!(
            answered <= want && answered + 25 >= want,
            "{mode}: {answered} of {sent}: {r}"
        );
        assert_eq!(n(&r, "garbage.invalid"), 0, "{mode}: {r}");
        for k in ["errors", "invalid", "timeouts"] {
            assert_eq!(n(&r, &format!("announce.{k}")), 0, "{mode} {k}: {r}");
        }
        assert!(n(&r, "announce.answered") > 100, "{mode}: {r}");
    }
    t.shutdown().expect("a clean stop");
}

/// `idle` holds its connections while it reads the tracker's memory: here
/// the tracker runs in this process, so `--pid` is this test's own.
#[test]
fn idle_holds_every_connection_and_reports_its_cost() {
    use bittorrent_tracker::protocol::Protocol;
    for (protocol, p) in [("ws", Protocol::Ws), ("http", Protocol::Http)] {
        let server = tracker();
        let target = format!("127.0.0.1:{}", server.port());
        let pid = std::process::id().to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_tracker-loadgen"))
            .args([
                "idle",
                "--protocol",
                protocol,
                "--connections",
                "300",
                "--settle",
                "1",
                "--target",
                &target,
                "--pid",
                &pid,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The tracker sees all 300 open at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut most = 0;
        while most < 300 && std::time::Instant::now() < deadline {
            most = most.max(server.stats().total.counters.connections[p as usize]);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{protocol}: {stdout}{stderr}");
        assert_eq!(most, 300, "{protocol}: open at most: {stdout}{stderr}");
        let announced = server.stats().total.counters.responses[p as usize]
            [bittorrent_tracker::server::stats::Action::Announce as usize];
        assert_eq!(announced, 300, "{protocol}: one announce each");
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| process {pid} |")))
            .unwrap_or_else(|| panic!("{protocol}: no row in {stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[4].parse::<f64>().is_ok(), "{row}");
        assert_eq!(cells[5], "1.00", "{row}");
        assert_eq!(cells[7], "0", "none closed by the tracker: {row}");
    }

    // A tracker that does not serve the protocol: which connection failed,
    // and what the tracker said.
    let server = Server::start(ServerConfig {
        port: 0,
        workers: 1,
        listen_v4: Some([127, 0, 0, 1].into()),
        listen_v6: None,
        ws: false,
        log: bittorrent_tracker::config::LogLevel::Errors,
        ..ServerConfig::default()
    })
    .expect("tracker starts");
    let out = loadgen(&[
        "idle",
        "--protocol",
        "ws",
        "--connections",
        "5",
        "--target",
        &format!("127.0.0.1:{}", server.port()),
        "--pid",
        &std::process::id().to_string(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracker: connection 1 of 5 (from 127.3.0.9): no upgrade: HTTP/1.1 404"),
        "{err}"
    );
}
