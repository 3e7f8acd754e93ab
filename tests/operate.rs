//! What an operator sees: /stats, /stats.json and /metrics against a
//! scripted swarm, allow/deny lists over all three protocols with a SIGHUP
//! reload, the state file across a restart, and the configuration file.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;

fn stats_json(t: &Tracker) -> Value {
    let r = get(t.v4(), "/stats.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap()
}

fn peer(client: &[u8; 8], n: u8) -> [u8; 20] {
    let mut p = [b'0' + n; 20];
    p[..8].copy_from_slice(client);
    p
}

#[test]
fn stats_pages_count_a_scripted_swarm() {
    let t = Tracker::start(&[]);
    let (a, b) = (hash(0, 1), hash(1, 2));
    // Torrent a over UDP: two qBittorrent seeders, one Transmission leecher.
    let mut u = Udp::connect(t.v4());
    u.announce(a, peer(b"-qB4650-", 1), 0, 2, -1, 6001);
    u.announce(a, peer(b"-qB4650-", 2), 0, 2, -1, 6002);
    u.announce(a, peer(b"-TR4060-", 3), 100, 2, -1, 6003);
    // Torrent b over HTTP on IPv6: a leecher that then completes.
    let target = announce_target(b, peer(b"-TR4060-", 4), 6004, 100, "&event=started");
    assert_eq!(get(t.v6(), &target).status, 200);
    let target = announce_target(b, peer(b"-TR4060-", 4), 6004, 0, "&event=completed");
    assert_eq!(get(t.v6(), &target).status, 200);
    // And a WebTorrent leecher on torrent b.
    let mut ws = ws_open(&t, "/");
    let reply = ws_call(
        &mut ws,
        json!({"action": "announce", "info_hash": binary(&b), "peer_id": binary(&peer(b"-WW0109-", 5)),
               "left": 10, "event": "started", "numwant": 0, "offers": []}),
    );
    assert_eq!(reply["complete"], 1);
    // Torrent c: one peer that left again (known, not active).
    let c = hash(1, 3);
    u.announce(c, peer(b"-qB4650-", 6), 0, 2, -1, 6006);
    u.announce(c, peer(b"-qB4650-", 6), 0, 3, -1, 6006);

    let s = stats_json(&t);
    assert_eq!(s["torrents"], 3);
    assert_eq!(s["activeTorrents"], 2);
    assert_eq!(s["peersAll"], 5);
    assert_eq!(s["peersSeederOnly"], 3);
    assert_eq!(s["peersLeecherOnly"], 2);
    assert_eq!(s["peersSeederAndLeecher"], 0);
    assert_eq!(s["peersIPv4"], 3);
    assert_eq!(s["peersIPv6"], 1);
    assert_eq!(s["peersWebSocket"], 1);
    assert_eq!(s["completed"], 1);
    assert_eq!(
        s["clients"],
        json!({"qBittorrent": {"4.6.5": 2}, "Transmission": {"4.0.6": 2}, "WebTorrent": {"1.9": 1}})
    );
    assert_eq!(s["requests"]["udp"]["announce"], 5);
    assert_eq!(s["requests"]["http"]["announce"], 2);
    assert_eq!(s["requests"]["ws"]["announce"], 1);

    // /stats is HTML, unless the client asks for JSON.
    let r = get(t.v4(), "/stats");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(r.body).unwrap();
    assert!(
        html.contains("<tr><th>Peers</th><td class=\"n\">5</td></tr>"),
        "{html}"
    );
    assert!(html.contains("<td>Transmission</td><td>4.0.6</td><td class=\"n\">2</td>"));
    let mut s = tcp(t.v4());
    write!(
        s,
        "GET /stats HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["peersAll"], 5);

    // A scrape of hashes of both workers: the kernel steers the datagram
    // to the first hash's owner, which asks the other for its count.
    assert_eq!(u.scrape(&[hash(0, 9), hash(1, 9)]), vec![(0, 0, 0); 2]);

    // /metrics: Prometheus text with totals and per-worker series.
    let r = get(t.v4(), "/metrics");
    assert_eq!(r.status, 200);
    let m = String::from_utf8(r.body).unwrap();
    for line in [
        "tracker_seeders 3",
        "tracker_leechers 2",
        "tracker_peers_ipv6 1",
        "tracker_peers_websocket 1",
        "tracker_torrents 3",
        "tracker_active_torrents 2",
        "tracker_completed_total 1",
        "tracker_requests_total{protocol=\"udp\",action=\"connect\"} 1",
        "tracker_requests_total{protocol=\"udp\",action=\"announce\"} 5",
        "tracker_responses_total{protocol=\"http\",action=\"announce\"} 2",
        "tracker_connections{protocol=\"ws\"} 1",
        "tracker_worker_torrents{worker=\"0\"} 1",
        "tracker_worker_torrents{worker=\"1\"} 2",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }
    let forwarded: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("tracker_forwarded_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(forwarded >= 1, "the scrape of both workers' hashes crossed");
}

#[test]
fn stats_and_metrics_can_be_turned_off() {
    let t = Tracker::start(&["--no-stats", "--no-metrics"]);
    for path in ["/stats", "/stats.json", "/metrics"] {
        assert_eq!(get(t.v4(), path).status, 404, "{path}");
    }
}

/// What the `/stats` chart's legend says of `name`'s latest rate, if it
/// has one yet: `>UDP 1,234/s</text>` is 1234.
fn legend_rate(html: &str, name: &str) -> Option<f64> {
    let rest = html.split(&format!(">{name} ")).nth(1)?;
    let n = rest.split("/s</text>").next()?;
    Some(
        n.replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("a rate in {name} {n}")),
    )
}

/// The `/stats` page as an operator sees it: version, uptime, figures with
/// thousands separators, a reload every 10 s, and the chart of requests
/// per second by protocol, which fills in as the samples come (one every
/// 10 s).
#[test]
fn stats_page_shows_version_uptime_and_request_rates() {
    let t = Tracker::start(&[]);
    let page = || -> String {
        let r = get(t.v4(), "/stats");
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).unwrap()
    };
    let mut u = Udp::connect(t.v4());
    let announce = |u: &mut Udp, i: u32| {
        u.announce(hash(0, 1), peer_id((i % 50) as u8), 0, 0, 0, 6881);
    };
    for i in 0..1_234 {
        announce(&mut u, i);
    }
    let html = page();
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"10\">"),
        "{html}"
    );
    let about = format!("bittorrent-tracker {} · up ", env!("CARGO_PKG_VERSION"));
    let after = html
        .split(&about)
        .nth(1)
        .unwrap_or_else(|| panic!("{about} in {html}"));
    let (up, rest) = after.split_once(" s · ").expect("an uptime in seconds");
    let up: u64 = up.parse().unwrap();
    assert!(up < 60 && rest.starts_with("2 workers"), "{after}");
    assert!(
        html.contains("<tr><td>udp</td><td>announce</td><td class=\"n\">1,234</td><td class=\"n\">1,234</td><td class=\"n\">0</td></tr>"),
        "{html}"
    );
    // The chart: one line per protocol, a legend, both axes.
    assert_eq!(html.matches("<svg ").count(), 1, "{html}");
    for p in ["udp", "http", "ws"] {
        let line = format!("<polyline class=\"series {p}\" points=\"");
        assert_eq!(html.matches(&line).count(), 1, "{line} in {html}");
    }
    for text in [
        ">requests per second</text>",
        ">1 min ago</text>",
        ">now</text>",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    if up < 9 {
        // Only the first sample, taken at the start: no rate yet.
        assert!(html.contains("collecting…"), "{html}");
        for name in ["UDP", "HTTP", "WebSocket"] {
            assert!(
                html.contains(&format!(">{name}</text>")),
                "{name} in {html}"
            );
        }
    }
    // The second sample, 10 s after the first, gives the first rates. UDP
    // announces go on meanwhile, and each look at the page is an HTTP request.
    let mut sent = 1_234 + 1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let html = loop {
        for i in 0..50 {
            announce(&mut u, i);
        }
        sent += 50;
        let html = page();
        if legend_rate(&html, "UDP").is_some() {
            break html;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rate on the page within 30 s:\n{html}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let udp = legend_rate(&html, "UDP").unwrap();
    // A rate is per second over at least the 10 s between samples.
    assert!(
        udp > 0.0 && udp <= sent as f64 / 10.0 + 0.5,
        "UDP {udp}/s after {sent} requests"
    );
    assert!(legend_rate(&html, "HTTP").unwrap() > 0.0, "{html}");
    assert_eq!(legend_rate(&html, "WebSocket"), Some(0.0), "{html}");
    let line = html
        .split("<polyline class=\"series udp\" points=\"")
        .nth(1)
        .unwrap();
    let drawn = line[..line.find('"').unwrap()]
        .split(' ')
        .filter(|xy| !xy.is_empty())
        .count();
    assert!(drawn >= 1, "{line}");
}

fn failure(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    assert!(text.starts_with("d14:failure reason"), "{text}");
    text.into_owned()
}

#[test]
fn lists_refuse_over_every_protocol_and_reload_on_sighup() {
    let dir = scratch("lists");
    let (good, denied, later) = (hash(0, 1), hash(1, 2), hash(1, 3));
    let allow = dir.join("allow.txt");
    let deny = dir.join("deny.txt");
    std::fs::write(
        &allow,
        format!(
            "# allowed torrents\n{}\n{}  # on both lists\n",
            hex(&good),
            hex(&denied)
        ),
    )
    .unwrap();
    std::fs::write(&deny, format!("{}\n", hex(&denied).to_uppercase())).unwrap();
    let t = Tracker::start(&[
        "--allow",
        allow.to_str().unwrap(),
        "--deny",
        deny.to_str().unwrap(),
    ]);

    // HTTP
    let ok = get(t.v4(), &announce_target(good, peer_id(1), 7001, 0, ""));
    assert!(String::from_utf8_lossy(&ok.body).contains("8:intervali"));
    for h in [denied, later] {
        let r = get(t.v4(), &announce_target(h, peer_id(2), 7002, 0, ""));
        assert!(failure(&r.body).contains("torrent not allowed on this tracker"));
        let r = get(t.v4(), &format!("/scrape?info_hash={}", esc(&h)));
        failure(&r.body);
    }
    // UDP: an error packet naming the reason.
    let mut u = Udp::connect(t.v4());
    let (tid, req) = u.announce_bytes(denied, peer_id(3), 0, 2, -1, 7003);
    let resp = u.roundtrip(&req).unwrap();
    assert_eq!(
        &resp[0..8],
        &[&[0, 0, 0, 3][..], &tid.to_be_bytes()].concat()[..]
    );
    assert_eq!(&resp[8..], b"torrent not allowed on this tracker");
    assert_eq!(u.announce(good, peer_id(3), 0, 2, -1, 7003).seeders, 2);
    // WebSocket: a failure reason.
    let mut ws = ws_open(&t, "/");
    let r = ws_call(
        &mut ws,
        json!({"action": "announce", "info_hash": binary(&later), "peer_id": binary(&peer_id(4)),
               "left": 0, "event": "started", "numwant": 0, "offers": []}),
    );
    assert_eq!(r["failure reason"], "torrent not allowed on this tracker");
    // A full scrape shows only what the lists allow.
    let full = get(t.v4(), "/scrape");
    let body = full.body;
    assert!(body.windows(20).any(|w| w == good));
    assert!(!body.windows(20).any(|w| w == denied));

    // Let `later` in and take `denied` off the deny list; then reload.
    std::fs::write(
        &allow,
        format!("{}\n{}\n{}\n", hex(&good), hex(&denied), hex(&later)),
    )
    .unwrap();
    std::fs::write(&deny, "# nothing denied\n").unwrap();
    t.hup();
    assert!(eventually(|| {
        let r = get(t.v4(), &announce_target(later, peer_id(5), 7005, 0, ""));
        String::from_utf8_lossy(&r.body).contains("8:interval")
    }));
    let r = get(t.v4(), &announce_target(denied, peer_id(5), 7005, 0, ""));
    assert!(String::from_utf8_lossy(&r.body).contains("8:interval"));
    // The swarm of `good` was left alone by the reload.
    assert_eq!(u.scrape(&[good]), vec![(2, 0, 0)]);

    // A broken list is refused on reload, and the old lists stay.
    std::fs::write(&deny, "not a hash\n").unwrap();
    t.hup();
    let r = get(
        t.v4(),
        &announce_target(hash(0, 9), peer_id(6), 7006, 0, ""),
    );
    failure(&r.body);
    assert!(String::from_utf8_lossy(
        &get(t.v4(), &announce_target(later, peer_id(6), 7006, 0, "")).body
    )
    .contains("8:interval"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_list_file_stops_the_start_with_the_line() {
    let dir = scratch("badlist");
    let f = dir.join("deny.txt");
    std::fs::write(&f, "0123456789abcdef0123456789abcdef01234567\nxyz\n").unwrap();
    let out = run_tracker(&["-p", "0", "--deny", f.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deny.txt: line 2: `xyz` is not an info hash"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_restart_keeps_peers_and_completed() {
    let dir = scratch("state");
    let state = dir.join("tracker.state");
    let st = state.to_str().unwrap();
    let (a, b) = (hash(0, 1), hash(1, 2));
    let t = Tracker::start(&["--state", st]);
    let mut u = Udp::connect(t.v4());
    u.announce(a, peer_id(1), 100, 2, -1, 8001);
    u.announce(a, peer_id(1), 0, 1, -1, 8001); // completed
    u.announce(a, peer_id(2), 100, 2, -1, 8002);
    let target = announce_target(b, peer_id(3), 8003, 0, "&event=started");
    get(t.v6(), &target);
    let before = u.scrape(&[a, b]);
    assert_eq!(before, vec![(1, 1, 1), (1, 0, 0)]);
    assert!(t.terminate().success());
    assert!(state.exists(), "written on shutdown");

    // Three workers now: records go to their new owners.
    let t = Tracker::start_with(&[
        "-p",
        "0",
        "--workers",
        "3",
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "::1",
        "--state",
        st,
    ]);
    let mut u = Udp::connect(t.v4());
    assert_eq!(u.scrape(&[a, b]), before);
    // A new leecher gets the restored peers.
    let r = u.announce(a, peer_id(4), 100, 2, -1, 8004);
    assert_eq!(r.ports(), vec![8001, 8002]);
    let r = get(t.v6(), &announce_target(b, peer_id(5), 8005, 100, ""));
    assert!(
        r.body.windows(2).any(|w| w == 8003u16.to_be_bytes()),
        "the IPv6 peer is back"
    );
    assert_eq!(stats_json(&t)["completed"], 1);
    assert!(t.terminate().success());

    // A file that is not ours is refused rather than written over.
    std::fs::write(&state, b"something else entirely").unwrap();
    let out = run_tracker(&["-p", "0", "--state", st]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bittorrent-tracker state file"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_damaged_state_file_restores_what_it_can_and_is_kept() {
    let dir = scratch("damaged");
    let state = dir.join("s");
    let st = state.to_str().unwrap();
    let t = Tracker::start(&["--state", st]);
    let mut u = Udp::connect(t.v4());
    u.announce(hash(0, 1), peer_id(1), 0, 2, -1, 9001);
    u.announce(hash(1, 2), peer_id(2), 0, 2, -1, 9002);
    assert!(t.terminate().success());
    let mut bytes = std::fs::read(&state).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&state, &bytes).unwrap();
    let t = Tracker::start(&["--state", st]);
    let mut u = Udp::connect(t.v4());
    let counts = u.scrape(&[hash(0, 1), hash(1, 2)]);
    assert_eq!(counts.iter().filter(|c| c.0 == 1).count(), 1, "{counts:?}");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("s.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept aside");
    drop(t);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn periodic_saves_happen_while_running() {
    let dir = scratch("periodic");
    let state = dir.join("s");
    let t = Tracker::start(&["--state", state.to_str().unwrap(), "--state-interval", "1"]);
    let mut u = Udp::connect(t.v4());
    u.announce(hash(0, 1), peer_id(1), 0, 2, -1, 9001);
    assert!(eventually(
        || std::fs::read(&state).is_ok_and(|b| b.len() > 16 + 32)
    ));
    let b = std::fs::read(&state).unwrap();
    assert_eq!(&b[..8], b"BTTRKST\x02");
    assert_eq!(&b[16..36], &hash(0, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn config_file_and_print_config() {
    let dir = scratch("config");
    let out = run_tracker(&["--print-config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("port = 8000") && text.contains("# allow = "),
        "{text}"
    );
    // The printed defaults, changed a little, run a tracker.
    let cfg = text
        .replace("port = 8000", "port = 0")
        .replace("listen_v4 = \"0.0.0.0\"", "listen_v4 = \"127.0.0.1\"")
        .replace("listen_v6 = \"::\"", "listen_v6 = \"off\"")
        .replace("udp = true", "udp = false")
        .replace("workers = 0", "workers = 1");
    std::fs::write(dir.join("t.toml"), &cfg).unwrap();
    let t = Tracker::start_with(&[
        "--config",
        dir.join("t.toml").to_str().unwrap(),
        "--http",
        "--ws",
    ]);
    assert_eq!(
        t.listening,
        vec![
            format!("http server listening on {}", t.port),
            format!("ws server listening on {}", t.port)
        ]
    );
    assert_eq!(get(t.v4(), "/stats.json").status, 200);
    drop(t);
    // An unknown key is an error that names it.
    std::fs::write(
        dir.join("bad.toml"),
        "port = 0\nmax_peers_per_torrent = 5\n",
    )
    .unwrap();
    let out = run_tracker(&["--config", dir.join("bad.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `max_peers_per_torrent`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quiet_and_silent() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let base = [
        "-p",
        &port,
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "off",
        "--http",
    ];
    let out = run_tracker(&[&base[..], &["-q"]].concat());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the port is in use"));
    let out = run_tracker(&[&base[..], &["-s"]].concat());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn huge_pages_are_off_unless_asked_for() {
    let t = Tracker::start(&["--udp"]);
    assert_eq!(proc_status(t.pid(), "THP_enabled"), "0");
    // and it serves as before
    let mut u = Udp::connect(t.v4());
    let r = u.announce(hash(0, 1), peer_id(1), 0, 2, -1, 6881);
    assert_eq!((r.seeders, r.leechers), (1, 0));
    let t = Tracker::start(&["--udp", "--huge-pages"]);
    assert_eq!(proc_status(t.pid(), "THP_enabled"), "1");
}

#[test]
fn version_flags_and_process_metrics() {
    for flag in ["-v", "-V", "--version"] {
        let out = run_tracker(&[flag]);
        assert!(out.status.success(), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("bittorrent-tracker {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
    let t = Tracker::start(&["--http"]);
    let body = String::from_utf8(get(t.v4(), "/metrics").body).unwrap();
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} in\n{body}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(&format!(
            "tracker_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "{started} against {now}"
    );
    let rss = value("process_resident_memory_bytes");
    let status_kib: f64 = proc_status(t.pid(), "VmRSS")
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    assert!(
        rss > 1e6 && (rss / 1024.0 - status_kib).abs() < status_kib / 2.0,
        "{rss} against {status_kib} KiB"
    );
    assert!(
        value("process_open_fds") >= 4.0,
        "stdio and the listening sockets"
    );
}
