//! WebSocket (WebTorrent) peers of a swarm. They are reached through their
//! connection to the tracker, not at an address, so each keeps where that
//! connection lives. They see only each other, but count in the swarm's
//! `complete` and `incomplete` like everyone else.

use crate::protocol::PeerId;
use crate::rng::Rng;

/// Where a WebSocket peer's connection lives: its worker and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conn {
    pub worker: u16,
    pub id: u64,
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    id: PeerId,
    conn: Conn,
    seeder: bool,
    /// Its client and version, as the shard's slot for them.
    client: u16,
    last_seen: u32,
}

/// The WebSocket peers of one swarm.
#[derive(Debug, Default)]
pub struct WsPeers {
    peers: Vec<Peer>,
    seeders: u32,
}

impl WsPeers {
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Bytes this set holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.peers.capacity() * std::mem::size_of::<Peer>()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn seeders(&self) -> u32 {
        self.seeders
    }

    pub fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }

    fn find(&self, id: &PeerId) -> Option<usize> {
        self.peers.iter().position(|p| p.id == *id)
    }

    /// Every peer: its id and whether it seeds.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, bool)> {
        self.peers.iter().map(|p| (&p.id, p.seeder))
    }

    /// The connection of peer `id`.
    pub fn conn(&self, id: &PeerId) -> Option<Conn> {
        self.find(id).map(|i| self.peers[i].conn)
    }

    /// Adds or refreshes a peer; `seeder: None` keeps a known peer's state
    /// (a new one is a leecher). `client` turns the peer's client slot (none
    /// when new) into the one it has now. Returns its slot and whether it
    /// was known, and as a seeder.
    pub fn upsert(
        &mut self,
        id: PeerId,
        conn: Conn,
        seeder: Option<bool>,
        now: u32,
        client: impl FnOnce(Option<u16>) -> u16,
    ) -> (usize, Option<bool>) {
        match self.find(&id) {
            Some(i) => {
                let p = &mut self.peers[i];
                let was = p.seeder;
                p.client = client(Some(p.client));
                p.seeder = seeder.unwrap_or(was);
                p.conn = conn;
                p.last_seen = now;
                if was != p.seeder {
                    if p.seeder {
                        self.seeders += 1;
                    } else {
                        self.seeders -= 1;
                    }
                }
                (i, Some(was))
            }
            None => {
                let seeder = seeder.unwrap_or(false);
                self.peers.push(Peer {
                    id,
                    conn,
                    seeder,
                    client: client(None),
                    last_seen: now,
                });
                self.seeders += seeder as u32;
                (self.peers.len() - 1, None)
            }
        }
    }

    /// Removes peer `id` if it is on connection `conn` (a reconnected peer
    /// is on a newer one and stays). Returns whether it was a seeder, and
    /// its client slot.
    pub fn remove(&mut self, id: &PeerId, conn: Conn) -> Option<(bool, u16)> {
        let i = self.find(id).filter(|&i| self.peers[i].conn == conn)?;
        let p = self.peers.swap_remove(i);
        self.seeders -= p.seeder as u32;
        Some((p.seeder, p.client))
    }

    /// Appends up to `n` distinct peers other than the one in `skip`, from a
    /// random start.
    pub fn pick(&self, skip: usize, n: usize, rng: &mut Rng, out: &mut Vec<(PeerId, Conn)>) {
        let len = self.peers.len();
        if len <= 1 || n == 0 {
            return;
        }
        let start = rng.below(len);
        out.extend(
            (0..len)
                .map(|k| (start + k) % len)
                .filter(|&i| i != skip)
                .take(n)
                .map(|i| (self.peers[i].id, self.peers[i].conn)),
        );
    }

    /// Drops peers not seen since `cutoff`, telling `gone` about each (its
    /// id, whether it was a seeder, and its client slot).
    pub fn expire(&mut self, cutoff: u32, mut gone: impl FnMut(&PeerId, bool, u16)) {
        self.peers.retain(|p| {
            let keep = p.last_seen >= cutoff;
            if !keep {
                gone(&p.id, p.seeder, p.client);
            }
            keep
        });
        self.seeders = self.peers.iter().filter(|p| p.seeder).count() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: u64) -> Conn {
        Conn { worker: 0, id }
    }

    #[test]
    fn upsert_keeps_state_when_not_told() {
        let mut w = WsPeers::default();
        assert_eq!(
            w.upsert(PeerId([1; 20]), conn(1), Some(true), 0, |_| 0),
            (0, None)
        );
        assert_eq!(
            w.upsert(PeerId([1; 20]), conn(1), None, 5, |_| 0),
            (0, Some(true))
        );
        assert_eq!((w.seeders(), w.leechers()), (1, 0));
        w.upsert(PeerId([1; 20]), conn(1), Some(false), 6, |_| 0);
        assert_eq!((w.seeders(), w.leechers()), (0, 1));
    }

    #[test]
    fn remove_only_from_the_same_connection() {
        let mut w = WsPeers::default();
        w.upsert(PeerId([1; 20]), conn(1), Some(false), 0, |_| 0);
        w.upsert(PeerId([1; 20]), conn(2), None, 0, |_| 0); // reconnected
        assert_eq!(w.remove(&PeerId([1; 20]), conn(1)), None);
        assert_eq!(w.conn(&PeerId([1; 20])), Some(conn(2)));
        assert_eq!(w.remove(&PeerId([1; 20]), conn(2)), Some((false, 0)));
        assert!(w.is_empty());
    }

    #[test]
    fn pick_skips_the_announcer_and_never_repeats() {
        let mut w = WsPeers::default();
        for i in 0..5u8 {
            w.upsert(PeerId([i; 20]), conn(i as u64), Some(false), 0, |_| 0);
        }
        let mut rng = Rng::new(3);
        for n in 0..7 {
            let mut out = Vec::new();
            w.pick(2, n, &mut rng, &mut out);
            assert_eq!(out.len(), n.min(4));
            assert!(out.iter().all(|(id, _)| id.0[0] != 2));
            let mut ids: Vec<u8> = out.iter().map(|p| p.0 .0[0]).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), out.len());
        }
        let mut gone = Vec::new();
        w.expire(1, |id, seeder, _| gone.push((id.0[0], seeder)));
        gone.sort();
        assert_eq!(gone, (0..5).map(|i| (i, false)).collect::<Vec<_>>());
        assert!(w.is_empty());
    }
}
