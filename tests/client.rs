//! The client library and commands against this tracker (every protocol,
//! both address families), and against fake trackers that time out or
//! send garbage: those are warnings, never hangs or panics.

mod common;
use bittorrent_tracker::client::conn::{ConnOptions, TrackerError};
use bittorrent_tracker::client::{self, Client, ClientEvent, ClientOptions, TransferStats};
use bittorrent_tracker::protocol::ws::{Offer, Relayed, Sdp};
use bittorrent_tracker::{InfoHash, PeerId};
use common::*;
use crossbeam_channel::Receiver;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn quick() -> ConnOptions {
    ConnOptions {
        timeout: Duration::from_secs(3),
        udp_timeout: Duration::from_millis(300),
        udp_retries: 1,
        ..ConnOptions::default()
    }
}

fn options(hash: [u8; 20], peer: u8, port: u16, urls: &[&str]) -> ClientOptions {
    let mut o = ClientOptions::new(InfoHash(hash), PeerId(peer_id(peer)), port, urls);
    o.conn = quick();
    o
}

/// Events until one matches, within 10 s.
fn wait_for(
    rx: &Receiver<ClientEvent>,
    mut want: impl FnMut(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while let Ok(e) = rx.recv_deadline(end) {
        let done = want(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
    panic!("not seen in 10 s; got {seen:?}");
}

fn is_update(url: &str) -> impl FnMut(&ClientEvent) -> bool + '_ {
    move |e| matches!(e, ClientEvent::Update { url: u, .. } if u == url)
}

#[test]
fn client_finds_peers_over_every_protocol_and_family() {
    let t = Tracker::start(&[]);
    let h = hash(1, 1);
    let urls = [
        format!("udp://127.0.0.1:{}/announce", t.port),
        format!("udp://[::1]:{}/announce", t.port),
        format!("http://127.0.0.1:{}/announce", t.port),
        format!("http://[::1]:{}/announce", t.port),
    ];
    // A seeder on every URL first.
    let mut seed = options(
        h,
        1,
        7001,
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    seed.stats = Some(Arc::new(|| TransferStats {
        uploaded: 0,
        downloaded: 0,
        left: 0,
    }));
    let seeder = Client::new(seed);
    seeder.start();
    let mut answered = std::collections::BTreeSet::new();
    wait_for(seeder.events(), |e| {
        if let ClientEvent::Update { url, .. } = e {
            answered.insert(url.clone());
        }
        answered.len() == urls.len()
    });
    // Then a leecher on each URL in turn: it hears of the seeder there.
    for u in &urls {
        let leecher = Client::new(options(h, 2, 7002, &[u]));
        leecher.start();
        // UDP answers with peers of the packet's family; HTTP with both.
        let want = if u.starts_with("udp") { 1 } else { 2 };
        let mut peers = Vec::new();
        let seen = wait_for(leecher.events(), |e| {
            if let ClientEvent::Peer { addr, .. } = e {
                peers.push(*addr);
            }
            peers.len() == want
        });
        let update = seen.iter().find_map(|e| match e {
            ClientEvent::Update {
                complete,
                incomplete,
                interval,
                ..
            } => Some((*complete, *incomplete, *interval)),
            _ => None,
        });
        // The seeder is two peers: one per address family.
        assert_eq!(update, Some((2, 1, 600)), "{u}");
        assert!(peers.iter().all(|p| p.port() == 7001), "{u}: {peers:?}");
        if want == 1 {
            assert_eq!(peers[0].is_ipv6(), u.contains("[::1]"), "{u}");
        } else {
            assert_ne!(peers[0].is_ipv6(), peers[1].is_ipv6(), "{u}: {peers:?}");
        }
        leecher.scrape();
        let seen = wait_for(leecher.events(), |e| {
            matches!(e, ClientEvent::Scrape { .. })
        });
        assert!(matches!(
            seen.last(),
            Some(ClientEvent::Scrape {
                complete: 2,
                incomplete: 1,
                ..
            })
        ));
        leecher.stop();
    }
    // Every leecher sent `stopped`: only the seeder is left.
    for u in &urls {
        let s = client::scrape(u, &[InfoHash(h)], &quick()).unwrap();
        assert_eq!((s[0].complete, s[0].incomplete), (2, 0), "{u}");
    }
    seeder.stop();
    let s = client::scrape(&urls[0], &[InfoHash(h)], &quick()).unwrap();
    assert_eq!((s[0].complete, s[0].incomplete), (0, 0));
}

#[test]
fn static_multi_scrape_over_every_protocol() {
    let t = Tracker::start(&[]);
    let hashes: Vec<[u8; 20]> = (0..80u8).map(|i| hash(i % 2, i + 1)).collect();
    let mut u = Udp::connect(t.v4());
    for (i, h) in hashes.iter().enumerate().take(3) {
        for p in 0..=i as u16 {
            u.announce(*h, peer_id(p as u8), 0, 2, -1, 9000 + p);
        }
    }
    let want: Vec<u32> = (0..80).map(|i| if i < 3 { i + 1 } else { 0 }).collect();
    let ih: Vec<InfoHash> = hashes.iter().map(|h| InfoHash(*h)).collect();
    for url in [
        format!("udp://127.0.0.1:{}/announce", t.port),
        format!("udp://[::1]:{}", t.port),
        format!("http://127.0.0.1:{}/announce", t.port),
        format!("http://[::1]:{}/announce", t.port),
        format!("ws://127.0.0.1:{}", t.port),
        format!("ws://[::1]:{}", t.port),
    ] {
        // 80 hashes: more than one UDP packet holds.
        let got = client::scrape(&url, &ih, &quick()).unwrap();
        assert_eq!(
            got.iter().map(|s| s.complete).collect::<Vec<_>>(),
            want,
            "{url}"
        );
    }
    let e = client::scrape(&format!("http://127.0.0.1:{}/a", t.port), &ih, &quick()).unwrap_err();
    assert_eq!(e, TrackerError::NoScrape);
}

#[test]
fn websocket_offers_and_answers_reach_the_application() {
    let t = Tracker::start(&[]);
    let h = hash(0, 5);
    let url = format!("ws://127.0.0.1:{}/", t.port);
    let first = Client::new(options(h, 1, 1, &[&url]));
    first.start();
    wait_for(first.events(), is_update(&url));
    let mut o = options(h, 2, 1, &[&url]);
    o.numwant = Some(2);
    o.offers = Some(Arc::new(|n| {
        (0..n)
            .map(|i| Offer {
                offer_id: [b'a' + i as u8; 20],
                offer: serde_json::value::RawValue::from_string(format!(
                    "{{\"type\":\"offer\",\"sdp\":\"sdp-{i}\"}}"
                ))
                .unwrap(),
            })
            .collect()
    }));
    let second = Client::new(o);
    second.start();
    // The first client gets one of the offers.
    let is = |want_offer: bool| {
        move |e: &ClientEvent| match e {
            ClientEvent::Relayed { relayed, .. } => {
                matches!(relayed.sdp, Sdp::Offer(_)) == want_offer
            }
            _ => false,
        }
    };
    let seen = wait_for(first.events(), is(true));
    let Some(ClientEvent::Relayed {
        relayed:
            Relayed {
                peer_id,
                offer_id,
                sdp: offer,
                ..
            },
        ..
    }) = seen.last().cloned()
    else {
        unreachable!()
    };
    assert_eq!(peer_id, PeerId(peer_id_of(2)));
    assert!(offer.json().contains("sdp-"), "{offer:?}");
    first.answer(
        &url,
        peer_id,
        offer_id,
        r#"{"type":"answer","sdp":"reply"}"#,
    );
    let seen = wait_for(second.events(), is(false));
    match seen.last() {
        Some(ClientEvent::Relayed {
            relayed:
                Relayed {
                    peer_id,
                    offer_id: got,
                    sdp: answer,
                    ..
                },
            ..
        }) => {
            assert_eq!((*peer_id, *got), (PeerId(peer_id_of(1)), offer_id));
            assert_eq!(answer.json(), r#"{"type":"answer","sdp":"reply"}"#);
        }
        other => panic!("{other:?}"),
    }
    first.stop();
    second.stop();
}

fn peer_id_of(n: u8) -> [u8; 20] {
    peer_id(n)
}

#[test]
fn reannounces_at_the_interval_and_holds_updates_to_min_interval() {
    // HTTP: interval 2 s, min interval 1 s. The times are the tracker's own
    // (its debug line for each announce), so a test thread that sees an
    // event late on a loaded machine does not shorten what it measures.
    let t = Tracker::start(&["--interval", "2000", "--log-level", "debug"]);
    let url = format!("http://127.0.0.1:{}/announce", t.port);
    let h = hash(0, 9);
    let c = Client::new(options(h, 1, 5000, &[&url]));
    c.start();
    wait_for(c.events(), is_update(&url));
    c.update(None);
    wait_for(c.events(), is_update(&url));
    // Then the regular announce, an interval after the last.
    wait_for(c.events(), is_update(&url));
    c.destroy();
    let mine = format!("http announce 127.0.0.1:5000 {}: ok", hex(&h));
    let at: Vec<u64> = t
        .wait_for_lines(&mine, 3, Duration::from_secs(10))
        .iter()
        .map(|l| log_time_ms(l))
        .collect();
    let held = at[1] - at[0];
    assert!(
        held >= 950,
        "update sent {held} ms after the announce before it, inside min interval"
    );
    let gap = at[2] - at[1];
    assert!((1950..4000).contains(&gap), "re-announce after {gap} ms");
}

/// A UDP "tracker" that answers every datagram with `reply(request)`.
fn fake_udp(reply: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if let Some(r) = reply(&buf[..n]) {
                let _ = s.send_to(&r, from);
            }
        }
    });
    addr
}

/// An HTTP "tracker" that answers every request with `body` (or never, when `None`).
fn fake_http(body: Option<&'static [u8]>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                match body {
                    Some(b) => {
                        let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len());
                        let _ = s.write_all(b);
                    }
                    None => std::thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    addr
}

#[test]
fn garbage_and_silence_are_warnings() {
    let garbage = fake_udp(|req| {
        // A connect reply with the right transaction id, then nonsense.
        if req.len() == 16 {
            let mut r = vec![0, 0, 0, 0];
            r.extend_from_slice(&req[12..16]);
            r.extend_from_slice(&[7; 8]);
            Some(r)
        } else {
            let mut r = vec![0, 0, 0, 1];
            r.extend_from_slice(&req[12..16]);
            r.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]); // 25 bytes: peers not a multiple of 6
            Some(r)
        }
    });
    let silent_udp = fake_udp(|_| None);
    let html = fake_http(Some(b"<html>not a tracker</html>"));
    let hang = fake_http(None);
    let urls = [
        format!("udp://{garbage}/announce"),
        format!("udp://{silent_udp}/announce"),
        format!("http://{html}/announce"),
        format!("http://{hang}/announce"),
        "gopher://nowhere/announce".to_string(),
    ];
    let mut o = options(
        hash(0, 1),
        1,
        6000,
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    o.conn.timeout = Duration::from_millis(800);
    let c = Client::new(o);
    c.start();
    let mut warned = std::collections::BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(10);
    while warned.len() < urls.len() {
        match c.events().recv_deadline(end) {
            Ok(ClientEvent::Warning { url, message }) => {
                warned.insert(url, message);
            }
            Ok(other) => panic!("only warnings expected, got {other:?}"),
            Err(_) => panic!("warnings so far: {warned:?}"),
        }
    }
    assert!(
        warned[&urls[0]].contains("not a multiple of 6"),
        "{warned:?}"
    );
    assert!(warned[&urls[1]].contains("no reply"), "{warned:?}");
    assert!(warned[&urls[2]].contains("invalid reply"), "{warned:?}");
    assert!(warned[&urls[3]].contains("no reply"), "{warned:?}");
    assert!(
        warned[&urls[4]].contains("not a tracker scheme"),
        "{warned:?}"
    );
    let t = Instant::now();
    c.destroy();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "destroy does not wait out timeouts"
    );
}

#[test]
fn no_usable_url_is_an_error() {
    let c = Client::new(options(
        hash(0, 1),
        1,
        6000,
        &["nonsense", "ftp://x/announce"],
    ));
    let mut errors = 0;
    while let Ok(e) = c.events().recv_timeout(Duration::from_millis(200)) {
        if let ClientEvent::Error { message } = e {
            assert_eq!(message, "no usable announce URL");
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
}

#[test]
fn commands_print_results_and_clear_errors() {
    let t = Tracker::start(&[]);
    let h = hex(&hash(1, 3));
    let run = |args: &[&str]| {
        let o = run_tracker(args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let udp = format!("udp://127.0.0.1:{}/announce", t.port);
    let (code, out, _) = run(&[
        "announce",
        &udp,
        "--info-hash",
        &h,
        "--left",
        "0",
        "--port",
        "7100",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        format!("{udp}: 1 seeders, 0 leechers, interval 600 s\npeers (0):\n")
    );
    let http = format!("http://[::1]:{}/announce", t.port);
    let (code, out, _) = run(&[
        "announce",
        &http,
        "--info-hash",
        &h,
        "--port",
        "7101",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["complete"].as_u64(), v["incomplete"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["peers"], serde_json::json!(["127.0.0.1:7100"]));
    let ws = format!("ws://127.0.0.1:{}", t.port);
    let (code, out, _) = run(&[
        "scrape",
        &ws,
        &h,
        "ffffffffffffffffffffffffffffffffffffffff",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        format!("{ws}:\n  {h}  1 seeders, 1 leechers, 0 downloaded\n  ffffffffffffffffffffffffffffffffffffffff  0 seeders, 0 leechers, 0 downloaded\n")
    );
    let scrape = format!("http://127.0.0.1:{}/scrape", t.port);
    let (code, out, _) = run(&["scrape", &scrape, &h, "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"][&h]["complete"], 1);
    // Errors: a bad hash, a bad URL, a tracker that is not there.
    let (code, _, err) = run(&["scrape", &udp, "xyz"]);
    assert_eq!(
        (code, err.trim()),
        (Some(2), "error: `xyz` is not an info hash (40 hex digits)")
    );
    let (code, _, err) = run(&["announce", "mailto:x", "--info-hash", &h]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a tracker scheme"), "{err}");
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(&[
        "announce",
        &format!("udp://{closed}/announce"),
        "--info-hash",
        &h,
        "--timeout",
        "2",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("connection refused") || err.contains("no reply"),
        "{err}"
    );
}
