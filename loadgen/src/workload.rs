//! The workload model: torrents with skewed popularity, peers with a life
//! cycle, and the mix of request types.

use bittorrent_tracker::protocol::{AnnounceRequest, Event, InfoHash, PeerId};
use bittorrent_tracker::rng::Rng;
use clap::Args;

/// What the simulated peers do. Shared by every protocol.
#[derive(Args, Clone, Debug, serde::Serialize)]
pub struct Workload {
    /// Torrents in the model
    #[arg(long, default_value_t = 1_000_000)]
    pub torrents: u32,
    /// Peers in the model (split over the load threads)
    #[arg(long, default_value_t = 2_000_000)]
    pub peers: u32,
    /// Popularity skew: torrent = torrents * u^skew for uniform u; 1 is
    /// uniform, 3 sends a tenth of the peers to the top 0.1% of torrents
    #[arg(long, default_value_t = 3.0)]
    pub skew: f64,
    /// Fraction of peers that start as seeders
    #[arg(long, default_value_t = 0.5)]
    pub seeders: f64,
    /// Weight of announces in the request mix
    #[arg(long, default_value_t = 100)]
    pub announce: u32,
    /// Weight of scrapes in the request mix
    #[arg(long, default_value_t = 1)]
    pub scrape: u32,
    /// Weight of extra connects in the mix (UDP; ids are refreshed anyway)
    #[arg(long, default_value_t = 0)]
    pub connect: u32,
    /// Peers each announce asks for
    #[arg(long, default_value_t = 30)]
    pub numwant: u32,
    /// Info hashes per scrape
    #[arg(long, default_value_t = 10)]
    pub scrape_width: usize,
    /// Chance that an active leecher's announce is `completed`
    #[arg(long, default_value_t = 0.05)]
    pub complete_chance: f64,
    /// Chance that an active peer's announce is `stopped` (it starts again later)
    #[arg(long, default_value_t = 0.02)]
    pub stop_chance: f64,
    /// Percent of requests replaced by garbage the tracker must refuse
    /// (UDP: random bytes, no reply; HTTP, WebSocket: a failure reason)
    #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
    pub garbage: f64,
}

/// A request type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect = 0,
    Announce = 1,
    Scrape = 2,
    /// WebSocket: answers to offers, sent by peers and relayed back.
    Answer = 3,
    /// Requests the tracker must refuse (`--garbage`).
    Garbage = 4,
}

impl Kind {
    /// The kinds a request mix draws from.
    pub const MIX: [Kind; 3] = [Kind::Connect, Kind::Announce, Kind::Scrape];
}

#[derive(Clone, Copy)]
struct Peer {
    torrent: u32,
    left: u64,
    active: bool,
}

/// How long an open-loop driver may wait in `poll` for replies before the
/// next request is due. mio rounds a timeout up to whole milliseconds, so a
/// shorter wait would send the requests due meanwhile up to a millisecond
/// late, all at once, and count that lateness as the tracker's latency:
/// under a millisecond the driver polls without waiting (it has a core of
/// its own), and requests leave when they are due.
pub fn open_loop_wait(
    next_due: std::time::Instant,
    now: std::time::Instant,
) -> std::time::Duration {
    use std::time::Duration;
    let wait = next_due.saturating_duration_since(now);
    if wait < Duration::from_millis(1) {
        Duration::ZERO
    } else {
        wait.min(Duration::from_millis(5))
    }
}

/// splitmix64: a fixed, well-spread sequence.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An info hash as 40 lowercase hex digits.
pub fn hex(h: &InfoHash) -> String {
    h.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// The info hash of torrent `t`: spread over every owner of every tracker.
pub fn info_hash(t: u32) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&mix(t as u64).to_be_bytes());
    h[8..16].copy_from_slice(&mix(t as u64 ^ 0x5eed).to_be_bytes());
    h[16..].copy_from_slice(&t.to_be_bytes());
    InfoHash(h)
}

/// One load thread's share of the peers, and the dice.
pub struct Generator {
    w: Workload,
    peers: Vec<Peer>,
    /// Global index of this thread's first peer.
    first: u64,
    rng: Rng,
    weights: [u32; 3],
}

impl Generator {
    pub fn new(w: &Workload, thread: usize, threads: usize, seed: u64) -> Self {
        let per = (w.peers as usize).div_ceil(threads.max(1)).max(1);
        let mut rng = Rng::new(seed ^ mix(thread as u64));
        let torrents = w.torrents.max(1);
        let peers = (0..per)
            .map(|_| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let torrent = ((torrents as f64) * u.powf(w.skew.max(1.0))) as u32;
                let seeder = ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < w.seeders;
                Peer {
                    torrent: torrent.min(torrents - 1),
                    left: if seeder { 0 } else { 1 << 30 },
                    active: false,
                }
            })
            .collect();
        let weights = [w.connect, w.announce, w.scrape];
        Generator {
            w: w.clone(),
            peers,
            first: (thread * per) as u64,
            rng,
            weights,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Whether the next request is garbage (`--garbage` percent of them).
    pub fn garbage(&mut self) -> bool {
        self.w.garbage > 0.0 && self.chance(self.w.garbage / 100.0)
    }

    /// Random bytes for a garbage datagram.
    pub fn junk(&mut self, out: &mut Vec<u8>) {
        let len = 1 + self.rng.below(150);
        out.extend((0..len).map(|_| self.rng.next_u64() as u8));
    }

    /// The next request type, by the weights of the mix.
    pub fn kind(&mut self) -> Kind {
        let total: u32 = self.weights.iter().sum();
        let mut r = self.rng.below(total.max(1) as usize) as u32;
        for (k, &w) in Kind::MIX.iter().zip(&self.weights) {
            if r < w {
                return *k;
            }
            r -= w;
        }
        Kind::Announce
    }

    /// A random local peer index (which source address it uses is the caller's choice: `index % sources`).
    pub fn pick_peer(&mut self) -> usize {
        self.rng.below(self.peers.len())
    }

    /// A random local peer that announces from source address `source` of
    /// `sources` (its index is `source` modulo `sources`), so a peer keeps
    /// one address, as a real client does.
    pub fn pick_peer_of(&mut self, source: usize, sources: usize) -> usize {
        let len = self.peers.len();
        let sources = sources.max(1);
        let per = len.div_ceil(sources).max(1);
        let p = self.rng.below(per) * sources + source % sources;
        if p < len {
            p
        } else {
            source % len
        }
    }

    /// The announce peer `i` sends next, advancing its life cycle: a new peer
    /// starts; an active one updates, sometimes completes (leechers) or stops.
    /// `port` is where it says it listens.
    pub fn announce(&mut self, i: usize, port: u16) -> AnnounceRequest {
        let (complete_chance, stop_chance) = (self.w.complete_chance, self.w.stop_chance);
        let event = if !self.peers[i].active {
            self.peers[i].active = true;
            Event::Started
        } else if self.chance(stop_chance) {
            self.peers[i].active = false;
            Event::Stopped
        } else if self.peers[i].left > 0 && self.chance(complete_chance) {
            self.peers[i].left = 0;
            Event::Completed
        } else {
            Event::None
        };
        let p = self.peers[i];
        let global = self.first + i as u64;
        let mut id = *b"-LG0001-000000000000";
        id[8..16].copy_from_slice(&mix(global).to_be_bytes());
        AnnounceRequest {
            info_hash: info_hash(p.torrent),
            peer_id: PeerId(id),
            port,
            uploaded: 0,
            downloaded: 0,
            left: Some(p.left),
            event,
            numwant: Some(self.w.numwant),
            key: Some(global as u32),
        }
    }

    /// Hashes for one scrape: torrents of random peers (so, by popularity).
    pub fn scrape(&mut self, out: &mut Vec<InfoHash>) {
        out.clear();
        for _ in 0..self.w.scrape_width.max(1) {
            let i = self.pick_peer();
            out.push(info_hash(self.peers[i].torrent));
        }
    }

    pub fn numwant(&self) -> u32 {
        self.w.numwant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_print_as_forty_hex_digits_of_the_same_bytes() {
        for t in [0, 1, 999_999] {
            let h = info_hash(t);
            let text = hex(&h);
            assert_eq!(text.len(), 40);
            let back: Vec<u8> = (0..20)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert_eq!(back, h.0);
            assert_eq!(text, text.to_lowercase());
        }
    }
    use clap::Parser;

    #[test]
    fn open_loop_waits_only_whole_milliseconds() {
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Under a millisecond, poll and come straight back: mio would sleep a whole one.
        assert_eq!(
            open_loop_wait(now + Duration::from_micros(7), now),
            Duration::ZERO
        );
        assert_eq!(
            open_loop_wait(now + Duration::from_micros(999), now),
            Duration::ZERO
        );
        assert_eq!(
            open_loop_wait(now, now + ms(1)),
            Duration::ZERO,
            "already late"
        );
        assert_eq!(open_loop_wait(now + ms(3), now), ms(3));
        assert_eq!(
            open_loop_wait(now + ms(60), now),
            ms(5),
            "replies are read meanwhile"
        );
    }

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        w: Workload,
    }

    fn workload(args: &[&str]) -> Workload {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::parse_from(v).w
    }

    #[test]
    fn life_cycle_starts_then_updates() {
        let w = workload(&[
            "--peers",
            "10",
            "--stop-chance",
            "0",
            "--complete-chance",
            "0",
        ]);
        let mut g = Generator::new(&w, 0, 1, 1);
        assert_eq!(g.announce(3, 7).event, Event::Started);
        assert_eq!(g.announce(3, 7).event, Event::None);
        let w = workload(&["--peers", "10", "--stop-chance", "1"]);
        let mut g = Generator::new(&w, 0, 1, 1);
        assert_eq!(g.announce(3, 7).event, Event::Started);
        assert_eq!(g.announce(3, 7).event, Event::Stopped);
        assert_eq!(g.announce(3, 7).event, Event::Started);
    }

    #[test]
    fn skew_makes_a_few_torrents_popular_and_mix_follows_weights() {
        let w = workload(&[
            "--peers",
            "100000",
            "--torrents",
            "100000",
            "--scrape",
            "10",
        ]);
        let mut g = Generator::new(&w, 0, 1, 7);
        let top = g.peers.iter().filter(|p| p.torrent < 100).count();
        // u^3 < 0.001 for u < 0.1: about a tenth of the peers.
        assert!((8_000..12_000).contains(&top), "{top}");
        let scrapes = (0..110_000).filter(|_| g.kind() == Kind::Scrape).count();
        assert!((8_000..12_000).contains(&scrapes), "{scrapes}");
        let seeders = g.peers.iter().filter(|p| p.left == 0).count();
        assert!((45_000..55_000).contains(&seeders));
    }
}
