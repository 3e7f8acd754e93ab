//! HTTP front: `/announce`, `/scrape` (one, several or every torrent), over
//! HTTP/1.1 keep-alive with pipelining, HTTP/1.0 and `Connection: close`.
//! Tracker-level errors are a bencoded `failure reason` with status 200;
//! broken HTTP gets 400, 404, 405, 413 or 431 and the connection is closed.

use super::access::{FilterAction, FilterRequest};
use super::full_scrape::Snapshot;
use super::handover::Phase;
use super::logging::{debug_request, log};
use super::mesh::{Reply, Request};
use super::per_address::PerAddress;
use super::stats::{Action, Refusal};
use super::tls::{self, Conn};
use super::worker::Worker;
use super::ws;
use crate::answer;
use crate::config::LogLevel;
use crate::protocol::head::{
    header_slots, inspect, write_error, write_head, write_head_with, write_status, Head, Status,
    MAX_BODY,
};
use crate::protocol::http as wire;
use crate::protocol::Protocol;
use crate::protocol::{bencode, canonical_ip, InfoHash};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Bytes a connection starts with for reading requests.
const FIRST_BUFFER: usize = 2 * 1024;
const HTTP: Protocol = Protocol::Http;
/// Pipelined replies are flushed once this many bytes are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// Accepts connections on one listener until the executor stops.
pub(crate) async fn accept(w: Rc<Worker>, listener: TcpListener) {
    loop {
        if !w.handover.serving() {
            // Handing over: new connections wait in the listener's queue.
            w.handover.until(|p| p == Phase::Serving).await;
            continue;
        }
        // Wait for a connection, then take it: a hand-over cancels only the
        // wait, which loses nothing. (Cancelling a pending accept loses the
        // connection the ring may have just taken.)
        let Some(accepted) = listener.try_accept() else {
            let ready =
                futures_lite::future::or(async { Some(listener.readable().await) }, async {
                    w.handover.until(|p| p != Phase::Serving).await;
                    None
                })
                .await;
            if let Some(Err(e)) = ready {
                log(&w.cfg, LogLevel::Errors, format_args!("http accept: {e}"));
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        match accepted {
            Ok(stream) => {
                // Over a limit: closed at once, before it costs anything.
                let open_now: u64 = w.counters.open_connections();
                if open_now >= w.max_connections as u64 {
                    w.counters.refused(Refusal::MaxConnections, 1);
                    drop(stream);
                    continue;
                }
                let Ok(peer) = stream.peer_addr() else {
                    continue;
                };
                // Behind a trusted proxy every connection comes from it:
                // no share per address.
                let place = (!w.cfg.trust_proxy)
                    .then(|| PerAddress::enter(&w.shared.per_address, peer.ip()));
                if let Some(None) = place {
                    w.counters.refused(Refusal::MaxConnectionsPerIp, 1);
                    debug_request!(
                        w.cfg,
                        HTTP,
                        "connect",
                        peer,
                        None,
                        "refused: limits.max_connections_per_ip"
                    );
                    drop(stream);
                    continue;
                }
                let w = w.clone();
                glommio::spawn_local(async move {
                    let Some((up, key)) = open(w.clone(), stream, peer).await else {
                        return drop(place);
                    };
                    // A WebSocket gets a task of its own, so that it keeps
                    // nothing of the HTTP task (its future, its buffers).
                    glommio::spawn_local(async move {
                        ws::serve(w.clone(), up).await;
                        w.counters.connection(Protocol::Ws, false);
                        w.conns.leave(key);
                        drop(place);
                    })
                    .detach();
                })
                .detach();
            }
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log(&w.cfg, LogLevel::Errors, format_args!("http accept: {e}"));
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Starts serving a new connection: through TLS when the server has a
/// certificate and the client's first byte opens a TLS handshake, as plain
/// HTTP otherwise. A connection upgraded to WebSocket comes back, counted
/// as one and with its key in `conns`, for a task of its own.
async fn open(
    w: Rc<Worker>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) -> Option<(ws::Upgraded, usize)> {
    let _ = stream.set_nodelay(true);
    let acceptor = w.tls.borrow().clone();
    let conn = match acceptor {
        None => Conn::Plain(stream),
        Some(acceptor) => {
            let mut first = [0u8; 1];
            let request_timeout = Duration::from_secs(w.cfg.limits.request_timeout as u64);
            if stream.set_read_timeout(Some(request_timeout)).is_err() {
                return None;
            }
            match stream.peek(&mut first).await {
                Ok(1) if first[0] == tls::HANDSHAKE => {
                    let handshake = acceptor.accept(stream);
                    let limit = async {
                        glommio::timer::sleep(request_timeout).await;
                        Err(std::io::ErrorKind::TimedOut.into())
                    };
                    match futures_lite::future::or(handshake, limit).await {
                        Ok(s) => Conn::Tls(Box::new(s)),
                        Err(e) => {
                            log(
                                &w.cfg,
                                LogLevel::Debug,
                                format_args!("tls handshake with {peer}: {e}"),
                            );
                            return None;
                        }
                    }
                }
                Ok(1) => Conn::Plain(stream),
                _ => return None,
            }
        }
    };
    // From here on the worker's tick keeps the connection's time (`conns`).
    if conn.set_read_timeout(None).is_err() {
        return None;
    }
    w.counters.connection(HTTP, true);
    let key = w.conns.enter(conn.as_raw_fd());
    let upgraded = serve(&w, conn, peer, key).await;
    w.counters.connection(HTTP, false);
    match upgraded {
        Some(up) => {
            w.counters.connection(Protocol::Ws, true);
            w.conns.websocket(key);
            Some((up, key))
        }
        None => {
            w.conns.leave(key);
            None
        }
    }
}

async fn flush(w: &Worker, stream: &mut Conn, out: &mut Vec<u8>) -> bool {
    w.counters.bytes_out(HTTP, out.len());
    let ok = stream.write_all(out).await.is_ok();
    out.clear();
    ok
}

/// Serves one connection: every complete request in the buffer is answered
/// in order, replies to pipelined requests go out together.
async fn serve(
    w: &Rc<Worker>,
    mut stream: Conn,
    peer: std::net::SocketAddr,
    entry: usize,
) -> Option<ws::Upgraded> {
    let limits = &w.cfg.limits;
    let max_head = limits.max_request_bytes;
    // Deadlines in whole tracker seconds, a second added so that none is
    // cut short by the clock's rounding down.
    let idle_timeout = limits.idle_timeout.saturating_add(1);
    let request_timeout = limits.request_timeout.saturating_add(1);
    // Most requests fit the first buffer; it grows (to at most a whole head
    // and body) only for a request that needs it, so idle keep-alive
    // connections stay cheap.
    let mut buf = vec![0u8; FIRST_BUFFER];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut body = Vec::new();
    // The tracker second the request being read began in.
    let mut began: Option<u32> = None;
    loop {
        // Answer what is complete.
        while start < end {
            let mut slots = header_slots();
            let mut req = httparse::Request::new(&mut []);
            let head_len = match req.parse_with_uninit_headers(&buf[start..end], &mut slots) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) if end - start > max_head => {
                    write_error(&mut out, Status::HeaderFieldsTooLarge);
                    flush(w, &mut stream, &mut out).await;
                    return None;
                }
                Ok(httparse::Status::Partial) => break,
                Err(httparse::Error::TooManyHeaders) => {
                    write_error(&mut out, Status::HeaderFieldsTooLarge);
                    flush(w, &mut stream, &mut out).await;
                    return None;
                }
                Err(_) => {
                    write_error(&mut out, Status::BadRequest);
                    flush(w, &mut stream, &mut out).await;
                    return None;
                }
            };
            let mut head = match inspect(&req) {
                Ok(h) => h,
                Err(s) => {
                    write_error(&mut out, s);
                    flush(w, &mut stream, &mut out).await;
                    return None;
                }
            };
            if end - start < head_len + head.body {
                break; // the body is still coming
            }
            if !w.handover.serving() {
                // Handing over: this answer is the connection's last.
                if head.websocket {
                    return None; // the client reconnects, to the new process
                }
                head.keep_alive = false;
            }
            if head.websocket {
                // Any path becomes a WebSocket tracker connection.
                let header = |n: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(n))
                        .map(|h| h.value.trim_ascii())
                };
                let key = header("sec-websocket-key");
                match (w.cfg.ws, req.method, key, header("sec-websocket-version")) {
                    (true, Some("GET"), Some(key), Some(b"13")) => {
                        ws::handshake_reply(key, &mut out);
                        let early = buf[start + head_len + head.body..end].to_vec();
                        let target = req.path.unwrap_or("/").as_bytes().to_vec();
                        if flush(w, &mut stream, &mut out).await {
                            let ip = client_ip(w, peer.ip(), &head).unwrap_or(peer.ip());
                            return Some(ws::Upgraded {
                                stream,
                                early,
                                ip,
                                target,
                            });
                        }
                    }
                    (false, ..) => {
                        write_error(&mut out, Status::NotFound);
                        flush(w, &mut stream, &mut out).await;
                    }
                    _ => {
                        write_error(&mut out, Status::BadRequest);
                        flush(w, &mut stream, &mut out).await;
                    }
                }
                return None;
            }
            let (path, query) = wire::split_target(req.path.unwrap_or("/").as_bytes());
            body.clear();
            let mut full = None;
            let is = |name: &[u8]| {
                path == name || (path.starts_with(name) && path.get(name.len()) == Some(&b'/'))
            };
            let cfg = &w.cfg;
            let c = &w.counters;
            let mut content_type = "text/plain";
            let (action, status) = match req.method {
                Some("GET") if cfg.http && is(b"/announce") => {
                    let ok = match client_ip(w, peer.ip(), &head) {
                        Ok(ip) => announce(w, path, query, ip, &mut body).await,
                        Err(reason) => {
                            bencode::failure(&mut body, reason);
                            false
                        }
                    };
                    (Action::Announce, ok.then_some(Status::Ok))
                }
                Some("GET") if cfg.http && is(b"/scrape") => {
                    let ok = match client_ip(w, peer.ip(), &head) {
                        Ok(ip) => scrape(w, path, query, ip, &mut body, &mut full).await,
                        Err(reason) => {
                            bencode::failure(&mut body, reason);
                            false
                        }
                    };
                    (Action::Scrape, ok.then_some(Status::Ok))
                }
                Some("GET") if cfg.stats && (path == b"/stats" || path == b"/stats.json") => {
                    let stats = w.stats().await;
                    if path == b"/stats.json" || head.json {
                        content_type = "application/json";
                        body.extend_from_slice(stats.json().as_bytes());
                    } else {
                        content_type = "text/html; charset=utf-8";
                        body.extend_from_slice(stats.html().as_bytes());
                    }
                    (Action::Stats, Some(Status::Ok))
                }
                Some("GET") if cfg.metrics && path == b"/metrics" => {
                    content_type = "text/plain; version=0.0.4; charset=utf-8";
                    body.extend_from_slice(w.stats().await.prometheus().as_bytes());
                    (Action::Stats, Some(Status::Ok))
                }
                Some("GET") => (Action::Other, Some(Status::NotFound)),
                _ => (Action::Other, Some(Status::MethodNotAllowed)),
            };
            c.request(HTTP, action);
            match status {
                Some(Status::Ok) => c.response(HTTP, action),
                _ => c.error(HTTP, action),
            }
            if matches!(action, Action::Stats | Action::Other) {
                debug_request!(
                    w.cfg,
                    HTTP,
                    req.method.unwrap_or("?"),
                    peer,
                    None,
                    "{} {}",
                    String::from_utf8_lossy(path),
                    status.map_or("", Status::line)
                );
            }
            start += head_len + head.body;
            match status {
                // A tracker-level refusal: bencoded, status 200.
                Some(Status::Ok) if full.is_some() => {
                    let snap = full.take().expect("a snapshot");
                    let bytes = if head.gzip {
                        &snap.http_gzip
                    } else {
                        &snap.http
                    };
                    let age = snap.built.elapsed().as_secs().to_string();
                    let headers = [("Age", age.as_str()), ("Content-Encoding", "gzip")];
                    let extra = if head.gzip {
                        &headers[..]
                    } else {
                        &headers[..1]
                    };
                    write_head_with(
                        &mut out,
                        Status::Ok,
                        content_type,
                        bytes.len(),
                        head.keep_alive,
                        head.http10,
                        extra,
                    );
                    // The snapshot goes out as it is, not copied.
                    if !flush(w, &mut stream, &mut out).await {
                        return None;
                    }
                    w.counters.bytes_out(HTTP, bytes.len());
                    if stream.write_all(bytes).await.is_err() {
                        return None;
                    }
                }
                None | Some(Status::Ok) => {
                    write_head(
                        &mut out,
                        Status::Ok,
                        content_type,
                        body.len(),
                        head.keep_alive,
                        head.http10,
                    );
                    out.extend_from_slice(&body);
                }
                Some(s) => write_status(&mut out, s, head.keep_alive, head.http10),
            }
            // A wrong method is no tracker client: answer it and hang up.
            if !head.keep_alive || status == Some(Status::MethodNotAllowed) {
                flush(w, &mut stream, &mut out).await;
                return None;
            }
            if out.len() >= FLUSH_AT && !flush(w, &mut stream, &mut out).await {
                return None;
            }
        }
        if !out.is_empty() && !flush(w, &mut stream, &mut out).await {
            return None;
        }
        // Keep what is left of a partial request at the front of the buffer.
        if start == end {
            start = 0;
            end = 0;
            began = None;
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            if buf.len() >= max_head + MAX_BODY {
                write_error(&mut out, Status::HeaderFieldsTooLarge);
                flush(w, &mut stream, &mut out).await;
                return None;
            }
            buf.resize((buf.len() * 2).min(max_head + MAX_BODY), 0);
        }
        let until = match began {
            Some(t) => t.saturating_add(request_timeout),
            None => w.now().saturating_add(idle_timeout),
        };
        if began.is_some() && w.now() >= until {
            return None; // too slow: a slowloris gets no more time
        }
        w.conns.wait_until(entry, Some(until));
        let read = stream.read(&mut buf[end..]).await;
        w.conns.wait_until(entry, None);
        match read {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                w.counters.bytes_in(HTTP, n);
                w.pace.received();
                if end == 0 {
                    began = Some(w.now());
                }
                end += n;
            }
        }
    }
}

/// The announcing client's address: the socket's, or with `--trust-proxy`
/// the one the proxy appended to `X-Forwarded-For`.
fn client_ip(w: &Worker, socket_ip: IpAddr, head: &Head) -> Result<IpAddr, &'static str> {
    match (w.cfg.trust_proxy, head.forwarded) {
        (true, Some(Ok(ip))) => Ok(canonical_ip(ip)),
        (true, Some(Err(()))) => Err("invalid X-Forwarded-For"),
        _ => Ok(canonical_ip(socket_ip)),
    }
}

/// Answers an announce; false when the reply is a `failure reason`.
async fn announce(w: &Worker, path: &[u8], query: &[u8], ip: IpAddr, body: &mut Vec<u8>) -> bool {
    let parsed = wire::parse_announce_with(query, |hash| {
        if w.owner(hash) == w.id {
            w.shard.borrow().prefetch_torrent(hash);
        }
    });
    let a = match parsed {
        Ok(a) => a,
        Err(e) => {
            debug_request!(
                w.cfg,
                HTTP,
                "announce",
                ip,
                None,
                "refused: {}",
                e.message()
            );
            bencode::failure(body, e.message());
            return false;
        }
    };
    let r = FilterRequest {
        action: FilterAction::Announce,
        info_hash: Some(&a.request.info_hash),
        peer_id: Some(&a.request.peer_id),
        addr: ip,
        protocol: HTTP,
        path,
        query,
    };
    if let Some(reason) = w.refused(&r) {
        debug_request!(
            w.cfg,
            HTTP,
            "announce",
            ip,
            Some(&a.request.info_hash),
            "refused: {reason}"
        );
        bencode::failure(body, &reason);
        return false;
    }
    let owner = w.owner(&a.request.info_hash);
    if owner == w.id {
        let mut peers = w.peers.borrow_mut();
        let r = w.apply_announce(
            &a.request,
            ip,
            &answer::http::want(&w.cfg, &a),
            &mut peers,
            HTTP,
        );
        return answer::http::write_announce(body, &answer::http::form(&w.cfg, &a), &r, &peers);
    }
    w.counters.forwarded();
    let form = answer::http::form(&w.cfg, &a);
    let want = answer::http::want(&w.cfg, &a);
    let reply = w
        .call(owner, |token| Request::Announce {
            token,
            announce: a.request,
            ip,
            want,
        })
        .await;
    match reply {
        Some(Reply::Announce { stats, peers, .. }) => {
            answer::http::write_announce(body, &form, &stats, &peers)
        }
        _ => {
            bencode::failure(body, "tracker is shutting down");
            false
        }
    }
}

/// Answers a scrape; false when the reply is a `failure reason`. A full
/// scrape is answered from the shared snapshot, left in `full` for the
/// caller to write out whole rather than copied into `body`.
async fn scrape(
    w: &Worker,
    path: &[u8],
    query: &[u8],
    ip: IpAddr,
    body: &mut Vec<u8>,
    full: &mut Option<Arc<Snapshot>>,
) -> bool {
    let trace = |hash: Option<&InfoHash>, outcome: std::fmt::Arguments<'_>| {
        debug_request!(w.cfg, HTTP, "scrape", ip, hash, "{outcome}")
    };
    let mut hashes: Vec<InfoHash> = Vec::new();
    if let Err(e) = wire::parse_scrape(query, w.cfg.limits.max_scrape_hashes, &mut hashes) {
        trace(None, format_args!("refused: {}", e.message()));
        bencode::failure(body, e.message());
        return false;
    }
    let first = hashes.first().copied();
    if let Some(reason) = w.scrape_refused(&hashes, ip, HTTP, path, query) {
        trace(first.as_ref(), format_args!("refused: {reason}"));
        bencode::failure(body, &reason);
        return false;
    }
    let entries = if hashes.is_empty() {
        if !w.cfg.full_scrape {
            trace(None, format_args!("refused: full scrape is disabled"));
            bencode::failure(body, "full scrape is disabled: name an info_hash");
            return false;
        }
        let snap = w.full_scrape().await;
        trace(
            None,
            format_args!(
                "ok, full, {} torrents, {} s old",
                snap.torrents,
                snap.built.elapsed().as_secs()
            ),
        );
        *full = Some(snap);
        return true;
    } else {
        hashes.sort_unstable();
        hashes.dedup();
        let stats = w.scrape(&hashes).await;
        hashes.into_iter().zip(stats).collect::<Vec<_>>()
    };
    trace(
        first.as_ref(),
        format_args!("ok, {} torrents", entries.len()),
    );
    wire::write_scrape_reply(body, &entries, w.cfg.interval);
    true
}
