//! WebTorrent tracker over WebSocket: raw clients against the binary with two
//! workers, so offers, answers and closes cross between workers.

mod common;
use common::*;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn open(t: &Tracker, path: &str) -> Ws {
    let (ws, resp) = tungstenite::connect(format!("ws://127.0.0.1:{}{path}", t.port))
        .expect("WebSocket handshake");
    assert_eq!(resp.status(), 101);
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ws
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Nothing arrives within `ms`.
fn silent(ws: &mut Ws, ms: u64) -> bool {
    next_within(ws, ms).is_none()
}

/// The next text message, or `None` when nothing comes within `ms`.
fn next_within(ws: &mut Ws, ms: u64) -> Option<Value> {
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    }
    let m = loop {
        match ws.read() {
            Ok(Message::Text(t)) => break Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break None
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    m
}

/// A 20-character binary string from a byte.
fn id(c: char) -> String {
    std::iter::repeat_n(c, 20).collect()
}

fn hash_str(owner: u8, tag: u8) -> String {
    hash(owner, tag).iter().map(|&b| b as char).collect()
}

fn offers(prefix: char, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let oid: String = std::iter::repeat_n(prefix, 19).chain(std::iter::once((b'0' + i as u8) as char)).collect();
                json!({"offer": {"type": "offer", "sdp": format!("sdp-{prefix}{i}")}, "offer_id": oid})
            })
            .collect(),
    )
}

#[test]
fn offers_and_answers_between_three_peers_on_both_shards() {
    let t = Tracker::start(&[]);
    for owner in 0..2u8 {
        let h = hash_str(owner, 1);
        let (mut a, mut b, mut c) = (open(&t, "/"), open(&t, "/announce"), open(&t, "/any/path"));

        send(
            &mut a,
            json!({"action": "announce", "info_hash": h, "peer_id": id('A'), "left": 5, "event": "started", "offers": []}),
        );
        let r = recv(&mut a);
        assert_eq!(
            r,
            json!({"action": "announce", "interval": 120, "info_hash": h, "complete": 0, "incomplete": 1})
        );

        // B offers twice; only A is there, so A gets exactly one, B's first.
        send(
            &mut b,
            json!({"action": "announce", "info_hash": h, "peer_id": id('B'), "left": 5, "event": "started", "offers": offers('b', 2)}),
        );
        assert_eq!(recv(&mut b)["incomplete"], 2);
        let o = recv(&mut a);
        assert_eq!(o["offer"], json!({"type": "offer", "sdp": "sdp-b0"}));
        assert_eq!(
            (&o["peer_id"], &o["info_hash"], &o["action"]),
            (&json!(id('B')), &json!(h), &json!("announce"))
        );
        assert!(silent(&mut a, 200), "one offer per peer");

        // C, a seeder, offers three times: A and B get one each, never C itself.
        send(
            &mut c,
            json!({"action": "announce", "info_hash": h, "peer_id": id('C'), "left": 0, "event": "started", "offers": offers('c', 3)}),
        );
        assert_eq!(
            recv(&mut c),
            json!({"action": "announce", "interval": 120, "info_hash": h, "complete": 1, "incomplete": 2})
        );
        let (oa, ob) = (recv(&mut a), recv(&mut b));
        assert_eq!(
            (&oa["peer_id"], &ob["peer_id"]),
            (&json!(id('C')), &json!(id('C')))
        );
        assert_ne!(
            oa["offer_id"], ob["offer_id"],
            "each peer gets a different offer"
        );
        assert!(silent(&mut c, 200), "no offer to the sender");

        // A answers C's offer: C gets it, from A, with the offer's id.
        let answer = json!({"action": "announce", "info_hash": h, "peer_id": id('A'), "to_peer_id": id('C'),
            "answer": {"type": "answer", "sdp": "from-a"}, "offer_id": oa["offer_id"]});
        send(&mut a, answer.clone());
        let got = recv(&mut c);
        assert_eq!(got["answer"], json!({"type": "answer", "sdp": "from-a"}));
        assert_eq!(
            (&got["peer_id"], &got["offer_id"]),
            (&json!(id('A')), &oa["offer_id"])
        );
        assert!(got.get("offer").is_none());

        // The same answer again, or one to an offer never relayed: not passed on.
        send(&mut a, answer);
        send(
            &mut b,
            json!({"action": "announce", "info_hash": h, "peer_id": id('B'), "to_peer_id": id('C'),
            "answer": {"type": "answer", "sdp": "forged"}, "offer_id": "zzzzzzzzzzzzzzzzzzzz"}),
        );
        assert!(silent(&mut c, 300), "C gets no unasked-for answers");
        assert!(
            silent(&mut a, 100) && silent(&mut b, 100),
            "an answer gets no reply"
        );
        // An answer without to_peer_id is an error.
        send(
            &mut b,
            json!({"action": "announce", "info_hash": h, "peer_id": id('B'), "answer": {}, "offer_id": id('o')}),
        );
        assert_eq!(
            recv(&mut b),
            json!({"failure reason": "missing to_peer_id for answer", "action": "announce", "info_hash": h})
        );
    }
}

#[test]
fn a_closed_connection_leaves_every_swarm() {
    let t = Tracker::start(&[]);
    let (h0, h1) = (hash_str(0, 2), hash_str(1, 2));
    let mut a = open(&t, "/");
    let mut b = open(&t, "/");
    for h in [&h0, &h1] {
        send(
            &mut a,
            json!({"action": "announce", "info_hash": h, "peer_id": id('A'), "left": 0, "event": "started"}),
        );
        recv(&mut a);
        send(
            &mut b,
            json!({"action": "announce", "info_hash": h, "peer_id": id('B'), "left": 3, "event": "started"}),
        );
        recv(&mut b);
    }
    // An HTTP peer in the same swarm is counted with them and stays.
    get(
        t.v4(),
        &announce_target(hash(0, 2), peer_id(1), 7000, 9, ""),
    );
    let scrape = json!({"action": "scrape", "info_hash": [h0, h1]});
    send(&mut b, scrape.clone());
    let s = recv(&mut b);
    assert_eq!(
        s["files"][&h0],
        json!({"complete": 1, "incomplete": 2, "downloaded": 0})
    );
    assert_eq!(
        s["files"][&h1],
        json!({"complete": 1, "incomplete": 1, "downloaded": 0})
    );
    drop(a); // the TCP connection closes without a close frame
    std::thread::sleep(Duration::from_millis(300));
    send(&mut b, scrape);
    let s = recv(&mut b);
    assert_eq!(
        s["files"][&h0],
        json!({"complete": 0, "incomplete": 2, "downloaded": 0})
    );
    assert_eq!(
        s["files"][&h1],
        json!({"complete": 0, "incomplete": 1, "downloaded": 0})
    );
    // A stopped event leaves just that swarm, and the connection stays usable.
    send(
        &mut b,
        json!({"action": "announce", "info_hash": h1, "peer_id": id('B'), "event": "stopped"}),
    );
    assert_eq!(recv(&mut b)["incomplete"], 0);
    b.close(None).unwrap();
}

#[test]
fn scrape_one_several_or_all() {
    let t = Tracker::start(&[]);
    let (h0, h1) = (hash_str(0, 3), hash_str(1, 3));
    let mut a = open(&t, "/");
    // A leecher that completes: one download.
    send(
        &mut a,
        json!({"action": "announce", "info_hash": h0, "peer_id": id('A'), "left": 10, "event": "started"}),
    );
    recv(&mut a);
    send(
        &mut a,
        json!({"action": "announce", "info_hash": h0, "peer_id": id('A'), "left": 0, "event": "completed"}),
    );
    recv(&mut a);
    let one = json!({"complete": 1, "incomplete": 0, "downloaded": 1});
    let zero = json!({"complete": 0, "incomplete": 0, "downloaded": 0});
    send(&mut a, json!({"action": "scrape", "info_hash": h0}));
    assert_eq!(
        recv(&mut a),
        json!({"action": "scrape", "files": {h0.clone(): one}})
    );
    send(&mut a, json!({"action": "scrape", "info_hash": [h1, h0]}));
    assert_eq!(
        recv(&mut a),
        json!({"action": "scrape", "files": {h0.clone(): one, h1.clone(): zero}})
    );
    send(&mut a, json!({"action": "scrape"}));
    assert_eq!(
        recv(&mut a),
        json!({"action": "scrape", "files": {h0: one}})
    );
}

#[test]
fn bad_messages_get_failure_reasons_and_limits_hold() {
    let t = Tracker::start(&[]);
    let mut a = open(&t, "/");
    let cases = [
        ("not json".to_string(), json!({"failure reason": "invalid JSON message"})),
        (json!({"action": "dance"}).to_string(), json!({"failure reason": "invalid action"})),
        (json!({"action": "announce"}).to_string(), json!({"failure reason": "missing info_hash", "action": "announce"})),
        (
            json!({"action": "announce", "info_hash": "\u{100}aaaaaaaaaaaaaaaaaaa", "peer_id": id('A')}).to_string(),
            json!({"failure reason": "invalid info_hash", "action": "announce"}),
        ),
        (
            json!({"action": "announce", "info_hash": id('h'), "peer_id": "short"}).to_string(),
            json!({"failure reason": "invalid peer_id", "action": "announce", "info_hash": id('h')}),
        ),
    ];
    for (msg, want) in cases {
        a.send(Message::text(msg.clone())).unwrap();
        assert_eq!(recv(&mut a), want, "{msg}");
    }
    a.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(
        recv(&mut a),
        json!({"failure reason": "binary messages are not supported"})
    );
    // Still serving after all that.
    send(&mut a, json!({"action": "scrape"}));
    assert_eq!(recv(&mut a), json!({"action": "scrape", "files": {}}));

    // A message over 256 KiB closes the connection with 1009.
    let big = format!(
        "{{\"action\":\"scrape\",\"x\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    a.send(Message::text(big)).unwrap();
    match a.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1009),
        other => panic!("expected a close, got {other:?}"),
    }

    // Upgrade requests without a key or the right version are refused.
    let mut s = tcp(t.v4());
    use std::io::Write;
    write!(s, "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 400);
}

#[test]
fn ws_only_serves_no_http_announces() {
    let t = Tracker::start(&["--ws"]);
    assert_eq!(
        t.listening,
        vec![format!("ws server listening on {}", t.port)]
    );
    assert_eq!(
        get(t.v4(), &announce_target(hash(0, 4), peer_id(1), 1, 0, "")).status,
        404
    );
    let mut a = open(&t, "/");
    send(&mut a, json!({"action": "scrape"}));
    assert_eq!(recv(&mut a)["action"], "scrape");
    // And a tracker without --ws answers no upgrade.
    let t = Tracker::start(&["--http", "--udp"]);
    assert!(tungstenite::connect(format!("ws://127.0.0.1:{}/", t.port)).is_err());
}

#[test]
fn an_offer_flood_is_cut_to_its_rate_and_others_offers_go_through() {
    let dir = scratch("ws-offer-rate");
    let cfg = dir.join("tracker.toml");
    std::fs::write(&cfg, "[limits]\nws_offer_rate = 5\nws_offer_burst = 50\n").unwrap();
    let t = Tracker::start(&["--config", cfg.to_str().unwrap()]);
    let h = hash_str(1, 7);
    let join = |ws: &mut Ws, who: char, offers: Value| {
        send(
            ws,
            json!({"action": "announce", "info_hash": h, "peer_id": id(who), "left": 5, "event": "started", "offers": offers}),
        );
    };
    // Two browsers in the swarm, and a flooder.
    let (mut b, mut c, mut a) = (open(&t, "/"), open(&t, "/"), open(&t, "/"));
    join(&mut b, 'B', json!([]));
    join(&mut c, 'C', json!([]));
    assert!(recv(&mut b)["interval"].is_number());
    assert!(recv(&mut c)["interval"].is_number());
    // 300 announces of one offer each, as fast as the socket takes them.
    const FLOOD: usize = 300;
    let started = std::time::Instant::now();
    for i in 0..FLOOD {
        let oid = format!("{i:020}");
        join(
            &mut a,
            'A',
            json!([{"offer": {"type": "offer", "sdp": format!("flood-{i}")}, "offer_id": oid}]),
        );
    }
    // Every announce is still answered.
    for i in 0..FLOOD {
        let r = recv(&mut a);
        assert!(r["interval"].is_number(), "reply {i} to the flooder: {r}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Another client's offers go through: one to each of A, B and C.
    let mut d = open(&t, "/");
    join(&mut d, 'D', offers('d', 3));
    assert!(recv(&mut d)["interval"].is_number());
    // What B and C were sent: the flood's share, and D's offer each.
    let mut relayed = 0;
    for (name, ws) in [("B", &mut b), ("C", &mut c)] {
        let mut from_d = 0;
        while let Some(m) = next_within(ws, 300) {
            if m["peer_id"] == json!(id('A')) {
                relayed += 1;
            } else if m["peer_id"] == json!(id('D')) {
                from_d += 1;
            } else {
                panic!("{name} got {m}");
            }
        }
        assert_eq!(from_d, 1, "{name} got D's offer once");
    }
    // The burst went at once, then 5 a second; the rest were dropped and
    // counted, every one.
    let most = 50 + (5.0 * elapsed).ceil() as usize;
    assert!(
        (50..=most).contains(&relayed),
        "{relayed} of the flood's {FLOOD} offers relayed in {elapsed:.2} s; at most {most}"
    );
    let metrics = String::from_utf8(get(t.v4(), "/metrics").body).unwrap();
    let dropped = format!(
        "tracker_refused_total{{reason=\"ws_offer_rate\"}} {}",
        FLOOD - relayed
    );
    assert!(metrics.contains(&dropped), "want {dropped} in:\n{metrics}");
}

/// A client's frame (masked, as RFC 6455 requires of clients).
fn client_frame(text: &str) -> Vec<u8> {
    let p = text.as_bytes();
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81];
    match p.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    f.extend(mask);
    f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// However the bytes arrive, every message is answered once, in order: one
/// sent in the same packet as the upgrade request, one of 200 KiB (many
/// reads of the socket, far more than the room a connection keeps), one
/// trickled a few bytes at a time, and small ones after the big one.
#[test]
fn messages_are_answered_however_their_bytes_arrive() {
    use std::io::{Read, Write};
    let t = Tracker::start(&[]);
    let mut s = tcp(t.v4());
    let scrape = json!({"action": "scrape"}).to_string();
    let mut first = b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    first.extend(client_frame(&scrape));
    s.write_all(&first).unwrap();
    // The 101 head, a byte at a time so as to leave the frames behind it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap(), 1, "the head ended early: {head:?}");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    let big = json!({"action": "scrape", "x": "x".repeat(200 * 1024)}).to_string();
    s.write_all(&client_frame(&big)).unwrap();
    let h = hash_str(0, 7);
    let announce = json!({"action": "announce", "info_hash": h, "peer_id": id('P'), "left": 0,
                          "event": "started", "numwant": 0, "offers": []})
    .to_string();
    for piece in client_frame(&announce).chunks(5) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut both = client_frame(&scrape);
    both.extend(client_frame(&scrape));
    s.write_all(&both).unwrap();
    let mut ws = WebSocket::from_raw_socket(
        MaybeTlsStream::Plain(s),
        tungstenite::protocol::Role::Client,
        None,
    );
    let empty = json!({"action": "scrape", "files": {}});
    assert_eq!(recv(&mut ws), empty, "the message behind the upgrade");
    assert_eq!(recv(&mut ws), empty, "the 200 KiB message");
    let r = recv(&mut ws);
    assert_eq!(
        (
            r["action"].as_str(),
            r["info_hash"].as_str(),
            r["complete"].as_u64()
        ),
        (Some("announce"), Some(h.as_str()), Some(1)),
        "the trickled announce: {r}"
    );
    assert_eq!(recv(&mut ws), empty);
    assert_eq!(recv(&mut ws), empty);
    assert!(silent(&mut ws, 300), "one answer a message");
}

/// Control frames: a ping gets a pong with its payload, a close is echoed
/// with its code and the connection ends; a frame a client may not send
/// (unmasked) is answered with a close 1002, text that is not UTF-8 with a
/// close 1007.
#[test]
fn pings_are_answered_closes_echoed_and_broken_frames_refused() {
    use std::io::Read;
    let t = Tracker::start(&[]);
    let mut a = open(&t, "/");
    a.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match a.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    send(&mut a, json!({"action": "scrape"}));
    assert_eq!(recv(&mut a), json!({"action": "scrape", "files": {}}));
    a.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "done".into(),
    }))
    .unwrap();
    match a.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected the close echoed, got {other:?}"),
    }

    // Raw frames on an upgraded socket: the close's code, then the end.
    let closed_with = |frame: &[u8]| -> (u16, String) {
        let ws = open(&t, "/");
        let MaybeTlsStream::Plain(mut s) = ws.into_inner() else {
            unreachable!()
        };
        use std::io::Write;
        s.write_all(frame).unwrap();
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b);
        assert!(b.len() >= 4 && b[0] == 0x88, "a close frame: {b:?}");
        let len = (b[1] & 0x7f) as usize;
        let code = u16::from_be_bytes([b[2], b[3]]);
        (code, String::from_utf8_lossy(&b[4..2 + len]).into_owned())
    };
    assert_eq!(
        closed_with(&[0x81, 0x02, b'h', b'i']),
        (1002, "unmasked frame from a client".into())
    );
    let mut bad = client_frame("xx");
    bad[6] ^= 0x80; // the first payload byte: 0x78 ^ 0x37 ^ 0x80 unmasks to 0xf8
    bad[7] ^= 0x80;
    assert_eq!(closed_with(&bad), (1007, "text is not UTF-8".into()));
}
