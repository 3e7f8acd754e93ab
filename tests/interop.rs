//! Interop: the reference JavaScript client (npm `bittorrent-tracker@10.0.12`)
//! against this tracker, over HTTP (IPv4 and IPv6), UDP (IPv4) and WebSocket,
//! and a raw npm `ws` client relaying an offer and an answer; and this
//! project's client and commands against the reference server. Needs node and npm
//! (on every build machine); the package is installed once into cargo's
//! scratch directory.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PACKAGE: &str = "bittorrent-tracker@10.0.12";

fn npm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-bittorrent-tracker-10.0.12");
        std::fs::create_dir_all(&dir).unwrap();
        if !dir
            .join("node_modules/bittorrent-tracker/package.json")
            .exists()
        {
            // Version 11 needs a native download that fails offline; 10.0.12 is pure JS.
            let status = Command::new("npm")
                .args([
                    "install",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    PACKAGE,
                ])
                .current_dir(&dir)
                .status()
                .expect("npm is needed for the interop tests (it comes with node)");
            assert!(status.success(), "npm install {PACKAGE} failed");
        }
        for script in ["reference_client.mjs", "reference_ws.mjs"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/interop")
                    .join(script),
                dir.join(script),
            )
            .unwrap();
        }
        dir
    })
}

/// Runs the reference client's script against `url`; returns its lines.
fn reference_client(url: &str, a: [u8; 20], b: [u8; 20]) -> Vec<String> {
    node("reference_client.mjs", &[url, &hex(&a), &hex(&b)])
}

/// Runs one of the interop scripts with node; returns its lines.
fn node(script: &str, args: &[&str]) -> Vec<String> {
    let dir = npm_dir();
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node is needed for the interop tests");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "reference client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// The lines the script must print: two peers on two shards' worth of hashes.
fn transcript(host: &str, a: [u8; 20], b: [u8; 20]) -> Vec<String> {
    [
        "update 6881 complete=0 incomplete=1".to_string(),
        "update 6882 complete=1 incomplete=1".to_string(),
        format!("peer 6882 {host}:6881"),
        "update 6881 complete=1 incomplete=1".to_string(),
        format!("peer 6881 {host}:6882"),
        "update 6881 complete=2 incomplete=0".to_string(),
        "scrape 6881 complete=2 incomplete=0 downloaded=1".to_string(),
        "update 6882 complete=1 incomplete=0".to_string(),
        "update 6881 complete=0 incomplete=0".to_string(),
        format!(
            "multiscrape {} complete=0 incomplete=0 downloaded=1",
            hex(&a)
        ),
        format!(
            "multiscrape {} complete=0 incomplete=0 downloaded=0",
            hex(&b)
        ),
    ]
    .to_vec()
}

fn check(scheme: &str, v6: bool, owner: u8) {
    let t = Tracker::start(&[]);
    let (host, addr) = if v6 {
        ("[::1]", t.v6())
    } else {
        ("127.0.0.1", t.v4())
    };
    let url = match scheme {
        "http" => format!("http://{addr}/announce"),
        _ => format!("udp://{addr}"),
    };
    // The peers' torrent on one shard, the other multi-scraped hash on the other.
    let a = hash(owner, 0x41);
    let b = hash(1 - owner, 0x42);
    assert_eq!(
        reference_client(&url, a, b),
        transcript(host, a, b),
        "{url}"
    );
}

#[test]
fn reference_client_http_ipv4() {
    check("http", false, 0);
}

#[test]
fn reference_client_http_ipv6() {
    check("http", true, 1);
}

#[test]
fn reference_client_udp_ipv4() {
    check("udp", false, 1);
}

// No UDP over IPv6 here: the reference client cannot parse `udp://[::1]:port`
// (it hands "[::1]" to getaddrinfo). tests/udp.rs covers UDP over IPv6.

#[test]
fn reference_client_and_raw_ws_clients_over_websocket() {
    let t = Tracker::start(&[]);
    let url = format!("ws://127.0.0.1:{}", t.port);
    let h = hash(1, 0x43);
    assert_eq!(
        node("reference_ws.mjs", &[&url, &hex(&h)]),
        [
            "update a complete=0 incomplete=1",
            "update b complete=1 incomplete=1",
            "update a complete=1 incomplete=1",
            "update b complete=0 incomplete=1",
            "offer at y from=XXXXXXXXXXXXXXXXXXXX offer_id=oooooooooooooooooooo sdp=sdp-x",
            "answer at x from=YYYYYYYYYYYYYYYYYYYY offer_id=oooooooooooooooooooo sdp=sdp-y",
        ]
    );
}

/// The reference server (`bittorrent-tracker` command of the npm package)
/// on a free port of 127.0.0.1; killed when dropped.
struct ReferenceServer {
    child: std::process::Child,
    port: u16,
}

impl ReferenceServer {
    fn start() -> ReferenceServer {
        let dir = npm_dir();
        for _ in 0..10 {
            // A port free for TCP and UDP alike.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let child = Command::new("node")
                .args([
                    "node_modules/bittorrent-tracker/bin/cmd.js",
                    "-p",
                    &port.to_string(),
                    "-q",
                ])
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("node");
            let mut server = ReferenceServer { child, port };
            let up = eventually(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
            // The UDP socket comes up with the HTTP one; give it a moment.
            std::thread::sleep(std::time::Duration::from_millis(200));
            // Still running a moment later, and still listening: what
            // answered was node, not a process of another test that took
            // the port meanwhile (node then exits, unable to bind it).
            if up
                && matches!(server.child.try_wait(), Ok(None))
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return server;
            }
            let _ = server.child.kill();
        }
        panic!("the reference server did not start");
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn our_client_against_the_reference_server() {
    use bittorrent_tracker::client::{self, conn::ConnOptions};
    use bittorrent_tracker::{AnnounceRequest, Event, InfoHash, PeerId};
    let r = ReferenceServer::start();
    let opts = ConnOptions {
        timeout: std::time::Duration::from_secs(5),
        udp_timeout: std::time::Duration::from_millis(500),
        udp_retries: 3,
        ..ConnOptions::default()
    };
    let h = InfoHash(hash(0, 1));
    let announce = |url: &str, peer: u8, port: u16, left: u64| {
        let req = AnnounceRequest {
            info_hash: h,
            peer_id: PeerId(peer_id(peer)),
            port,
            uploaded: 0,
            downloaded: 0,
            left: Some(left),
            event: Event::Started,
            numwant: Some(50),
            key: None,
        };
        client::announce_once(url, &req, &opts).unwrap_or_else(|e| panic!("{url}: {e}"))
    };
    let http = format!("http://127.0.0.1:{}/announce", r.port);
    let udp = format!("udp://127.0.0.1:{}", r.port);
    let ws = format!("ws://127.0.0.1:{}", r.port);
    let a = announce(&http, 1, 6881, 0);
    assert_eq!((a.complete, a.incomplete), (1, 0));
    let a = announce(&udp, 2, 6882, 10);
    assert_eq!((a.complete, a.incomplete), (1, 1));
    // The HTTP seeder (the reference also hands the announcer itself back).
    assert!(
        a.peers.contains(&"127.0.0.1:6881".parse().unwrap()),
        "{:?}",
        a.peers
    );
    let a = announce(&ws, 3, 1, 10);
    assert_eq!((a.complete, a.incomplete), (1, 2));
    // Static multi-scrape, every protocol (the reference counts seeders as
    // `downloaded`).
    let other = InfoHash(hash(1, 2));
    for url in [&http, &udp, &ws] {
        let s = client::scrape(url, &[h, other], &opts).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (s[0].complete, s[1].complete, s[1].incomplete),
            (1, 0, 0),
            "{url}"
        );
        assert!(s[0].incomplete >= 1, "{url}: {s:?}");
    }
    // The scrape command, with a scrape URL and hashes.
    let out = run_tracker(&[
        "scrape",
        &format!("http://127.0.0.1:{}/scrape", r.port),
        &hex(&h.0),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][hex(&h.0)]["complete"], 1);
    let out = run_tracker(&["scrape", &udp, &hex(&h.0)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{}  1 seeders", hex(&h.0))));
}
