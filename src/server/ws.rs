//! WebSocket front (WebTorrent): announces with offers, answers, scrapes.
//!
//! A connection starts as an HTTP request with `Upgrade: websocket` on any
//! path and stays on the worker that accepted it. Its one task reads the
//! glommio stream (through the worker's one read buffer) into its input,
//! reads the frames there in place (`protocol::ws::frame`), and writes the
//! frames it answers with into one output, sent in one write. Offers and
//! answers for peers on other workers travel over the mesh to the worker
//! that holds their connection.

use super::access::{FilterAction, FilterRequest};
use super::logging::debug_request;
use super::mesh::{Reply, Request};
use super::stats::{Action, Refusal};
use super::tls::Conn as Stream;
use super::worker::Worker;
use crate::answer;
use crate::protocol::http::split_target;
use crate::protocol::ws::frame::{Incoming, CLOSE_AWAY};
use crate::protocol::ws::{self as wire, WsAnnounce, WsError, WsRequest};
use crate::protocol::Protocol;
use crate::protocol::{Event, InfoHash, PeerId};
use crate::swarm::ws::Conn;
use futures_lite::{AsyncRead, AsyncWriteExt, StreamExt};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const WS: Protocol = Protocol::Ws;

/// Torrents one connection may join.
pub const MAX_JOINED: usize = 1024;
/// A ping goes out after this long without traffic from the client.
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// A connection with no traffic at all from its client for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// A write that takes longer than this closes the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection sends: frames written straight into `buf`
/// (`protocol::ws::frame`), which then goes out in one write. Nothing more
/// once a close frame is in it.
#[derive(Default)]
struct Out {
    buf: Vec<u8>,
    closing: bool,
}

impl Out {
    fn text(&mut self, text: &str) {
        if !self.closing {
            wire::frame::write_text_frame(&mut self.buf, text.as_bytes());
        }
    }

    fn ping(&mut self) {
        if !self.closing {
            wire::frame::write_ping(&mut self.buf);
        }
    }

    fn pong(&mut self, payload: &[u8]) {
        if !self.closing {
            wire::frame::write_pong(&mut self.buf, payload);
        }
    }

    /// A close frame with its code and reason (none: an empty one), the
    /// last frame the connection sends.
    fn close(&mut self, close: Option<(u16, &str)>) {
        if !self.closing {
            wire::frame::write_close(&mut self.buf, close);
            self.closing = true;
        }
    }
}

/// Room a connection keeps for its input and its output while it has
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
    let l = &w.cfg.limits;
    let mut session = Session {
        joined: Vec::new(),
        offers: OfferBucket::new(l.ws_offer_rate, l.ws_offer_burst, Instant::now()),
    };
    let max = l.ws_max_message;
    let mut frames = wire::frame::FrameReader::default();
    let mut input = early;
    let mut out = Out::default();
    let mut heard = Instant::now();
    let mut pinged = false;
    let mut open = true;
    while open {
        // Take every whole message the input holds.
        let mut pos = 0;
        while open {
            let message = match frames.next(&mut input, &mut pos, max) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    out.close(Some((e.close_code(), e.reason())));
                    open = false;
                    break;
                }
            };
            match message {
                Incoming::Text(text) => {
                    w.counters.bytes_in(Protocol::Ws, text.len());
                    let from = From {
                        conn,
                        ip,
                        target: &target,
                    };
                    handle(&w, &mut out, &mut session, from, text).await
                }
                Incoming::Binary => send_error(&mut out, "binary messages are not supported", None),
                Incoming::Ping(payload) => out.pong(payload),
                Incoming::Pong => {}
                // The client closes: its code is echoed (RFC 6455 §5.5.1).
                Incoming::Close(code) => {
                    out.close(code.map(|c| (c, "")));
                    open = false;
                }
            }
        }
        input.drain(..pos);
        release_room(&mut input);
        // The output goes out and comes back empty, keeping up to KEPT_ROOM.
        w.counters.bytes_out(Protocol::Ws, out.buf.len());
        if !out.buf.is_empty() && stream.write_all(&out.buf).await.is_err() {
            break;
        }
        out.buf.clear();
        release_room(&mut out.buf);
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
        let wake = futures_lite::future::or(
            async { Wake::Bytes(read_into(&w, &mut stream, &mut input).await) },
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
                    out.close(Some((CLOSE_AWAY, "tracker upgrading, reconnect")));
                }
                break;
            }
            Wake::Tick => {
                if !pinged && heard.elapsed() >= PING_AFTER {
                    out.ping();
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
            out.text(&text);
        }
    }
    // Writing a last pending close frame is best effort.
    if !out.buf.is_empty() {
        let _ = stream.write_all(&out.buf).await;
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

/// Sends a refusal whose reason the filter made.
fn send_refusal(out: &mut Out, reason: &str, action: &str, info_hash: Option<InfoHash>) {
    let reply = wire::refusal_reply(reason, action, info_hash.as_ref());
    out.text(&reply);
}

fn send_error(out: &mut Out, reason: &'static str, info_hash: Option<InfoHash>) {
    let e = WsError {
        reason,
        action: None,
        info_hash,
    };
    out.text(&wire::error_reply(&e));
}

/// Where a message came from: the connection, the client's address and the
/// upgrade request's target (path and query, for the filter).
struct From<'a> {
    conn: Conn,
    ip: IpAddr,
    target: &'a [u8],
}

async fn handle(w: &Worker, out: &mut Out, session: &mut Session, from: From<'_>, text: &str) {
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
                return send_refusal(out, &reason, "scrape", first);
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
                return send_error(out, "full scrape is disabled: name an info_hash", None);
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
                return send_refusal(out, &reason, "announce", Some(hash));
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
                return send_error(out, "too many torrents on one connection", Some(hash));
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
                    _ => return send_error(out, "tracker is shutting down", Some(hash)),
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
                    return send_refusal(out, full.message(), "announce", Some(hash));
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
    out.text(&reply);
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
