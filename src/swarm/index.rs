//! The hash index of the torrent table and of big peer lists: positions
//! into a dense array, found by key hash.
//!
//! It is this crate's own rather than a general hash map because of what a
//! lookup costs at a million torrents or peers: every step is a cache miss.
//! A slot holds the position and a tag of the key's hash, so a lookup reads
//! one slot and then the entry it names (hashbrown reads a control group,
//! then a slot, then the entry), and a batch can fetch all of its slots,
//! then all of its entries, ahead of the work.

use super::hashing::prefetch;

/// Positions by key hash: open addressing over `2^bits` 4-byte slots with
/// linear probing, at most three quarters used. A slot holds position + 1
/// in its low `bits` bits (0: no position) and, in the bits above, the same
/// bits of the key's hash as a tag, so a probe passes over other keys'
/// slots without reading their entries (a false match is 1 in 2^(32-bits),
/// and the caller's key comparison settles it). The home slot comes from
/// the hash's high half, the tag from its low half.
///
/// Empty slots are 0. A removed slot becomes a tombstone (no position, tag
/// bits all set), which probes pass over and inserts reuse, unless it ends
/// a run, when it and the tombstones before it are emptied. Tombstones
/// count as used; reaching the limit rebuilds the index from the entries'
/// keys, twice as large if more than half of the limit is live.
#[derive(Debug, Default)]
pub struct Index {
    pub(super) slots: Vec<u32>,
    pub(super) bits: u32,
    pub(super) live: usize,
    pub(super) used: usize,
}

/// Fewest slots an index has: 16.
const MIN_BITS: u32 = 4;
/// Most: 2^31, so that a tombstone's tag bits are never all of the slot.
const MAX_BITS: u32 = 31;

impl Index {
    /// Bits of an index with room for `n` live slots.
    fn bits_for(n: usize) -> u32 {
        let mut b = MIN_BITS;
        while n * 4 > 3 << b {
            b += 1;
            assert!(b <= MAX_BITS, "index of more than 2^31 slots");
        }
        b
    }

    pub fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return Index::default();
        }
        let bits = Self::bits_for(n);
        Index {
            slots: vec![0; 1 << bits],
            bits,
            live: 0,
            used: 0,
        }
    }

    #[inline]
    pub fn mask(&self) -> u32 {
        ((1u64 << self.bits) - 1) as u32
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.slots.len() - 1)
    }

    /// The slot holding position `p` for `hash`, or where the probe for
    /// `hash` ends without finding a position `eq` accepts: its first
    /// reusable slot (a tombstone, else the empty slot that ended it).
    /// The table must have slots.
    #[inline]
    fn probe(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Result<usize, usize> {
        let m = self.mask();
        let tag = hash as u32 & !m;
        let wrap = self.slots.len() - 1;
        let mut i = self.home(hash);
        let mut free = None;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(free.unwrap_or(i));
            }
            if s & m == 0 {
                free.get_or_insert(i);
            } else if s & !m == tag && eq((s & m) - 1) {
                return Ok(i);
            }
            i = (i + 1) & wrap;
        }
    }

    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.probe(hash, eq)
            .ok()
            .map(|i| (self.slots[i] & self.mask()) - 1)
    }

    /// The position that `eq` accepts, or `None` after indexing `new` for
    /// `hash`. `hash_at` gives the hash of any position below `self.live`,
    /// for a rebuild.
    #[inline]
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        eq: impl FnMut(u32) -> bool,
        new: u32,
        hash_at: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        if self.slots.is_empty() {
            self.rebuild(Self::bits_for(1), &hash_at);
        }
        let mut at = match self.probe(hash, eq) {
            Ok(i) => return Some((self.slots[i] & self.mask()) - 1),
            Err(i) => i,
        };
        let reuse = self.slots[at] != 0;
        if !reuse && (self.used + 1) * 4 > 3 << self.bits {
            let grow = (self.live + 1) * 8 > 3 << self.bits;
            self.rebuild(self.bits + grow as u32, &hash_at);
            at = self.probe(hash, |_| false).unwrap_err();
        }
        self.put(at, hash, new);
        None
    }

    /// Writes position `p` for `hash` into the free slot `at`.
    #[inline]
    fn put(&mut self, at: usize, hash: u64, p: u32) {
        if self.slots[at] == 0 {
            self.used += 1;
        }
        let m = self.mask();
        self.slots[at] = (hash as u32 & !m) | (p + 1);
        self.live += 1;
    }

    /// Indexes `new`, absent so far, for `hash` (see [`Index::find_or_insert`]).
    #[inline]
    pub fn insert(&mut self, hash: u64, new: u32, hash_at: impl Fn(u32) -> u64) {
        let found = self.find_or_insert(hash, |_| false, new, hash_at);
        debug_assert!(found.is_none());
    }

    /// Positions `a` (indexed for `hash_a`) and `b` (for `hash_b`) trade
    /// places. Both slots are found before either changes, so that a tag
    /// collision cannot make one lookup land on the other's new slot.
    pub fn swap(&mut self, hash_a: u64, a: u32, hash_b: u64, b: u32) {
        let (ia, ib) = (self.slot_of(hash_a, a), self.slot_of(hash_b, b));
        let m = self.mask();
        self.slots[ia] = (self.slots[ia] & !m) | (b + 1);
        self.slots[ib] = (self.slots[ib] & !m) | (a + 1);
    }

    /// Starts loading the slot where a lookup of `hash` begins.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.home(hash)]);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u32>()
    }

    /// A fresh index of `2^bits` slots holding positions `0..self.live`.
    fn rebuild(&mut self, bits: u32, hash_at: &impl Fn(u32) -> u64) {
        assert!(bits <= MAX_BITS, "index of more than 2^31 slots");
        let n = self.live as u32;
        *self = Index {
            slots: vec![0; 1 << bits],
            bits,
            live: 0,
            used: 0,
        };
        for p in 0..n {
            let h = hash_at(p);
            let at = self.probe(h, |_| false).unwrap_err();
            self.put(at, h, p);
        }
    }

    /// The slot of position `p`, indexed for `hash`.
    fn slot_of(&self, hash: u64, p: u32) -> usize {
        self.probe(hash, |x| x == p)
            .expect("every position is indexed")
    }

    /// Forgets position `p`, indexed for `hash`.
    pub fn remove(&mut self, hash: u64, p: u32) {
        let wrap = self.slots.len() - 1;
        let mut i = self.slot_of(hash, p);
        self.live -= 1;
        if self.slots[(i + 1) & wrap] != 0 {
            self.slots[i] = !self.mask();
            return;
        }
        // The slot ends its run: it and the tombstones before it are empty.
        loop {
            self.slots[i] = 0;
            self.used -= 1;
            i = i.wrapping_sub(1) & wrap;
            if self.slots[i] != !self.mask() {
                break;
            }
        }
    }

    /// Position `from`, indexed for `hash`, is now position `to`.
    pub fn repoint(&mut self, hash: u64, from: u32, to: u32) {
        let i = self.slot_of(hash, from);
        let m = self.mask();
        self.slots[i] = (self.slots[i] & !m) | (to + 1);
    }

    /// The position in the first slot whose tag matches `hash`: the entry
    /// a lookup will most likely compare first. For prefetching only.
    #[inline]
    pub fn likely(&self, hash: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let m = self.mask();
        let tag = hash as u32 & !m;
        let wrap = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & m != 0 && s & !m == tag {
                return Some((s & m) - 1);
            }
            i = (i + 1) & wrap;
        }
    }
}
