//! One torrent and its peers, in the smallest form that holds them: none,
//! one IPv4 peer inline, or a boxed [`Swarm`] of IPv4, IPv6 and WebSocket
//! peers, seeders and leechers apart; and how an announcer joins, picks its
//! peers, leaves and expires.

use super::limits::Want;
use super::peers::{Entry, PeerList};
use super::table::Keyed;
use super::tally::{ClientSlots, Kind, Tally};
use super::views::{peer_addr, PeerInfo};
use super::ws::WsPeers;
use crate::protocol::clients::ClientKey;
use crate::protocol::{compact_v4, compact_v6, InfoHash, PeerId, Peers, ScrapeStats};
use crate::rng::Rng;
use std::net::{IpAddr, SocketAddr};

/// What an announcing peer brings.
pub(super) struct Arrival {
    pub(super) seeder: bool,
    /// It says it completed (counted once per leecher that does).
    pub(super) completed: bool,
    pub(super) now: u32,
    /// Its peer id, when peer ids are kept.
    pub(super) id: Option<PeerId>,
    pub(super) client: ClientKey,
}

/// The peers of one address family of a swarm.
#[derive(Debug, Default)]
pub(super) struct Family<const N: usize> {
    pub(super) peers: PeerList<N>,
}

impl<const N: usize> Family<N> {
    const EMPTY: Self = Family {
        peers: PeerList::EMPTY,
    };

    pub(super) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Inserts or refreshes a peer. Returns whether it was known, and as a
    /// seeder, and its slot.
    pub(super) fn upsert(
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
    pub(super) fn remove(&mut self, key: &[u8; N]) -> Option<(bool, u16)> {
        let slot = self.peers.find(key)?;
        let (e, seeder) = self.peers.remove(slot);
        Some((seeder, e.client))
    }

    /// Picks up to `want` peers for an announcer that is a seeder or not, who
    /// sits in slot `me` when it is of this family. A seeder gets leechers
    /// only; a leecher gets seeders and leechers in proportion. Returns how
    /// many were written.
    pub(super) fn pick(
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

    pub(super) fn expire(&mut self, cutoff: u32, kind: Kind, tally: &mut Tally) -> usize {
        let mut n = 0;
        self.peers.expire(cutoff, |m, seeder| {
            tally.leave(kind, seeder, m.client);
            n += 1;
        });
        n
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.peers.heap_bytes()
    }
}

pub(super) type Ids<'a> = Option<&'a mut Vec<crate::protocol::PeerId>>;

/// Puts the announcer in its own family, then picks its peers: from its own
/// family first, then (when wanted) from the other. Returns whether it was
/// known before, and as a seeder.
pub(super) fn join_and_pick<const N: usize, const M: usize>(
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
pub(super) static NO_V6: Family<18> = Family::EMPTY;

/// The peers of a torrent that has more than one, or an IPv6 or WebSocket
/// one, or whose peer ids are kept: IPv4 and IPv6, seeders and leechers
/// apart.
#[derive(Debug, Default)]
pub(super) struct Swarm {
    pub(super) v4: Family<6>,
    /// IPv6 and WebSocket peers, for the swarms that have any.
    pub(super) rest: Option<Box<Rest>>,
}

/// The peers most swarms have none of.
#[derive(Debug, Default)]
pub(super) struct Rest {
    pub(super) v6: Family<18>,
    pub(super) ws: WsPeers,
}

impl Swarm {
    pub(super) fn v6(&self) -> &Family<18> {
        self.rest.as_deref().map_or(&NO_V6, |r| &r.v6)
    }

    /// The WebSocket peers, if any.
    pub(super) fn ws(&self) -> Option<&WsPeers> {
        self.rest
            .as_deref()
            .map(|r| &r.ws)
            .filter(|w| !w.is_empty())
    }

    pub(super) fn rest_mut(&mut self) -> &mut Rest {
        self.rest.get_or_insert_with(Box::default)
    }

    /// Frees the IPv6 and WebSocket half once it holds no one.
    pub(super) fn trim(&mut self) {
        if self
            .rest
            .as_ref()
            .is_some_and(|r| r.v6.is_empty() && r.ws.is_empty())
        {
            self.rest = None;
        }
    }

    pub(super) fn counts(&self) -> (u32, u32) {
        let (ws_s, ws_l) = self.ws().map_or((0, 0), |w| (w.seeders(), w.leechers()));
        (
            (self.v4.peers.seeders() + self.v6().peers.seeders()) as u32 + ws_s,
            (self.v4.peers.leechers() + self.v6().peers.leechers()) as u32 + ws_l,
        )
    }

    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6().is_empty() && self.ws().is_none()
    }

    pub(super) fn heap_bytes(&self) -> usize {
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
pub(super) struct One {
    pub(super) addr: [u8; 6],
    pub(super) client: u16,
    pub(super) last_seen: u32,
    pub(super) seeder: bool,
}

/// A torrent's peers.
#[derive(Debug)]
pub(super) enum Body {
    Empty,
    One(One),
    Many(Box<Swarm>),
}

/// One torrent: 48 bytes, and a box only when it has more than one peer.
#[derive(Debug)]
pub(super) struct Torrent {
    pub(super) hash: InfoHash,
    pub(super) completed: u32,
    /// Tracker time of the last announce: an empty torrent (and its
    /// `completed` count) is kept until the peer time-to-live has passed.
    pub(super) last_active: u32,
    pub(super) body: Body,
}

impl Keyed for Torrent {
    fn key(&self) -> &InfoHash {
        &self.hash
    }
}

impl Torrent {
    pub(super) fn new(hash: InfoHash) -> Self {
        Torrent {
            hash,
            completed: 0,
            last_active: 0,
            body: Body::Empty,
        }
    }

    pub(super) fn stats(&self) -> ScrapeStats {
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

    pub(super) fn is_empty(&self) -> bool {
        match &self.body {
            Body::Empty => true,
            Body::One(_) => false,
            Body::Many(s) => s.is_empty(),
        }
    }

    /// Whether the peer at `ip` and `port` is here.
    pub(super) fn has(&self, ip: IpAddr, port: u16) -> bool {
        match (&self.body, ip) {
            (Body::One(o), IpAddr::V4(a)) => o.addr == compact_v4(a, port),
            (Body::Many(s), IpAddr::V4(a)) => s.v4.peers.find(&compact_v4(a, port)).is_some(),
            (Body::Many(s), IpAddr::V6(a)) => s.v6().peers.find(&compact_v6(a, port)).is_some(),
            _ => false,
        }
    }

    /// The boxed form of the peers, made from what is there.
    pub(super) fn many(&mut self) -> &mut Swarm {
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
    pub(super) fn settle(&mut self, keep_ids: bool) {
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
    pub(super) fn join(
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
    pub(super) fn leave(&mut self, ip: IpAddr, port: u16) -> Option<(Kind, bool, u16)> {
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
    pub(super) fn expire(&mut self, cutoff: u32, tally: &mut Tally) -> usize {
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
    pub(super) fn peers_info(&self, out: &mut Vec<PeerInfo>) {
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

    pub(super) fn heap_bytes(&self) -> usize {
        match &self.body {
            Body::Many(s) => s.heap_bytes(),
            _ => 0,
        }
    }
}
