//! The owner's side of an HTTP announce: which peers it wants, the reply's
//! form, and the bencoded reply for its result.

use crate::config::ServerConfig;
use crate::protocol::http::{self as wire, HttpAnnounce, ReplyForm};
use crate::protocol::{bencode, Peers, ScrapeStats};
use crate::swarm::{numwant, Full, Shard, Want};
use std::net::IpAddr;

pub fn want(cfg: &ServerConfig, a: &HttpAnnounce) -> Want {
    Want {
        peers: numwant(a.request.numwant, cfg.numwant, cfg.max_numwant),
        both_families: true,
        ids: !a.compact && !a.no_peer_id,
    }
}

pub fn form(cfg: &ServerConfig, a: &HttpAnnounce) -> ReplyForm {
    ReplyForm {
        interval: cfg.interval,
        min_interval: cfg.min_interval,
        compact: a.compact,
        no_peer_id: a.no_peer_id,
    }
}

/// Applies an HTTP announce to `shard` (its owner's) and writes the
/// bencoded reply body: peers of both address families.
pub fn announce_reply(
    shard: &mut Shard,
    cfg: &ServerConfig,
    now: u32,
    a: &HttpAnnounce,
    ip: IpAddr,
    peers: &mut Peers,
    body: &mut Vec<u8>,
) -> bool {
    peers.clear();
    let r = shard.announce(&a.request, ip, now, &want(cfg, a), peers);
    write_announce(body, &form(cfg, a), &r, peers)
}

/// Writes the bencoded reply to an applied announce; false when it is a
/// `failure reason`.
pub fn write_announce(
    body: &mut Vec<u8>,
    form: &ReplyForm,
    r: &Result<ScrapeStats, Full>,
    peers: &Peers,
) -> bool {
    match r {
        Ok(s) => {
            wire::write_announce_reply(body, form, s.complete, s.incomplete, peers);
            true
        }
        Err(full) => {
            bencode::failure(body, full.message());
            false
        }
    }
}
