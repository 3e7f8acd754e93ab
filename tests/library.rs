//! The library API, as an application embedding the tracker uses it: the
//! builder, a filter hook for passkeys, the event stream, and snapshots.

mod common;
use bittorrent_tracker::server::events::PeerEvent;
use bittorrent_tracker::{InfoHash, PeerId, Protocol, Server};
use common::*;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn start_private(events: usize) -> Server {
    Server::builder()
        .workers(2)
        .filter(|r| {
            let keyed = r.path.ends_with(b"/announce/sesame")
                || r.query
                    .split(|&b| b == b'&')
                    .any(|kv| kv == b"passkey=sesame");
            if keyed {
                Ok(())
            } else {
                Err(format!("{} needs a passkey", r.protocol.name()))
            }
        })
        .events(events)
        .listen(0, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .expect("server starts")
}

#[test]
fn passkeys_events_and_snapshots() {
    let server = start_private(100);
    assert_eq!(
        server.http_addrs().len(),
        1,
        "IPv4 only when a host is given"
    );
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), server.port());
    let events = server.events().unwrap();
    let h = hash(1, 7);

    // HTTP: passkey in the path, then none.
    let ok = get(
        addr,
        &announce_target(h, peer_id(1), 5001, 0, "&event=started").replacen(
            "/announce",
            "/announce/sesame",
            1,
        ),
    );
    assert!(String::from_utf8_lossy(&ok.body).contains("8:interval"));
    let no = get(addr, &announce_target(h, peer_id(2), 5002, 0, ""));
    assert!(String::from_utf8_lossy(&no.body).contains("http needs a passkey"));
    // UDP: passkey in the BEP 41 URL data, then none.
    let mut u = Udp::connect(addr);
    let (_, mut req) = u.announce_bytes(h, peer_id(3), 100, 2, -1, 5003);
    let url = b"/announce?passkey=sesame";
    req.extend_from_slice(&[2, url.len() as u8]);
    req.extend_from_slice(url);
    let resp = u.roundtrip(&req).unwrap();
    assert_eq!(&resp[0..4], &[0, 0, 0, 1], "announced");
    let (_, req) = u.announce_bytes(h, peer_id(4), 100, 2, -1, 5004);
    let resp = u.roundtrip(&req).unwrap();
    assert_eq!(&resp[0..4], &[0, 0, 0, 3]);
    assert_eq!(&resp[8..], b"udp needs a passkey");
    // The leecher completes and stops (UDP, with its passkey).
    for event in [1u32, 3] {
        let (_, mut req) = u.announce_bytes(h, peer_id(3), 0, event, -1, 5003);
        req.extend_from_slice(&[2, url.len() as u8]);
        req.extend_from_slice(url);
        u.roundtrip(&req).unwrap();
    }

    let got: Vec<_> = (0..4)
        .map(|_| events.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    let summary: Vec<_> = got
        .iter()
        .map(|e| (e.event, e.protocol, e.addr.unwrap().port(), e.peer_id))
        .collect();
    assert_eq!(
        summary,
        vec![
            (PeerEvent::Start, Protocol::Http, 5001, PeerId(peer_id(1))),
            (PeerEvent::Start, Protocol::Udp, 5003, PeerId(peer_id(3))),
            (PeerEvent::Complete, Protocol::Udp, 5003, PeerId(peer_id(3))),
            (PeerEvent::Stop, Protocol::Udp, 5003, PeerId(peer_id(3))),
        ]
    );
    assert!(got.iter().all(|e| e.info_hash == InfoHash(h)));
    assert!(
        events.try_recv().is_err(),
        "refused announces make no events"
    );

    let torrents = server.torrents();
    assert_eq!(torrents.len(), 1);
    let t = &torrents[0];
    assert_eq!(
        (t.info_hash, t.complete, t.incomplete, t.downloaded),
        (InfoHash(h), 1, 0, 1)
    );
    assert_eq!(t.peers.len(), 1);
    assert_eq!(
        t.peers[0].addr,
        Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 5001))
    );
    assert!(t.peers[0].seeder);

    let stats = server.stats();
    assert_eq!(stats.workers.len(), 2);
    assert_eq!(stats.total.totals.seeders, 1);
    assert_eq!(stats.total.totals.completed, 1);
    server.shutdown().expect("a clean stop");
}

#[test]
fn a_full_event_stream_drops_and_counts() {
    let server = start_private(2);
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), server.port());
    for n in 0..5u8 {
        let target = announce_target(
            hash(0, n),
            peer_id(n),
            6000 + n as u16,
            0,
            "&passkey=sesame",
        );
        assert!(String::from_utf8_lossy(&get(addr, &target).body).contains("8:interval"));
    }
    assert_eq!(server.events().unwrap().len(), 2);
    assert_eq!(server.events_dropped(), 3);
    server.shutdown().expect("a clean stop");
}

/// Holds a filter hook until the test releases it (or drops the gate, as a
/// failing test does), with a cap so that nothing can hang for ever.
struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn new() -> Gate {
        Gate(Default::default())
    }
    fn wait(&self, cap: Duration) {
        let (open, cv) = &*self.0;
        let guard = open.lock().unwrap();
        let _ = cv.wait_timeout_while(guard, cap, |open| !*open).unwrap();
    }
    fn release(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.release();
    }
}

/// A worker that stops running (here a filter hook that blocks it, as a
/// slow database lookup would) is seen at once: `health()`, `/metrics` and
/// `/stats` from the other worker say which one is stalled, and it recovers.
/// The hook blocks until the test has seen all that, however slowly a
/// loaded machine lets it look.
#[test]
fn a_stalled_worker_shows_in_health_and_metrics_then_recovers() {
    let slow = InfoHash(hash(0, 9));
    let hold = Gate::new();
    let shared = hold.0.clone();
    let server = Server::builder()
        .workers(2)
        .filter(move |r| {
            if r.info_hash == Some(&slow) {
                hold.wait(Duration::from_secs(120));
            }
            Ok(())
        })
        .listen(0, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .expect("server starts");
    // Declared after the server, so that a failing test opens it before the
    // server's drop waits for the blocked worker.
    let gate = Gate(shared);
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), server.port());
    assert!(server.health().iter().all(|h| !h.stalled && h.stalls == 0));
    // The announce blocks whichever worker received it until the gate opens.
    let mut u = Udp::connect(addr);
    let (_, req) = u.announce_bytes(slow.0, peer_id(1), 0, 2, -1, 7001);
    let client = std::thread::spawn(move || {
        u.sock
            .set_read_timeout(Some(Duration::from_secs(150)))
            .unwrap();
        u.roundtrip(&req)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stalled = loop {
        if let Some(h) = server.health().into_iter().find(|h| h.stalled) {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stalled worker: {:?}",
            server.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        stalled.heartbeat_age >= Duration::from_secs(3),
        "{stalled:?}"
    );
    let others: Vec<_> = server
        .health()
        .into_iter()
        .filter(|h| h.worker != stalled.worker)
        .collect();
    assert!(others.iter().all(|h| !h.stalled), "{others:?}");
    // The other worker answers /metrics at once and names the stalled one;
    // on the same connection (so the same worker), /stats too, within the
    // 1 s it waits for the stalled worker's figures.
    let line = format!("tracker_worker_stalled{{worker=\"{}\"}} 1", stalled.worker);
    let mut seen = Vec::new();
    let mut page = None;
    let shown = (0..20).any(|_| {
        let mut s = tcp(addr);
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let body = read_response(&mut s).map(|r| String::from_utf8_lossy(&r.body).into_owned());
        let hit = body
            .as_deref()
            .is_some_and(|b| b.lines().any(|l| l == line));
        seen.push(body.map(|b| b.len()));
        if hit {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            page = read_response(&mut s).map(|r| String::from_utf8_lossy(&r.body).into_owned());
        }
        hit
    });
    assert!(shown, "{line} in none of the /metrics replies: {seen:?}");
    let page = page.expect("/stats answered while a worker is stalled");
    let named = format!("Worker {} is stalled", stalled.worker);
    assert!(
        page.contains(&named) && page.contains("<svg ") && page.contains("</html>"),
        "{named} and the chart in {page}"
    );
    // When the filter returns, the worker answers and beats again.
    gate.release();
    let reply = client
        .join()
        .unwrap()
        .expect("the blocked announce is answered");
    assert_eq!(&reply[0..4], &[0, 0, 0, 1]);
    assert!(eventually(|| !server.health()[stalled.worker].stalled));
    assert_eq!(server.health()[stalled.worker].stalls, 1);
    let text = server.stats().prometheus();
    assert!(text.contains(&format!(
        "tracker_worker_stalls_total{{worker=\"{}\"}} 1",
        stalled.worker
    )));
    server.shutdown().expect("a clean stop");
}

/// What the owner of an info hash does after an announce is one function,
/// whichever worker received the request: an announce refused because the
/// shard is full makes no event, received by its owner or forwarded to it.
#[test]
fn refused_announces_make_no_event_on_either_route() {
    let mut cfg = bittorrent_tracker::ServerConfig::default();
    cfg.limits.max_torrents = 2; // one torrent per worker
    let server = Server::builder()
        .config(cfg)
        .workers(2)
        .events(100)
        .listen(0, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .expect("server starts");
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), server.port());
    let events = server.events().unwrap();
    // One keep-alive connection: whichever worker accepted it owns one of
    // the two hashes (the local route) and forwards the other.
    let mut s = tcp(addr);
    let mut call = |h: [u8; 20], peer: u8| {
        let target = announce_target(h, peer_id(peer), 7000 + peer as u16, 5, "");
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut s).expect("a reply");
        String::from_utf8_lossy(&r.body).into_owned()
    };
    // Each shard takes its one torrent...
    for (h, peer) in [(hash(0, 1), 1), (hash(1, 1), 2)] {
        assert!(call(h, peer).contains("8:interval"));
    }
    // ...and refuses a second, on both routes.
    for (h, peer) in [(hash(0, 2), 3), (hash(1, 2), 4)] {
        assert!(call(h, peer).contains("tracker is full"));
    }
    let got: Vec<u16> = std::iter::from_fn(|| events.recv_timeout(Duration::from_secs(1)).ok())
        .map(|e| e.addr.unwrap().port())
        .collect();
    assert_eq!(
        got,
        vec![7001, 7002],
        "one event per accepted announce, none for refused ones"
    );
    server.shutdown().expect("a clean stop");
}
