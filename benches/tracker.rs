//! Hot paths, without sockets: a shard with 1M torrents and 2M peers, driven
//! by pre-encoded requests through the same functions the workers run.
//!
//!     cargo bench --bench tracker

use bittorrent_tracker::answer::http::announce_reply as http_announce_reply;
use bittorrent_tracker::answer::udp::announce_reply as udp_announce_reply;
use bittorrent_tracker::protocol::{http, udp, AnnounceRequest, Event, InfoHash, PeerId, Peers};
use bittorrent_tracker::swarm::{Shard, Want};
use bittorrent_tracker::ServerConfig;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const TORRENTS: u64 = 1_000_000;
const REQUESTS: usize = 1 << 16;

fn mix(mut x: u64) -> u64 {
    // splitmix64: a fixed, well-spread sequence.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn info_hash(i: u64) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&mix(i).to_le_bytes());
    h[8..16].copy_from_slice(&mix(i ^ 0xabcdef).to_le_bytes());
    InfoHash(h)
}

fn announce(i: u64, peer: u64, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: info_hash(i),
        peer_id: PeerId([peer as u8; 20]),
        port: 1024 + (peer % 50_000) as u16,
        uploaded: 0,
        downloaded: 0,
        left: Some(left),
        event: Event::Started,
        numwant: Some(30),
        key: None,
    }
}

fn peer_ip(peer: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(mix(peer) as u32))
}

/// 1M torrents, 2M peers: one seeder and one leecher each.
fn populated() -> Shard {
    let mut shard = Shard::new(3600, 1);
    let mut peers = Peers::default();
    let want = Want {
        peers: 0,
        both_families: false,
        ids: false,
    };
    for i in 0..TORRENTS {
        for (k, left) in [(0, 0), (1, 100)] {
            let p = i * 2 + k;
            peers.clear();
            shard
                .announce(&announce(i, p, left), peer_ip(p), 0, &want, &mut peers)
                .expect("no limits set");
        }
    }
    shard
}

/// Requests for torrents picked at random, from peers new to them.
fn workload() -> Vec<(u64, u64)> {
    (0..REQUESTS as u64)
        .map(|r| (mix(r) % TORRENTS, 10_000_000 + r))
        .collect()
}

fn benches(c: &mut Criterion) {
    let cfg = ServerConfig::default();
    let mut shard = populated();
    let work = workload();

    let mut group = c.benchmark_group("1M torrents, 2M peers");
    group.throughput(Throughput::Elements(1));

    // UDP: datagram bytes -> parse -> shard -> reply bytes.
    let packets: Vec<(Vec<u8>, SocketAddr)> = work
        .iter()
        .map(|&(t, p)| {
            let mut b = Vec::new();
            udp::write_announce_request(&mut b, 1, p as u32, &announce(t, p, p % 2), b"");
            (b, SocketAddr::new(peer_ip(p), 6881))
        })
        .collect();
    let (mut out, mut peers, mut n) = (Vec::with_capacity(1500), Peers::default(), 0usize);
    group.bench_function("udp announce: parse, shard, reply", |b| {
        b.iter(|| {
            let (pkt, src) = &packets[n % REQUESTS];
            n += 1;
            let Ok(udp::Request::Announce {
                transaction_id,
                announce,
                ..
            }) = udp::parse_request(pkt)
            else {
                unreachable!()
            };
            out.clear();
            udp_announce_reply(
                &mut shard,
                &cfg,
                1,
                transaction_id,
                &announce,
                *src,
                &mut peers,
                &mut out,
            );
            out.len()
        })
    });

    // HTTP: query bytes -> parse -> shard -> bencoded body.
    let queries: Vec<(Vec<u8>, IpAddr)> = work
        .iter()
        .map(|&(t, p)| {
            let a = announce(t, p, p % 2);
            let mut q = String::from("info_hash=");
            http::percent_encode(&a.info_hash.0, &mut q);
            q.push_str("&peer_id=-qB4650-");
            http::percent_encode(&a.peer_id.0[8..], &mut q);
            q.push_str(&format!(
                "&port={}&uploaded=0&downloaded=0&left={}&corrupt=0&key=1A2B3C4D&event=started&numwant=30&compact=1&no_peer_id=1&supportcrypto=1&redundant=0",
                a.port,
                p % 2
            ));
            (q.into_bytes(), peer_ip(p))
        })
        .collect();
    let mut body = Vec::with_capacity(1024);
    group.bench_function("http announce: parse query, shard, bencode", |b| {
        b.iter(|| {
            let (q, ip) = &queries[n % REQUESTS];
            n += 1;
            let a = http::parse_announce(q).unwrap();
            body.clear();
            http_announce_reply(&mut shard, &cfg, 1, &a, *ip, &mut peers, &mut body);
            body.len()
        })
    });

    // The shard alone.
    let requests: Vec<(AnnounceRequest, IpAddr)> = work
        .iter()
        .map(|&(t, p)| (announce(t, p, p % 2), peer_ip(p)))
        .collect();
    let want = Want {
        peers: 30,
        both_families: false,
        ids: false,
    };
    group.bench_function("Shard::announce", |b| {
        b.iter(|| {
            let (r, ip) = &requests[n % REQUESTS];
            n += 1;
            peers.clear();
            shard.announce(r, *ip, 1, &want, &mut peers)
        })
    });
    group.finish();
    eprintln!(
        "shard: {} torrents, {:?}, ~{} MiB on the heap",
        shard.torrents(),
        shard.totals(),
        shard.heap_bytes() >> 20
    );

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    let pkt = &packets[0].0;
    group.bench_function("udp announce", |b| {
        b.iter(|| udp::parse_request(pkt).is_ok())
    });
    let q = &queries[0].0;
    group.bench_function("http announce query", |b| {
        b.iter(|| http::parse_announce(q).is_ok())
    });
    group.finish();
}

criterion_group!(tracker, benches);
criterion_main!(tracker);
