//! UDP front (BEP 15): connect, announce, scrape. Packets with a bad
//! connection id get no reply, so the tracker reflects nothing to spoofed
//! sources; every reply to an unverified source (connect) is no larger than
//! the request.

use super::access::{FilterAction, FilterRequest};
use super::handover::Phase;
use super::logging::debug_request;
use super::logging::log;
use super::mesh;
use super::stats::Action;
use super::worker::Worker;
use crate::answer;
use crate::config::LogLevel;
use crate::mmsg::{RecvBatch, SendBatch};
use crate::protocol::http::split_target;
use crate::protocol::udp::{self, Request, MAX_REPLY};
use crate::protocol::Protocol;
use crate::protocol::{compact_v4, AnnounceRequest, InfoHash, Peers};
use crate::swarm::Ahead;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

const UDP: Protocol = Protocol::Udp;

/// Datagrams taken per receive call.
const BATCH: usize = 32;

/// When the socket ran dry but the next datagram came within this long, the
/// worker waits this long again before it takes the next batch. Otherwise a
/// busy tracker in open loop wakes for every datagram or two, and the
/// wakeups (a turn of the reactor each: timers cancelled and re-armed, a
/// receive submitted) cost more than the requests: at 135k requests/s that
/// took 98% of a core, and 68% with the wait. A quiet tracker (datagrams
/// further apart) answers at once; a saturated one never finds its socket
/// dry.
const COALESCE: Duration = Duration::from_micros(100);

/// How long the UDP task goes on taking batches before it lets the worker's
/// other tasks have their turn. glommio polls its rings (and so wakes the
/// HTTP and WebSocket connections whose data has come) only between turns of
/// its run loop, and a socket that never runs dry would otherwise hold the
/// turn until the preemption timer fires, 100 ms: under a UDP flood HTTP got
/// 1.4k answers a second at p99 200 ms. After this long the task yields to
/// the reactor (`glommio::yield_to_reactor`): one poll of the rings, then
/// the woken connections run, then the next batch.
const BUDGET: Duration = Duration::from_micros(250);

/// The same for a worker without connections to share with (`--udp` alone):
/// only its timers and what other workers forward wait, and a poll of the
/// rings every 250 µs cost a saturated worker 3% of its answers.
const BUDGET_UDP_ONLY: Duration = Duration::from_millis(2);

/// Receives and answers datagrams on one of the worker's sockets until the
/// executor stops. Under load the socket is drained a batch at a time
/// (recvmmsg) and the batch's replies leave in one sendmmsg; when the socket
/// is empty the loop sleeps in io_uring on a peek, which leaves the datagram
/// queued for the next batch.
pub(crate) async fn serve(w: Rc<Worker>, v6: bool) {
    let sock = w.udp(v6).expect("serve() is started for a bound socket");
    let fd = sock.as_raw_fd();
    let mut inbox = RecvBatch::new(BATCH);
    let mut outbox = SendBatch::default();
    let mut out = Vec::with_capacity(MAX_REPLY);
    let mut peek = [0u8; 1];
    let mut ahead = Vec::with_capacity(BATCH);
    // When the task last came back from the reactor.
    let mut turn = Instant::now();
    let budget = if w.cfg.http || w.cfg.ws {
        BUDGET
    } else {
        BUDGET_UDP_ONLY
    };
    loop {
        if w.handover.phase() == Phase::Frozen {
            // Handing over: what comes waits in the socket (see `handover`).
            w.handover.park(true);
            w.handover.until(|p| p != Phase::Frozen).await;
            w.handover.park(false);
            turn = Instant::now();
        }
        let n = inbox.recv(fd, libc::MSG_DONTWAIT);
        if n == 0 {
            let idle = Instant::now();
            // A peek leaves the datagram queued, so one given up for a
            // hand-over loses nothing.
            let peeked =
                futures_lite::future::or(async { Some(sock.peek_from(&mut peek).await) }, async {
                    w.handover.until(|p| p == Phase::Frozen).await;
                    None
                })
                .await;
            if let Some(Err(e)) = peeked {
                log(&w.cfg, LogLevel::Errors, format_args!("udp receive: {e}"));
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            // Datagrams come this often: let a few more arrive, so that
            // one wakeup answers a batch rather than one or two.
            if idle.elapsed() < COALESCE {
                glommio::timer::sleep(COALESCE).await;
            }
            turn = Instant::now();
            continue;
        }
        if n > 1 {
            // Fetch the batch's swarms into cache together (see
            // `Shard::prefetch`), rather than a miss at a time.
            ahead.clear();
            ahead.extend(
                (0..n).filter_map(|i| look_ahead(&w, inbox.packet(i), inbox.source_addr(i))),
            );
            if let Ok(shard) = w.shard.try_borrow() {
                shard.prefetch(&ahead, v6);
            }
        }
        for i in 0..n {
            let Some(src) = inbox.source_addr(i) else {
                continue;
            };
            out.clear();
            let packet = inbox.packet(i);
            w.counters.bytes_in(Protocol::Udp, packet.len());
            if handle(&w, packet, src, &mut out).await {
                w.counters.bytes_out(Protocol::Udp, out.len());
                outbox.push(0, Some(inbox.source(i)), |d| d.extend_from_slice(&out));
            }
        }
        // A full socket buffer loses the rest of the replies; clients retransmit.
        outbox.flush(fd, |_| {});
        w.pace.add(n);
        if turn.elapsed() >= budget {
            glommio::yield_to_reactor().await;
            turn = Instant::now();
        } else {
            glommio::yield_if_needed().await;
        }
    }
}

/// What `Shard::prefetch` is to fetch for a datagram from `src`: the info
/// hash of an announce or scrape this worker owns, and an IPv4 announcer's
/// key in its swarm.
fn look_ahead(w: &Worker, packet: &[u8], src: Option<SocketAddr>) -> Option<Ahead> {
    let info_hash = udp::first_info_hash(packet).filter(|h| w.owner(h) == w.id)?;
    let peer = match (src, udp::announce_port(packet)) {
        (Some(SocketAddr::V4(a)), Some(port)) => Some(compact_v4(*a.ip(), port)),
        _ => None,
    };
    Some(Ahead { info_hash, peer })
}

/// Handles one datagram; returns true when `out` holds a reply for `src`.
async fn handle(w: &Rc<Worker>, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
    let ip = src.ip();
    let now = w.now();
    let c = &w.counters;
    match udp::parse_request(packet) {
        Ok(Request::Connect { transaction_id }) => {
            c.request(UDP, Action::Connect);
            c.response(UDP, Action::Connect);
            debug_request!(w.cfg, UDP, "connect", src, None, "ok");
            udp::write_connect_reply(out, transaction_id, w.conn_ids.make(ip, now));
            true
        }
        Ok(Request::Announce {
            connection_id,
            transaction_id,
            announce,
            options,
            ..
        }) => {
            c.request(UDP, Action::Announce);
            let trace = |outcome: std::fmt::Arguments<'_>| {
                debug_request!(
                    w.cfg,
                    UDP,
                    "announce",
                    src,
                    Some(&announce.info_hash),
                    "{outcome}"
                )
            };
            if !w.conn_ids.check(connection_id, ip, now) {
                c.error(UDP, Action::Announce);
                trace(format_args!("dropped: unknown or expired connection id"));
                return false;
            }
            if !w.open_access() {
                let url = udp::url_data(options);
                let (path, query) = split_target(&url);
                let r = FilterRequest {
                    action: FilterAction::Announce,
                    info_hash: Some(&announce.info_hash),
                    peer_id: Some(&announce.peer_id),
                    addr: ip,
                    protocol: UDP,
                    path,
                    query,
                };
                if let Some(reason) = w.refused(&r) {
                    c.error(UDP, Action::Announce);
                    trace(format_args!("refused: {reason}"));
                    udp::write_error(out, transaction_id, &reason);
                    return true;
                }
            }
            let owner = w.owner(&announce.info_hash);
            if owner == w.id {
                let mut peers = w.peers.borrow_mut();
                owner_announce(w, transaction_id, &announce, src, &mut peers, out);
                return true;
            }
            let req = mesh::Request::UdpAnnounce {
                transaction_id,
                announce,
                src,
            };
            c.forwarded();
            w.forward(owner, req).await;
            false
        }
        Ok(Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        }) => {
            c.request(UDP, Action::Scrape);
            let first = info_hashes.first().map(|h| InfoHash(*h));
            let trace = |outcome: std::fmt::Arguments<'_>| {
                debug_request!(w.cfg, UDP, "scrape", src, first.as_ref(), "{outcome}")
            };
            if !w.conn_ids.check(connection_id, ip, now) {
                c.error(UDP, Action::Scrape);
                trace(format_args!("dropped: unknown or expired connection id"));
                return false;
            }
            if !w.open_access() {
                let hashes: Vec<InfoHash> = info_hashes.iter().map(|h| InfoHash(*h)).collect();
                if let Some(reason) = w.scrape_refused(&hashes, ip, UDP, b"", b"") {
                    c.error(UDP, Action::Scrape);
                    trace(format_args!("refused: {reason}"));
                    udp::write_error(out, transaction_id, &reason);
                    return true;
                }
            }
            c.response(UDP, Action::Scrape);
            trace(format_args!("ok, {} info hashes", info_hashes.len()));
            if info_hashes
                .iter()
                .all(|h| InfoHash(*h).owner(w.workers) == w.id)
            {
                udp::write_scrape_header(out, transaction_id);
                let shard = w.shard.borrow();
                for h in info_hashes {
                    udp::write_scrape_entry(out, &shard.scrape(&InfoHash(*h)));
                }
                return true;
            }
            // Hashes of other shards: gather their counts off the receive path.
            let hashes: Vec<InfoHash> = info_hashes.iter().map(|h| InfoHash(*h)).collect();
            c.forwarded();
            let w = w.clone();
            glommio::spawn_local(async move {
                let stats = w.scrape(&hashes).await;
                let mut out = Vec::with_capacity(8 + 12 * stats.len());
                udp::write_scrape_header(&mut out, transaction_id);
                stats
                    .iter()
                    .for_each(|s| udp::write_scrape_entry(&mut out, s));
                send(&w, &out, src).await;
            })
            .detach();
            false
        }
        Err(e) => {
            c.request(UDP, Action::Other);
            c.error(UDP, Action::Other);
            debug_request!(w.cfg, UDP, "invalid", src, None, "{}", e.kind.message());
            match e.header {
                Some((cid, tid)) if w.conn_ids.check(cid, ip, now) => {
                    udp::write_error(out, tid, e.kind.message());
                    true
                }
                _ => false,
            }
        }
    }
}

/// Applies a UDP announce on the worker that owns it, received here or
/// forwarded alike, counts it, and writes the reply to `out`.
pub(crate) fn owner_announce(
    w: &Worker,
    transaction_id: u32,
    a: &AnnounceRequest,
    src: SocketAddr,
    peers: &mut Peers,
    out: &mut Vec<u8>,
) {
    let v6 = src.is_ipv6();
    let r = w.apply_announce(a, src.ip(), &answer::udp::want(&w.cfg, a, v6), peers, UDP);
    if answer::udp::write_announce(out, &w.cfg, transaction_id, &r, peers, v6) {
        w.counters.response(UDP, Action::Announce);
    } else {
        w.counters.error(UDP, Action::Announce);
    }
}

/// Sends a reply from this worker's socket of `dst`'s family.
pub(crate) async fn send(w: &Worker, buf: &[u8], dst: SocketAddr) {
    if let Some(sock) = w.udp(dst.is_ipv6()) {
        // A full socket buffer or an unreachable peer loses this one reply;
        // the client retransmits.
        w.counters.bytes_out(Protocol::Udp, buf.len());
        let _ = sock.send_to(buf, dst).await;
    }
}
