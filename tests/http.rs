//! HTTP tracker over real sockets, two workers, IPv4 and IPv6.

mod common;
use common::*;
use std::io::Write;

fn bstr(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bencoded_bytes(s: &[u8]) -> Vec<u8> {
    let mut v = s.len().to_string().into_bytes();
    v.push(b':');
    v.extend_from_slice(s);
    v
}

#[test]
fn announce_reply_bytes_on_both_shards() {
    let t = Tracker::start(&[]);
    for owner in 0..2u8 {
        let h = hash(owner, 1);
        let r = get(
            t.v4(),
            &announce_target(h, peer_id(1), 6881, 100, "&event=started"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(
            bstr(&r.body),
            "d8:completei0e10:incompletei1e8:intervali600e12:min intervali300e5:peers0:e"
        );
        // A seeder from [::1] gets the IPv4 leecher in `peers`.
        let r = get(
            t.v6(),
            &announce_target(h, peer_id(2), 6882, 0, "&event=started&compact=1"),
        );
        assert_eq!(
            r.body,
            b"d8:completei1e10:incompletei1e8:intervali600e12:min intervali300e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"
        );
        // The IPv4 leecher gets the IPv6 seeder in `peers6`.
        let r = get(t.v4(), &announce_target(h, peer_id(1), 6881, 100, ""));
        let mut want =
            b"d8:completei1e10:incompletei1e8:intervali600e12:min intervali300e5:peers0:6:peers6"
                .to_vec();
        let mut six = vec![0u8; 15];
        six.extend_from_slice(&[1, 0x1a, 0xe2]);
        want.extend_from_slice(&bencoded_bytes(&six));
        want.push(b'e');
        assert_eq!(bstr(&r.body), bstr(&want));
    }
}

#[test]
fn non_compact_lists_without_peer_ids_unless_kept() {
    let t = Tracker::start(&[]);
    let h = hash(1, 2);
    get(t.v4(), &announce_target(h, peer_id(1), 7001, 0, ""));
    for extra in ["&compact=0", "&compact=0&no_peer_id=1"] {
        let r = get(t.v4(), &announce_target(h, peer_id(2), 7002, 9, extra));
        assert_eq!(
            bstr(&r.body),
            "d8:completei1e10:incompletei1e8:intervali600e12:min intervali300e5:peersld2:ip9:127.0.0.14:porti7001eeee"
        );
    }
}

#[test]
fn non_compact_lists_with_and_without_peer_id() {
    let t = Tracker::start(&["--peer-ids"]);
    let h = hash(1, 2);
    get(t.v4(), &announce_target(h, peer_id(1), 7001, 0, ""));
    let r = get(
        t.v4(),
        &announce_target(h, peer_id(2), 7002, 9, "&compact=0"),
    );
    assert_eq!(
        bstr(&r.body),
        "d8:completei1e10:incompletei1e8:intervali600e12:min intervali300e5:peersl\
         d2:ip9:127.0.0.17:peer id20:-TT0001-0000000000014:porti7001eeee"
    );
    let r = get(
        t.v4(),
        &announce_target(h, peer_id(2), 7002, 9, "&compact=0&no_peer_id=1"),
    );
    assert_eq!(
        bstr(&r.body),
        "d8:completei1e10:incompletei1e8:intervali600e12:min intervali300e5:peersld2:ip9:127.0.0.14:porti7001eeee"
    );
}

#[test]
fn awkward_hash_bytes_unescaped_and_escaped_are_one_torrent() {
    let t = Tracker::start(&[]);
    // 0x20, 0x25, 0x2B, 0x26, 0x3D and bytes >= 0x80.
    let h: [u8; 20] = [
        0x20, 0x25, 0x2b, 0x26, 0x3d, 0x80, 0xff, b'+', b'a', b'~', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ];
    get(t.v4(), &announce_target(h, peer_id(1), 7001, 0, ""));
    // Same hash, unreserved bytes left raw ('+' stays a plus, never a space).
    let mixed = "%20%25%2B%26%3D%80%FF+a~%00%01%02%03%04%05%06%07%08%09";
    let r = get(
        t.v4(),
        &format!(
            "/announce?info_hash={mixed}&peer_id={}&port=7002&left=5",
            esc(&peer_id(2))
        ),
    );
    assert!(
        bstr(&r.body).starts_with("d8:completei1e10:incompletei1e"),
        "{}",
        bstr(&r.body)
    );
    let r = get(t.v4(), &format!("/scrape?info_hash={mixed}"));
    let mut want = b"d5:filesd".to_vec();
    want.extend_from_slice(&bencoded_bytes(&h));
    want.extend_from_slice(
        b"d8:completei1e10:downloadedi0e10:incompletei1eee5:flagsd20:min_request_intervali600eee",
    );
    assert_eq!(r.body, want);
}

#[test]
fn scrape_single_multi_and_full() {
    let t = Tracker::start(&[]);
    let (a, b) = (hash(0, 3), hash(1, 4));
    get(
        t.v4(),
        &announce_target(a, peer_id(1), 1, 5, "&event=started"),
    );
    get(
        t.v4(),
        &announce_target(a, peer_id(1), 1, 0, "&event=completed"),
    );
    get(
        t.v4(),
        &announce_target(b, peer_id(2), 2, 5, "&event=started"),
    );
    let entry = |h: [u8; 20], c: u32, d: u32, i: u32| {
        let mut v = bencoded_bytes(&h);
        v.extend_from_slice(
            format!("d8:completei{c}e10:downloadedi{d}e10:incompletei{i}ee").as_bytes(),
        );
        v
    };
    let wrap = |entries: Vec<u8>| {
        let mut v = b"d5:filesd".to_vec();
        v.extend_from_slice(&entries);
        v.extend_from_slice(b"e5:flagsd20:min_request_intervali600eee");
        v
    };
    let r = get(t.v4(), &format!("/scrape?info_hash={}", esc(&a)));
    assert_eq!(bstr(&r.body), bstr(&wrap(entry(a, 1, 1, 0))));
    // Multi: keys sorted, duplicates once, unknown hashes as zeros.
    let unknown = hash(0, 0);
    let r = get(
        t.v4(),
        &format!(
            "/scrape?info_hash={}&info_hash={}&info_hash={}&info_hash={}",
            esc(&b),
            esc(&a),
            esc(&unknown),
            esc(&b)
        ),
    );
    assert_eq!(
        bstr(&r.body),
        bstr(&wrap(
            [
                entry(unknown, 0, 0, 0),
                entry(a, 1, 1, 0),
                entry(b, 0, 0, 1)
            ]
            .concat()
        ))
    );
    // Full scrape: every torrent of every shard.
    let r = get(t.v4(), "/scrape");
    assert_eq!(
        bstr(&r.body),
        bstr(&wrap([entry(a, 1, 1, 0), entry(b, 0, 0, 1)].concat()))
    );
    // The scrape path under a passkey works like the plain one.
    let r = get(t.v4(), &format!("/scrape/abc123?info_hash={}", esc(&a)));
    assert_eq!(bstr(&r.body), bstr(&wrap(entry(a, 1, 1, 0))));
}

#[test]
fn full_scrape_can_be_turned_off() {
    let t = Tracker::start(&["--no-full-scrape"]);
    let r = get(t.v4(), "/scrape");
    assert_eq!(
        bstr(&r.body),
        "d14:failure reason42:full scrape is disabled: name an info_hashe"
    );
}

#[test]
fn tracker_errors_are_failure_reasons() {
    let t = Tracker::start(&[]);
    let h = esc(&hash(0, 5));
    let p = esc(&peer_id(1));
    let cases = [
        (format!("/announce?peer_id={p}&port=1"), "missing info_hash"),
        (
            format!("/announce?info_hash=abc&peer_id={p}&port=1"),
            "invalid info_hash",
        ),
        (format!("/announce?info_hash={h}&port=1"), "missing peer_id"),
        (
            format!("/announce?info_hash={h}&peer_id={p}"),
            "missing port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={p}&port=0"),
            "invalid port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={p}&port=70000"),
            "invalid port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={p}&port=1&event=bogus"),
            "invalid event",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={p}&port=1&left=x"),
            "invalid left",
        ),
        (
            format!("/announce?info_hash=%zz{h}&peer_id={p}&port=1"),
            "invalid info_hash",
        ),
        ("/scrape?info_hash=short".to_string(), "invalid info_hash"),
    ];
    for (target, reason) in cases {
        let r = get(t.v4(), &target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            bstr(&r.body),
            format!("d14:failure reason{}:{reason}e", reason.len()),
            "{target}"
        );
    }
    // None of that created a torrent.
    let r = get(t.v4(), "/scrape");
    assert_eq!(
        bstr(&r.body),
        "d5:filesde5:flagsd20:min_request_intervali600eee"
    );
    // Unknown parameters are ignored.
    let r = get(
        t.v4(),
        &announce_target(
            hash(0, 5),
            peer_id(1),
            1,
            0,
            "&supportcrypto=1&corrupt=0&redundant=0&trackerid=x",
        ),
    );
    assert!(bstr(&r.body).starts_with("d8:completei1e"));
}

#[test]
fn broken_http_gets_status_codes_and_a_close() {
    let t = Tracker::start(&[]);
    let send = |raw: &[u8]| {
        let mut s = tcp(t.v4());
        s.write_all(raw).unwrap();
        let r = read_response(&mut s).expect("a response");
        assert!(closed(&mut s), "closed after an error");
        r
    };
    // An unknown path is no reason to drop a keep-alive connection.
    let mut s = tcp(t.v4());
    s.write_all(b"GET /nope HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 404);
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    assert!(!closed(&mut s), "kept open after a 404");
    assert_eq!(get(t.v4(), "/announcefoo").status, 404);
    assert_eq!(send(b"\x00\x01junk\r\n\r\n").status, 400);
    assert_eq!(
        send(b"POST /announce HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").status,
        405
    );
    assert_eq!(
        send(b"GET /announce HTTP/1.1\r\nContent-Length: 999999\r\n\r\n").status,
        413
    );
    assert_eq!(
        send(b"GET /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status,
        400
    );
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(send(&many).status, 431);
    // A long request (6 KB of unknown parameters) within the limits is served.
    let long = announce_target(hash(0, 9), peer_id(1), 1, 0, &"&x=1".repeat(1500));
    let mut s = tcp(t.v4());
    write!(s, "GET {long} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        bstr(&r.body).starts_with("d8:completei1e"),
        "{}",
        bstr(&r.body)
    );
    let mut huge = b"GET /announce?".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    let mut s = tcp(t.v4());
    let _ = s.write_all(&huge); // the server may close before taking it all
    assert_eq!(read_response(&mut s).expect("a response").status, 431);
}

#[test]
fn keep_alive_pipelining_http10_and_close() {
    let t = Tracker::start(&[]);
    let a = announce_target(hash(0, 6), peer_id(1), 1, 5, "");
    let b = announce_target(hash(1, 6), peer_id(2), 2, 5, "");
    // Two requests in one write, then a third later, on one connection.
    let mut s = tcp(t.v4());
    write!(
        s,
        "GET {a} HTTP/1.1\r\nHost: x\r\n\r\nGET {b} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let r1 = read_response(&mut s).unwrap();
    let r2 = read_response(&mut s).unwrap();
    assert!(bstr(&r1.body).starts_with("d8:completei0e10:incompletei1e"));
    assert!(bstr(&r2.body).starts_with("d8:completei0e10:incompletei1e"));
    assert_eq!(r1.header("connection"), None);
    write!(
        s,
        "GET /scrape?info_hash={} HTTP/1.1\r\n\r\n",
        esc(&hash(1, 6))
    )
    .unwrap();
    let r3 = read_response(&mut s).unwrap();
    assert!(bstr(&r3.body).contains("incompletei1e"));
    // A request split across writes is put back together.
    let c = announce_target(hash(0, 6), peer_id(3), 3, 0, "");
    let whole = format!("GET {c} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (x, y) = whole.split_at(30);
    s.write_all(x.as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.write_all(y.as_bytes()).unwrap();
    let r4 = read_response(&mut s).unwrap();
    assert!(bstr(&r4.body).starts_with("d8:completei1e10:incompletei1e"));

    // HTTP/1.0: closed after the reply, unless it asks for keep-alive.
    let mut s = tcp(t.v4());
    write!(s, "GET {a} HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed(&mut s));
    let mut s = tcp(t.v4());
    write!(s, "GET {a} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut s).unwrap().header("connection"),
        Some("keep-alive")
    );
    write!(s, "GET {a} HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
    assert!(closed(&mut s));

    // HTTP/1.1 with Connection: close (libtorrent).
    let mut s = tcp(t.v4());
    write!(
        s,
        "GET {a} HTTP/1.1\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n"
    )
    .unwrap();
    assert_eq!(
        read_response(&mut s).unwrap().header("connection"),
        Some("close")
    );
    assert!(closed(&mut s));
}

#[test]
fn trust_proxy_takes_the_appended_address() {
    let h = hash(1, 7);
    let leecher = announce_target(h, peer_id(1), 9000, 5, "");
    let seeder = announce_target(h, peer_id(2), 9001, 0, "");
    let with_xff = |t: &Tracker, target: &str, xff: &str| {
        let mut s = tcp(t.v4());
        write!(
            s,
            "GET {target} HTTP/1.1\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut s).unwrap()
    };
    // Trusted: the last address the proxy appended is the peer.
    let t = Tracker::start(&["--trust-proxy"]);
    with_xff(&t, &leecher, "198.51.100.7, 203.0.113.5");
    let r = get(t.v4(), &seeder);
    assert!(
        r.body.ends_with(b"5:peers6:\xcb\x00\x71\x05\x23\x28e"),
        "{}",
        bstr(&r.body)
    );
    let r = with_xff(&t, &leecher, "not-an-address");
    assert_eq!(
        bstr(&r.body),
        "d14:failure reason23:invalid X-Forwarded-Fore"
    );
    // Not trusted: the header is ignored.
    let t = Tracker::start(&[]);
    with_xff(&t, &leecher, "203.0.113.5");
    let r = get(t.v4(), &seeder);
    assert!(
        r.body.ends_with(b"5:peers6:\x7f\x00\x00\x01\x23\x28e"),
        "{}",
        bstr(&r.body)
    );
}

#[test]
fn http_only_and_udp_only() {
    let t = Tracker::start(&["--http"]);
    assert_eq!(
        t.listening,
        vec![format!("http server listening on {}", t.port)]
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut req = 0x41727101980u64.to_be_bytes().to_vec();
    req.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    u.send_to(&req, t.v4()).unwrap();
    assert!(
        u.recv(&mut [0u8; 64]).is_err(),
        "no UDP tracker with --http"
    );
    let t = Tracker::start(&["--udp"]);
    assert_eq!(
        t.listening,
        vec![format!("udp server listening on {}", t.port)]
    );
    assert!(
        std::net::TcpStream::connect(t.v4()).is_err(),
        "no HTTP tracker with --udp"
    );
}

/// A full scrape is served from a snapshot built at most every
/// `full_scrape_interval`: the same bytes to every requester until then,
/// gzipped when the client accepts it, and dated with `Age`.
#[test]
fn full_scrape_is_a_dated_snapshot_gzipped_on_request() {
    let scrape = |t: &Tracker, gzip: bool| -> Response {
        let mut s = tcp(t.v4());
        let accept = if gzip {
            "Accept-Encoding: deflate, gzip\r\n"
        } else {
            ""
        };
        write!(
            s,
            "GET /scrape HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut s).expect("a response")
    };
    let builds = |t: &Tracker| -> u64 {
        let m = String::from_utf8(get(t.v4(), "/metrics").body).unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("tracker_full_scrape_builds_total "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (a, b) = (hash(0, 7), hash(1, 8));
    let t = Tracker::start(&["--http", "--full-scrape-interval", "60"]);
    get(t.v4(), &announce_target(a, peer_id(1), 6001, 0, ""));
    let first = scrape(&t, false);
    assert_eq!(first.status, 200);
    assert!(first.body.windows(20).any(|w| w == a));
    let age: u64 = first.header("age").expect("an Age header").parse().unwrap();
    assert!(age <= 60, "{age}");
    // Within the interval every requester gets the same snapshot: a torrent
    // announced since is in none of them, and nothing was built again.
    get(t.v4(), &announce_target(b, peer_id(2), 6002, 0, ""));
    let second = scrape(&t, false);
    assert_eq!(bstr(&second.body), bstr(&first.body));
    // Gzip when accepted: the same snapshot, compressed.
    let zipped = scrape(&t, true);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() < first.body.len() + 64);
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(bstr(&unzipped), bstr(&first.body));
    assert_eq!(builds(&t), 1, "three full scrapes, one build");
    drop(t);
    // Once the interval is past, it is built anew and shows the newcomer.
    let t = Tracker::start(&["--http", "--full-scrape-interval", "1"]);
    get(t.v4(), &announce_target(a, peer_id(1), 6001, 0, ""));
    assert!(!scrape(&t, false).body.windows(20).any(|w| w == b));
    get(t.v4(), &announce_target(b, peer_id(2), 6002, 0, ""));
    assert!(eventually(|| scrape(&t, false)
        .body
        .windows(20)
        .any(|w| w == b)));
    assert!(builds(&t) >= 2);
}
