//! The shard's running counts, kept up to date on every change so that
//! statistics never walk peers: totals by class and family, and peers by
//! client and version.

use crate::protocol::clients::ClientKey;
use std::collections::HashMap;

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

#[derive(Clone, Copy)]
pub(super) enum Kind {
    V4,
    V6,
    Ws,
}

/// Peers by client and version. Each client and version in use gets a
/// 2-byte slot, which is all a peer keeps of its peer id for statistics.
#[derive(Debug)]
pub(super) struct ClientSlots {
    /// Per slot: its client and version, and how many peers it has.
    pub(super) slots: Vec<(ClientKey, u32)>,
    pub(super) by_key: HashMap<ClientKey, u16, ahash::RandomState>,
    /// Slots no peer uses, to hand out again.
    pub(super) free: Vec<u16>,
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
    pub(super) fn enter(&mut self, key: ClientKey) -> u16 {
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
    pub(super) fn leave(&mut self, slot: u16) {
        let e = &mut self.slots[slot as usize];
        e.1 = e.1.saturating_sub(1);
        if e.1 == 0 && slot != 0 {
            self.by_key.remove(&e.0);
            self.free.push(slot);
        }
    }

    /// The slot of a peer that had slot `old` (none when new) and now runs `key`.
    #[inline]
    pub(super) fn swap(&mut self, old: Option<u16>, key: ClientKey) -> u16 {
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
    pub(super) fn key(&self, slot: u16) -> ClientKey {
        self.slots[slot as usize].0
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (ClientKey, u32)> + '_ {
        self.slots.iter().copied().filter(|&(_, n)| n > 0)
    }
}

/// The shard's running counts: totals and clients.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) totals: Totals,
    pub(super) clients: ClientSlots,
}

impl Tally {
    pub(super) fn class(&mut self, kind: Kind, seeder: bool, delta: isize) {
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
    pub(super) fn arrived(&mut self, kind: Kind, was: Option<bool>, seeder: bool) {
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
    pub(super) fn leave(&mut self, kind: Kind, seeder: bool, client: u16) {
        self.class(kind, seeder, -1);
        self.clients.leave(client);
    }
}
