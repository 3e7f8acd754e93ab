//! WebSocket front (WebTorrent): announces with offers, answers, scrapes.
//!
//! A connection starts as an HTTP request with `Upgrade: websocket` on any
//! path and stays on the worker that accepted it. tungstenite does the
//! framing over an in-memory pipe: the connection's one task reads the
//! glommio stream into it (through the worker's one read buffer) and writes
//! its output back to the stream, so no second runtime is involved. Offers
//! and answers for peers on other workers travel over the mesh to the worker
//! that holds their connection.

use super::access::{FilterAction, FilterRequest};
use super::logging::debug_request;
use super::mesh::{Reply, Request};
use super::stats::{Action, Refusal};
use super::tls::Conn as Stream;
use super::worker::Worker;
use crate::answer;
use crate::protocol::http::split_target;
use crate::protocol::ws::{self as wire, WsAnnounce, WsError, WsRequest};
use crate::protocol::Protocol;
use crate::protocol::{Event, InfoHash, PeerId};
use crate::swarm::ws::Conn;
use futures_lite::{AsyncRead, AsyncWriteExt, StreamExt};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

const WS: Protocol = Protocol::Ws;

/// Torrents one connection may join.
pub const MAX_JOINED: usize = 1024;
/// A ping goes out after this long without traffic from the client.
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// A connection with no traffic at all from its client for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// A write that takes longer than this closes the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes between the socket and tungstenite: it reads what the socket
/// delivered (and hears "would block" when that is used up) and writes into
/// `output`, which the connection then sends.
#[derive(Default)]
struct Pipe {
    /// Bytes read, not yet taken by tungstenite (from `read`).
    input: Vec<u8>,
    read: usize,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = &self.input[self.read..];
        if avail.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.read += n;
        if self.read == self.input.len() {
            self.input.clear();
            self.read = 0;
            release_room(&mut self.input);
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Room a connection keeps in each direction of its pipe while it has
/// nothing to hold: enough for most messages, small enough that a crowd of
/// idle browsers is cheap. A larger buffer is given back once empty.
const KEPT_ROOM: usize = 4096;

fn release_room(v: &mut Vec<u8>) {
    if v.is_empty() && v.capacity() > KEPT_ROOM {
        *v = Vec::new();
    }
}

/// The `Sec-WebSocket-Accept` reply to an upgrade request.
pub(crate) fn handshake_reply(key: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(tungstenite::handshake::derive_accept_key(key).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Hands a message to the connection `conn`, on whichever worker it is.
async fn deliver(w: &Worker, conn: Conn, text: String) {
    if conn.worker as usize == w.id {
        w.ws_deliver_local(conn.id, text);
    } else {
        w.forward(
            conn.worker as usize,
            Request::WsDeliver {
                conn: conn.id,
                text,
            },
        )
        .await;
    }
}

/// Applies a WebSocket announce on the owner of its hash (see
/// [`answer::ws::announce`]), records it, and delivers the offers and the
/// answer it relays.
pub(crate) async fn at_owner(
    w: &Worker,
    conn: Conn,
    a: &WsAnnounce,
) -> Result<crate::protocol::ScrapeStats, crate::swarm::Full> {
    let mut out = Vec::new();
    let stats = answer::ws::announce(
        &mut w.shard.borrow_mut(),
        w.now(),
        w.cfg.max_numwant as usize,
        conn,
        a,
        &mut out,
    );
    if stats.is_ok() && !a.answer_only {
        w.announced(&a.request, None, Protocol::Ws);
    }
    for (c, text) in out {
        deliver(w, c, text).await;
    }
    stats
}

/// A connection's allowance of relayed offers: a token bucket that fills at
/// `limits.ws_offer_rate` a second up to `limits.ws_offer_burst`.
pub(crate) struct OfferBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl OfferBucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> OfferBucket {
        OfferBucket {
            rate: rate.into(),
            burst: burst.into(),
            tokens: burst.into(),
            at: now,
        }
    }

    /// How many of `want` offers may be relayed at `now`; takes them. With
    /// no rate set, all.
    pub fn take(&mut self, want: usize, now: Instant) -> usize {
        if self.rate == 0.0 {
            return want;
        }
        let filled = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + filled).min(self.burst);
        self.at = self.at.max(now);
        // Whole offers only: the fraction carries over.
        let granted = (self.tokens as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }
}

/// What one connection keeps between its messages.
struct Session {
    /// The swarms it has joined, to leave when it closes.
    joined: Vec<(InfoHash, PeerId)>,
    offers: OfferBucket,
}

/// What woke the connection up.
enum Wake {
    /// Bytes from the client (true), or its end (false).
    Bytes(bool),
    Relay(Option<String>),
    Tick,
}

/// Reads what the client sent into `input`, behind what it holds: false
/// when the connection has ended. The bytes land in the worker's one read
/// buffer, borrowed only while the read is polled (glommio reads when the
/// socket is ready, and holds no buffer while it waits), so an idle
/// connection keeps no buffer of its own, and waiting here for other
/// things to happen first loses nothing.
async fn read_into(w: &Worker, stream: &mut Stream, input: &mut Vec<u8>) -> bool {
    futures_lite::future::poll_fn(|cx| {
        let mut buf = w.ws_read.borrow_mut();
        match std::pin::Pin::new(&mut *stream).poll_read(cx, &mut buf[..]) {
            std::task::Poll::Ready(Ok(0) | Err(_)) => std::task::Poll::Ready(false),
            std::task::Poll::Ready(Ok(n)) => {
                w.pace.received();
                input.extend_from_slice(&buf[..n]);
                std::task::Poll::Ready(true)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

/// A connection whose upgrade to WebSocket has been answered.
pub(crate) struct Upgraded {
    pub stream: Stream,
    /// Bytes that came in behind the upgrade request.
    pub early: Vec<u8>,
    /// The client's address (its proxy's word for it, when trusted).
    pub ip: IpAddr,
    /// The upgrade request's path and query.
    pub target: Vec<u8>,
}

/// Serves one WebSocket connection, in a task of its own: the HTTP task
/// that answered the upgrade has ended, and its buffers with it.
pub(crate) async fn serve(w: Rc<Worker>, up: Upgraded) {
    let Upgraded {
        mut stream,
        early,
        ip,
        target,
    } = up;
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (relay_tx, mut relay_rx) = futures_channel::mpsc::channel::<String>(w.cfg.limits.ws_queue);
    let conn = Conn {
        worker: w.id as u16,
        id: w.ws_register(relay_tx),
    };
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 1024;
    config.write_buffer_size = 0;
    config.max_message_size = Some(w.cfg.limits.ws_max_message);
    config.max_frame_size = Some(w.cfg.limits.ws_max_message);
    let mut ws = WebSocket::from_raw_socket(
        Pipe {
            input: early,
            ..Pipe::default()
        },
        Role::Server,
        Some(config),
    );
    let l = &w.cfg.limits;
    let mut session = Session {
        joined: Vec::new(),
        offers: OfferBucket::new(l.ws_offer_rate, l.ws_offer_burst, Instant::now()),
    };
    let mut heard = Instant::now();
    let mut pinged = false;
    let mut open = true;
    while open {
        // Take every whole message the pipe holds.
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    w.counters.bytes_in(Protocol::Ws, text.len());
                    let from = From {
                        conn,
                        ip,
                        target: &target,
                    };
                    handle(&w, &mut ws, &mut session, from, text.as_str()).await
                }
                Ok(Message::Binary(_)) => {
                    send_error(&mut ws, "binary messages are not supported", None)
                }
                Ok(Message::Close(_)) => open = false,
                Ok(_) => {} // ping (tungstenite queues the pong), pong
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    break
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::Size,
                        reason: "message too big".into(),
                    }));
                    let _ = ws.flush();
                    open = false;
                    break;
                }
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        let _ = ws.flush();
        // The output goes out and comes back empty, keeping up to KEPT_ROOM.
        let mut pending = std::mem::take(&mut ws.get_mut().output);
        w.counters.bytes_out(Protocol::Ws, pending.len());
        if !pending.is_empty() && stream.write_all(&pending).await.is_err() {
            break;
        }
        pending.clear();
        release_room(&mut pending);
        ws.get_mut().output = pending;
        if !open {
            break;
        }
        let quiet = heard.elapsed();
        if quiet >= IDLE_TIMEOUT {
            break;
        }
        let next_tick = if pinged {
            IDLE_TIMEOUT.saturating_sub(quiet)
        } else {
            PING_AFTER.saturating_sub(quiet)
        };
        let input = &mut ws.get_mut().input;
        let wake = futures_lite::future::or(
            async { Wake::Bytes(read_into(&w, &mut stream, input).await) },
            async {
                futures_lite::future::or(async { Wake::Relay(relay_rx.next().await) }, async {
                    glommio::timer::sleep(next_tick).await;
                    Wake::Tick
                })
                .await
            },
        )
        .await;
        let mut relay = None;
        match wake {
            Wake::Bytes(true) => {
                heard = Instant::now();
                pinged = false;
            }
            Wake::Relay(Some(text)) => relay = Some(text),
            // The client closed, or its queue was dropped for reading too
            // slowly, or the tracker hands over to a new process: then the
            // client is told to reconnect (to it).
            Wake::Bytes(false) | Wake::Relay(None) => {
                if !w.handover.serving() {
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "tracker upgrading, reconnect".into(),
                    }));
                }
                break;
            }
            Wake::Tick => {
                if !pinged && heard.elapsed() >= PING_AFTER {
                    let _ = ws.send(Message::Ping(Default::default()));
                    pinged = true;
                }
            }
        }
        // With what woke it, take whatever else is already queued, so that
        // one write carries it all: under load, several relays wait for a
        // busy connection.
        for text in relay
            .into_iter()
            .chain(std::iter::from_fn(|| relay_rx.try_recv().ok()))
        {
            send_text(&mut ws, &text);
        }
    }
    // Writing a last pending close frame is best effort.
    let _ = ws.flush();
    let rest = std::mem::take(&mut ws.get_mut().output);
    if !rest.is_empty() {
        let _ = stream.write_all(&rest).await;
    }
    let _ = stream.close().await;
    w.ws_unregister(conn.id);
    // Closing counts as `stopped` in every swarm the connection joined.
    for (info_hash, peer_id) in session.joined {
        w.ws_left(info_hash, peer_id);
        let owner = w.owner(&info_hash);
        if owner == w.id {
            w.shard.borrow_mut().ws_remove(&info_hash, &peer_id, conn);
        } else {
            w.forward(
                owner,
                Request::WsClosed {
                    info_hash,
                    peer_id,
                    conn,
                },
            )
            .await;
        }
    }
}

/// Sends a text message, written as a frame straight into the pipe's
/// output (`protocol::ws::frame`): tungstenite keeps nothing back (its
/// write buffer is 0), so the frame follows whatever it wrote before.
/// Nothing once the connection is closing.
fn send_text(ws: &mut WebSocket<Pipe>, text: &str) {
    if ws.can_write() {
        wire::frame::write_text_frame(&mut ws.get_mut().output, text.as_bytes());
    }
}

/// Sends a refusal whose reason the filter made.
fn send_refusal(ws: &mut WebSocket<Pipe>, reason: &str, action: &str, info_hash: Option<InfoHash>) {
    let reply = wire::refusal_reply(reason, action, info_hash.as_ref());
    send_text(ws, &reply);
}

fn send_error(ws: &mut WebSocket<Pipe>, reason: &'static str, info_hash: Option<InfoHash>) {
    let e = WsError {
        reason,
        action: None,
        info_hash,
    };
    send_text(ws, &wire::error_reply(&e));
}

/// Where a message came from: the connection, the client's address and the
/// upgrade request's target (path and query, for the filter).
struct From<'a> {
    conn: Conn,
    ip: IpAddr,
    target: &'a [u8],
}

async fn handle(
    w: &Worker,
    ws: &mut WebSocket<Pipe>,
    session: &mut Session,
    from: From<'_>,
    text: &str,
) {
    let joined = &mut session.joined;
    let conn = from.conn;
    let (path, query) = split_target(from.target);
    let c = &w.counters;
    let ip = from.ip;
    let reply = match wire::parse(text) {
        Err(e) => {
            c.request(WS, Action::Other);
            c.error(WS, Action::Other);
            debug_request!(
                w.cfg,
                WS,
                e.action.unwrap_or("invalid"),
                ip,
                e.info_hash.as_ref(),
                "refused: {}",
                e.reason
            );
            wire::error_reply(&e)
        }
        Ok(WsRequest::Scrape(mut hashes)) => {
            c.request(WS, Action::Scrape);
            hashes.truncate(w.cfg.limits.max_scrape_hashes);
            let first = hashes.first().copied();
            if let Some(reason) = w.scrape_refused(&hashes, from.ip, WS, path, query) {
                c.error(WS, Action::Scrape);
                debug_request!(w.cfg, WS, "scrape", ip, first.as_ref(), "refused: {reason}");
                return send_refusal(ws, &reason, "scrape", first);
            }
            if hashes.is_empty() && !w.cfg.full_scrape {
                c.error(WS, Action::Scrape);
                debug_request!(
                    w.cfg,
                    WS,
                    "scrape",
                    ip,
                    None,
                    "refused: full scrape is disabled"
                );
                return send_error(ws, "full scrape is disabled: name an info_hash", None);
            }
            c.response(WS, Action::Scrape);
            debug_request!(
                w.cfg,
                WS,
                "scrape",
                ip,
                first.as_ref(),
                "ok, {} info hashes",
                hashes.len()
            );
            if hashes.is_empty() {
                w.full_scrape().await.ws.clone()
            } else {
                hashes.sort_unstable();
                hashes.dedup();
                let stats = w.scrape(&hashes).await;
                wire::scrape_reply(&hashes.into_iter().zip(stats).collect::<Vec<_>>())
            }
        }
        Ok(WsRequest::Announce(mut a)) => {
            c.request(WS, Action::Announce);
            let (hash, peer, event) = (a.request.info_hash, a.request.peer_id, a.request.event);
            let r = FilterRequest {
                action: FilterAction::Announce,
                info_hash: Some(&hash),
                peer_id: Some(&peer),
                addr: from.ip,
                protocol: WS,
                path,
                query,
            };
            if let Some(reason) = w.refused(&r) {
                c.error(WS, Action::Announce);
                debug_request!(w.cfg, WS, "announce", ip, Some(&hash), "refused: {reason}");
                return send_refusal(ws, &reason, "announce", Some(hash));
            }
            let sent = a.offers.len();
            if sent > 0 {
                let granted = session.offers.take(sent, Instant::now());
                if granted < sent {
                    c.refused(Refusal::WsOfferRate, (sent - granted) as u64);
                    debug_request!(
                        w.cfg,
                        WS,
                        "announce",
                        ip,
                        Some(&hash),
                        "{} of {sent} offers dropped: limits.ws_offer_rate",
                        sent - granted
                    );
                    a.offers.truncate(granted);
                }
            }
            let joins =
                !a.answer_only && event != Event::Stopped && !joined.contains(&(hash, peer));
            if joins && joined.len() >= MAX_JOINED {
                return send_error(ws, "too many torrents on one connection", Some(hash));
            }
            let answer_only = a.answer_only;
            let owner = w.owner(&hash);
            let stats = if owner == w.id {
                at_owner(w, conn, &a).await
            } else {
                match w
                    .call(owner, |token| Request::WsAnnounce {
                        token,
                        conn,
                        announce: a,
                    })
                    .await
                {
                    Some(Reply::WsAnnounce { stats, .. }) => stats,
                    _ => return send_error(ws, "tracker is shutting down", Some(hash)),
                }
            };
            let stats = match stats {
                Ok(s) => s,
                Err(full) => {
                    c.error(WS, Action::Announce);
                    debug_request!(
                        w.cfg,
                        WS,
                        "announce",
                        ip,
                        Some(&hash),
                        "refused: {}",
                        full.message()
                    );
                    return send_refusal(ws, full.message(), "announce", Some(hash));
                }
            };
            debug_request!(
                w.cfg,
                WS,
                if answer_only { "answer" } else { "announce" },
                ip,
                Some(&hash),
                "ok, event {:?}, {} seeders {} leechers",
                event.as_str(),
                stats.complete,
                stats.incomplete
            );
            if joins {
                joined.push((hash, peer));
            } else if event == Event::Stopped && !answer_only {
                joined.retain(|j| *j != (hash, peer));
            }
            c.response(WS, Action::Announce);
            if answer_only {
                // Relayed, and nothing to say back: WebTorrent clients do not
                // read a reply to an answer (the reference sends one anyway).
                return;
            }
            wire::announce_reply(&hash, (w.cfg.interval / 5).max(1), &stats)
        }
    };
    send_text(ws, &reply);
}

#[cfg(test)]
mod tests {
    use super::OfferBucket;
    use std::time::{Duration, Instant};

    #[test]
    fn the_offer_bucket_grants_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut b = OfferBucket::new(10, 20, t0);
        // The burst at once, then nothing more in the same instant.
        assert_eq!(b.take(5, t0), 5);
        assert_eq!(b.take(50, t0), 15);
        assert_eq!(b.take(1, t0), 0);
        // 10 a second: one offer per 100 ms, fractions carried over.
        assert_eq!(b.take(5, at(50)), 0);
        assert_eq!(b.take(5, at(100)), 1);
        assert_eq!(b.take(5, at(350)), 2);
        // A quiet connection fills up to the burst, no further.
        assert_eq!(b.take(100, at(60_000)), 20);
        // A clock that goes back grants nothing and breaks nothing.
        assert_eq!(b.take(5, t0), 0);
        assert_eq!(b.take(5, at(60_100)), 1);
    }

    #[test]
    fn no_rate_is_no_limit() {
        let t0 = Instant::now();
        let mut b = OfferBucket::new(0, 0, t0);
        assert_eq!(b.take(1_000_000, t0), 1_000_000);
    }
}
