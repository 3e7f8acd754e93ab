//! Looking ahead in a batch: the cache lines the announces and scrapes of
//! a UDP batch will read, loaded in passes so that their misses overlap.

use super::hashing::{hash_of, prefetch};
use super::table::Table;
use super::torrent::{Body, Rest, Swarm, Torrent};
use crate::protocol::InfoHash;

/// What `Shard::prefetch` looks ahead at: a request's (first) info hash
/// and, for an announce from IPv4, the peer's address and port in wire form.
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    pub info_hash: InfoHash,
    pub peer: Option<[u8; 6]>,
}

/// Starts loading what the announces and scrapes of a batch will read:
/// the index slot, the torrent, its swarm, and in the list that a reply
/// to `v6` or IPv4 copies from, where the announcing IPv4 peer is (or
/// would be) found. Each is a cache miss at a million torrents, and each
/// needs the one before, so one announce pays them one after another; in
/// passes over a batch they overlap, a pass each. A hint: nothing
/// changes, and a wrong guess costs a wasted load.
pub(super) fn batch(table: &Table<Torrent>, batch: &[Ahead], v6: bool) {
    const MAX: usize = 64;
    let batch = &batch[..batch.len().min(MAX)];
    let mut hashes = [0u64; MAX];
    for (a, h) in batch.iter().zip(&mut hashes) {
        *h = hash_of(&a.info_hash.0);
        table.prefetch_slot(*h);
    }
    let mut torrents = [None; MAX];
    for (h, t) in hashes.iter().zip(&mut torrents[..batch.len()]) {
        *t = table.prefetch_entry(*h);
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
