//! WebRTC offers relayed between WebSocket peers: which offer went from
//! whom to whom, so that an answer is delivered only for an offer this
//! tracker relayed, once, within [`OFFER_TTL`].

use crate::protocol::{InfoHash, PeerId};
use std::collections::HashMap;

/// Seconds a relayed offer waits for its answer.
pub const OFFER_TTL: u32 = 60;

/// An offer the tracker relayed, waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct SentOffer {
    from: PeerId,
    to: PeerId,
    at: u32,
}

/// The relayed offers a shard remembers, by swarm and offer id.
#[derive(Debug)]
pub(super) struct Offers {
    sent: HashMap<(InfoHash, [u8; 20]), SentOffer, ahash::RandomState>,
    /// Tracker time of the last sweep.
    swept: u32,
}

impl Default for Offers {
    fn default() -> Self {
        Offers {
            sent: HashMap::with_hasher(ahash::RandomState::new()),
            swept: 0,
        }
    }
}

impl Offers {
    /// Remembers that the offer `offer_id` of `from` went to `to`, unless
    /// `max` are remembered already (then its answer will not be relayed).
    pub(super) fn sent(
        &mut self,
        key: (InfoHash, [u8; 20]),
        from: PeerId,
        to: PeerId,
        now: u32,
        max: usize,
    ) {
        if self.sent.len() < max {
            self.sent.insert(key, SentOffer { from, to, at: now });
        }
    }

    /// Whether `answerer` may answer offer `key` for `to`: it must be one
    /// relayed from `to` to `answerer` no more than [`OFFER_TTL`] ago. An
    /// offer is answered once: a match is forgotten.
    pub(super) fn take(
        &mut self,
        key: (InfoHash, [u8; 20]),
        answerer: &PeerId,
        to: &PeerId,
        now: u32,
    ) -> bool {
        let Some(o) = self.sent.get(&key).copied() else {
            return false;
        };
        if o.to != *answerer || o.from != *to {
            return false;
        }
        self.sent.remove(&key);
        o.at + OFFER_TTL >= now
    }

    /// Offers remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Forgets offers past [`OFFER_TTL`], once per tracker second.
    pub(super) fn sweep(&mut self, now: u32) {
        if now != self.swept {
            self.swept = now;
            self.sent.retain(|_, o| o.at + OFFER_TTL >= now);
        }
    }
}
