//! The owner's side of a UDP announce: which peers it wants, and the reply
//! datagram for its result.

use crate::config::ServerConfig;
use crate::protocol::udp::{self, ANNOUNCE_REPLY_HEADER, MAX_REPLY};
use crate::protocol::{AnnounceRequest, Peers, ScrapeStats};
use crate::swarm::{numwant, Full, Shard, Want};
use std::net::SocketAddr;

/// What a UDP announce from `src` gets: peers of the packet's own address
/// family, as many as fit one datagram.
pub fn want(cfg: &ServerConfig, a: &AnnounceRequest, v6: bool) -> Want {
    let fit = (MAX_REPLY - ANNOUNCE_REPLY_HEADER) / if v6 { 18 } else { 6 };
    Want {
        peers: numwant(a.numwant, cfg.numwant, cfg.max_numwant).min(fit),
        both_families: false,
        ids: false,
    }
}

/// Writes the reply to an applied announce; false when it is an error.
pub fn write_announce(
    out: &mut Vec<u8>,
    cfg: &ServerConfig,
    transaction_id: u32,
    r: &Result<ScrapeStats, Full>,
    peers: &Peers,
    v6: bool,
) -> bool {
    match r {
        Ok(stats) => {
            udp::write_announce_header(
                out,
                transaction_id,
                cfg.interval,
                stats.incomplete,
                stats.complete,
            );
            out.extend_from_slice(if v6 { &peers.v6 } else { &peers.v4 });
            true
        }
        Err(full) => {
            udp::write_error(out, transaction_id, full.message());
            false
        }
    }
}

/// Applies an announce to `shard` (its owner's) and writes the UDP reply:
/// peers of the packet's own address family, as many as fit one datagram.
/// Returns false when the shard was full and the reply is an error. The
/// workers apply the announce through their owner path, which records the
/// result as well; this is the same work without a worker, for benchmarks.
#[allow(clippy::too_many_arguments)]
pub fn announce_reply(
    shard: &mut Shard,
    cfg: &ServerConfig,
    now: u32,
    transaction_id: u32,
    a: &AnnounceRequest,
    src: SocketAddr,
    peers: &mut Peers,
    out: &mut Vec<u8>,
) -> bool {
    let v6 = src.is_ipv6();
    peers.clear();
    let r = shard.announce(a, src.ip(), now, &want(cfg, a, v6), peers);
    write_announce(out, cfg, transaction_id, &r, peers, v6)
}
