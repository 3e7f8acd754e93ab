//! WebRTC offers relayed between WebSocket peers: which offer went from
//! whom to whom, so that an answer is delivered only for an offer this
//! tracker relayed, once, within [`OFFER_TTL`].

use super::torrent::Body;
use super::ws::Conn;
use super::Shard;
use crate::protocol::InfoHash;

/// Seconds a relayed offer waits for its answer.
pub const OFFER_TTL: u32 = 60;

/// An offer the tracker relayed, waiting for its answer.
#[derive(Clone, Copy, Debug)]
pub(super) struct SentOffer {
    pub(super) from: crate::protocol::PeerId,
    pub(super) to: crate::protocol::PeerId,
    pub(super) at: u32,
}

impl Shard {
    /// Remembers that the offer `offer_id` of `from` went to `to`.
    pub fn offer_sent(
        &mut self,
        hash: InfoHash,
        offer_id: [u8; 20],
        from: crate::protocol::PeerId,
        to: crate::protocol::PeerId,
        now: u32,
    ) {
        if self.offers.len() < self.limits.max_offers {
            self.offers
                .insert((hash, offer_id), SentOffer { from, to, at: now });
        }
    }

    /// Where to deliver `answerer`'s answer to offer `offer_id`, which must
    /// be one this tracker relayed from `to` to `answerer` no more than
    /// [`OFFER_TTL`] ago. Each offer is answered once.
    pub fn take_offer(
        &mut self,
        hash: &InfoHash,
        offer_id: &[u8; 20],
        answerer: &crate::protocol::PeerId,
        to: &crate::protocol::PeerId,
        now: u32,
    ) -> Option<Conn> {
        let key = (*hash, *offer_id);
        let o = *self.offers.get(&key)?;
        if o.to != *answerer || o.from != *to {
            return None;
        }
        self.offers.remove(&key);
        if o.at + OFFER_TTL < now {
            return None;
        }
        match &self.torrents.get_by(hash)?.body {
            Body::Many(s) => s.ws()?.conn(to),
            _ => None,
        }
    }
}
