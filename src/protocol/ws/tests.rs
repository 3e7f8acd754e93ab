//! Messages both ways, parsed and written.

use super::*;
use crate::protocol::{AnnounceRequest, Event, InfoHash, PeerId, ScrapeStats};
use proptest::prelude::*;
use serde_json::value::RawValue;

const HASH: &str = "\u{0}\u{1}\u{ff}\u{80} \"\\abcdefghijklm";

fn announce(text: &str) -> WsAnnounce {
    match parse(text).unwrap() {
        WsRequest::Announce(a) => *a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn binary_strings() {
    let b = binary20(HASH).unwrap();
    assert_eq!(&b[..4], &[0, 1, 0xff, 0x80]);
    assert_eq!(to_binary(&b), HASH);
    assert!(binary20("short").is_none());
    assert!(
        binary20("\u{100}bcdefghijklmnopqrst").is_none(),
        "above U+00FF"
    );
    assert!(binary20("abcdefghijklmnopqrstu").is_none());
}

#[test]
fn parses_a_webtorrent_announce_with_offers() {
    let msg = serde_json::json!({
        "action": "announce", "info_hash": HASH, "peer_id": "-WW0207-abcdefghijkl",
        "numwant": 2, "uploaded": 0, "downloaded": 10, "left": 0, "event": "started",
        "offers": [{"offer": {"type": "offer", "sdp": "v=0..."}, "offer_id": "oooooooooooooooooooo"}]
    });
    let a = announce(&msg.to_string());
    assert_eq!(a.request.info_hash.0, binary20(HASH).unwrap());
    assert_eq!(
        (a.request.event, a.request.left, a.request.numwant),
        (Event::Started, Some(0), Some(2))
    );
    assert_eq!(a.offers.len(), 1);
    let offer: serde_json::Value = serde_json::from_str(a.offers[0].offer.get()).unwrap();
    assert_eq!(offer, serde_json::json!({"type": "offer", "sdp": "v=0..."}));
    assert!(!a.answer_only);
    let out = offer_message(&a.request.info_hash, &a.request.peer_id, &a.offers[0]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["offer"]["sdp"], "v=0...");
    assert_eq!(v["info_hash"], HASH);
    assert_eq!(v["peer_id"], "-WW0207-abcdefghijkl");
    assert_eq!(v["offer_id"], "oooooooooooooooooooo");
    assert!(v.get("answer").is_none());
}

#[test]
fn answers() {
    let msg = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb",
        "to_peer_id":"cccccccccccccccccccc","answer":{"type":"answer","sdp":"x"},"offer_id":"dddddddddddddddddddd"}"#;
    let a = announce(msg);
    assert!(a.answer_only);
    let ans = a.answer.unwrap();
    assert_eq!(ans.to_peer_id.0, [b'c'; 20]);
    let e = parse(
        r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","answer":{}}"#,
    );
    assert_eq!(e.unwrap_err().reason, "missing to_peer_id for answer");
}

#[test]
fn scrape_forms() {
    let hashes = |t: &str| match parse(t).unwrap() {
        WsRequest::Scrape(h) => h.len(),
        _ => panic!(),
    };
    assert_eq!(hashes(r#"{"action":"scrape"}"#), 0);
    assert_eq!(
        hashes(r#"{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#),
        1
    );
    assert_eq!(
        hashes(
            r#"{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbb"]}"#
        ),
        2
    );
    let s = ScrapeStats {
        complete: 1,
        incomplete: 2,
        downloaded: 3,
    };
    assert_eq!(
        scrape_reply(&[(InfoHash([b'a'; 20]), s)]),
        r#"{"action":"scrape","files":{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3}}}"#
    );
}

#[test]
fn offers_that_are_not_a_list_are_ignored() {
    for offers in [r#"{}"#, r#""x""#, "5", "null", "true", r#"{"offer":1}"#] {
        let text = format!(
            r#"{{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","left":0,"offers": {offers}}}"#
        );
        let Ok(WsRequest::Announce(a)) = parse(&text) else {
            panic!("{text}: the announce stands");
        };
        assert!(a.offers.is_empty() && a.request.left == Some(0), "{text}");
    }
    // A list of something else than offers makes the message invalid.
    let text = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","offers":[1]}"#;
    assert_eq!(parse(text).unwrap_err().reason, "invalid JSON message");
}

#[test]
fn errors_say_what_is_wrong() {
    let reason = |t: &str| parse(t).unwrap_err().reason;
    assert_eq!(reason("{"), "invalid JSON message");
    assert_eq!(reason("[1,2]"), "invalid JSON message");
    assert_eq!(reason(r#"{"action":"dance"}"#), "invalid action");
    assert_eq!(reason(r#"{"action":"announce"}"#), "missing info_hash");
    assert_eq!(
        reason(r#"{"action":"announce","info_hash":"x"}"#),
        "invalid info_hash"
    );
    assert_eq!(
        reason(r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#),
        "missing peer_id"
    );
    assert_eq!(
        reason(
            r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","event":"x"}"#
        ),
        "invalid event"
    );
    assert_eq!(
        reason(r#"{"action":"scrape","info_hash":["short"]}"#),
        "invalid info_hash"
    );
    let e = parse(r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#).unwrap_err();
    assert_eq!(
        error_reply(&e),
        r#"{"failure reason":"missing peer_id","action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#
    );
    assert_eq!(
        announce_reply(
            &InfoHash([b'a'; 20]),
            120,
            &ScrapeStats {
                complete: 1,
                incomplete: 0,
                downloaded: 0
            }
        ),
        r#"{"action":"announce","interval":120,"info_hash":"aaaaaaaaaaaaaaaaaaaa","complete":1,"incomplete":0}"#
    );
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn any_hash_round_trips_through_json(h in any::<[u8; 20]>(), p in any::<[u8; 20]>()) {
        let msg = serde_json::json!({"action": "announce", "info_hash": to_binary(&h), "peer_id": to_binary(&p)});
        let a = match parse(&msg.to_string()).unwrap() { WsRequest::Announce(a) => a, _ => unreachable!() };
        prop_assert_eq!(a.request.info_hash.0, h);
        prop_assert_eq!(a.request.peer_id.0, p);
    }
}

#[test]
fn client_messages_round_trip_through_the_server_codec() {
    let a = AnnounceRequest {
        info_hash: InfoHash([0xff; 20]),
        peer_id: PeerId(*b"-WW0109-abcdefghijkl"),
        port: 0,
        uploaded: 1,
        downloaded: 2,
        left: Some(3),
        event: Event::Started,
        numwant: Some(5),
        key: None,
    };
    let offers = vec![Offer {
        offer_id: [b'o'; 20],
        offer: RawValue::from_string(r#"{"type":"offer","sdp":"x"}"#.into()).unwrap(),
    }];
    let sent = WsRequest::Announce(Box::new(WsAnnounce::new(a.clone(), offers)));
    let WsRequest::Announce(got) = parse(&sent.to_json()).unwrap() else {
        panic!("an announce");
    };
    assert_eq!(got.request.info_hash, a.info_hash);
    assert_eq!(got.request.left, Some(3));
    assert_eq!(got.request.event, Event::Started);
    assert_eq!(got.offers.len(), 1);
    assert_eq!(got.offers[0].offer_id, [b'o'; 20]);
    let hashes = vec![InfoHash([1; 20]), InfoHash([2; 20])];
    let WsRequest::Scrape(h) = parse(&WsRequest::Scrape(hashes.clone()).to_json()).unwrap() else {
        panic!("a scrape");
    };
    assert_eq!(h, hashes);
    // An answer alone, as WebTorrent sends it.
    let ans = WsAnnounce::answer(
        a.info_hash,
        a.peer_id,
        PeerId([4; 20]),
        [b'o'; 20],
        RawValue::from_string(r#"{"type":"answer","sdp":"y"}"#.into()).unwrap(),
    );
    let WsRequest::Announce(got) = parse(&WsRequest::Announce(Box::new(ans)).to_json()).unwrap()
    else {
        panic!("an announce");
    };
    assert!(got.answer_only && got.request.left.is_none());
    // An announce that carries an answer too keeps both, written and read back.
    let both = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","event":"started","left":5,"to_peer_id":"cccccccccccccccccccc","offer_id":"oooooooooooooooooooo","answer":{"type":"answer","sdp":"z"}}"#;
    let WsRequest::Announce(first) = parse(both).unwrap() else {
        panic!("an announce");
    };
    assert!(!first.answer_only && first.answer.is_some());
    let WsRequest::Announce(again) = parse(&WsRequest::Announce(first.clone()).to_json()).unwrap()
    else {
        panic!("an announce");
    };
    let (x, y) = (first.answer.unwrap(), again.answer.unwrap());
    assert_eq!(
        (x.to_peer_id, x.offer_id, x.answer.get()),
        (y.to_peer_id, y.offer_id, y.answer.get())
    );
    assert_eq!(
        (again.request.left, again.request.event),
        (Some(5), Event::Started)
    );
    let answer = got.answer.unwrap();
    assert_eq!(
        (answer.to_peer_id, answer.offer_id),
        (PeerId([4; 20]), [b'o'; 20])
    );
}

#[test]
fn server_messages_as_a_client_reads_them() {
    let h = InfoHash([7; 20]);
    let s = ScrapeStats {
        complete: 1,
        incomplete: 2,
        downloaded: 3,
    };
    match parse_server_message(&announce_reply(&h, 120, &s)).unwrap() {
        ServerMessage::Announce {
            info_hash,
            interval,
            complete,
            incomplete,
        } => {
            assert_eq!(
                (info_hash, interval, complete, incomplete),
                (h, Some(120), Some(1), Some(2))
            )
        }
        other => panic!("{other:?}"),
    }
    match parse_server_message(&scrape_reply(&[(h, s)])).unwrap() {
        ServerMessage::Scrape(v) => assert_eq!(v, vec![(h, s)]),
        other => panic!("{other:?}"),
    }
    let o = Offer {
        offer_id: [9; 20],
        offer: RawValue::from_string("{\"sdp\":\"v=0\"}".into()).unwrap(),
    };
    let sent = offer_message(&h, &PeerId([3; 20]), &o);
    match parse_server_message(&sent).unwrap() {
        ServerMessage::Relayed(r) => {
            assert_eq!((r.peer_id, r.offer_id), (PeerId([3; 20]), [9; 20]));
            assert_eq!(r.sdp, Sdp::Offer(o.offer.clone()));
            assert_eq!(r.to_json(), sent, "one shape, written alike");
        }
        other => panic!("{other:?}"),
    }
    match parse_server_message(&refusal_reply("no", "announce", Some(&h))).unwrap() {
        ServerMessage::Failure { reason, info_hash } => {
            assert_eq!((reason.as_str(), info_hash), ("no", Some(h)))
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_server_message("[]").is_err());
    assert!(parse_server_message("{\"action\":\"announce\"}").is_err());
}

proptest! {
    #[test]
    fn any_text_is_a_message_or_an_error(t in ".{0,300}") {
        let _ = parse_server_message(&t);
    }
}
