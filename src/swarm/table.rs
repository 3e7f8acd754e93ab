//! The torrents of a shard: a dense array of fixed-size entries, kept in
//! segments so that growing never copies the whole, and a hash index of
//! 4-byte slots into it. Per torrent that is the entry itself and 5–11
//! bytes of index, where a map of keys to values pays a stored hash, a
//! `usize` index and the slack of a doubling vector.
//!
//! Positions are dense (`0..len`), so a sweep or a save can walk them a
//! slice at a time; removal moves the last entry into the hole.
//!
//! The index is an [`Index`]: a lookup reads one slot, then the entry it
//! names, and a batch can fetch all of its slots, then all of its entries,
//! ahead of the work ([`Table::prefetch_slot`], [`Table::prefetch_entry`]).

use super::hashing::{hash_of, prefetch};
use super::index::Index;
use crate::protocol::InfoHash;

/// Entries per segment: 4096 (a few hundred KiB each).
const SHIFT: u32 = 12;
const SEG: usize = 1 << SHIFT;
const MASK: usize = SEG - 1;

/// What a [`Table`] holds: anything with an info hash.
pub trait Keyed {
    fn key(&self) -> &InfoHash;
}

pub struct Table<T> {
    index: Index,
    segs: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            index: Index::default(),
            segs: Vec::new(),
            len: 0,
        }
    }
}

#[inline]
fn at<T>(segs: &[Vec<T>], i: usize) -> &T {
    &segs[i >> SHIFT][i & MASK]
}

impl<T: Keyed> Table<T> {
    /// A table with room for `n` entries in its index.
    pub fn with_capacity(n: usize) -> Self {
        Table {
            index: Index::with_capacity(n),
            segs: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position of `key`.
    #[inline]
    pub fn find(&self, key: &InfoHash) -> Option<usize> {
        let segs = &self.segs;
        self.index
            .find(hash_of(&key.0), |i| at(segs, i as usize).key() == key)
            .map(|i| i as usize)
    }

    /// Starts loading the index slot where a lookup of `hash` (the
    /// [`hash_of`] of a key) begins.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the entry that a lookup of `hash` will most likely
    /// land on (best once its slot is in cache), and returns it.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) -> Option<&T> {
        let t = self.get(self.index.likely(hash)? as usize);
        let p: *const T = t;
        prefetch(p);
        prefetch(p.cast::<u8>().wrapping_add(std::mem::size_of::<T>() - 1));
        Some(t)
    }

    #[inline]
    pub fn get(&self, i: usize) -> &T {
        at(&self.segs, i)
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        &mut self.segs[i >> SHIFT][i & MASK]
    }

    pub fn get_by(&self, key: &InfoHash) -> Option<&T> {
        self.find(key).map(|i| self.get(i))
    }

    pub fn get_mut_by(&mut self, key: &InfoHash) -> Option<&mut T> {
        self.find(key).map(|i| self.get_mut(i))
    }

    /// The position of `key`, adding `make()` for it first when absent.
    #[inline]
    pub fn find_or_insert(&mut self, key: &InfoHash, make: impl FnOnce() -> T) -> usize {
        let segs = &self.segs;
        let i = self.len;
        let found = self.index.find_or_insert(
            hash_of(&key.0),
            |p| at(segs, p as usize).key() == key,
            i as u32,
            |p| hash_of(&at(segs, p as usize).key().0),
        );
        if let Some(p) = found {
            return p as usize;
        }
        if i & MASK == 0 && self.segs.len() == i >> SHIFT {
            self.segs.push(Vec::with_capacity(SEG));
        }
        self.segs[i >> SHIFT].push(make());
        self.len += 1;
        i
    }

    /// Removes the entry at `i`, moving the last one into its place.
    pub fn swap_remove(&mut self, i: usize) -> T {
        let last = self.len - 1;
        self.index.remove(hash_of(&self.get(i).key().0), i as u32);
        if i != last {
            let hash = hash_of(&self.get(last).key().0);
            self.index.repoint(hash, last as u32, i as u32);
        }
        let moved = self.segs[last >> SHIFT].pop().expect("a last entry");
        self.len -= 1;
        // One empty segment is kept, so that a table going up and down
        // around a boundary does not allocate each time.
        while self.segs.len() > self.len.div_ceil(SEG) + 1 {
            self.segs.pop();
        }
        if i == last {
            moved
        } else {
            std::mem::replace(self.get_mut(i), moved)
        }
    }

    /// Every entry, in position order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.segs.iter().flatten()
    }

    /// Heap bytes of the index and the segments (not of what entries own).
    pub fn heap_bytes(&self) -> usize {
        self.index.heap_bytes()
            + self.segs.capacity() * std::mem::size_of::<Vec<T>>()
            + self.segs.len() * SEG * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(InfoHash, u32);
    impl Keyed for E {
        fn key(&self) -> &InfoHash {
            &self.0
        }
    }

    fn h(i: u32) -> InfoHash {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&i.to_le_bytes());
        InfoHash(b)
    }

    #[test]
    fn finds_inserts_and_removes_across_segments() {
        let mut t = Table::<E>::default();
        let n = 3 * SEG as u32 + 17;
        for i in 0..n {
            assert_eq!(t.find_or_insert(&h(i), || E(h(i), i)), i as usize);
        }
        assert_eq!(t.find_or_insert(&h(5), || unreachable!()), 5);
        assert_eq!(t.len(), n as usize);
        // Remove every third from the front half; the rest stay findable.
        let mut gone = Vec::new();
        for i in (0..n / 2).step_by(3) {
            let p = t.find(&h(i)).unwrap();
            assert_eq!(t.swap_remove(p).1, i);
            gone.push(i);
        }
        for i in 0..n {
            match t.find(&h(i)) {
                Some(p) => {
                    assert!(!gone.contains(&i));
                    assert_eq!(t.get(p).1, i);
                }
                None => assert!(gone.contains(&i)),
            }
        }
        assert_eq!(t.iter().count(), t.len());
        // Empty it from the back and the front.
        while !t.is_empty() {
            let p = if t.len() % 2 == 0 { 0 } else { t.len() - 1 };
            let k = t.get(p).0;
            t.swap_remove(p);
            assert_eq!(t.find(&k), None);
        }
        assert!(t.segs.len() <= 1);
        t.find_or_insert(&h(1), || E(h(1), 1));
        assert_eq!(t.get_by(&h(1)), Some(&E(h(1), 1)));
    }

    /// Checks every invariant of the index against the entries.
    fn check(t: &Table<E>) {
        let ix = &t.index;
        assert_eq!(ix.live, t.len());
        if ix.slots.is_empty() {
            return assert_eq!(t.len(), 0);
        }
        assert_eq!(ix.slots.len(), 1 << ix.bits);
        assert!(
            ix.used * 4 <= 3 << ix.bits,
            "{} of {}",
            ix.used,
            ix.slots.len()
        );
        let m = ix.mask();
        let occupied = ix.slots.iter().filter(|&&s| s != 0).count();
        let live = ix.slots.iter().filter(|&&s| s & m != 0).count();
        assert_eq!((occupied, live), (ix.used, ix.live));
        for p in 0..t.len() {
            assert_eq!(t.find(&t.get(p).0), Some(p));
        }
    }

    proptest::proptest! {
        /// Any sequence of inserts, lookups and removals over a small set
        /// of keys (so that removals and re-inserts are frequent, and
        /// tombstones pile up) agrees with a map, and keeps the index whole.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..3, 0u32..300), 1..3000)) {
            let mut t = Table::<E>::default();
            let mut model = std::collections::HashMap::new();
            for (op, k) in ops {
                match op {
                    0 => {
                        let p = t.find_or_insert(&h(k), || E(h(k), k));
                        assert_eq!(t.get(p), &E(h(k), k));
                        model.insert(k, ());
                    }
                    1 => assert_eq!(t.get_by(&h(k)).map(|e| e.1), model.get(&k).map(|_| k)),
                    _ => {
                        if let Some(p) = t.find(&h(k)) {
                            assert_eq!(t.swap_remove(p), E(h(k), k));
                            model.remove(&k);
                        } else {
                            assert!(!model.contains_key(&k));
                        }
                    }
                }
                assert_eq!(t.len(), model.len());
            }
            check(&t);
            for k in 0..300 {
                assert_eq!(t.find(&h(k)).is_some(), model.contains_key(&k));
            }
        }
    }

    #[test]
    fn churn_at_a_steady_size_reuses_the_index() {
        // A torrent leaves for every one that arrives: once the index has
        // room for twice the live entries, it rebuilds in place from time
        // to time and never grows again.
        let mut t = Table::<E>::default();
        let churn = |t: &mut Table<E>, ks: std::ops::Range<u32>| {
            for k in ks {
                t.find_or_insert(&h(k), || E(h(k), k));
                if k >= 1000 {
                    let p = t.find(&h(k - 1000)).unwrap();
                    t.swap_remove(p);
                }
            }
        };
        churn(&mut t, 0..5000);
        let bits = t.index.bits;
        assert_eq!(1 << bits, 4096);
        churn(&mut t, 5000..50_000);
        check(&t);
        assert_eq!(t.index.bits, bits);
        assert_eq!(t.len(), 1000);
    }

    #[test]
    fn prefetch_names_the_entry_a_lookup_finds() {
        let mut t = Table::<E>::default();
        assert!(t.prefetch_entry(hash_of(&h(1).0)).is_none());
        for k in 0..10_000 {
            t.find_or_insert(&h(k), || E(h(k), k));
        }
        let hit = (0..10_000)
            .filter(|&k| t.prefetch_entry(hash_of(&h(k).0)) == t.get_by(&h(k)))
            .count();
        // Only a tag collision earlier in the probe names another entry.
        assert!(hit > 9_900, "{hit}");
        t.prefetch_slot(hash_of(&h(1).0));
    }
}
