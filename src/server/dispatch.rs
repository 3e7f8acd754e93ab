//! What a worker does with requests from elsewhere: from other workers over
//! the mesh (announces and scrapes it owns, statistics, WebSocket relays),
//! and from the server handle's threads (statistics, torrents, state).

use super::mesh::{Control, Reply, Request};
use super::worker::Worker;
use super::{full_scrape, udp, ws};
use crate::protocol::{Peers, Protocol};

/// Serves one request from another worker.
pub(super) async fn serve_request(
    w: &Worker,
    from: usize,
    req: Request,
    out: &mut Vec<u8>,
    peers: &mut Peers,
) {
    w.pace.add(1);
    let reply = match req {
        Request::UdpAnnounce {
            transaction_id,
            announce,
            src,
        } => {
            out.clear();
            udp::owner_announce(w, transaction_id, &announce, src, peers, out);
            udp::send(w, out, src).await;
            return;
        }
        Request::Announce {
            token,
            announce,
            ip,
            want,
        } => {
            let mut peers = Peers::default();
            let stats = w.apply_announce(&announce, ip, &want, &mut peers, Protocol::Http);
            Reply::Announce {
                token,
                stats,
                peers,
            }
        }
        Request::Scrape { token, hashes } => {
            let shard = w.shard.borrow();
            let stats = hashes.iter().map(|h| shard.scrape(h)).collect();
            Reply::Scrape { token, stats }
        }
        Request::ScrapeSlice { token, at } => {
            let mut entries = Vec::new();
            let next = w
                .shard
                .borrow()
                .scrape_slice(at, full_scrape::SLICE, &mut entries);
            Reply::ScrapeSlice {
                token,
                entries,
                next,
            }
        }
        Request::Stats { token } => Reply::Stats {
            token,
            stats: Box::new(w.own_stats()),
        },
        Request::WsAnnounce {
            token,
            conn,
            announce,
        } => {
            let stats = ws::at_owner(w, conn, &announce).await;
            Reply::WsAnnounce { token, stats }
        }
        Request::WsDeliver { conn, text } => return w.ws_deliver_local(conn, text),
        Request::WsClosed {
            info_hash,
            peer_id,
            conn,
        } => {
            w.shard.borrow_mut().ws_remove(&info_hash, &peer_id, conn);
            return;
        }
    };
    w.reply_to(from, reply).await;
}

/// Serves one request from a thread outside the executors.
pub(super) async fn serve_control(w: &Worker, c: Control) {
    match c {
        Control::Stats(tx) => {
            let _ = tx.send(w.own_stats());
        }
        Control::Torrents(tx) => {
            let mut all = Vec::new();
            w.shard.borrow().torrents_info(&mut all);
            let _ = tx.send(all);
        }
        Control::Save(tx) => {
            let _ = tx.send((w.id, w.state_records(true).await));
        }
        Control::Dump(tx) => {
            let _ = tx.send((w.id, w.state_records(false).await));
        }
        Control::Handover(phase, tx) => {
            let _ = tx.send((w.id, w.hand_over(phase).await));
        }
    }
}
