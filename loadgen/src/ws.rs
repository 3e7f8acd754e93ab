//! WebSocket load (WebTorrent): each connection is one peer that announces
//! with offers in a closed loop and answers every offer it is handed.
//! Announce and scrape replies are matched in order per connection; answers
//! are matched to the offers this connection made, and their latency is the
//! whole offer -> other peer -> answer -> back trip.

use crate::report::{Live, Stats, Unpublished, Verdict};
use crate::workload::{Generator, Kind};
use crate::LoadOpts;
use bittorrent_tracker::protocol::ws::{
    parse_server_message, Offer, Sdp, ServerMessage, WsAnnounce, WsRequest,
};
use bittorrent_tracker::protocol::InfoHash;
use mio::net::TcpStream;
use mio::{Events, Poll, Token};
use serde_json::json;
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Offers not answered within this long are forgotten (a swarm with fewer
/// peers than offers leaves some unanswered: that is no error).
const OFFER_WAIT: Duration = Duration::from_secs(10);
/// After the deadline a thread sends nothing new but goes on reading, so
/// that replies and answers already on their way are counted, not lost:
/// until this one has no reply pending and nothing has come for [`QUIET`],
/// and at most this long.
const DRAIN: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(250);
const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:load\r\na=ice-pwd:generatorgeneratorgenera\r\na=fingerprint:sha-256 00:00\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n";

/// A session description of `kind` (offer or answer) with [`SDP`], as JSON.
fn sdp(kind: &str) -> Box<RawValue> {
    let text = json!({"type": kind, "sdp": SDP}).to_string();
    RawValue::from_string(text).expect("JSON is JSON")
}

/// A connection's socket: upgrading, then framed by tungstenite.
enum Sock {
    /// Connecting, then sending the upgrade request and reading the 101.
    Upgrading {
        stream: TcpStream,
        sent: bool,
        head: Vec<u8>,
    },
    Open(Box<WebSocket<TcpStream>>),
}

/// A connection's peer and what it waits for.
struct Conn {
    peer: usize,
    /// Replies expected, in order: (kind, sent at, peers or files expected).
    waiting: VecDeque<(Kind, Instant)>,
    /// Offers made and not yet answered, by offer id.
    offers: HashMap<[u8; 20], Instant>,
    next_offer: u64,
}

struct Load {
    gen: Generator,
    stats: Stats,
    u: Unpublished,
    hashes: Vec<InfoHash>,
    offers_per_announce: usize,
    id: u64,
    /// Past the deadline: replies are counted, nothing new is sent.
    draining: bool,
    /// The session descriptions every offer and answer carries.
    offer_sdp: Box<RawValue>,
    answer_sdp: Box<RawValue>,
}

impl Load {
    /// Sends the next announce (with offers) or scrape on an open connection.
    fn next_request(&mut self, c: &mut Conn, ws: &mut WebSocket<TcpStream>, now: Instant) {
        let msg = if self.gen.garbage() {
            // Not a valid announce: a tracker must answer with a failure reason.
            c.waiting.push_back((Kind::Garbage, now));
            json!({"action": "announce", "info_hash": "too short", "peer_id": 5}).to_string()
        } else if self.gen.kind() == Kind::Scrape {
            self.gen.scrape(&mut self.hashes);
            c.waiting.push_back((Kind::Scrape, now));
            WsRequest::Scrape(self.hashes.clone()).to_json()
        } else {
            let mut a = self.gen.announce(c.peer, 0);
            let mut offers = Vec::with_capacity(self.offers_per_announce);
            for _ in 0..self.offers_per_announce {
                // Unique per thread, peer and offer: the tracker keys offers by id.
                let mut oid = [0u8; 20];
                oid[..4].copy_from_slice(&(self.id as u32).to_be_bytes());
                oid[4..8].copy_from_slice(&(c.peer as u32).to_be_bytes());
                oid[8..16].copy_from_slice(&c.next_offer.to_be_bytes());
                c.next_offer += 1;
                c.offers.insert(oid, now);
                offers.push(Offer {
                    offer_id: oid,
                    offer: self.offer_sdp.clone(),
                });
            }
            c.waiting.push_back((Kind::Announce, now));
            a.numwant = Some(offers.len() as u32);
            a.left = Some(a.left.unwrap_or(0));
            WsRequest::Announce(Box::new(WsAnnounce::new(a, offers))).to_json()
        };
        let kind = c.waiting.back().map_or(Kind::Announce, |w| w.0);
        self.stats.sent[kind as usize] += 1;
        // A full socket leaves the frame in tungstenite's buffer, flushed on writable.
        let _ = ws.send(Message::text(msg));
    }

    /// Handles one message from the tracker.
    fn message(&mut self, c: &mut Conn, ws: &mut WebSocket<TcpStream>, text: &str, now: Instant) {
        let m = match parse_server_message(text) {
            Ok(ServerMessage::Relayed(r)) => {
                match r.sdp {
                    // Another peer's offer: answer it, as a browser would,
                    // unless the run is over (its answer could not land).
                    Sdp::Offer(_) if self.draining => {}
                    Sdp::Offer(_) => {
                        let me = self.gen.announce(c.peer, 0).peer_id;
                        let answer = WsAnnounce::answer(
                            r.info_hash,
                            me,
                            r.peer_id,
                            r.offer_id,
                            self.answer_sdp.clone(),
                        );
                        self.stats.sent[Kind::Answer as usize] += 1;
                        let text = WsRequest::Announce(Box::new(answer)).to_json();
                        let _ = ws.send(Message::text(text));
                    }
                    // The answer to one of this peer's offers.
                    Sdp::Answer(_) => {
                        let (verdict, latency) = match c.offers.remove(&r.offer_id) {
                            Some(at) => (Verdict::Ok, now.saturating_duration_since(at)),
                            None => (Verdict::Invalid, Duration::ZERO),
                        };
                        self.stats
                            .tally(Kind::Answer, verdict, latency, &mut self.u);
                    }
                }
                return;
            }
            // Not a tracker message: it answers (wrongly) the request pending.
            m => m.ok(),
        };
        // A reply to this connection's own request, in order. A reply with
        // none pending acknowledges an answer (the reference tracker sends
        // those): counted as late, it cannot be told from the next reply.
        let Some((kind, at)) = c.waiting.pop_front() else {
            self.stats.late += 1;
            return;
        };
        let verdict = match (kind, &m) {
            (_, None) => Verdict::Invalid,
            (Kind::Garbage, Some(ServerMessage::Failure { .. })) => Verdict::Ok,
            (Kind::Garbage, _) => Verdict::Invalid,
            (_, Some(ServerMessage::Failure { .. })) => Verdict::Error,
            (Kind::Scrape, Some(ServerMessage::Scrape(_))) => Verdict::Ok,
            (
                Kind::Announce,
                Some(ServerMessage::Announce {
                    interval: Some(_),
                    complete: Some(_),
                    incomplete: Some(_),
                    ..
                }),
            ) => Verdict::Ok,
            _ => Verdict::Invalid,
        };
        self.stats.tally(
            kind,
            verdict,
            now.saturating_duration_since(at),
            &mut self.u,
        );
        if !self.draining {
            self.next_request(c, ws, now);
        }
    }
}

/// The request that opens a WebSocket tracker connection to `target`.
pub fn upgrade_request(target: std::net::SocketAddr) -> String {
    format!(
        "GET /announce HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Moves an upgrading socket on: sends the request once connected, reads
/// the 101. Returns whether the upgrade is done.
fn upgrade(
    opts: &LoadOpts,
    sock: &mut Sock,
    writable: bool,
    readable: bool,
) -> Result<bool, String> {
    let Sock::Upgrading { stream, sent, head } = sock else {
        return Ok(true);
    };
    if !*sent && writable && stream.peer_addr().is_ok() {
        let req = upgrade_request(opts.target);
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("{}: upgrade: {e}", opts.target))?;
        *sent = true;
    }
    if !(*sent && readable) {
        return Ok(false);
    }
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("{}: closed during the upgrade", opts.target)),
            Ok(k) => head.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("{}: upgrade: {e}", opts.target)),
        }
    }
    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
        return Ok(false);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "{}: no WebSocket upgrade: {}",
            opts.target,
            String::from_utf8_lossy(head)
        ));
    }
    Ok(true)
}

/// One load thread.
pub fn engine(
    opts: &LoadOpts,
    thread: usize,
    live: &Live,
    deadline: Instant,
) -> Result<Stats, String> {
    if opts.rate.is_some() {
        return Err("ws: only closed loop (no --rate) is supported".into());
    }
    let threads = opts.threads.max(1);
    let n = (opts.connections / threads).max(1);
    let mut workload = opts.workload.clone();
    // One peer per connection.
    workload.peers = (n * threads) as u32;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let sources = opts.sources.max(1);
    let mut socks: Vec<Option<Sock>> = Vec::with_capacity(n);
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let stream = opts
            .connect_tcp(thread, i % sources, &poll, Token(i))
            .map_err(|e| format!("connect to {}: {e}", opts.target))?;
        socks.push(Some(Sock::Upgrading {
            stream,
            sent: false,
            head: Vec::new(),
        }));
        conns.push(Conn {
            peer: i,
            waiting: VecDeque::new(),
            offers: HashMap::new(),
            next_offer: 0,
        });
    }
    let mut load = Load {
        gen: Generator::new(&workload, thread, threads, 0x7575_5eed ^ thread as u64),
        stats: Stats::new(),
        u: Unpublished::default(),
        hashes: Vec::new(),
        offers_per_announce: opts.offers,
        id: thread as u64,
        draining: false,
        offer_sdp: sdp("offer"),
        answer_sdp: sdp("answer"),
    };
    let timeout = Duration::from_millis(opts.timeout_ms);
    let mut events = Events::with_capacity(1024);
    let mut last_sweep = Instant::now();
    let mut last_message = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            load.draining = true;
            let pending = conns.iter().any(|c| !c.waiting.is_empty());
            let quiet = now.saturating_duration_since(last_message) >= QUIET;
            if now >= deadline + DRAIN || (quiet && !pending) {
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            let (c, slot) = (&mut conns[i], &mut socks[i]);
            if let Some(sock @ Sock::Upgrading { .. }) = slot.as_mut() {
                if upgrade(opts, sock, ev.is_writable(), ev.is_readable())? {
                    let Some(Sock::Upgrading { stream, .. }) = slot.take() else {
                        unreachable!()
                    };
                    let mut ws = Box::new(WebSocket::from_raw_socket(stream, Role::Client, None));
                    if !load.draining {
                        load.next_request(c, &mut ws, now);
                    }
                    *slot = Some(Sock::Open(ws));
                }
                continue;
            }
            let Some(Sock::Open(ws)) = slot.as_mut() else {
                continue;
            };
            if ev.is_writable() {
                let _ = ws.flush();
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match ws.read() {
                    Ok(Message::Text(t)) => {
                        last_message = now;
                        load.message(c, ws, t.as_str(), now)
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(format!(
                            "{}: a WebSocket connection failed: {e}",
                            opts.target
                        ))
                    }
                }
            }
        }
        if now.duration_since(last_sweep) >= Duration::from_millis(50) {
            last_sweep = now;
            for (c, slot) in conns.iter_mut().zip(socks.iter_mut()) {
                c.offers
                    .retain(|_, at| now.saturating_duration_since(*at) < OFFER_WAIT);
                let Some(Sock::Open(ws)) = slot.as_mut() else {
                    continue;
                };
                if let Some(&(kind, at)) = c.waiting.front() {
                    if now.saturating_duration_since(at) > timeout {
                        // Counted as lost; the peer carries on with its next request.
                        load.stats.timeout(kind, &mut load.u);
                        c.waiting.pop_front();
                        if !load.draining {
                            load.next_request(c, ws, now);
                        }
                    }
                }
            }
            load.stats.publish(live, &mut load.u);
        }
    }
    load.stats.publish(live, &mut load.u);
    Ok(load.stats)
}
