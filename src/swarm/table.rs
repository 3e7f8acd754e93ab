//! The torrents of a shard: a dense array of fixed-size entries, kept in
//! segments so that growing never copies the whole, and a hash table of
//! 4-byte positions into it (plus hashbrown's control byte). Per torrent
//! that is the entry itself and about 6–11 bytes of index, where a map of
//! keys to values pays a stored hash, a `usize` index and the slack of a
//! doubling vector.
//!
//! Positions are dense (`0..len`), so a sweep or a save can walk them a
//! slice at a time; removal moves the last entry into the hole.

use crate::protocol::InfoHash;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::sync::LazyLock;

/// Entries per segment: 4096 (a few hundred KiB each).
const SHIFT: u32 = 12;
const SEG: usize = 1 << SHIFT;
const MASK: usize = SEG - 1;

/// Keys for the hashes of info hashes and peer addresses, random per
/// process, so that nobody can pick keys that collide.
static KEYS: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

/// The keyed hash of `bytes`.
#[inline]
pub fn hash_of(bytes: &[u8]) -> u64 {
    KEYS.hash_one(bytes)
}

/// What a [`Table`] holds: anything with an info hash.
pub trait Keyed {
    fn key(&self) -> &InfoHash;
}

pub struct Table<T> {
    index: HashTable<u32>,
    segs: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            index: HashTable::new(),
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
            index: HashTable::with_capacity(n),
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
            .find(hash_of(&key.0), |&i| at(segs, i as usize).key() == key)
            .map(|&i| i as usize)
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
        let entry = self.index.entry(
            hash_of(&key.0),
            |&i| at(segs, i as usize).key() == key,
            |&i| hash_of(&at(segs, i as usize).key().0),
        );
        match entry {
            Entry::Occupied(o) => *o.get() as usize,
            Entry::Vacant(v) => {
                let i = self.len;
                v.insert(i as u32);
                if i & MASK == 0 && self.segs.len() == i >> SHIFT {
                    self.segs.push(Vec::with_capacity(SEG));
                }
                self.segs[i >> SHIFT].push(make());
                self.len += 1;
                i
            }
        }
    }

    /// Removes the entry at `i`, moving the last one into its place.
    pub fn swap_remove(&mut self, i: usize) -> T {
        let last = self.len - 1;
        let hash = hash_of(&self.get(i).key().0);
        self.index
            .find_entry(hash, |&x| x as usize == i)
            .expect("every entry is indexed")
            .remove();
        if i != last {
            let hash = hash_of(&self.get(last).key().0);
            *self
                .index
                .find_mut(hash, |&x| x as usize == last)
                .expect("every entry is indexed") = i as u32;
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
        self.index.allocation_size()
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
}
