//! The owner's side of a WebSocket announce: the swarm updated, each offer
//! handed to a different random WebSocket peer (never the sender), and an
//! answer relayed to the peer whose offer it answers (only for an offer
//! this tracker relayed).

use crate::protocol::ws::{self as wire, WsAnnounce};
use crate::protocol::ScrapeStats;
use crate::swarm::ws::Conn;
use crate::swarm::{Full, Shard};

/// Applies `a` from the connection `conn` at tracker time `now`, relaying
/// at most `max_offers` of its offers. Appends the messages to deliver, by
/// connection, to `out`, and returns the swarm's counts (for an answer
/// alone, the counts as they are).
pub fn announce(
    shard: &mut Shard,
    now: u32,
    max_offers: usize,
    conn: Conn,
    a: &WsAnnounce,
    out: &mut Vec<(Conn, String)>,
) -> Result<ScrapeStats, Full> {
    let (hash, from) = (a.request.info_hash, a.request.peer_id);
    if let Some(ans) = &a.answer {
        if let Some(c) = shard.take_offer(&hash, &ans.offer_id, &from, &ans.to_peer_id, now) {
            out.push((c, wire::answer_message(&hash, &from, ans)));
        }
    }
    if a.answer_only {
        return Ok(shard.scrape(&hash));
    }
    let mut targets = Vec::new();
    let offers = a.offers.len().min(max_offers);
    let stats = shard.ws_announce(&a.request, conn, now, offers, &mut targets);
    for ((to, c), offer) in targets.iter().zip(&a.offers) {
        shard.offer_sent(hash, offer.offer_id, from, *to, now);
        out.push((*c, wire::offer_message(&hash, &from, offer)));
    }
    stats
}
