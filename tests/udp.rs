//! UDP tracker (BEP 15) over real sockets, two workers, IPv4 and IPv6.

mod common;
use common::*;
use std::time::Duration;

const STARTED: u32 = 2;
const COMPLETED: u32 = 1;
const STOPPED: u32 = 3;
const NONE: u32 = 0;

#[test]
fn announce_and_scrape_on_both_shards() {
    both_shards(&[]);
}

/// The same where the kernel does not steer: datagrams land on either
/// worker, and the one that does not own the hash forwards it.
#[test]
fn announce_and_scrape_on_both_shards_forwarded() {
    both_shards(&["--no-steer"]);
}

fn both_shards(extra: &[&str]) {
    let mut args = vec!["--interval", "1800000"];
    args.extend_from_slice(extra);
    let t = Tracker::start(&args);
    for owner in 0..2u8 {
        let h = hash(owner, 1);
        // Several client sockets, so the kernel spreads them over both workers.
        let mut a = Udp::connect(t.v4());
        let mut b = Udp::connect(t.v4());
        let mut c = Udp::connect(t.v4());

        let r = a.announce(h, peer_id(1), 100, STARTED, -1, 1001);
        assert_eq!(
            r,
            AnnounceReply {
                interval: 1800,
                leechers: 1,
                seeders: 0,
                peers: vec![]
            }
        );

        let r = b.announce(h, peer_id(2), 0, STARTED, -1, 1002);
        assert_eq!((r.leechers, r.seeders), (1, 1));
        assert_eq!(
            r.peers,
            vec![vec![127, 0, 0, 1, 0x03, 0xe9]],
            "the seeder gets the leecher"
        );

        let r = c.announce(h, peer_id(3), 50, STARTED, -1, 1003);
        assert_eq!((r.leechers, r.seeders), (2, 1));
        assert_eq!(
            r.ports(),
            vec![1001, 1002],
            "a leecher gets everyone but itself"
        );

        // The first leecher completes: a seeder now, one download counted.
        let r = a.announce(h, peer_id(1), 0, COMPLETED, -1, 1001);
        assert_eq!((r.leechers, r.seeders), (1, 2));
        assert_eq!(r.ports(), vec![1003], "a seeder gets leechers only");
        assert_eq!(c.scrape(&[h]), vec![(2, 1, 1)]);

        // A regular update changes nothing.
        let r = c.announce(h, peer_id(3), 50, NONE, -1, 1003);
        assert_eq!((r.leechers, r.seeders), (1, 2));

        // Stop: gone from the swarm, the download stays counted.
        let r = b.announce(h, peer_id(2), 0, STOPPED, -1, 1002);
        assert_eq!((r.leechers, r.seeders, r.peers.len()), (1, 1, 0));
        assert_eq!(a.scrape(&[h]), vec![(1, 1, 1)]);
    }
    // A multi-scrape across both shards, unknown hashes as zeros, in request order.
    let mut s = Udp::connect(t.v4());
    assert_eq!(
        s.scrape(&[hash(1, 1), hash(0, 9), hash(0, 1)]),
        vec![(1, 1, 1), (0, 0, 0), (1, 1, 1)]
    );
}

#[test]
fn announces_and_scrapes_land_on_their_owner_and_are_never_forwarded() {
    assert_eq!(
        forwarded_of_32_announces(&[]),
        0,
        "the kernel steers each datagram to the worker that owns its hash"
    );
    // Spread by address and port alone, about half of them cross.
    assert!(forwarded_of_32_announces(&["--no-steer"]) > 0);
}

/// Announces (and scrapes) 32 hashes of both workers, over both address
/// families, each from a new client socket; how many were forwarded.
fn forwarded_of_32_announces(extra: &[&str]) -> u64 {
    let t = Tracker::start(extra);
    let metric = |name: &str| -> u64 {
        let m = String::from_utf8(get(t.v4(), "/metrics").body).unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in\n{m}"))
            .parse()
            .unwrap()
    };
    let mut announces = 0;
    for (family, target) in [(0u8, t.v4()), (100, t.v6())] {
        for owner in 0..2u8 {
            for n in 0..8u8 {
                let mut c = Udp::connect(target);
                let h = hash(owner, family + n);
                let r = c.announce(h, peer_id(n), 10, STARTED, -1, 2000 + n as u16);
                assert_eq!((r.leechers, r.seeders), (1, 0));
                assert_eq!(
                    c.scrape(&[h]),
                    vec![(0, 0, 1)],
                    "seeders, completed, leechers"
                );
                announces += 1;
            }
        }
    }
    assert_eq!(
        metric("tracker_requests_total{protocol=\"udp\",action=\"announce\"}"),
        announces
    );
    metric("tracker_forwarded_total")
}

#[test]
fn ipv6_peers_are_18_bytes_and_apart_from_ipv4() {
    let t = Tracker::start(&[]);
    let h = hash(1, 2);
    let mut v4 = Udp::connect(t.v4());
    v4.announce(h, peer_id(1), 10, STARTED, -1, 4000);
    let mut a = Udp::connect(t.v6());
    let r = a.announce(h, peer_id(2), 10, STARTED, -1, 6000);
    assert_eq!(
        (r.leechers, r.seeders),
        (2, 0),
        "counts include both families"
    );
    assert!(r.peers.is_empty(), "an IPv6 reply carries IPv6 peers only");
    let mut b = Udp::connect(t.v6());
    let r = b.announce(h, peer_id(3), 0, STARTED, -1, 6001);
    let mut want = vec![0u8; 15];
    want.push(1);
    want.extend_from_slice(&6000u16.to_be_bytes());
    assert_eq!(r.peers, vec![want]);
    assert_eq!(b.scrape(&[h]), vec![(1, 0, 2)]);
}

#[test]
fn numwant_cap_and_datagram_size() {
    let t = Tracker::start(&[]);
    let h = hash(0, 3);
    let h6 = hash(1, 3);
    let mut u = Udp::connect(t.v4());
    let mut u6 = Udp::connect(t.v6());
    for port in 1..=120 {
        u.announce(h, peer_id(1), 0, STARTED, -1, port);
        u6.announce(h6, peer_id(1), 0, STARTED, -1, port);
    }
    let mut l = Udp::connect(t.v4());
    assert_eq!(
        l.announce(h, peer_id(2), 5, STARTED, -1, 999).peers.len(),
        50,
        "default numwant"
    );
    assert_eq!(
        l.announce(h, peer_id(2), 5, NONE, 500, 999).peers.len(),
        82,
        "capped at 82"
    );
    let r = l.announce(h, peer_id(2), 5, NONE, 7, 999);
    assert_eq!(r.peers.len(), 7);
    let mut d = r.ports();
    d.dedup();
    assert_eq!(d.len(), 7, "no peer twice");
    let mut l6 = Udp::connect(t.v6());
    let r = l6.announce(h6, peer_id(2), 5, STARTED, 500, 999);
    assert_eq!(r.peers.len(), 79, "an IPv6 reply fits 1452 bytes");
}

#[test]
fn bad_connection_ids_get_silence_and_errors_need_a_valid_id() {
    let t = Tracker::start(&[]);
    let mut u = Udp::connect(t.v4());
    u.sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let good = u.conn;

    u.conn = good ^ 0x55;
    let (_, req) = u.announce_bytes(hash(0, 4), peer_id(1), 1, STARTED, -1, 1);
    assert_eq!(u.roundtrip(&req), None, "bad id: no reply");
    // A connection id issued to another address is no good here either.
    let mut other = Udp::connect_from("127.0.0.2:0", t.v4());
    other
        .sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    other.conn = good;
    let (_, req) = other.announce_bytes(hash(0, 4), peer_id(1), 1, STARTED, -1, 1);
    assert_eq!(other.roundtrip(&req), None);

    // Invalid event with a valid id: an error packet naming the problem.
    u.conn = good;
    let (tid, mut req) = u.announce_bytes(hash(0, 4), peer_id(1), 1, 9, -1, 1);
    let r = u.roundtrip(&req).unwrap();
    let mut want = vec![0, 0, 0, 3];
    want.extend_from_slice(&tid.to_be_bytes());
    want.extend_from_slice(b"invalid event");
    assert_eq!(r, want);
    // ... and silence with a bad id.
    req[0] ^= 0xff;
    assert_eq!(u.roundtrip(&req), None);
    // Truncated announce, valid id.
    let (tid, req) = u.announce_bytes(hash(0, 4), peer_id(1), 1, STARTED, -1, 1);
    let r = u.roundtrip(&req[..60]).unwrap();
    assert_eq!(
        &r[..8],
        &[&[0, 0, 0, 3][..], &tid.to_be_bytes()].concat()[..]
    );
    assert_eq!(&r[8..], b"packet too short");
    // Junk and a connect without the magic: silence.
    assert_eq!(u.roundtrip(&[1, 2, 3]), None);
    assert_eq!(u.roundtrip(&[0u8; 16]), None);
    // Nothing above touched the swarm, and the tracker still answers.
    assert_eq!(u.scrape(&[hash(0, 4)]), vec![(0, 0, 0)]);
}

#[test]
fn bep41_options_and_longer_announces_are_accepted() {
    let t = Tracker::start(&[]);
    let mut u = Udp::connect(t.v4());
    let h = hash(1, 5);
    // aria2: two trailing zero bytes.
    let (_, mut req) = u.announce_bytes(h, peer_id(1), 1, STARTED, -1, 7000);
    req.extend_from_slice(&[0, 0]);
    let r = u.roundtrip(&req).unwrap();
    assert_eq!(&r[0..4], &[0, 0, 0, 1]);
    // libtorrent: URL data with the announce path, in two options, then an unknown option.
    let (_, mut req) = u.announce_bytes(h, peer_id(2), 1, STARTED, -1, 7001);
    req.extend_from_slice(&[2, 9]);
    req.extend_from_slice(b"/announce");
    req.extend_from_slice(&[2, 4]);
    req.extend_from_slice(b"?x=1");
    req.extend_from_slice(&[1, 9, 2, 0xaa, 0xbb, 0]);
    let r = u.roundtrip(&req).unwrap();
    assert_eq!(&r[0..4], &[0, 0, 0, 1]);
    // Garbage options never hurt.
    let (_, mut req) = u.announce_bytes(h, peer_id(3), 1, STARTED, -1, 7002);
    req.extend_from_slice(&[2, 250, 1, 2]);
    let r = u.roundtrip(&req).unwrap();
    assert_eq!(&r[12..16], &3u32.to_be_bytes(), "three leechers");
}

#[test]
fn port_in_use_is_one_clear_error() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = run_tracker(&[
        "-p",
        &port,
        "--udp",
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "off",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.lines().map(parse_log_line).collect::<Vec<_>>(),
        vec![(
            "ERROR",
            format!(
                "cannot listen on 127.0.0.1:{port} (udp): the port is in use; stop what holds it or pick another with -p"
            )
            .as_str()
        )]
    );
}

#[test]
fn a_second_tracker_on_the_same_port_is_refused() {
    let t = Tracker::start(&[]);
    let port = t.port.to_string();
    let out = run_tracker(&[
        "-p",
        &port,
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "off",
    ]);
    assert!(
        !out.status.success(),
        "SO_REUSEPORT must not let a second copy share the port"
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("the port is in use"));
}

#[test]
fn sigterm_stops_the_tracker_cleanly() {
    let t = Tracker::start(&[]);
    let status = t.terminate();
    assert!(status.success(), "{status:?}");
}
