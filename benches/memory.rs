//! The `swarm/` memory benchmark: heap bytes per one-peer torrent and per
//! IPv4 peer, counted by a wrapping allocator (every byte the shard asks
//! for, not an estimate), and what the process holds for the load
//! generator's skew, under the tracker's allocator and its huge-page
//! setting. `cargo bench --bench memory`.

use bittorrent_tracker::protocol::{AnnounceRequest, Event, InfoHash, PeerId, Peers};
use bittorrent_tracker::swarm::{Shard, Want};
use std::alloc::{GlobalAlloc, Layout};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The tracker's allocator.
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

// SAFETY: defers to the tracker's allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        INNER.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        INNER.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        INNER.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn hash(i: u64) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    h[8..16].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

fn announce(shard: &mut Shard, torrent: u64, peer: u32) {
    let req = AnnounceRequest {
        info_hash: hash(torrent),
        peer_id: PeerId([peer as u8; 20]),
        port: 1 + (peer % 60_000) as u16,
        uploaded: 0,
        downloaded: 0,
        left: Some(1),
        event: Event::Started,
        numwant: Some(0),
        key: None,
    };
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + peer / 60_000));
    let want = Want {
        peers: 0,
        both_families: false,
        ids: false,
    };
    shard
        .announce(&req, ip, 0, &want, &mut Peers::default())
        .expect("no limits set");
}

/// The process's resident set, in bytes.
fn resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("VmRSS");
    kb * 1024
}

fn main() {
    const N: u64 = 1_000_000;
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    // As the tracker does unless --huge-pages (HUGE_PAGES=1 here).
    let huge = std::env::var_os("HUGE_PAGES").is_some_and(|v| v == "1");
    bittorrent_tracker::thp::allow_huge_pages(huge).expect("PR_SET_THP_DISABLE");

    // The default load generator's shape: 1M torrents, 2M peers, skewed.
    // First, so that the resident set grows from a fresh heap.
    let (base, rss) = (LIVE.load(Ordering::Relaxed), resident());
    let mut mixed = Shard::new(1200, 3);
    let mut x = 1u64;
    for p in 0..2 * N as u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        announce(&mut mixed, (N as f64 * u.powf(3.0)) as u64, p);
    }
    let mixed_bytes = LIVE.load(Ordering::Relaxed) - base;
    let mixed_resident = resident() - rss;
    let mixed_torrents = mixed.torrents();
    drop(mixed);

    let base = LIVE.load(Ordering::Relaxed);
    let mut one_peer = Shard::new(1200, 1);
    for t in 0..N {
        announce(&mut one_peer, t, t as u32);
    }
    let per_torrent = (LIVE.load(Ordering::Relaxed) - base) as f64 / N as f64;
    drop(one_peer);

    let base = LIVE.load(Ordering::Relaxed);
    let mut big = Shard::new(1200, 2);
    for p in 0..N as u32 {
        announce(&mut big, 0, p);
    }
    let per_peer = (LIVE.load(Ordering::Relaxed) - base) as f64 / N as f64;
    drop(big);

    println!("swarm memory, heap bytes counted by the allocator:");
    println!("  one-peer torrent: {per_torrent:.1} bytes each (1M torrents of one IPv4 peer)");
    println!("  IPv4 peer:        {per_peer:.1} bytes each (one torrent of 1M peers)");
    println!(
        "  skewed 2M peers over {mixed_torrents} torrents: {:.1} MiB ({:.1} MiB more resident, mimalloc {} huge pages)",
        mib(mixed_bytes),
        mib(mixed_resident),
        if huge { "with" } else { "without" }
    );
}
