//! Peer storage in compact wire form: an array of `N`-byte entries (6 for
//! IPv4, 18 for IPv6) that a reply copies from in at most a few contiguous runs.

use crate::protocol::PeerId;
use std::collections::HashMap;

/// Lists longer than this get a hash index from key to slot; shorter ones
/// are scanned, which is faster for them and costs no memory.
const INDEX_FROM: usize = 48;
/// An index is dropped again when a list shrinks below this.
const INDEX_UNTIL: usize = 24;

/// What is kept of a peer besides its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerMeta {
    pub peer_id: PeerId,
    /// Coarse tracker time (seconds) of its last announce.
    pub last_seen: u32,
}

type Index<const N: usize> = HashMap<[u8; N], u32, ahash::RandomState>;

/// Peers of one kind (say, IPv4 seeders) of one swarm. The key of a peer is
/// its wire form: address and announced port.
#[derive(Debug, Default)]
pub struct PeerList<const N: usize> {
    addrs: Vec<[u8; N]>,
    meta: Vec<PeerMeta>,
    index: Option<Box<Index<N>>>,
}

impl<const N: usize> PeerList<N> {
    /// An empty list (usable in constants).
    pub const EMPTY: Self = PeerList {
        addrs: Vec::new(),
        meta: Vec::new(),
        index: None,
    };

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The slot of `key`, if present.
    #[inline]
    pub fn find(&self, key: &[u8; N]) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).map(|&i| i as usize),
            None => self.addrs.iter().position(|a| a == key),
        }
    }

    pub fn meta_mut(&mut self, slot: usize) -> &mut PeerMeta {
        &mut self.meta[slot]
    }

    pub fn addr(&self, slot: usize) -> &[u8; N] {
        &self.addrs[slot]
    }

    /// Appends a peer (the caller has checked it is absent); returns its slot.
    pub fn push(&mut self, key: [u8; N], meta: PeerMeta) -> usize {
        let slot = self.addrs.len();
        // Most swarms hold a peer or two: grow one slot at a time while small
        // rather than jumping to the allocator's minimum of four.
        if slot < 4 && slot == self.addrs.capacity() {
            self.addrs.reserve_exact(1);
            self.meta.reserve_exact(1);
        }
        self.addrs.push(key);
        self.meta.push(meta);
        match &mut self.index {
            Some(ix) => {
                ix.insert(key, slot as u32);
            }
            None if self.addrs.len() > INDEX_FROM => {
                let mut ix = Index::<N>::with_capacity_and_hasher(
                    self.addrs.len() * 2,
                    ahash::RandomState::new(),
                );
                ix.extend(self.addrs.iter().enumerate().map(|(i, a)| (*a, i as u32)));
                self.index = Some(Box::new(ix));
            }
            None => {}
        }
        slot
    }

    /// Removes the peer in `slot` by swapping the last one into its place.
    pub fn remove(&mut self, slot: usize) -> PeerMeta {
        let key = self.addrs.swap_remove(slot);
        let meta = self.meta.swap_remove(slot);
        if let Some(ix) = &mut self.index {
            ix.remove(&key);
            if slot < self.addrs.len() {
                ix.insert(self.addrs[slot], slot as u32);
            }
            if self.addrs.len() < INDEX_UNTIL {
                self.index = None;
            }
        }
        if self.addrs.capacity() > 16 && self.addrs.len() < self.addrs.capacity() / 4 {
            self.addrs.shrink_to(self.addrs.len() * 2);
            self.meta.shrink_to(self.meta.len() * 2);
        }
        meta
    }

    /// Removes every peer last seen before `cutoff`; returns how many.
    pub fn expire(&mut self, cutoff: u32) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.meta.len() {
            if self.meta[i].last_seen < cutoff {
                self.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Copies `count` peers, skipping `skip`, from the circular window that
    /// starts at `start`: at most two runs (three around a skipped slot),
    /// copied whole. `count` must not exceed the peers available once `skip`
    /// is left out.
    pub fn copy_out(
        &self,
        start: usize,
        count: usize,
        skip: Option<usize>,
        out: &mut Vec<u8>,
        ids: Option<&mut Vec<PeerId>>,
    ) {
        let len = self.addrs.len();
        if count == 0 || len == 0 {
            return;
        }
        let start = start % len;
        let in_window = |s: usize, w: usize| {
            let end = start + w;
            (s >= start && s < end) || (end > len && s < end - len)
        };
        let window = match skip {
            Some(s) if in_window(s, count) => count + 1,
            _ => count,
        };
        debug_assert!(window <= len);
        let first = start..(start + window).min(len);
        let second = 0..(start + window).saturating_sub(len);
        let mut ids = ids;
        for run in [first, second] {
            for part in split_around(run, skip) {
                if part.is_empty() {
                    continue;
                }
                out.extend_from_slice(self.addrs[part.clone()].as_flattened());
                if let Some(ids) = ids.as_deref_mut() {
                    ids.extend(self.meta[part].iter().map(|m| m.peer_id));
                }
            }
        }
    }

    /// Bytes this list holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.addrs.capacity() * N
            + self.meta.capacity() * std::mem::size_of::<PeerMeta>()
            + self.index.as_ref().map_or(0, |ix| {
                std::mem::size_of::<Index<N>>() + ix.capacity() * (N + 4 + 1) * 8 / 7
            })
    }
}

fn split_around(run: std::ops::Range<usize>, skip: Option<usize>) -> [std::ops::Range<usize>; 2] {
    match skip {
        Some(s) if run.contains(&s) => [run.start..s, s + 1..run.end],
        _ => [run, 0..0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: u32) -> PeerMeta {
        PeerMeta {
            peer_id: PeerId([t as u8; 20]),
            last_seen: t,
        }
    }

    fn list(n: u8) -> PeerList<6> {
        let mut l = PeerList::default();
        for i in 0..n {
            l.push([i; 6], meta(i as u32));
        }
        l
    }

    fn picked(l: &PeerList<6>, start: usize, count: usize, skip: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        l.copy_out(start, count, skip, &mut out, None);
        out.chunks(6).map(|c| c[0]).collect()
    }

    #[test]
    fn copies_wrapping_runs_and_skips() {
        let l = list(5);
        assert_eq!(picked(&l, 3, 4, None), vec![3, 4, 0, 1]);
        assert_eq!(picked(&l, 3, 4, Some(4)), vec![3, 0, 1, 2]);
        assert_eq!(picked(&l, 3, 4, Some(0)), vec![3, 4, 1, 2]);
        assert_eq!(picked(&l, 0, 4, Some(2)), vec![0, 1, 3, 4]);
        assert_eq!(picked(&l, 1, 4, Some(0)), vec![1, 2, 3, 4]);
        assert_eq!(picked(&l, 2, 2, Some(0)), vec![2, 3]);
        assert_eq!(picked(&l, 7, 1, None), vec![2]);
        // ids follow the addresses
        let mut out = Vec::new();
        let mut ids = Vec::new();
        l.copy_out(4, 2, None, &mut out, Some(&mut ids));
        assert_eq!(ids, vec![PeerId([4; 20]), PeerId([0; 20])]);
    }

    #[test]
    fn every_start_and_skip_gives_distinct_peers_without_the_skipped_one() {
        for n in 1..8u8 {
            let l = list(n);
            for start in 0..n as usize {
                for skip in (0..n as usize).map(Some).chain([None]) {
                    let avail = n as usize - skip.is_some() as usize;
                    for count in 0..=avail {
                        let got = picked(&l, start, count, skip);
                        assert_eq!(got.len(), count);
                        let mut d = got.clone();
                        d.sort();
                        d.dedup();
                        assert_eq!(d.len(), count);
                        if let Some(s) = skip {
                            assert!(!got.contains(&(s as u8)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn index_kept_in_step_through_growth_and_removal() {
        let mut l = PeerList::<6>::default();
        for i in 0..200u8 {
            l.push([i, 0, 0, 0, 0, 1], meta(i as u32));
        }
        assert!(l.index.is_some());
        for i in (0..200u8).step_by(3) {
            let s = l.find(&[i, 0, 0, 0, 0, 1]).unwrap();
            l.remove(s);
        }
        for i in 0..200u8 {
            let found = l.find(&[i, 0, 0, 0, 0, 1]);
            assert_eq!(found.is_some(), i % 3 != 0, "{i}");
            if let Some(s) = found {
                assert_eq!(l.addr(s)[0], i);
            }
        }
        // 133 left; those seen before 190 go: 190 minus the 64 multiples of 3 below it.
        assert_eq!(l.expire(190), 126);
        assert_eq!(l.len(), 7);
        assert!(l.index.is_none());
        for s in 0..l.len() {
            assert_eq!(l.find(l.addr(s)), Some(s));
        }
    }
}
