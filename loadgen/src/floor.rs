//! `floor`: stateless responders that answer every request with the
//! smallest valid reply, so that tracker figures read as a fraction of what
//! the same kernel path can do at most.
//!
//! - UDP: every BEP 15 packet, receiving and sending in batches
//!   (recvmmsg/sendmmsg).
//! - HTTP (`--protocol http`): keep-alive connections on epoll; an announce
//!   gets a canned reply with no peers, a scrape one entry per info hash it
//!   names (the query is parsed: the reply must name them).
//! - WebSocket (`--protocol ws`): the handshake, then a canned announce or
//!   scrape reply to every message, and the least relaying a WebTorrent
//!   tracker does: each offer to another connection (the next in turn, not
//!   a peer of the swarm), each answer back to the offer's maker.

use bittorrent_tracker::mmsg::{RecvBatch, SendBatch};
use clap::Args;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// What a floor answers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorProtocol {
    Udp,
    Http,
    Ws,
}

#[derive(Args, Clone, Debug)]
pub struct FloorOpts {
    /// Address to answer on
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// What to answer: UDP datagrams, or HTTP or WebSocket connections
    #[arg(long, value_enum, default_value_t = FloorProtocol::Udp)]
    pub protocol: FloorProtocol,
    /// Responder threads, each with its own SO_REUSEPORT socket
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the threads to
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Stop after this many seconds (default: run until killed)
    #[arg(long)]
    pub duration: Option<f64>,
}

const BATCH: usize = 64;

/// The smallest valid reply to `req`, written into `out`; its length (0: no reply).
pub fn reply(req: &[u8], out: &mut [u8; 1500]) -> usize {
    if req.len() < 16 {
        return 0;
    }
    let action = u32::from_be_bytes(req[8..12].try_into().unwrap());
    out[4..8].copy_from_slice(&req[12..16]); // transaction id
    match action {
        0 if req[..8] == 0x41727101980u64.to_be_bytes() => {
            out[..4].copy_from_slice(&0u32.to_be_bytes());
            out[8..16].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
            16
        }
        1 if req.len() >= 98 => {
            out[..4].copy_from_slice(&1u32.to_be_bytes());
            out[8..12].copy_from_slice(&1800u32.to_be_bytes());
            out[12..20].fill(0);
            20
        }
        2 => {
            let n = ((req.len() - 16) / 20).min(74);
            out[..4].copy_from_slice(&2u32.to_be_bytes());
            out[8..8 + 12 * n].fill(0);
            8 + 12 * n
        }
        _ => 0,
    }
}

fn serve(sock: std::net::UdpSocket, stop_at: Option<std::time::Instant>) -> std::io::Result<()> {
    // Wake up now and then to check the deadline.
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    let fd = sock.as_raw_fd();
    let mut inbox = RecvBatch::new(BATCH);
    let mut outbox = SendBatch::default();
    let mut buf = [0u8; 1500];
    loop {
        if stop_at.is_some_and(|t| std::time::Instant::now() >= t) {
            return Ok(());
        }
        // Block for the first datagram, then take what else is waiting.
        let n = inbox.recv(fd, libc::MSG_WAITFORONE);
        for i in 0..n {
            let len = reply(inbox.packet(i), &mut buf);
            if len > 0 {
                outbox.push(0, Some(inbox.source(i)), |d| {
                    d.extend_from_slice(&buf[..len])
                });
            }
        }
        // A full socket buffer drops the rest, as the kernel would.
        outbox.flush(fd, |_| {});
    }
}

pub fn run(o: &FloorOpts) -> Result<(), String> {
    let stop_at = o
        .duration
        .map(|d| std::time::Instant::now() + std::time::Duration::from_secs_f64(d));
    let mut handles = Vec::new();
    for t in 0..o.threads.max(1) {
        let udp = o.protocol == FloorProtocol::Udp;
        let ty = if udp {
            socket2::Type::DGRAM
        } else {
            socket2::Type::STREAM
        };
        let s = socket2::Socket::new(socket2::Domain::for_address(o.listen), ty, None)
            .map_err(|e| e.to_string())?;
        s.set_reuse_port(true).map_err(|e| e.to_string())?;
        if o.listen.is_ipv6() {
            let _ = s.set_only_v6(true);
        }
        if udp {
            let _ = s.set_recv_buffer_size(8 << 20);
        } else {
            let _ = s.set_reuse_address(true);
        }
        s.bind(&o.listen.into())
            .map_err(|e| format!("bind {}: {e}", o.listen))?;
        if !udp {
            s.listen(4096).map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
        }
        let cpu = o.cpus.get(t % o.cpus.len().max(1)).copied();
        let protocol = o.protocol;
        handles.push(std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                crate::pin(cpu);
            }
            match protocol {
                FloorProtocol::Udp => serve(s.into(), stop_at),
                p => tcp::serve(s.into(), p == FloorProtocol::Ws, stop_at),
            }
        }));
    }
    println!("floor answering on {}", o.listen);
    for h in handles {
        h.join()
            .map_err(|_| "a floor thread panicked")?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittorrent_tracker::protocol::udp::{self, Reply};

    #[test]
    fn smallest_valid_replies() {
        let mut out = [0u8; 1500];
        let mut req = Vec::new();
        udp::write_connect_request(&mut req, 7);
        let n = reply(&req, &mut out);
        assert!(matches!(
            udp::parse_reply(&out[..n]),
            Some(Reply::Connect {
                transaction_id: 7,
                ..
            })
        ));
        req.clear();
        let a = bittorrent_tracker::protocol::AnnounceRequest {
            info_hash: Default::default(),
            peer_id: Default::default(),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: Default::default(),
            numwant: None,
            key: None,
        };
        udp::write_announce_request(&mut req, 1, 8, &a, b"");
        let n = reply(&req, &mut out);
        assert!(matches!(
            udp::parse_reply(&out[..n]),
            Some(Reply::Announce {
                transaction_id: 8,
                peers: [],
                ..
            })
        ));
        req.clear();
        udp::write_scrape_request(&mut req, 1, 9, &[Default::default(), Default::default()]);
        let n = reply(&req, &mut out);
        assert!(
            matches!(udp::parse_reply(&out[..n]), Some(Reply::Scrape { transaction_id: 9, entries }) if entries.len() == 2)
        );
        assert_eq!(reply(&[0u8; 10], &mut out), 0);
        assert_eq!(reply(&[0u8; 16], &mut out), 0, "connect without the magic");
    }

    #[test]
    fn http_and_websocket_floor_replies() {
        use bittorrent_tracker::protocol::http as wire;
        let mut out = Vec::new();
        let head = b"GET /announce?info_hash=%01&port=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(tcp::answer(head, false, &mut out).is_some());
        assert!(
            out.ends_with(b"\r\n\r\nd8:intervali1800e5:peers0:e"),
            "{out:?}"
        );
        // A scrape names each hash once, however often it was asked for.
        let (a, b) = ([1u8; 20], [2u8; 20]);
        let esc = |h: &[u8; 20]| h.iter().map(|c| format!("%{c:02X}")).collect::<String>();
        let head = format!(
            "GET /scrape?info_hash={}&info_hash={}&info_hash={} HTTP/1.1\r\n\r\n",
            esc(&b),
            esc(&a),
            esc(&b)
        );
        out.clear();
        tcp::answer(head.as_bytes(), false, &mut out);
        let body = &out[out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        let files = wire::parse_scrape_response(body).unwrap();
        let names: Vec<[u8; 20]> = files.iter().map(|f| f.0 .0).collect();
        assert_eq!(names, vec![a, b]);
        // The upgrade is answered with RFC 6455's accept key.
        out.clear();
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert!(tcp::answer(head, true, &mut out).is_none());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(
            text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{text}"
        );
    }
}

/// The HTTP and WebSocket floors: one epoll loop per thread.
mod tcp {
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};
    use std::collections::HashMap;
    use std::io::{ErrorKind, Read, Write};
    use std::time::{Duration, Instant};
    use tungstenite::protocol::Role;
    use tungstenite::{Message, WebSocket};

    const LISTENER: Token = Token(usize::MAX);
    /// Offers remembered for their answers, at most; then forgotten at once.
    const MAX_OFFERS: usize = 1 << 20;

    /// What the WebSocket floor keeps: who made each offer, and whose turn
    /// it is to be handed the next one.
    #[derive(Default)]
    struct Relay {
        offers: HashMap<[u8; 20], usize>,
        websockets: Vec<usize>,
        turn: usize,
        /// Connections written to while another was served: flushed after.
        touched: Vec<usize>,
    }

    /// The announce reply: an interval and no peers.
    const ANNOUNCE: &[u8] = b"d8:intervali1800e5:peers0:e";
    const WS_ANNOUNCE: &str = r#"{"action":"announce","interval":120,"info_hash":"aaaaaaaaaaaaaaaaaaaa","complete":0,"incomplete":0}"#;
    const WS_SCRAPE: &str = r#"{"action":"scrape","files":{}}"#;

    enum Conn {
        Http {
            stream: TcpStream,
            rbuf: Vec<u8>,
            wbuf: Vec<u8>,
        },
        /// A WebSocket connection, once its upgrade request was answered.
        Ws(Box<WebSocket<TcpStream>>),
    }

    /// The reply to one HTTP request (`head` up to its blank line), written
    /// to `out`; `None` for an upgrade to WebSocket, with the 101 written.
    pub(super) fn answer(head: &[u8], ws: bool, out: &mut Vec<u8>) -> Option<()> {
        let text = std::str::from_utf8(head).unwrap_or("");
        let target = text.split(' ').nth(1).unwrap_or("/");
        if ws {
            let key = text
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-key"))
                .map(|(_, v)| v.trim())
                .unwrap_or("");
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                )
                .as_bytes(),
            );
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut body = Vec::new();
        if path.starts_with("/scrape") {
            let mut hashes = Vec::new();
            let _ = bittorrent_tracker::protocol::http::parse_scrape(
                query.as_bytes(),
                256,
                &mut hashes,
            );
            // Bencode's keys are sorted, once each.
            hashes.sort_unstable();
            hashes.dedup();
            body.extend_from_slice(b"d5:filesd");
            for h in &hashes {
                body.extend_from_slice(b"20:");
                body.extend_from_slice(&h.0);
                body.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei0ee");
            }
            body.extend_from_slice(b"ee");
        } else {
            body.extend_from_slice(ANNOUNCE);
        }
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        Some(())
    }

    /// Serves connections on `listener` until `stop_at`.
    pub(super) fn serve(
        listener: std::net::TcpListener,
        ws: bool,
        stop_at: Option<Instant>,
    ) -> std::io::Result<()> {
        let mut poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut conns: HashMap<usize, Conn> = HashMap::new();
        let mut relay = Relay::default();
        let mut next = 0usize;
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stop_at.is_some_and(|t| Instant::now() >= t) {
                return Ok(());
            }
            poll.poll(&mut events, Some(Duration::from_millis(200)))?;
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    while let Ok((mut stream, _)) = listener.accept() {
                        let _ = stream.set_nodelay(true);
                        let t = Token(next);
                        next += 1;
                        poll.registry().register(
                            &mut stream,
                            t,
                            Interest::READABLE | Interest::WRITABLE,
                        )?;
                        conns.insert(
                            t.0,
                            Conn::Http {
                                stream,
                                rbuf: Vec::new(),
                                wbuf: Vec::new(),
                            },
                        );
                    }
                    continue;
                }
                let id = ev.token().0;
                let Some(conn) = conns.remove(&id) else {
                    continue;
                };
                let was_ws = matches!(conn, Conn::Ws(_));
                match step(id, conn, ws, &mut buf, &mut conns, &mut relay) {
                    Some(conn) => {
                        if !was_ws && matches!(conn, Conn::Ws(_)) {
                            relay.websockets.push(id);
                        }
                        conns.insert(id, conn);
                    }
                    None if was_ws => relay.websockets.retain(|&w| w != id),
                    None => {}
                }
                for t in std::mem::take(&mut relay.touched) {
                    if let Some(Conn::Ws(w)) = conns.get_mut(&t) {
                        let _ = w.flush();
                    }
                }
            }
        }
    }

    /// Answers one WebSocket message from connection `id`; relays its offers
    /// or its answer to the other connections in `conns`.
    fn message(
        id: usize,
        text: &str,
        ws: &mut WebSocket<TcpStream>,
        conns: &mut HashMap<usize, Conn>,
        relay: &mut Relay,
    ) {
        use bittorrent_tracker::protocol::ws::{self as wire, Relayed, Sdp, WsRequest};
        let a = match wire::parse(text) {
            Ok(WsRequest::Announce(a)) => a,
            Ok(WsRequest::Scrape(_)) => {
                let _ = ws.write(Message::text(WS_SCRAPE));
                return;
            }
            Err(_) => return,
        };
        let hash = a.request.info_hash;
        let from = a.request.peer_id;
        let mut send = |to: usize, r: Relayed| {
            if let Some(Conn::Ws(w)) = conns.get_mut(&to) {
                let _ = w.write(Message::text(r.to_json()));
                relay.touched.push(to);
            }
        };
        if let Some(answer) = a.answer {
            if let Some(to) = relay.offers.remove(&answer.offer_id) {
                send(
                    to,
                    Relayed {
                        info_hash: hash,
                        peer_id: from,
                        offer_id: answer.offer_id,
                        sdp: Sdp::Answer(answer.answer),
                    },
                );
            }
        }
        if a.answer_only {
            return;
        }
        let _ = ws.write(Message::text(WS_ANNOUNCE));
        for offer in a.offers {
            // The next connection in turn that is not the sender's.
            let n = relay.websockets.len();
            let Some(to) = (0..n)
                .map(|i| relay.websockets[(relay.turn + i) % n])
                .find(|&t| t != id)
            else {
                break;
            };
            relay.turn = relay.turn.wrapping_add(1);
            if relay.offers.len() >= MAX_OFFERS {
                relay.offers.clear();
            }
            relay.offers.insert(offer.offer_id, id);
            send(
                to,
                Relayed {
                    info_hash: hash,
                    peer_id: from,
                    offer_id: offer.offer_id,
                    sdp: Sdp::Offer(offer.offer),
                },
            );
        }
    }

    /// Reads what came and answers it; `None` when the connection is done.
    fn step(
        id: usize,
        conn: Conn,
        ws: bool,
        buf: &mut [u8],
        conns: &mut HashMap<usize, Conn>,
        relay: &mut Relay,
    ) -> Option<Conn> {
        match conn {
            Conn::Http {
                mut stream,
                mut rbuf,
                mut wbuf,
            } => {
                let mut upgraded = false;
                loop {
                    match stream.read(buf) {
                        Ok(0) => return None,
                        Ok(n) => rbuf.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => return None,
                    }
                }
                while let Some(end) = rbuf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head: Vec<u8> = rbuf.drain(..end + 4).collect();
                    if answer(&head, ws, &mut wbuf).is_none() {
                        upgraded = true;
                        break;
                    }
                }
                match stream.write(&wbuf) {
                    Ok(n) => {
                        wbuf.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
                if upgraded && wbuf.is_empty() {
                    // Small buffers, as a tracker keeps for many connections.
                    let mut config = tungstenite::protocol::WebSocketConfig::default();
                    config.read_buffer_size = 4096;
                    let ws =
                        WebSocket::from_partially_read(stream, rbuf, Role::Server, Some(config));
                    return step(id, Conn::Ws(Box::new(ws)), true, buf, conns, relay);
                }
                Some(Conn::Http { stream, rbuf, wbuf })
            }
            Conn::Ws(mut ws) => {
                loop {
                    match ws.read() {
                        // A full socket keeps replies in tungstenite's buffer.
                        Ok(Message::Text(t)) => message(id, t.as_str(), &mut ws, conns, relay),
                        Ok(Message::Close(_)) => return None,
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                            break
                        }
                        Err(_) => return None,
                    }
                }
                match ws.flush() {
                    Ok(()) => Some(Conn::Ws(ws)),
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                        Some(Conn::Ws(ws))
                    }
                    Err(_) => None,
                }
            }
        }
    }
}
