//! The library API, as an application embedding the tracker uses it: the
//! builder, a filter hook for passkeys, the event stream, and snapshots.

mod common;
use bittorrent_tracker::server::events::PeerEvent;
use bittorrent_tracker::server::stats::Protocol;
use bittorrent_tracker::{InfoHash, PeerId, Server};
use common::*;
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
    server.shutdown();
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
    server.shutdown();
}
