//! Tracker state, pure data: no sockets, no executor, no clock. Each worker
//! owns one [`Shard`]: the swarms of the info hashes that map to it.
//!
//! Memory is the point of the layout. A torrent is a 48-byte entry in a
//! [`table::Table`]: its info hash, downloads, last announce, and its peers:
//! none, one IPv4 peer inline (most torrents of a public tracker have one),
//! or a boxed swarm ([`torrent`]). A peer is its wire-form address, its last
//! announce and a 2-byte client slot; its 20-byte peer id is kept only when
//! the operator asks for it (`peer_ids`), since only non-compact HTTP
//! replies carry it.
//!
//! The files, each one idea: [`limits`] (what a shard may hold, what a reply
//! wants), [`torrent`] (a torrent's forms and its peers' arrivals and
//! departures), [`tally`] (running counts), [`offers`] (relayed WebRTC
//! offers), [`prefetch`] (looking ahead in a batch), [`views`] (what the
//! library shows), [`state`] (the state file's records), and below them the
//! containers: [`table`] (torrents by info hash), [`index`] (the open
//! addressing index both use), [`peers`] (a swarm's peer lists), [`ws`]
//! (WebSocket peers), [`hashing`] (keyed hashes and cache prefetch).

pub mod hashing;
pub mod index;
pub mod limits;
pub mod offers;
pub mod peers;
pub mod prefetch;
pub mod state;
pub mod table;
pub mod tally;
#[cfg(test)]
mod tests;
mod torrent;
pub mod views;
pub mod ws;

pub use limits::{numwant, Full, ShardLimits, Want};
pub use offers::OFFER_TTL;
pub use prefetch::Ahead;
pub use tally::Totals;
pub use views::{PeerInfo, TorrentInfo};

use crate::protocol::clients::ClientKey;
use crate::protocol::{canonical_ip, AnnounceRequest, Event, InfoHash, PeerId, Peers, ScrapeStats};
use crate::rng::Rng;
use offers::Offers;
use std::net::{IpAddr, SocketAddr};
use table::Table;
use tally::{Kind, Tally};
use torrent::{Arrival, Body, Torrent};
use ws::Conn;

/// The swarms owned by one worker.
pub struct Shard {
    torrents: Table<Torrent>,
    peer_ttl: u32,
    limits: ShardLimits,
    keep_ids: bool,
    rng: Rng,
    cursor: usize,
    tally: Tally,
    offers: Offers,
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
            offers: Offers::default(),
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
        from: PeerId,
        to: PeerId,
        now: u32,
    ) {
        self.offers
            .sent((hash, offer_id), from, to, now, self.limits.max_offers);
    }

    /// Where to deliver `answerer`'s answer to offer `offer_id`, which must
    /// be one this tracker relayed from `to` to `answerer` no more than
    /// [`OFFER_TTL`] ago. Each offer is answered once.
    pub fn take_offer(
        &mut self,
        hash: &InfoHash,
        offer_id: &[u8; 20],
        answerer: &PeerId,
        to: &PeerId,
        now: u32,
    ) -> Option<Conn> {
        if !self.offers.take((*hash, *offer_id), answerer, to, now) {
            return None;
        }
        match &self.torrents.get_by(hash)?.body {
            Body::Many(s) => s.ws()?.conn(to),
            _ => None,
        }
    }

    /// Starts loading the index slot where a lookup of `hash` begins: an
    /// HTTP announce asks as soon as its info_hash is read, and the rest of
    /// its query is parsed while the slot loads.
    #[inline]
    pub fn prefetch_torrent(&self, hash: &InfoHash) {
        self.torrents.prefetch_slot(hashing::hash_of(&hash.0));
    }

    /// Starts loading what the announces and scrapes of a batch will read
    /// (see [`prefetch`]).
    pub fn prefetch(&self, batch: &[Ahead], v6: bool) {
        prefetch::batch(&self.torrents, batch, v6);
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

    /// Appends the counts of up to `max` torrents from position `at` (a
    /// full scrape a slice at a time); the position to go on from, or
    /// `None` once every torrent was visited. Torrents removed or moved
    /// between slices may be missed or seen twice.
    pub fn scrape_slice(
        &self,
        at: usize,
        max: usize,
        out: &mut Vec<(InfoHash, ScrapeStats)>,
    ) -> Option<usize> {
        let end = at.saturating_add(max).min(self.torrents.len());
        for i in at..end {
            let t = self.torrents.get(i);
            out.push((t.hash, t.stats()));
        }
        (end < self.torrents.len()).then_some(end)
    }

    /// Visits up to `budget` torrents from where the last call stopped,
    /// removing peers not seen for the peer time-to-live, and swarms empty
    /// with no announce for as long. Calling it a slice at a time keeps every request fast; one
    /// full pass takes `torrents() / budget` calls. Returns peers removed.
    pub fn sweep(&mut self, now: u32, budget: usize) -> usize {
        self.offers.sweep(now);
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
