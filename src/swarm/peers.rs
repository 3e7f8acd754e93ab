//! Peer storage: one array of entries per address family (address and
//! port in wire form, client slot, last announce: 12 bytes for IPv4, 24 for
//! IPv6), partitioned: seeders in `[0, s)`, leechers in `[s, len)`. A reply
//! copies from either region in at most a few runs; a peer changes class by
//! one swap across the boundary.

use super::hashing::{hash_of, prefetch};
use super::index::Index;
use crate::protocol::PeerId;
use std::ops::Range;

/// Lists longer than this get a hash index from key to slot; shorter ones
/// are scanned, which is faster for them and costs no memory.
const INDEX_FROM: usize = 48;
/// An index is dropped again when a list shrinks below this.
const INDEX_UNTIL: usize = 24;

/// One peer: its key (address and port in wire form) and what is kept of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<const N: usize> {
    pub addr: [u8; N],
    /// Its client and version, as the shard's slot for them (see `Tally`).
    pub client: u16,
    /// Coarse tracker time (seconds) of its last announce.
    pub last_seen: u32,
}

/// What only some lists need, boxed so that the others pay 8 bytes for it.
#[derive(Debug, Default)]
struct Extra {
    /// Slots by key.
    index: Option<Index>,
    /// Peer ids beside the entries, when the tracker keeps them.
    ids: Vec<PeerId>,
}

/// The peers of one address family of one swarm: 40 bytes and one array.
/// Peer ids are kept only when the tracker is told to; replies need none
/// of them but the rare non-compact HTTP one.
#[derive(Debug, Default)]
pub struct PeerList<const N: usize> {
    entries: Vec<Entry<N>>,
    extra: Option<Box<Extra>>,
    seeders: u32,
}

impl<const N: usize> PeerList<N> {
    /// An empty list (usable in constants).
    pub const EMPTY: Self = PeerList {
        entries: Vec::new(),
        extra: None,
        seeders: 0,
    };

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn seeders(&self) -> usize {
        self.seeders as usize
    }

    pub fn leechers(&self) -> usize {
        self.entries.len() - self.seeders as usize
    }

    /// Slots of the seeders.
    pub fn seeder_slots(&self) -> Range<usize> {
        0..self.seeders as usize
    }

    /// Slots of the leechers.
    pub fn leecher_slots(&self) -> Range<usize> {
        self.seeders as usize..self.entries.len()
    }

    pub fn is_seeder(&self, slot: usize) -> bool {
        slot < self.seeders as usize
    }

    fn index(&self) -> Option<&Index> {
        self.extra.as_ref()?.index.as_ref()
    }

    fn ids(&self) -> &[PeerId] {
        self.extra.as_ref().map_or(&[], |x| &x.ids)
    }

    /// Step `step` (0, 1, 2) of loading what a lookup of `key` reads, each
    /// best once the one before has landed (see `Shard::prefetch`): the
    /// boxed extras, or for a list without an index the first two cache
    /// lines of entries, where a scan starts (ten IPv4 peers, five IPv6);
    /// then the key's index slot; then the entry that slot names.
    #[inline]
    pub fn prefetch(&self, step: u8, key: &[u8; N]) {
        match (step, &self.extra, self.index()) {
            (0, Some(x), _) => prefetch::<Extra>(&**x),
            (0, None, _) if !self.entries.is_empty() => {
                let p = self.entries.as_ptr().cast::<u8>();
                prefetch(p);
                prefetch(p.wrapping_add(64));
            }
            (1, _, Some(ix)) => ix.prefetch(hash_of(key)),
            (2, _, Some(ix)) => {
                if let Some(e) = ix
                    .likely(hash_of(key))
                    .and_then(|p| self.entries.get(p as usize))
                {
                    prefetch(e);
                }
            }
            _ => {}
        }
    }

    /// The slot of `key`, if present.
    #[inline]
    pub fn find(&self, key: &[u8; N]) -> Option<usize> {
        match self.index() {
            Some(ix) => {
                let e = &self.entries;
                ix.find(hash_of(key), |i| e[i as usize].addr == *key)
                    .map(|i| i as usize)
            }
            None => self.entries.iter().position(|e| e.addr == *key),
        }
    }

    pub fn entry_mut(&mut self, slot: usize) -> &mut Entry<N> {
        &mut self.entries[slot]
    }

    /// Sets the peer id of `slot`, when peer ids are kept.
    pub fn set_id(&mut self, slot: usize, id: PeerId) {
        if let Some(i) = self.extra.as_mut().and_then(|x| x.ids.get_mut(slot)) {
            *i = id;
        }
    }

    pub fn addr(&self, slot: usize) -> &[u8; N] {
        &self.entries[slot].addr
    }

    /// Swaps two slots, their peer ids and their index entries.
    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.entries.swap(a, b);
        let Some(x) = self.extra.as_mut() else {
            return;
        };
        if !x.ids.is_empty() {
            x.ids.swap(a, b);
        }
        if let Some(ix) = &mut x.index {
            // The key now in `a` was indexed at `b`, and the other way round.
            let e = &self.entries;
            ix.swap(hash_of(&e[b].addr), a as u32, hash_of(&e[a].addr), b as u32);
        }
    }

    /// Adds a peer (the caller has checked it is absent), with its peer id
    /// when ids are kept; returns its slot.
    pub fn insert(&mut self, entry: Entry<N>, seeder: bool, id: Option<PeerId>) -> usize {
        let slot = self.entries.len();
        // Small swarms grow one slot at a time rather than jumping to the
        // allocator's minimum of four; bigger ones by half, not double,
        // which leaves a quarter of the slack.
        if slot == self.entries.capacity() {
            self.entries
                .reserve_exact(if slot < 4 { 1 } else { slot / 2 });
        }
        self.entries.push(entry);
        let (e, len) = (&self.entries, slot + 1);
        if id.is_some() || self.extra.as_ref().is_some_and(|x| !x.ids.is_empty()) {
            // Kept ids run beside the entries; a peer without one (restored
            // from a file without them) gets zeros.
            let ids = &mut self.extra.get_or_insert_with(Box::default).ids;
            ids.resize(slot, PeerId::default());
            ids.push(id.unwrap_or_default());
        }
        match self.extra.as_mut().and_then(|x| x.index.as_mut()) {
            Some(ix) => {
                ix.insert(hash_of(&entry.addr), slot as u32, |i| {
                    hash_of(&e[i as usize].addr)
                });
            }
            None if len > INDEX_FROM => {
                let mut ix = Index::with_capacity(len);
                for (i, en) in e.iter().enumerate() {
                    ix.insert(hash_of(&en.addr), i as u32, |i| {
                        hash_of(&e[i as usize].addr)
                    });
                }
                self.extra.get_or_insert_with(Box::default).index = Some(ix);
            }
            None => {}
        }
        if seeder {
            self.make_seeder(slot)
        } else {
            slot
        }
    }

    /// Moves a leecher into the seeders; returns its new slot.
    fn make_seeder(&mut self, slot: usize) -> usize {
        let to = self.seeders as usize;
        self.swap(slot, to);
        self.seeders += 1;
        to
    }

    /// Makes the peer in `slot` a seeder or a leecher; returns its slot then.
    pub fn set_seeder(&mut self, slot: usize, seeder: bool) -> usize {
        match (self.is_seeder(slot), seeder) {
            (false, true) => self.make_seeder(slot),
            (true, false) => {
                let last = self.seeders as usize - 1;
                self.swap(slot, last);
                self.seeders -= 1;
                last
            }
            _ => slot,
        }
    }

    /// Removes the peer in `slot`; returns it and whether it was a seeder.
    pub fn remove(&mut self, slot: usize) -> (Entry<N>, bool) {
        let seeder = self.is_seeder(slot);
        let slot = self.set_seeder(slot, false);
        // Now a leecher: the last slot takes its place.
        let last = self.entries.len() - 1;
        self.swap(slot, last);
        let gone = self.entries.pop().expect("a peer in that slot");
        let len = self.entries.len();
        if let Some(x) = self.extra.as_mut() {
            x.ids.truncate(len);
            if len < INDEX_UNTIL {
                x.index = None;
            } else if let Some(ix) = &mut x.index {
                ix.remove(hash_of(&gone.addr), last as u32);
            }
            if x.index.is_none() && x.ids.is_empty() {
                self.extra = None;
            }
        }
        if self.entries.capacity() > 16 && len < self.entries.capacity() / 4 {
            self.entries.shrink_to(len * 2);
            if let Some(x) = self.extra.as_mut() {
                x.ids.shrink_to(len * 2);
            }
        }
        (gone, seeder)
    }

    /// Removes every peer last seen before `cutoff`, telling `gone` about
    /// each (the peer, and whether it was a seeder).
    pub fn expire(&mut self, cutoff: u32, mut gone: impl FnMut(&Entry<N>, bool)) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].last_seen < cutoff {
                // Removal only moves peers from slots after `i` into `i` or
                // later, so slot `i` is looked at again and none is skipped.
                let (e, seeder) = self.remove(i);
                gone(&e, seeder);
            } else {
                i += 1;
            }
        }
    }

    /// Every peer, and whether it seeds.
    pub fn iter(&self) -> impl Iterator<Item = (&Entry<N>, bool)> {
        let s = self.seeders as usize;
        self.entries
            .iter()
            .enumerate()
            .map(move |(i, e)| (e, i < s))
    }

    /// The peer id of `slot`, when ids are kept.
    pub fn id(&self, slot: usize) -> Option<&PeerId> {
        self.ids().get(slot)
    }

    /// Copies `count` peers of the slots in `region`, skipping slot `skip`,
    /// from the circular window of the region that starts at `start`: at
    /// most two runs (three around a skipped slot). `count` must not exceed
    /// the peers available once `skip` is left out.
    pub fn copy_out(
        &self,
        region: Range<usize>,
        start: usize,
        count: usize,
        skip: Option<usize>,
        out: &mut Vec<u8>,
        ids: Option<&mut Vec<PeerId>>,
    ) {
        let (base, len) = (region.start, region.len());
        if count == 0 || len == 0 {
            return;
        }
        let start = start % len;
        let skip = skip.filter(|s| region.contains(s)).map(|s| s - base);
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
        out.reserve(count * N);
        let mut ids = ids;
        for run in [first, second] {
            for part in split_around(run, skip) {
                if part.is_empty() {
                    continue;
                }
                let part = part.start + base..part.end + base;
                for e in &self.entries[part.clone()] {
                    out.extend_from_slice(&e.addr);
                }
                if let Some(ids) = ids.as_deref_mut() {
                    if let Some(kept) = self.ids().get(part) {
                        ids.extend_from_slice(kept);
                    }
                }
            }
        }
    }

    /// Bytes this list holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<N>>()
            + self.extra.as_ref().map_or(0, |x| {
                std::mem::size_of::<Extra>()
                    + x.ids.capacity() * 20
                    + x.index.as_ref().map_or(0, Index::heap_bytes)
            })
    }
}

fn split_around(run: Range<usize>, skip: Option<usize>) -> [Range<usize>; 2] {
    match skip {
        Some(s) if run.contains(&s) => [run.start..s, s + 1..run.end],
        _ => [run, 0..0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: [u8; 6], t: u32) -> Entry<6> {
        Entry {
            addr: k,
            client: 0,
            last_seen: t,
        }
    }

    fn leechers(n: u8) -> PeerList<6> {
        let mut l = PeerList::default();
        for i in 0..n {
            l.insert(entry([i; 6], i as u32), false, Some(PeerId([i; 20])));
        }
        l
    }

    fn picked(l: &PeerList<6>, start: usize, count: usize, skip: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        l.copy_out(l.leecher_slots(), start, count, skip, &mut out, None);
        out.chunks(6).map(|c| c[0]).collect()
    }

    /// Every key is found at its slot, and the seeders are exactly the first slots.
    fn consistent(l: &PeerList<6>, seeders: &[u8]) {
        for s in 0..l.len() {
            assert_eq!(l.find(l.addr(s)), Some(s));
            assert_eq!(l.is_seeder(s), seeders.contains(&l.addr(s)[0]), "slot {s}");
            if let Some(id) = l.id(s) {
                assert_eq!(id.0[0], l.addr(s)[0], "the peer id follows its peer");
            }
        }
        assert_eq!(
            l.seeders(),
            seeders
                .iter()
                .filter(|k| l.find(&[**k; 6]).is_some())
                .count()
        );
    }

    #[test]
    fn copies_wrapping_runs_and_skips() {
        let l = leechers(5);
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
        l.copy_out(l.leecher_slots(), 4, 2, None, &mut out, Some(&mut ids));
        assert_eq!(ids, vec![PeerId([4; 20]), PeerId([0; 20])]);
    }

    #[test]
    fn regions_are_copied_apart() {
        let mut l = leechers(4);
        l.set_seeder(l.find(&[2; 6]).unwrap(), true);
        l.set_seeder(l.find(&[0; 6]).unwrap(), true);
        consistent(&l, &[0, 2]);
        let mut out = Vec::new();
        l.copy_out(l.seeder_slots(), 0, 2, None, &mut out, None);
        let mut s: Vec<u8> = out.chunks(6).map(|c| c[0]).collect();
        s.sort();
        assert_eq!(s, vec![0, 2]);
        out.clear();
        let me = l.find(&[1; 6]);
        l.copy_out(l.leecher_slots(), 0, 1, me, &mut out, None);
        assert_eq!(out[0], 3, "the other leecher, not the one skipped");
    }

    #[test]
    fn every_start_and_skip_gives_distinct_peers_without_the_skipped_one() {
        for n in 1..8u8 {
            let l = leechers(n);
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
    fn classes_stay_partitioned_through_moves_and_removals() {
        // A fixed pseudo-random sequence of inserts, class changes and
        // removals, over few keys (the list crosses the index bounds) and
        // many (its index grows, rebuilds and keeps tombstones).
        for keys in [120, 256] {
            partitioned_through(keys);
        }
    }

    fn partitioned_through(keys: u32) {
        let mut l = PeerList::<6>::default();
        let mut seeders: Vec<u8> = Vec::new();
        let mut present: Vec<u8> = Vec::new();
        let mut x = 7u32;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let k = ((x >> 16) % keys) as u8;
            let op = (x >> 8) % 3;
            for step in 0..3 {
                l.prefetch(step, &[k; 6]);
            }
            match (l.find(&[k; 6]), op) {
                (None, _) => {
                    let seed = op == 0;
                    l.insert(entry([k; 6], k as u32), seed, Some(PeerId([k; 20])));
                    present.push(k);
                    if seed {
                        seeders.push(k);
                    }
                }
                (Some(s), 0) => {
                    let (_, was) = l.remove(s);
                    assert_eq!(was, seeders.contains(&k));
                    present.retain(|&p| p != k);
                    seeders.retain(|&p| p != k);
                }
                (Some(s), _) => {
                    let seed = !l.is_seeder(s);
                    let s = l.set_seeder(s, seed);
                    assert_eq!(l.addr(s)[0], k);
                    if seed {
                        seeders.push(k);
                    } else {
                        seeders.retain(|&p| p != k);
                    }
                }
            }
            assert_eq!(l.len(), present.len());
            consistent(&l, &seeders);
        }
    }

    #[test]
    fn index_kept_in_step_through_growth_and_expiry() {
        let mut l = PeerList::<6>::default();
        for i in 0..200u8 {
            l.insert(entry([i, 0, 0, 0, 0, 1], i as u32), i % 2 == 0, None);
        }
        assert!(l.index().is_some());
        assert_eq!((l.seeders(), l.leechers()), (100, 100));
        // Seen before 190: all but 190..199 go; 5 seeders and 5 leechers stay.
        let mut gone = (0, 0);
        l.expire(190, |m, seeder| {
            assert!(m.last_seen < 190);
            if seeder {
                gone.0 += 1
            } else {
                gone.1 += 1
            }
        });
        assert_eq!(gone, (95, 95));
        assert_eq!((l.seeders(), l.leechers()), (5, 5));
        assert!(l.extra.is_none(), "no index and no ids: nothing boxed");
        for s in 0..l.len() {
            assert_eq!(l.find(l.addr(s)), Some(s));
            assert_eq!(l.is_seeder(s), l.addr(s)[0] % 2 == 0);
        }
    }
}
