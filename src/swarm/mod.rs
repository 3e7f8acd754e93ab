//! Tracker state, pure data: no sockets, no executor, no clock. Each worker
//! owns one [`Shard`]: the swarms of the info hashes that map to it.
//!
//! Memory is the point of the layout. A torrent is a 48-byte entry in a
//! [`table::Table`]: its info hash, downloads, last announce, and its peers:
//! none, one IPv4 peer inline (most torrents of a public tracker have one),
//! or a boxed [`Swarm`]. A peer is its wire-form address, its last announce
//! and a 2-byte client slot; its 20-byte peer id is kept only when the
//! operator asks for it (`peer_ids`), since only non-compact HTTP replies
//! carry it.

pub mod index;
pub mod peers;
pub mod state;
pub mod table;
pub mod ws;

use crate::protocol::clients::ClientKey;
use crate::protocol::{
    canonical_ip, compact_v4, compact_v6, AnnounceRequest, Event, InfoHash, PeerId, Peers,
    ScrapeStats,
};
use peers::{Entry, PeerList};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use table::{hash_of, prefetch, Keyed, Table};
use ws::{Conn, WsPeers};

/// Seconds a relayed offer waits for its answer.
pub const OFFER_TTL: u32 = 60;

/// What one shard may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLimits {
    /// Torrents; past it, announces for new ones are refused.
    pub max_torrents: usize,
    /// Peers (all kinds); past it, new peers are refused.
    pub max_peers: usize,
    /// Relayed offers remembered; past it, new offers are relayed but their
    /// answers are not.
    pub max_offers: usize,
}

impl Default for ShardLimits {
    fn default() -> Self {
        ShardLimits {
            max_torrents: usize::MAX,
            max_peers: usize::MAX,
            max_offers: 250_000,
        }
    }
}

/// An announce refused because the shard holds all it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    Torrents,
    Peers,
}

impl Full {
    /// The failure reason a client gets.
    pub fn message(self) -> &'static str {
        match self {
            Full::Torrents => "tracker is full: no new torrents for now",
            Full::Peers => "tracker is full: no new peers for now",
        }
    }
}

/// The numwant a request gets: `requested` when it said one, else `default`,
/// never more than `max`.
pub fn numwant(requested: Option<u32>, default: u32, max: u32) -> usize {
    requested.unwrap_or(default).min(max) as usize
}

/// Which peers a reply wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Most peers to return (already resolved with [`numwant`]).
    pub peers: usize,
    /// Also return peers of the other address family (HTTP: `peers6` for an
    /// IPv4 announcer); UDP replies carry only the packet's own family.
    pub both_families: bool,
    /// Fill `Peers::ids4`/`ids6` too (non-compact HTTP replies).
    pub ids: bool,
}

/// What an announcing peer brings.
struct Arrival {
    seeder: bool,
    /// It says it completed (counted once per leecher that does).
    completed: bool,
    now: u32,
    /// Its peer id, when peer ids are kept.
    id: Option<PeerId>,
    client: ClientKey,
}

/// The peers of one address family of a swarm.
#[derive(Debug, Default)]
struct Family<const N: usize> {
    peers: PeerList<N>,
}

impl<const N: usize> Family<N> {
    const EMPTY: Self = Family {
        peers: PeerList::EMPTY,
    };

    fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Inserts or refreshes a peer. Returns whether it was known, and as a
    /// seeder, and its slot.
    fn upsert(
        &mut self,
        key: [u8; N],
        a: &Arrival,
        clients: &mut ClientSlots,
    ) -> (Option<bool>, usize) {
        match self.peers.find(&key) {
            Some(s) => {
                let was = self.peers.is_seeder(s);
                let e = self.peers.entry_mut(s);
                e.last_seen = a.now;
                e.client = clients.swap(Some(e.client), a.client);
                if let Some(id) = a.id {
                    self.peers.set_id(s, id);
                }
                (Some(was), self.peers.set_seeder(s, a.seeder))
            }
            None => {
                let e = Entry {
                    addr: key,
                    client: clients.swap(None, a.client),
                    last_seen: a.now,
                };
                (None, self.peers.insert(e, a.seeder, a.id))
            }
        }
    }

    /// Removes a peer; returns whether it was a seeder, and its client slot.
    fn remove(&mut self, key: &[u8; N]) -> Option<(bool, u16)> {
        let slot = self.peers.find(key)?;
        let (e, seeder) = self.peers.remove(slot);
        Some((seeder, e.client))
    }

    /// Picks up to `want` peers for an announcer that is a seeder or not, who
    /// sits in slot `me` when it is of this family. A seeder gets leechers
    /// only; a leecher gets seeders and leechers in proportion. Returns how
    /// many were written.
    fn pick(
        &self,
        seeder: bool,
        me: Option<usize>,
        want: usize,
        rng: &mut Rng,
        out: &mut Vec<u8>,
        ids: Option<&mut Vec<crate::protocol::PeerId>>,
    ) -> usize {
        let (seeders, leechers) = (self.peers.seeder_slots(), self.peers.leecher_slots());
        // A leecher announcer sits among the leechers; a seeder gets none of the seeders.
        let skip = if seeder { None } else { me };
        let avail_s = if seeder { 0 } else { seeders.len() };
        let avail_l = leechers.len() - skip.is_some() as usize;
        let total = avail_s + avail_l;
        if want == 0 || total == 0 {
            return 0;
        }
        let (take_s, take_l) = if total <= want {
            (avail_s, avail_l)
        } else {
            let s = ((want * avail_s + total / 2) / total).min(avail_s);
            let l = (want - s).min(avail_l);
            ((want - l).min(avail_s), l)
        };
        let mut ids = ids;
        if take_s > 0 {
            let start = rng.below(seeders.len());
            self.peers
                .copy_out(seeders, start, take_s, None, out, ids.as_deref_mut());
        }
        if take_l > 0 {
            let start = rng.below(leechers.len());
            self.peers.copy_out(leechers, start, take_l, skip, out, ids);
        }
        take_s + take_l
    }

    fn expire(&mut self, cutoff: u32, kind: Kind, tally: &mut Tally) -> usize {
        let mut n = 0;
        self.peers.expire(cutoff, |m, seeder| {
            tally.leave(kind, seeder, m.client);
            n += 1;
        });
        n
    }

    fn heap_bytes(&self) -> usize {
        self.peers.heap_bytes()
    }
}

type Ids<'a> = Option<&'a mut Vec<crate::protocol::PeerId>>;

/// Puts the announcer in its own family, then picks its peers: from its own
/// family first, then (when wanted) from the other. Returns whether it was
/// known before, and as a seeder.
fn join_and_pick<const N: usize, const M: usize>(
    own: (&mut Family<N>, &mut Vec<u8>, Ids<'_>),
    other: (&Family<M>, &mut Vec<u8>, Ids<'_>),
    key: [u8; N],
    a: &Arrival,
    clients: &mut ClientSlots,
    want: &Want,
    rng: &mut Rng,
) -> Option<bool> {
    let (family, out, ids) = own;
    let (was, slot) = family.upsert(key, a, clients);
    let got = family.pick(a.seeder, Some(slot), want.peers, rng, out, ids);
    if want.both_families {
        let (family, out, ids) = other;
        family.pick(a.seeder, None, want.peers - got, rng, out, ids);
    }
    was
}

/// Stands in for the IPv6 peers of a swarm that has none.
static NO_V6: Family<18> = Family::EMPTY;

/// The peers of a torrent that has more than one, or an IPv6 or WebSocket
/// one, or whose peer ids are kept: IPv4 and IPv6, seeders and leechers
/// apart.
#[derive(Debug, Default)]
struct Swarm {
    v4: Family<6>,
    /// IPv6 and WebSocket peers, for the swarms that have any.
    rest: Option<Box<Rest>>,
}

/// The peers most swarms have none of.
#[derive(Debug, Default)]
struct Rest {
    v6: Family<18>,
    ws: WsPeers,
}

impl Swarm {
    fn v6(&self) -> &Family<18> {
        self.rest.as_deref().map_or(&NO_V6, |r| &r.v6)
    }

    /// The WebSocket peers, if any.
    fn ws(&self) -> Option<&WsPeers> {
        self.rest
            .as_deref()
            .map(|r| &r.ws)
            .filter(|w| !w.is_empty())
    }

    fn rest_mut(&mut self) -> &mut Rest {
        self.rest.get_or_insert_with(Box::default)
    }

    /// Frees the IPv6 and WebSocket half once it holds no one.
    fn trim(&mut self) {
        if self
            .rest
            .as_ref()
            .is_some_and(|r| r.v6.is_empty() && r.ws.is_empty())
        {
            self.rest = None;
        }
    }

    fn counts(&self) -> (u32, u32) {
        let (ws_s, ws_l) = self.ws().map_or((0, 0), |w| (w.seeders(), w.leechers()));
        (
            (self.v4.peers.seeders() + self.v6().peers.seeders()) as u32 + ws_s,
            (self.v4.peers.leechers() + self.v6().peers.leechers()) as u32 + ws_l,
        )
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6().is_empty() && self.ws().is_none()
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Swarm>()
            + self.v4.heap_bytes()
            + self.rest.as_ref().map_or(0, |r| {
                std::mem::size_of::<Rest>() + r.v6.heap_bytes() + r.ws.heap_bytes()
            })
    }
}

/// A torrent's only peer, kept inline: an IPv4 address and port, its client
/// slot, its last announce, and whether it seeds.
#[derive(Clone, Copy, Debug)]
struct One {
    addr: [u8; 6],
    client: u16,
    last_seen: u32,
    seeder: bool,
}

/// A torrent's peers.
#[derive(Debug)]
enum Body {
    Empty,
    One(One),
    Many(Box<Swarm>),
}

/// One torrent: 48 bytes, and a box only when it has more than one peer.
#[derive(Debug)]
struct Torrent {
    hash: InfoHash,
    completed: u32,
    /// Tracker time of the last announce: an empty torrent (and its
    /// `completed` count) is kept until the peer time-to-live has passed.
    last_active: u32,
    body: Body,
}

impl Keyed for Torrent {
    fn key(&self) -> &InfoHash {
        &self.hash
    }
}

impl Torrent {
    fn new(hash: InfoHash) -> Self {
        Torrent {
            hash,
            completed: 0,
            last_active: 0,
            body: Body::Empty,
        }
    }

    fn stats(&self) -> ScrapeStats {
        let (complete, incomplete) = match &self.body {
            Body::Empty => (0, 0),
            Body::One(o) => (o.seeder as u32, !o.seeder as u32),
            Body::Many(s) => s.counts(),
        };
        ScrapeStats {
            complete,
            incomplete,
            downloaded: self.completed,
        }
    }

    fn is_empty(&self) -> bool {
        match &self.body {
            Body::Empty => true,
            Body::One(_) => false,
            Body::Many(s) => s.is_empty(),
        }
    }

    /// Whether the peer at `ip` and `port` is here.
    fn has(&self, ip: IpAddr, port: u16) -> bool {
        match (&self.body, ip) {
            (Body::One(o), IpAddr::V4(a)) => o.addr == compact_v4(a, port),
            (Body::Many(s), IpAddr::V4(a)) => s.v4.peers.find(&compact_v4(a, port)).is_some(),
            (Body::Many(s), IpAddr::V6(a)) => s.v6().peers.find(&compact_v6(a, port)).is_some(),
            _ => false,
        }
    }

    /// The boxed form of the peers, made from what is there.
    fn many(&mut self) -> &mut Swarm {
        if !matches!(self.body, Body::Many(_)) {
            let mut s = Box::<Swarm>::default();
            if let Body::One(o) = self.body {
                let e = Entry {
                    addr: o.addr,
                    client: o.client,
                    last_seen: o.last_seen,
                };
                s.v4.peers.insert(e, o.seeder, None);
            }
            self.body = Body::Many(s);
        }
        match &mut self.body {
            Body::Many(s) => s,
            _ => unreachable!("made above"),
        }
    }

    /// Back to the small forms once the peers allow it.
    fn settle(&mut self, keep_ids: bool) {
        let Body::Many(s) = &self.body else {
            return;
        };
        if s.is_empty() {
            self.body = Body::Empty;
        } else if !keep_ids && s.v4.peers.len() == 1 && s.rest.is_none() {
            let (e, seeder) = s.v4.peers.iter().next().expect("one peer");
            self.body = Body::One(One {
                addr: e.addr,
                client: e.client,
                last_seen: e.last_seen,
                seeder,
            });
        }
    }

    /// Adds or refreshes the announcer and appends its peers to `out`.
    /// Returns whether it was known before, and as a seeder, and its kind.
    fn join(
        &mut self,
        addr: SocketAddr,
        a: &Arrival,
        want: &Want,
        rng: &mut Rng,
        out: &mut Peers,
        clients: &mut ClientSlots,
    ) -> (Option<bool>, Kind) {
        let (ip, port) = (addr.ip(), addr.port());
        if let (IpAddr::V4(v4), None) = (ip, a.id) {
            let key = compact_v4(v4, port);
            match &mut self.body {
                Body::Empty => {
                    self.body = Body::One(One {
                        addr: key,
                        client: clients.swap(None, a.client),
                        last_seen: a.now,
                        seeder: a.seeder,
                    });
                    return (None, Kind::V4);
                }
                Body::One(o) if o.addr == key => {
                    let was = o.seeder;
                    o.client = clients.swap(Some(o.client), a.client);
                    o.last_seen = a.now;
                    o.seeder = a.seeder;
                    return (Some(was), Kind::V4);
                }
                _ => {}
            }
        }
        let swarm = self.many();
        let (Peers { v4, v6, ids4, ids6 }, ids) = (out, want.ids);
        match ip {
            IpAddr::V4(addr) => {
                let own = (&mut swarm.v4, v4, ids.then_some(ids4));
                let other = (
                    swarm.rest.as_deref().map_or(&NO_V6, |r| &r.v6),
                    v6,
                    ids.then_some(ids6),
                );
                let key = compact_v4(addr, port);
                let was = join_and_pick(own, other, key, a, clients, want, rng);
                (was, Kind::V4)
            }
            IpAddr::V6(addr) => {
                let own = (
                    &mut swarm.rest.get_or_insert_with(Box::default).v6,
                    v6,
                    ids.then_some(ids6),
                );
                let other = (&swarm.v4, v4, ids.then_some(ids4));
                let key = compact_v6(addr, port);
                let was = join_and_pick(own, other, key, a, clients, want, rng);
                (was, Kind::V6)
            }
        }
    }

    /// Removes the peer at `ip` and `port`: its kind, whether it seeded,
    /// and its client slot.
    fn leave(&mut self, ip: IpAddr, port: u16) -> Option<(Kind, bool, u16)> {
        match (&mut self.body, ip) {
            (Body::One(o), IpAddr::V4(a)) if o.addr == compact_v4(a, port) => {
                let gone = (Kind::V4, o.seeder, o.client);
                self.body = Body::Empty;
                Some(gone)
            }
            (Body::Many(s), IpAddr::V4(a)) => {
                s.v4.remove(&compact_v4(a, port))
                    .map(|(seeder, c)| (Kind::V4, seeder, c))
            }
            (Body::Many(s), IpAddr::V6(a)) => {
                let gone = s
                    .rest
                    .as_mut()
                    .and_then(|r| r.v6.remove(&compact_v6(a, port)));
                s.trim();
                gone.map(|(seeder, c)| (Kind::V6, seeder, c))
            }
            _ => None,
        }
    }

    /// Removes every peer not seen since `cutoff`; returns how many.
    fn expire(&mut self, cutoff: u32, tally: &mut Tally) -> usize {
        match &mut self.body {
            Body::Empty => 0,
            Body::One(o) => {
                if o.last_seen >= cutoff {
                    return 0;
                }
                tally.leave(Kind::V4, o.seeder, o.client);
                self.body = Body::Empty;
                1
            }
            Body::Many(swarm) => {
                let mut removed = swarm.v4.expire(cutoff, Kind::V4, tally);
                if let Some(r) = swarm.rest.as_mut() {
                    removed += r.v6.expire(cutoff, Kind::V6, tally);
                    r.ws.expire(cutoff, |_, seeder, client| {
                        tally.leave(Kind::Ws, seeder, client);
                        removed += 1;
                    });
                }
                swarm.trim();
                removed
            }
        }
    }

    /// Every peer with its address (none for WebSocket peers).
    fn peers_info(&self, out: &mut Vec<PeerInfo>) {
        match &self.body {
            Body::Empty => {}
            Body::One(o) => out.push(PeerInfo {
                addr: Some(peer_addr(&o.addr)),
                peer_id: None,
                seeder: o.seeder,
            }),
            Body::Many(s) => {
                let list = |out: &mut Vec<PeerInfo>, addr: SocketAddr, id, seeder| {
                    out.push(PeerInfo {
                        addr: Some(addr),
                        peer_id: id,
                        seeder,
                    })
                };
                for (slot, (e, seeder)) in s.v4.peers.iter().enumerate() {
                    list(
                        out,
                        peer_addr(&e.addr),
                        s.v4.peers.id(slot).copied(),
                        seeder,
                    );
                }
                for (slot, (e, seeder)) in s.v6().peers.iter().enumerate() {
                    list(
                        out,
                        peer_addr(&e.addr),
                        s.v6().peers.id(slot).copied(),
                        seeder,
                    );
                }
                if let Some(w) = s.ws() {
                    out.extend(w.iter().map(|(id, seeder)| PeerInfo {
                        addr: None,
                        peer_id: Some(*id),
                        seeder,
                    }));
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match &self.body {
            Body::Many(s) => s.heap_bytes(),
            _ => 0,
        }
    }
}

/// A small fast generator for reply start offsets (wyrand). Not for secrets.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    }
    /// A value in `0..n` (`n` > 0).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Totals kept up to date on every change, so that statistics never walk peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub seeders: usize,
    pub leechers: usize,
    pub peers_v4: usize,
    pub peers_v6: usize,
    /// WebSocket peers (counted in `seeders` and `leechers` too).
    pub peers_ws: usize,
    pub completed: u64,
    /// Torrents with at least one peer.
    pub active_torrents: usize,
}

/// Peers by client and version. Each client and version in use gets a
/// 2-byte slot, which is all a peer keeps of its peer id for statistics.
#[derive(Debug)]
struct ClientSlots {
    /// Per slot: its client and version, and how many peers it has.
    slots: Vec<(ClientKey, u32)>,
    by_key: HashMap<ClientKey, u16, ahash::RandomState>,
    /// Slots no peer uses, to hand out again.
    free: Vec<u16>,
}

impl Default for ClientSlots {
    fn default() -> Self {
        let mut by_key = HashMap::with_hasher(ahash::RandomState::new());
        by_key.insert(ClientKey::UNKNOWN, 0);
        ClientSlots {
            slots: vec![(ClientKey::UNKNOWN, 0)],
            by_key,
            free: Vec::new(),
        }
    }
}

impl ClientSlots {
    /// A peer of `key` arrives: its slot. Past 65,535 clients and versions
    /// in use at once, the newcomers count as unknown (slot 0).
    fn enter(&mut self, key: ClientKey) -> u16 {
        let slot = match self.by_key.get(&key) {
            Some(&s) => s,
            None => {
                let s = match self.free.pop() {
                    Some(s) => s,
                    None if self.slots.len() <= u16::MAX as usize => {
                        self.slots.push((key, 0));
                        (self.slots.len() - 1) as u16
                    }
                    None => 0,
                };
                if s != 0 {
                    self.slots[s as usize] = (key, 0);
                    self.by_key.insert(key, s);
                }
                s
            }
        };
        self.slots[slot as usize].1 += 1;
        slot
    }

    /// A peer of slot `slot` leaves.
    fn leave(&mut self, slot: u16) {
        let e = &mut self.slots[slot as usize];
        e.1 = e.1.saturating_sub(1);
        if e.1 == 0 && slot != 0 {
            self.by_key.remove(&e.0);
            self.free.push(slot);
        }
    }

    /// The slot of a peer that had slot `old` (none when new) and now runs `key`.
    #[inline]
    fn swap(&mut self, old: Option<u16>, key: ClientKey) -> u16 {
        match old {
            Some(o) if self.slots[o as usize].0 == key => o,
            Some(o) => {
                self.leave(o);
                self.enter(key)
            }
            None => self.enter(key),
        }
    }

    /// The client and version of slot `slot`.
    fn key(&self, slot: u16) -> ClientKey {
        self.slots[slot as usize].0
    }

    fn iter(&self) -> impl Iterator<Item = (ClientKey, u32)> + '_ {
        self.slots.iter().copied().filter(|&(_, n)| n > 0)
    }
}

/// The shard's running counts: totals and clients.
#[derive(Debug, Default)]
struct Tally {
    totals: Totals,
    clients: ClientSlots,
}

impl Tally {
    fn class(&mut self, kind: Kind, seeder: bool, delta: isize) {
        let t = &mut self.totals;
        let family = match kind {
            Kind::V4 => &mut t.peers_v4,
            Kind::V6 => &mut t.peers_v6,
            Kind::Ws => &mut t.peers_ws,
        };
        *family = family.wrapping_add_signed(delta);
        let class = if seeder {
            &mut t.seeders
        } else {
            &mut t.leechers
        };
        *class = class.wrapping_add_signed(delta);
    }

    /// A peer announced: it `was` unknown or known (as a seeder or not),
    /// and is now a seeder or not. Its client slot is already kept.
    fn arrived(&mut self, kind: Kind, was: Option<bool>, seeder: bool) {
        match was {
            None => self.class(kind, seeder, 1),
            Some(w) if w != seeder => {
                self.class(kind, w, -1);
                self.class(kind, seeder, 1);
            }
            Some(_) => {}
        }
    }

    /// A peer of client slot `client` left a swarm.
    fn leave(&mut self, kind: Kind, seeder: bool, client: u16) {
        self.class(kind, seeder, -1);
        self.clients.leave(client);
    }
}

/// One peer of a [`TorrentInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Address and announced port; `None` for a WebSocket peer, which is
    /// reached through its connection.
    pub addr: Option<SocketAddr>,
    /// Its peer id: always for WebSocket peers, and for the others when
    /// the tracker keeps peer ids.
    pub peer_id: Option<PeerId>,
    pub seeder: bool,
}

/// One torrent with its counts and peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentInfo {
    pub info_hash: InfoHash,
    pub complete: u32,
    pub incomplete: u32,
    pub downloaded: u32,
    pub peers: Vec<PeerInfo>,
}

fn peer_addr(b: &[u8]) -> SocketAddr {
    let port = u16::from_be_bytes([b[b.len() - 2], b[b.len() - 1]]);
    let ip: IpAddr = match b.len() {
        6 => <[u8; 4]>::try_from(&b[..4]).expect("4 bytes").into(),
        _ => <[u8; 16]>::try_from(&b[..16]).expect("16 bytes").into(),
    };
    SocketAddr::new(ip, port)
}

/// An offer the tracker relayed, waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct SentOffer {
    from: crate::protocol::PeerId,
    to: crate::protocol::PeerId,
    at: u32,
}

#[derive(Clone, Copy)]
enum Kind {
    V4,
    V6,
    Ws,
}

/// What [`Shard::prefetch`] looks ahead at: a request's (first) info hash
/// and, for an announce from IPv4, the peer's address and port in wire form.
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    pub info_hash: InfoHash,
    pub peer: Option<[u8; 6]>,
}

/// The swarms owned by one worker.
pub struct Shard {
    torrents: Table<Torrent>,
    peer_ttl: u32,
    limits: ShardLimits,
    keep_ids: bool,
    rng: Rng,
    cursor: usize,
    tally: Tally,
    offers: HashMap<(InfoHash, [u8; 20]), SentOffer, ahash::RandomState>,
    offers_swept: u32,
}

impl Shard {
    /// A shard whose peers expire `peer_ttl` seconds after their last announce.
    pub fn new(peer_ttl: u32, seed: u64) -> Self {
        Self::with_capacity(peer_ttl, seed, 0)
    }

    /// A shard with room for `torrents` torrents before its index has to grow.
    pub fn with_capacity(peer_ttl: u32, seed: u64, torrents: usize) -> Self {
        Shard {
            torrents: Table::with_capacity(torrents),
            peer_ttl,
            limits: ShardLimits::default(),
            keep_ids: false,
            rng: Rng::new(seed),
            cursor: 0,
            tally: Tally::default(),
            offers: HashMap::with_hasher(ahash::RandomState::new()),
            offers_swept: 0,
        }
    }

    pub fn torrents(&self) -> usize {
        self.torrents.len()
    }

    /// Sets what this shard may hold.
    pub fn set_limits(&mut self, limits: ShardLimits) {
        self.limits = limits;
    }

    /// Keeps every peer's 20-byte peer id, for non-compact HTTP replies
    /// (off by default: it costs 20 bytes a peer, and a box for every
    /// one-peer torrent). Set it before the first announce.
    pub fn keep_peer_ids(&mut self, on: bool) {
        self.keep_ids = on;
    }

    /// Refuses a new torrent or a new peer when the shard is full; `known`
    /// says whether the peer is in the swarm already. Cheap until a limit
    /// is near.
    fn admit(&self, hash: &InfoHash, known: impl FnOnce(&Torrent) -> bool) -> Result<(), Full> {
        let l = &self.limits;
        let full_t = self.torrents.len() >= l.max_torrents;
        let t = &self.tally.totals;
        let full_p = t.seeders + t.leechers >= l.max_peers;
        if !full_t && !full_p {
            return Ok(());
        }
        match self.torrents.get_by(hash) {
            None if full_t => Err(Full::Torrents),
            None => Err(Full::Peers),
            Some(s) if full_p && !known(s) => Err(Full::Peers),
            Some(_) => Ok(()),
        }
    }

    pub fn totals(&self) -> Totals {
        self.tally.totals
    }

    /// Peers in this shard's swarms by client and version.
    pub fn clients(&self) -> impl Iterator<Item = (ClientKey, u32)> + '_ {
        self.tally.clients.iter()
    }

    /// Applies an announce from `ip` at tracker time `now` (seconds) and
    /// appends the peers it gets to `out` (which the caller clears). Returns
    /// the swarm's counts after the announce.
    ///
    /// Peers are keyed by address and announced port. `started`, `paused`
    /// and updates insert or refresh the peer (an unknown peer's update counts
    /// as `started`); `completed` makes it a seeder and counts a download
    /// when the swarm knew it as a leecher (a seeder that starts by saying
    /// `completed`, as WebTorrent's do on every page load, downloaded
    /// nothing here); `stopped` removes it and returns no peers.
    /// A new torrent or peer is refused when the shard is full.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        ip: IpAddr,
        now: u32,
        want: &Want,
        out: &mut Peers,
    ) -> Result<ScrapeStats, Full> {
        let ip = canonical_ip(ip);
        if req.event == Event::Stopped {
            return Ok(self.stop(&req.info_hash, ip, req.port));
        }
        self.admit(&req.info_hash, |t| t.has(ip, req.port))?;
        let a = Arrival {
            seeder: req.is_seeder() || req.event == Event::Completed,
            completed: req.event == Event::Completed,
            now,
            id: self.keep_ids.then_some(req.peer_id),
            client: ClientKey::of(&req.peer_id),
        };
        let at = self
            .torrents
            .find_or_insert(&req.info_hash, || Torrent::new(req.info_hash));
        Ok(self.arrive(at, SocketAddr::new(ip, req.port), &a, want, out))
    }

    /// Starts loading what the announces and scrapes of a batch will read:
    /// the index slot, the torrent, its swarm, and in the list that a reply
    /// to `v6` or IPv4 copies from, where the announcing IPv4 peer is (or
    /// would be) found. Each is a cache miss at a million torrents, and each
    /// needs the one before, so one announce pays them one after another; in
    /// passes over a batch they overlap, a pass each. A hint: nothing
    /// changes, and a wrong guess costs a wasted load.
    pub fn prefetch(&self, batch: &[Ahead], v6: bool) {
        const MAX: usize = 64;
        let batch = &batch[..batch.len().min(MAX)];
        let mut hashes = [0u64; MAX];
        for (a, h) in batch.iter().zip(&mut hashes) {
            *h = hash_of(&a.info_hash.0);
            self.torrents.prefetch_slot(*h);
        }
        let mut torrents = [None; MAX];
        for (h, t) in hashes.iter().zip(&mut torrents[..batch.len()]) {
            *t = self.torrents.prefetch_entry(*h);
        }
        let mut swarms = [None; MAX];
        for (t, s) in torrents.iter().zip(&mut swarms[..batch.len()]) {
            if let Some(Torrent {
                body: Body::Many(swarm),
                ..
            }) = t
            {
                prefetch::<Swarm>(&**swarm);
                *s = Some(&**swarm);
            }
        }
        if v6 {
            for s in swarms.iter().flatten() {
                if let Some(rest) = &s.rest {
                    prefetch::<Rest>(&**rest);
                }
            }
            return;
        }
        for step in 0..3 {
            for (s, a) in swarms.iter().zip(batch) {
                if let (Some(s), Some(peer)) = (s, &a.peer) {
                    s.v4.peers.prefetch(step, peer);
                }
            }
        }
    }

    /// The torrent at position `at`, announced to at `now` (counted
    /// active if it was empty), with the tally and the dice.
    fn touch(&mut self, at: usize, now: u32) -> (&mut Torrent, &mut Tally, &mut Rng) {
        let t = self.torrents.get_mut(at);
        t.last_active = t.last_active.max(now);
        if t.is_empty() {
            self.tally.totals.active_torrents += 1;
        }
        (t, &mut self.tally, &mut self.rng)
    }

    /// Puts a peer in the torrent at position `at`; the swarm's counts after.
    fn arrive(
        &mut self,
        at: usize,
        addr: SocketAddr,
        a: &Arrival,
        want: &Want,
        out: &mut Peers,
    ) -> ScrapeStats {
        let (t, tally, rng) = self.touch(at, a.now);
        let (was, kind) = t.join(addr, a, want, rng, out, &mut tally.clients);
        if a.completed && was == Some(false) {
            t.completed = t.completed.saturating_add(1);
            tally.totals.completed += 1;
        }
        tally.arrived(kind, was, a.seeder);
        t.stats()
    }

    /// A peer stopped: it leaves, and nothing else changes.
    fn stop(&mut self, hash: &InfoHash, ip: IpAddr, port: u16) -> ScrapeStats {
        let Some(t) = self.torrents.get_mut_by(hash) else {
            return ScrapeStats::default();
        };
        if let Some((kind, seeder, client)) = t.leave(ip, port) {
            self.tally.leave(kind, seeder, client);
            t.settle(self.keep_ids);
            if t.is_empty() {
                self.tally.totals.active_torrents -= 1;
            }
        }
        t.stats()
    }

    /// Applies an announce from the WebSocket peer on `conn` and appends up
    /// to `offers` other WebSocket peers of the swarm to `targets` (who are to
    /// get its offers). Without `left` a known peer keeps its state.
    pub fn ws_announce(
        &mut self,
        req: &AnnounceRequest,
        conn: Conn,
        now: u32,
        offers: usize,
        targets: &mut Vec<(crate::protocol::PeerId, Conn)>,
    ) -> Result<ScrapeStats, Full> {
        if req.event == Event::Stopped {
            self.ws_remove(&req.info_hash, &req.peer_id, conn);
            return Ok(self.scrape(&req.info_hash));
        }
        self.admit(&req.info_hash, |t| match &t.body {
            Body::Many(s) => s.ws().is_some_and(|w| w.conn(&req.peer_id).is_some()),
            _ => false,
        })?;
        let seeder = match (req.event, req.left) {
            (Event::Completed, _) | (_, Some(0)) => Some(true),
            (_, Some(_)) => Some(false),
            (_, None) => None,
        };
        let at = self
            .torrents
            .find_or_insert(&req.info_hash, || Torrent::new(req.info_hash));
        let (t, tally, rng) = self.touch(at, now);
        let key = ClientKey::of(&req.peer_id);
        let clients = &mut tally.clients;
        let peers = &mut t.many().rest_mut().ws;
        let (slot, was) =
            peers.upsert(req.peer_id, conn, seeder, now, |old| clients.swap(old, key));
        peers.pick(slot, offers, rng, targets);
        let is = seeder.or(was).unwrap_or(false);
        if req.event == Event::Completed && was == Some(false) {
            t.completed = t.completed.saturating_add(1);
            tally.totals.completed += 1;
        }
        tally.arrived(Kind::Ws, was, is);
        Ok(t.stats())
    }

    /// Removes a WebSocket peer if it is on `conn` (its connection closed, or
    /// it stopped). Returns whether it was there.
    pub fn ws_remove(
        &mut self,
        hash: &InfoHash,
        peer: &crate::protocol::PeerId,
        conn: Conn,
    ) -> bool {
        let Some(t) = self.torrents.get_mut_by(hash) else {
            return false;
        };
        let Body::Many(swarm) = &mut t.body else {
            return false;
        };
        let Some(rest) = swarm.rest.as_mut() else {
            return false;
        };
        let Some((seeder, client)) = rest.ws.remove(peer, conn) else {
            return false;
        };
        swarm.trim();
        self.tally.leave(Kind::Ws, seeder, client);
        t.settle(self.keep_ids);
        if t.is_empty() {
            self.tally.totals.active_torrents -= 1;
        }
        true
    }

    /// Remembers that the offer `offer_id` of `from` went to `to`.
    pub fn offer_sent(
        &mut self,
        hash: InfoHash,
        offer_id: [u8; 20],
        from: crate::protocol::PeerId,
        to: crate::protocol::PeerId,
        now: u32,
    ) {
        if self.offers.len() < self.limits.max_offers {
            self.offers
                .insert((hash, offer_id), SentOffer { from, to, at: now });
        }
    }

    /// Where to deliver `answerer`'s answer to offer `offer_id`, which must
    /// be one this tracker relayed from `to` to `answerer` no more than
    /// [`OFFER_TTL`] ago. Each offer is answered once.
    pub fn take_offer(
        &mut self,
        hash: &InfoHash,
        offer_id: &[u8; 20],
        answerer: &crate::protocol::PeerId,
        to: &crate::protocol::PeerId,
        now: u32,
    ) -> Option<Conn> {
        let key = (*hash, *offer_id);
        let o = *self.offers.get(&key)?;
        if o.to != *answerer || o.from != *to {
            return None;
        }
        self.offers.remove(&key);
        if o.at + OFFER_TTL < now {
            return None;
        }
        match &self.torrents.get_by(hash)?.body {
            Body::Many(s) => s.ws()?.conn(to),
            _ => None,
        }
    }

    /// Counts for one torrent; zeros when it is unknown.
    pub fn scrape(&self, hash: &InfoHash) -> ScrapeStats {
        self.torrents
            .get_by(hash)
            .map(Torrent::stats)
            .unwrap_or_default()
    }

    /// Appends every torrent and its counts (a full scrape).
    pub fn scrape_all(&self, out: &mut Vec<(InfoHash, ScrapeStats)>) {
        out.extend(self.torrents.iter().map(|t| (t.hash, t.stats())));
    }

    /// Every torrent with its counts and peers (for the library's
    /// `Server::torrents`; this walks every peer).
    pub fn torrents_info(&self, out: &mut Vec<TorrentInfo>) {
        out.extend(self.torrents.iter().map(|t| {
            let st = t.stats();
            let mut peers = Vec::with_capacity((st.complete + st.incomplete) as usize);
            t.peers_info(&mut peers);
            TorrentInfo {
                info_hash: t.hash,
                complete: st.complete,
                incomplete: st.incomplete,
                downloaded: st.downloaded,
                peers,
            }
        }));
    }

    /// Visits up to `budget` torrents from where the last call stopped,
    /// removing peers not seen for the peer time-to-live, and swarms empty
    /// with no announce for as long. Calling it a slice at a time keeps every request fast; one
    /// full pass takes `torrents() / budget` calls. Returns peers removed.
    pub fn sweep(&mut self, now: u32, budget: usize) -> usize {
        if now != self.offers_swept {
            self.offers_swept = now;
            self.offers.retain(|_, o| o.at + OFFER_TTL >= now);
        }
        let cutoff = now.saturating_sub(self.peer_ttl);
        let mut removed = 0;
        for _ in 0..budget {
            if self.cursor >= self.torrents.len() {
                self.cursor = 0;
                break;
            }
            let t = self.torrents.get_mut(self.cursor);
            let was_active = !t.is_empty();
            removed += t.expire(cutoff, &mut self.tally);
            t.settle(self.keep_ids);
            let empty = t.is_empty();
            if was_active && empty {
                self.tally.totals.active_torrents -= 1;
            }
            if empty && t.last_active < cutoff {
                self.torrents.swap_remove(self.cursor);
            } else {
                self.cursor += 1;
            }
        }
        removed
    }

    /// Heap bytes held by the torrents and their peers (from capacities).
    pub fn heap_bytes(&self) -> usize {
        self.torrents.heap_bytes() + self.torrents.iter().map(Torrent::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PeerId;
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

    fn announce(
        shard: &mut Shard,
        r: &AnnounceRequest,
        ip: IpAddr,
        now: u32,
    ) -> (ScrapeStats, Peers) {
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
}
