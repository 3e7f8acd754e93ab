//! The shard as a whole: announces, scrapes, expiry, limits, WebSocket
//! peers and relayed offers, through its public methods.

use super::peers::Entry;
use super::torrent::Swarm;
use super::*;
use crate::protocol::{compact_v4, PeerId};
use std::net::{Ipv4Addr, Ipv6Addr};

const WANT: Want = Want {
    peers: 50,
    both_families: true,
    ids: true,
};

fn req(hash: u8, port: u16, left: Option<u64>, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([hash; 20]),
        peer_id: PeerId([port as u8; 20]),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: None,
        key: None,
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn announce(shard: &mut Shard, r: &AnnounceRequest, ip: IpAddr, now: u32) -> (ScrapeStats, Peers) {
    let mut out = Peers::default();
    let s = shard.announce(r, ip, now, &WANT, &mut out).unwrap();
    (s, out)
}

fn ports(p: &[u8]) -> Vec<u16> {
    let mut v: Vec<u16> = p
        .chunks(6)
        .map(|c| u16::from_be_bytes([c[4], c[5]]))
        .collect();
    v.sort();
    v
}

#[test]
fn looking_ahead_changes_nothing() {
    // Torrents of one, a few and many (indexed) IPv4 peers, one with an
    // IPv6 peer, and hashes of no torrent; the same shard twice, one
    // looked ahead in every way, then the same announces to both.
    let filled = || {
        let mut sh = Shard::new(1200, 7);
        for (hash, peers) in [(1u8, 1u16), (2, 5), (3, 100)] {
            for port in 0..peers {
                announce(
                    &mut sh,
                    &req(hash, 1000 + port, Some(port as u64 % 2), Event::Started),
                    v4(1),
                    0,
                );
            }
        }
        announce(
            &mut sh,
            &req(4, 1000, Some(1), Event::Started),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            0,
        );
        sh
    };
    let (mut plain, mut ahead) = (filled(), filled());
    let batch: Vec<Ahead> = (0..=6u8)
        .flat_map(|h| {
            [
                None,
                Some(compact_v4(Ipv4Addr::new(10, 0, 0, 1), 1050)),
                Some([9; 6]),
            ]
            .map(|peer| Ahead {
                info_hash: InfoHash([h; 20]),
                peer,
            })
        })
        .collect();
    ahead.prefetch(&batch, false);
    ahead.prefetch(&batch, true);
    ahead.prefetch(&[], false);
    for hash in 0..=6u8 {
        for port in [1000, 1050, 2000] {
            let r = req(hash, port, Some(1), Event::None);
            assert_eq!(
                announce(&mut plain, &r, v4(1), 1),
                announce(&mut ahead, &r, v4(1), 1)
            );
        }
    }
    assert_eq!(plain.totals(), ahead.totals());
}

#[test]
fn announcer_never_sees_itself_and_counts_add_up() {
    let mut sh = Shard::new(1200, 1);
    let (s, p) = announce(&mut sh, &req(1, 1000, Some(5), Event::Started), v4(1), 0);
    assert_eq!((s.complete, s.incomplete, s.downloaded), (0, 1, 0));
    assert!(p.is_empty());
    let (s, p) = announce(&mut sh, &req(1, 1001, Some(0), Event::Started), v4(1), 0);
    assert_eq!((s.complete, s.incomplete), (1, 1));
    assert_eq!(p.v4, [10, 0, 0, 1, 0x03, 0xe8]);
    assert!(p.ids4.is_empty(), "peer ids are not kept unless asked for");
    let (_, p) = announce(&mut sh, &req(1, 1002, None, Event::None), v4(2), 0);
    assert_eq!(ports(&p.v4), vec![1000, 1001]);
    assert_eq!(sh.totals().seeders, 1);
    assert_eq!(sh.totals().leechers, 2);
}

#[test]
fn seeder_gets_leechers_only() {
    let mut sh = Shard::new(1200, 2);
    for port in 1..=3 {
        announce(&mut sh, &req(1, port, Some(0), Event::Started), v4(1), 0);
    }
    announce(&mut sh, &req(1, 10, Some(9), Event::Started), v4(1), 0);
    let (s, p) = announce(&mut sh, &req(1, 4, Some(0), Event::Started), v4(1), 0);
    assert_eq!((s.complete, s.incomplete), (4, 1));
    assert_eq!(ports(&p.v4), vec![10]);
}

#[test]
fn completed_counts_once_and_moves_to_seeders() {
    let mut sh = Shard::new(1200, 3);
    announce(&mut sh, &req(1, 1, Some(9), Event::Started), v4(1), 0);
    let (s, _) = announce(&mut sh, &req(1, 1, Some(0), Event::Completed), v4(1), 1);
    assert_eq!((s.complete, s.incomplete, s.downloaded), (1, 0, 1));
    let (s, _) = announce(&mut sh, &req(1, 1, Some(0), Event::Completed), v4(1), 2);
    assert_eq!(
        s.downloaded, 1,
        "a repeated completed is not a second download"
    );
    // A peer the swarm does not know as a leecher downloaded nothing
    // here: a seeder whose first announce says completed (WebTorrent
    // does on every page load) joins as a seeder, and no download counts.
    let (s, _) = announce(&mut sh, &req(1, 2, Some(0), Event::Completed), v4(1), 2);
    assert_eq!((s.complete, s.downloaded), (2, 1));
    let (s, _) = announce(&mut sh, &req(1, 2, Some(0), Event::Completed), v4(1), 3);
    assert_eq!(
        (s.complete, s.downloaded),
        (2, 1),
        "nor when it says it again"
    );
    // A seeder known as such that says completed: no download either.
    let (s, _) = announce(&mut sh, &req(1, 3, Some(0), Event::Started), v4(1), 3);
    let (s2, _) = announce(&mut sh, &req(1, 3, Some(0), Event::Completed), v4(1), 4);
    assert_eq!((s.downloaded, s2.downloaded, s2.complete), (1, 1, 3));
    // A second leecher that completes counts.
    announce(&mut sh, &req(1, 4, Some(5), Event::None), v4(1), 4);
    let (s, _) = announce(&mut sh, &req(1, 4, Some(0), Event::Completed), v4(1), 5);
    assert_eq!((s.complete, s.incomplete, s.downloaded), (4, 0, 2));
    assert_eq!(sh.totals().completed, 2);
    assert_eq!(sh.scrape(&InfoHash([1; 20])), s);
}

#[test]
fn stopped_removes_and_returns_no_peers() {
    let mut sh = Shard::new(1200, 4);
    announce(&mut sh, &req(1, 1, Some(9), Event::Started), v4(1), 0);
    announce(&mut sh, &req(1, 2, Some(9), Event::Started), v4(1), 0);
    let (s, p) = announce(&mut sh, &req(1, 1, Some(9), Event::Stopped), v4(1), 0);
    assert_eq!((s.complete, s.incomplete), (0, 1));
    assert!(p.is_empty());
    // Stopping an unknown torrent creates nothing.
    let (s, _) = announce(&mut sh, &req(9, 1, Some(9), Event::Stopped), v4(1), 0);
    assert_eq!(s, ScrapeStats::default());
    assert_eq!(sh.torrents(), 1);
    // Same address, other port: another peer, untouched by the stop.
    assert_eq!(sh.scrape(&InfoHash([1; 20])).incomplete, 1);
    // The last peer leaves: the swarm and its downloads stay for the TTL.
    announce(&mut sh, &req(1, 3, Some(4), Event::Started), v4(1), 10);
    announce(&mut sh, &req(1, 3, Some(0), Event::Completed), v4(1), 10);
    announce(&mut sh, &req(1, 3, Some(0), Event::Stopped), v4(1), 10);
    announce(&mut sh, &req(1, 2, Some(9), Event::Stopped), v4(1), 10);
    assert_eq!(sh.sweep(1209, 10), 0);
    assert_eq!(sh.scrape(&InfoHash([1; 20])).downloaded, 1);
    sh.sweep(1211, 10);
    assert_eq!(sh.torrents(), 0);
    assert_eq!(
        sh.totals(),
        Totals {
            completed: 1,
            ..Totals::default()
        }
    );
}

#[test]
fn update_of_unknown_peer_joins_and_paused_stays() {
    let mut sh = Shard::new(1200, 5);
    let (s, _) = announce(&mut sh, &req(1, 1, Some(9), Event::None), v4(1), 0);
    assert_eq!(s.incomplete, 1);
    let (s, _) = announce(&mut sh, &req(1, 1, Some(9), Event::Paused), v4(1), 0);
    assert_eq!(s.incomplete, 1);
    // A leecher that announces left=0 without completed becomes a seeder, no download counted.
    let (s, _) = announce(&mut sh, &req(1, 1, Some(0), Event::None), v4(1), 0);
    assert_eq!((s.complete, s.incomplete, s.downloaded), (1, 0, 0));
}

#[test]
fn families_apart_and_together() {
    let mut sh = Shard::new(1200, 6);
    let six = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    announce(&mut sh, &req(1, 7, Some(1), Event::Started), six, 0);
    let mapped: IpAddr = "::ffff:10.0.0.3".parse().unwrap();
    let (s, p) = announce(&mut sh, &req(1, 8, Some(1), Event::Started), mapped, 0);
    assert_eq!(s.incomplete, 2);
    assert!(p.v4.is_empty());
    assert_eq!(
        &p.v6[..16],
        &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets()
    );
    assert_eq!(&p.v6[16..], &7u16.to_be_bytes());
    // Own family only:
    let mut out = Peers::default();
    let want = Want {
        both_families: false,
        ..WANT
    };
    sh.announce(&req(1, 9, Some(1), Event::None), v4(4), 0, &want, &mut out)
        .unwrap();
    assert_eq!(ports(&out.v4), vec![8]);
    assert!(out.v6.is_empty());
    assert_eq!(sh.totals().peers_v4, 2);
    assert_eq!(sh.totals().peers_v6, 1);
}

#[test]
fn numwant_is_honoured_and_mixes_seeders_for_leechers() {
    let mut sh = Shard::new(1200, 7);
    for port in 1..=100 {
        let left = if port <= 50 { Some(0) } else { Some(1) };
        announce(&mut sh, &req(1, port, left, Event::Started), v4(1), 0);
    }
    let mut out = Peers::default();
    let want = Want { peers: 10, ..WANT };
    sh.announce(
        &req(1, 200, Some(1), Event::Started),
        v4(2),
        0,
        &want,
        &mut out,
    )
    .unwrap();
    let got = ports(&out.v4);
    assert_eq!(got.len(), 10);
    let seeders = got.iter().filter(|&&p| p <= 50).count();
    assert_eq!(seeders, 5, "{got:?}");
    let mut d = got.clone();
    d.dedup();
    assert_eq!(d.len(), 10);
    assert_eq!(numwant(None, 50, 82), 50);
    assert_eq!(numwant(Some(200), 50, 82), 82);
    assert_eq!(numwant(Some(3), 50, 82), 3);
}

#[test]
fn a_torrent_is_small() {
    // What every torrent pays, its first IPv4 peer included.
    assert_eq!(std::mem::size_of::<Torrent>(), 48);
    assert_eq!(std::mem::size_of::<Entry<6>>(), 12);
    assert_eq!(std::mem::size_of::<Entry<18>>(), 24);
    // What a torrent of two or more pays besides its peers.
    assert_eq!(std::mem::size_of::<Swarm>(), 48);
}

#[test]
fn peer_ids_when_kept() {
    let mut sh = Shard::new(1200, 12);
    sh.keep_peer_ids(true);
    announce(&mut sh, &req(1, 1000, Some(5), Event::Started), v4(1), 0);
    let six: IpAddr = "2001:db8::1".parse().unwrap();
    announce(&mut sh, &req(1, 1001, Some(0), Event::Started), six, 0);
    let (_, p) = announce(&mut sh, &req(1, 1002, Some(5), Event::Started), v4(2), 0);
    assert_eq!(p.ids4, vec![PeerId([1000u16 as u8; 20])]);
    assert_eq!(p.ids6, vec![PeerId([1001u16 as u8; 20])]);
    // A new peer id at the same address and port replaces the old one.
    let mut r = req(1, 1000, Some(5), Event::None);
    r.peer_id = PeerId([b'n'; 20]);
    announce(&mut sh, &r, v4(1), 1);
    let (_, p) = announce(&mut sh, &req(1, 1002, Some(5), Event::None), v4(2), 1);
    assert_eq!(p.ids4, vec![PeerId([b'n'; 20])]);
    let mut info = Vec::new();
    sh.torrents_info(&mut info);
    let mut ids: Vec<_> = info[0]
        .peers
        .iter()
        .map(|p| p.peer_id.unwrap().0[0])
        .collect();
    ids.sort();
    assert_eq!(ids, vec![b'n', 1001u16 as u8, 1002u16 as u8]);
}

#[test]
fn one_peer_torrents_move_between_forms_and_lose_nothing() {
    let mut sh = Shard::new(100, 13);
    let h = InfoHash([1; 20]);
    // Inline, then boxed with a second peer, then inline again when it stops.
    announce(&mut sh, &req(1, 1, Some(0), Event::Started), v4(1), 0);
    assert!(matches!(sh.torrents.get(0).body, Body::One(_)));
    let (s, p) = announce(&mut sh, &req(1, 2, Some(5), Event::Started), v4(2), 0);
    assert_eq!((s.complete, s.incomplete), (1, 1));
    assert_eq!(p.v4, [10, 0, 0, 1, 0, 1]);
    assert!(matches!(sh.torrents.get(0).body, Body::Many(_)));
    announce(&mut sh, &req(1, 2, Some(5), Event::Stopped), v4(2), 0);
    assert!(matches!(sh.torrents.get(0).body, Body::One(_)));
    assert_eq!(sh.scrape(&h).complete, 1);
    // An IPv6 peer boxes it; expiry of the others brings it back.
    let six: IpAddr = "2001:db8::1".parse().unwrap();
    announce(&mut sh, &req(1, 3, Some(5), Event::Started), six, 50);
    let (s, p) = announce(&mut sh, &req(1, 4, Some(5), Event::Started), v4(4), 90);
    assert_eq!((s.complete, s.incomplete), (1, 2));
    assert_eq!(p.v4, [10, 0, 0, 1, 0, 1]);
    assert_eq!(sh.sweep(120, 10), 1, "the first peer, seen at 0");
    assert_eq!(sh.sweep(160, 10), 1, "the IPv6 peer, seen at 50");
    assert!(matches!(sh.torrents.get(0).body, Body::One(_)));
    let t = sh.totals();
    assert_eq!(
        (t.leechers, t.seeders, t.peers_v4, t.peers_v6),
        (1, 0, 1, 0)
    );
    // The inline peer completes, then stops.
    let (s, _) = announce(&mut sh, &req(1, 4, Some(0), Event::Completed), v4(4), 161);
    assert_eq!((s.complete, s.incomplete, s.downloaded), (1, 0, 1));
    announce(&mut sh, &req(1, 4, Some(0), Event::Stopped), v4(4), 161);
    assert!(matches!(sh.torrents.get(0).body, Body::Empty));
    assert_eq!(sh.totals().active_torrents, 0);
    assert_eq!(sh.clients().count(), 0);
}

#[test]
fn sweep_expires_in_slices_and_drops_empty_swarms() {
    let mut sh = Shard::new(100, 8);
    for h in 0..10u8 {
        announce(&mut sh, &req(h, 1, Some(1), Event::Started), v4(1), 0);
    }
    announce(&mut sh, &req(0, 2, Some(0), Event::Started), v4(1), 50);
    // Four visits: torrent 0 keeps its fresh peer, three others empty out.
    assert_eq!(sh.sweep(120, 4), 4);
    assert_eq!(sh.torrents(), 7);
    assert_eq!(sh.sweep(120, 100), 6);
    assert_eq!(sh.torrents(), 1, "the swarm with a fresh peer stays");
    assert_eq!(sh.scrape(&InfoHash([0; 20])).complete, 1);
    assert_eq!(sh.totals().leechers, 0);
    assert_eq!(sh.totals().seeders, 1);
    // Its peer expires, and its last announce (50) is a TTL old too: forgotten.
    assert_eq!(sh.sweep(151, 100), 1);
    assert_eq!(sh.torrents(), 0);
    assert_eq!(sh.totals(), Totals::default());
}

#[test]
fn a_full_shard_refuses_newcomers_and_serves_the_known() {
    let mut sh = Shard::new(100, 11);
    sh.set_limits(ShardLimits {
        max_torrents: 2,
        max_peers: 3,
        max_offers: 1,
    });
    let mut out = Peers::default();
    let mut go = |sh: &mut Shard, hash, port, ip, event| {
        sh.announce(&req(hash, port, Some(1), event), ip, 0, &WANT, &mut out)
    };
    assert!(go(&mut sh, 1, 1, v4(1), Event::Started).is_ok());
    assert!(go(&mut sh, 2, 1, v4(1), Event::Started).is_ok());
    assert_eq!(
        go(&mut sh, 3, 1, v4(1), Event::Started),
        Err(Full::Torrents)
    );
    assert!(go(&mut sh, 2, 2, "::1".parse().unwrap(), Event::Started).is_ok());
    // Three peers: a fourth is refused, a known one re-announces.
    assert_eq!(go(&mut sh, 1, 9, v4(9), Event::Started), Err(Full::Peers));
    assert!(go(&mut sh, 2, 2, "::1".parse().unwrap(), Event::None).is_ok());
    let ws = sh.ws_announce(
        &req(1, 0, Some(1), Event::Started),
        Conn { worker: 0, id: 1 },
        0,
        0,
        &mut Vec::new(),
    );
    assert_eq!(ws, Err(Full::Peers));
    // A stop is never refused, and frees room.
    assert!(go(&mut sh, 1, 1, v4(1), Event::Stopped).is_ok());
    assert!(go(&mut sh, 1, 9, v4(9), Event::Started).is_ok());
    assert_eq!(sh.totals().seeders + sh.totals().leechers, 3);
    assert_eq!(sh.torrents(), 2);
    // Offers past the limit are relayed but not remembered.
    sh.offer_sent(
        InfoHash([1; 20]),
        [1; 20],
        PeerId([1; 20]),
        PeerId([2; 20]),
        0,
    );
    sh.offer_sent(
        InfoHash([1; 20]),
        [2; 20],
        PeerId([1; 20]),
        PeerId([2; 20]),
        0,
    );
    assert_eq!(sh.offers.len(), 1);
}

#[test]
fn clients_and_active_torrents_follow_peers() {
    let mut sh = Shard::new(100, 10);
    let qb = |n: u8| {
        let mut id = *b"-qB4650-000000000000";
        id[19] = n;
        PeerId(id)
    };
    let key = |prefix: &[u8; 8]| {
        let mut p = [b'0'; 20];
        p[..8].copy_from_slice(prefix);
        ClientKey::of(&PeerId(p))
    };
    let count = |sh: &Shard, id: &[u8; 8]| {
        let k = key(id);
        sh.clients().find(|c| c.0 == k).map(|c| c.1)
    };
    let mut r = req(1, 1000, Some(5), Event::Started);
    r.peer_id = qb(1);
    announce(&mut sh, &r, v4(1), 0);
    r.port = 1001;
    r.peer_id = qb(2);
    announce(&mut sh, &r, v4(1), 0);
    let mut t = req(2, 1000, Some(0), Event::Started);
    t.peer_id = PeerId(*b"-TR4060-000000000000");
    announce(&mut sh, &t, "::1".parse().unwrap(), 0);
    assert_eq!(count(&sh, b"-qB4650-"), Some(2));
    assert_eq!(count(&sh, b"-TR4060-"), Some(1));
    assert_eq!(sh.totals().active_torrents, 2);
    // The same address and port now runs another client: counted once, anew.
    r.peer_id = PeerId(*b"-TR4060-111111111111");
    announce(&mut sh, &r, v4(1), 1);
    assert_eq!(count(&sh, b"-qB4650-"), Some(1));
    assert_eq!(count(&sh, b"-TR4060-"), Some(2));
    // Stopping the only peer of torrent 2 leaves it known but inactive.
    t.event = Event::Stopped;
    announce(&mut sh, &t, "::1".parse().unwrap(), 2);
    assert_eq!(count(&sh, b"-TR4060-"), Some(1));
    assert_eq!((sh.torrents(), sh.totals().active_torrents), (2, 1));
    // Expiry takes the rest, and the client counts with them.
    sh.sweep(500, 100);
    assert_eq!(sh.clients().count(), 0);
    assert_eq!(sh.totals().active_torrents, 0);
}

#[test]
fn websocket_peers_count_but_see_only_each_other() {
    let mut sh = Shard::new(1200, 9);
    let c = |id| Conn { worker: 1, id };
    announce(&mut sh, &req(1, 1000, Some(0), Event::Started), v4(1), 0);
    let mut targets = Vec::new();
    let mut ws_req = req(1, 0, Some(5), Event::Started);
    ws_req.peer_id = PeerId([b'a'; 20]);
    let s = sh.ws_announce(&ws_req, c(1), 0, 10, &mut targets).unwrap();
    assert_eq!(
        (s.complete, s.incomplete),
        (1, 1),
        "counted with the UDP/HTTP seeder"
    );
    assert!(targets.is_empty(), "no other WebSocket peer to offer to");
    ws_req.peer_id = PeerId([b'b'; 20]);
    let s = sh.ws_announce(&ws_req, c(2), 0, 10, &mut targets).unwrap();
    assert_eq!(s.incomplete, 2);
    assert_eq!(targets, vec![(PeerId([b'a'; 20]), c(1))]);
    // An HTTP/UDP announcer never gets WebSocket peers.
    let (_, p) = announce(&mut sh, &req(1, 1001, Some(5), Event::Started), v4(2), 0);
    assert_eq!(ports(&p.v4), vec![1000]);
    assert_eq!(sh.totals().peers_ws, 2);
    // Without `left` a known peer keeps its state; completed counts once.
    ws_req.left = None;
    ws_req.event = Event::None;
    assert_eq!(
        sh.ws_announce(&ws_req, c(2), 1, 0, &mut targets)
            .unwrap()
            .incomplete,
        3
    );
    ws_req.event = Event::Completed;
    let s = sh.ws_announce(&ws_req, c(2), 1, 0, &mut targets).unwrap();
    assert_eq!((s.complete, s.incomplete, s.downloaded), (2, 2, 1));
    // A close elsewhere does not remove it; its own does.
    assert!(!sh.ws_remove(&InfoHash([1; 20]), &PeerId([b'b'; 20]), c(9)));
    assert!(sh.ws_remove(&InfoHash([1; 20]), &PeerId([b'b'; 20]), c(2)));
    assert_eq!(sh.scrape(&InfoHash([1; 20])).complete, 1);
    assert_eq!(sh.totals().peers_ws, 1);
    assert_eq!(sh.totals().seeders, 1);
}

#[test]
fn answers_only_for_offers_relayed() {
    let mut sh = Shard::new(1200, 10);
    let (a, b, x) = (PeerId([b'a'; 20]), PeerId([b'b'; 20]), PeerId([b'x'; 20]));
    let h = InfoHash([2; 20]);
    let mut r = req(2, 0, Some(5), Event::Started);
    r.peer_id = a;
    sh.ws_announce(&r, Conn { worker: 0, id: 7 }, 0, 0, &mut Vec::new())
        .unwrap();
    sh.offer_sent(h, [b'o'; 20], a, b, 10);
    assert_eq!(
        sh.take_offer(&h, &[b'o'; 20], &x, &a, 11),
        None,
        "only the peer it went to"
    );
    assert_eq!(
        sh.take_offer(&h, &[b'o'; 20], &b, &x, 11),
        None,
        "only back to its sender"
    );
    assert_eq!(
        sh.take_offer(&h, &[b'z'; 20], &b, &a, 11),
        None,
        "an offer never sent"
    );
    assert_eq!(
        sh.take_offer(&h, &[b'o'; 20], &b, &a, 11),
        Some(Conn { worker: 0, id: 7 })
    );
    assert_eq!(
        sh.take_offer(&h, &[b'o'; 20], &b, &a, 12),
        None,
        "answered once"
    );
    sh.offer_sent(h, [b'p'; 20], a, b, 10);
    sh.sweep(10 + OFFER_TTL + 1, 10);
    assert_eq!(
        sh.take_offer(&h, &[b'p'; 20], &b, &a, 10 + OFFER_TTL + 1),
        None,
        "expired"
    );
}
