//! HTTP load: announces and scrapes over keep-alive connections, one request
//! in flight per connection, every reply parsed and checked.

use crate::report::{Live, Stats, Unpublished, Verdict};
use crate::workload::{open_loop_wait, Generator, Kind};
use crate::LoadOpts;
use bittorrent_tracker::protocol::bencode::{self, Value};
use bittorrent_tracker::protocol::http;
use bittorrent_tracker::protocol::InfoHash;
use mio::net::TcpStream;
use mio::{Events, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Idle,
    Busy,
}

struct Conn {
    stream: TcpStream,
    source: usize,
    state: State,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    written: usize,
    pending: Option<(Kind, Instant, u32)>,
    /// Answers on this connection since it was opened.
    answered: u32,
}

/// A whole response at the front of a buffer.
pub(crate) struct Framed {
    pub status: u16,
    body: std::ops::Range<usize>,
    /// Bytes of the buffer it takes.
    used: usize,
    /// The server closes the connection after it (`Connection: close`).
    close: bool,
}

/// The response at the front of `buf`: `None` while incomplete, `Err` when
/// it is no HTTP response.
pub(crate) fn parse_response(buf: &[u8]) -> Option<Result<Framed, ()>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok();
    let Some(head) = head else {
        return Some(Err(()));
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok());
    let Some(status) = status else {
        return Some(Err(()));
    };
    let mut len = 0usize;
    let mut close = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                match v.trim().parse() {
                    Ok(n) => len = n,
                    Err(_) => return Some(Err(())),
                }
            } else if k.trim().eq_ignore_ascii_case("connection") {
                close |= v.trim().eq_ignore_ascii_case("close");
            }
        }
    }
    if buf.len() < head_end + len {
        return None;
    }
    Some(Ok(Framed {
        status,
        body: head_end..head_end + len,
        used: head_end + len,
        close,
    }))
}

fn check(kind: Kind, expect: u32, status: u16, body: &[u8]) -> Verdict {
    if status != 200 {
        return Verdict::Invalid;
    }
    // Some trackers (aquatic_http) end the body with a line break after the
    // bencoded dictionary, as clients tolerate.
    let Ok(v) = bencode::decode(body.trim_ascii_end()) else {
        return Verdict::Invalid;
    };
    if v.get(b"failure reason").is_some() {
        // Garbage must be refused; anything else refused is an error.
        return if kind == Kind::Garbage {
            Verdict::Ok
        } else {
            Verdict::Error
        };
    }
    if kind == Kind::Garbage {
        return Verdict::Invalid;
    }
    let ok = match kind {
        Kind::Announce => {
            let peers = v.get(b"peers").and_then(Value::as_bytes);
            let peers6 = v.get(b"peers6").and_then(Value::as_bytes).unwrap_or(b"");
            v.get(b"interval").and_then(Value::as_int).is_some()
                && peers.is_some_and(|p| p.len() % 6 == 0 && peers6.len() % 18 == 0)
                && peers.map_or(0, |p| p.len() / 6) + peers6.len() / 18 <= expect as usize
        }
        _ => v
            .get(b"files")
            .and_then(Value::as_dict)
            .is_some_and(|f| f.len() == expect as usize),
    };
    if ok {
        Verdict::Ok
    } else {
        Verdict::Invalid
    }
}

struct Load<'a> {
    opts: &'a LoadOpts,
    gen: Generator,
    stats: Stats,
    hashes: Vec<InfoHash>,
    query: String,
}

impl Load<'_> {
    /// Writes the next request of `kind` into the connection's buffer.
    fn request(&mut self, c: &mut Conn, kind: Kind, due: Instant) {
        let q = &mut self.query;
        q.clear();
        let expect = if kind == Kind::Garbage {
            // Broken escapes and no port: a tracker must refuse it.
            q.push_str("/announce?info_hash=%zz%1&peer_id=%&port=0");
            0
        } else if kind == Kind::Scrape {
            self.gen.scrape(&mut self.hashes);
            q.push_str("/scrape");
            http::write_scrape_query(&self.hashes, q);
            self.hashes.sort_unstable();
            self.hashes.dedup();
            self.hashes.len() as u32
        } else {
            // A peer always announces over connections from its own source
            // address (otherwise every announce from another address would
            // be a new peer to the tracker); one port per peer of it.
            let peer = self.gen.pick_peer_of(
                c.source,
                self.opts.sources.max(1).min(self.opts.connections.max(1)),
            );
            let port = 1 + (peer % 65_535) as u16;
            let mut a = self.gen.announce(peer, port);
            a.left = Some(a.left.unwrap_or(0));
            a.numwant = Some(self.gen.numwant());
            a.key = Some(a.key.unwrap_or(0));
            q.push_str("/announce");
            http::write_announce_query(&a, &[], q);
            self.gen.numwant()
        };
        c.wbuf.clear();
        c.written = 0;
        let _ = write!(
            c.wbuf,
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            q, self.opts.target
        );
        c.pending = Some((kind, due, expect));
        c.state = State::Busy;
        self.stats.sent[kind as usize] += 1;
    }

    fn next_kind(&mut self) -> Kind {
        if self.gen.garbage() {
            return Kind::Garbage;
        }
        match self.gen.kind() {
            Kind::Connect => Kind::Announce,
            k => k,
        }
    }
}

/// Replaces a connection that failed or timed out with a fresh one.
fn reconnect(
    c: &mut Conn,
    i: usize,
    poll: &Poll,
    opts: &LoadOpts,
    thread: usize,
    idle: &mut Vec<usize>,
) -> std::io::Result<()> {
    let _ = poll.registry().deregister(&mut c.stream);
    idle.retain(|&x| x != i);
    c.stream = opts.connect_tcp(thread, c.source, poll, Token(i))?;
    c.state = State::Connecting;
    c.pending = None;
    c.answered = 0;
    c.rbuf.clear();
    Ok(())
}

fn flush(c: &mut Conn) -> std::io::Result<()> {
    while c.written < c.wbuf.len() {
        match c.stream.write(&c.wbuf[c.written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => c.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One load thread.
pub fn engine(
    opts: &LoadOpts,
    thread: usize,
    live: &Live,
    deadline: Instant,
) -> Result<Stats, String> {
    let threads = opts.threads.max(1);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let n = (opts.connections / threads).max(1);
    let sources = opts.sources.max(1);
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let stream = opts
            .connect_tcp(thread, i % sources, &poll, Token(i))
            .map_err(|e| format!("connect to {}: {e}", opts.target))?;
        conns.push(Conn {
            stream,
            source: i % sources,
            state: State::Connecting,
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(512),
            written: 0,
            pending: None,
            answered: 0,
        });
    }
    let mut load = Load {
        opts,
        gen: Generator::new(&opts.workload, thread, threads, 0x4777_5eed ^ thread as u64),
        stats: Stats::new(),
        hashes: Vec::new(),
        query: String::with_capacity(512),
    };
    let interval = opts
        .rate
        .map(|r| Duration::from_secs_f64(threads as f64 / r.max(1) as f64));
    let timeout = Duration::from_millis(opts.timeout_ms);
    let mut events = Events::with_capacity(1024);
    let mut idle: Vec<usize> = Vec::new();
    let mut next_due = Instant::now();
    let mut last_sweep = Instant::now();
    let mut u = Unpublished::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if let Some(every) = interval {
            while next_due <= now {
                match idle.pop() {
                    Some(i) => {
                        let kind = load.next_kind();
                        load.stats.left(next_due, now);
                        load.request(&mut conns[i], kind, next_due);
                        if flush(&mut conns[i]).is_err() {
                            load.stats
                                .tally(kind, Verdict::Invalid, Duration::ZERO, &mut u);
                            reconnect(&mut conns[i], i, &poll, opts, thread, &mut idle)
                                .map_err(|e| format!("reconnect to {}: {e}", opts.target))?;
                        }
                    }
                    None => load.stats.not_sent += 1,
                }
                next_due += every;
            }
        }
        let wait = match interval {
            Some(_) => open_loop_wait(next_due, now),
            None => Duration::from_millis(5),
        };
        poll.poll(&mut events, Some(wait))
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            let mut broken = false;
            if c.state == State::Connecting && (ev.is_writable() || ev.is_readable()) {
                if c.stream.peer_addr().is_err() {
                    continue; // not connected yet, or refused: the sweep tries again
                }
                c.state = State::Idle;
                if interval.is_none() {
                    let kind = load.next_kind();
                    load.request(c, kind, now);
                } else {
                    idle.push(i);
                }
            }
            if c.state == State::Busy && ev.is_writable() && flush(c).is_err() {
                broken = true;
            }
            if ev.is_readable() && !broken {
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => {
                            broken = true;
                            break;
                        }
                        Ok(n) => c.rbuf.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            broken = true;
                            break;
                        }
                    }
                }
                while let Some(parsed) = parse_response(&c.rbuf) {
                    let Some((kind, at, expect)) = c.pending.take() else {
                        // A reply nobody asked for.
                        load.stats
                            .tally(Kind::Announce, Verdict::Invalid, Duration::ZERO, &mut u);
                        broken = true;
                        break;
                    };
                    let (verdict, used, close) = match parsed {
                        Ok(Framed {
                            status,
                            body,
                            used,
                            close,
                        }) => (check(kind, expect, status, &c.rbuf[body]), used, close),
                        Err(()) => (Verdict::Invalid, c.rbuf.len(), false),
                    };
                    load.stats
                        .tally(kind, verdict, now.saturating_duration_since(at), &mut u);
                    c.rbuf.drain(..used);
                    c.state = State::Idle;
                    c.answered += 1;
                    if close {
                        // The server's last answer on this connection: the
                        // next request goes on a new one.
                        broken = true;
                        break;
                    }
                    if interval.is_none() {
                        let kind = load.next_kind();
                        load.request(c, kind, now);
                        if flush(c).is_err() {
                            broken = true;
                            break;
                        }
                    } else {
                        idle.push(i);
                    }
                }
            }
            if broken {
                match c.pending {
                    // Closed before any of the answer came, on a connection
                    // that had answered before: the server closed it between
                    // requests, as one that does not keep connections alive
                    // does without saying so. The request goes again on a
                    // new connection, as HTTP clients send a GET again.
                    Some((kind, _, _)) if c.answered > 0 && c.rbuf.is_empty() => {
                        load.stats.sent[kind as usize] -= 1;
                        load.stats.reconnects += 1;
                    }
                    // Closed with a request in flight: it will never be answered.
                    Some((kind, _, _)) => {
                        load.stats
                            .tally(kind, Verdict::Invalid, Duration::ZERO, &mut u)
                    }
                    // Closed between requests: nothing lost.
                    None => load.stats.reconnects += 1,
                }
                reconnect(c, i, &poll, opts, thread, &mut idle)
                    .map_err(|e| format!("reconnect to {}: {e}", opts.target))?;
            }
        }
        if now.duration_since(last_sweep) >= Duration::from_millis(50) {
            last_sweep = now;
            for (i, c) in conns.iter_mut().enumerate() {
                let late = c
                    .pending
                    .filter(|p| now.saturating_duration_since(p.1) > timeout);
                let stuck =
                    c.state == State::Connecting && c.stream.take_error().ok().flatten().is_some();
                if let Some((kind, _, _)) = late {
                    // Its reply may still come: this connection starts afresh.
                    load.stats.timeout(kind, &mut u);
                }
                if late.is_some() || stuck {
                    reconnect(c, i, &poll, opts, thread, &mut idle)
                        .map_err(|e| format!("reconnect to {}: {e}", opts.target))?;
                }
            }
            load.stats.publish(live, &mut u);
        }
    }
    Ok(load.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_framed_and_checked() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        let f = parse_response(r).unwrap().unwrap();
        assert_eq!((f.status, &r[f.body], f.used), (200, &b"hello"[..], 43));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello").is_none());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
                .unwrap()
                .is_err()
        );

        let ok = b"d8:completei1e10:incompletei0e8:intervali600e5:peers6:\x7f\x00\x00\x01\x00\x01e";
        assert!(matches!(check(Kind::Announce, 30, 200, ok), Verdict::Ok));
        // aquatic_http's replies end with a line break; other trailing bytes are invalid.
        let mut crlf = ok.to_vec();
        crlf.extend_from_slice(b"\r\n");
        assert!(matches!(check(Kind::Announce, 30, 200, &crlf), Verdict::Ok));
        crlf.push(b'x');
        assert!(matches!(
            check(Kind::Announce, 30, 200, &crlf),
            Verdict::Invalid
        ));
        assert!(
            matches!(check(Kind::Announce, 0, 200, ok), Verdict::Invalid),
            "more peers than asked"
        );
        assert!(matches!(
            check(Kind::Announce, 30, 404, ok),
            Verdict::Invalid
        ));
        assert!(matches!(
            check(Kind::Announce, 30, 200, b"d14:failure reason4:nope"),
            Verdict::Invalid
        ));
        assert!(matches!(
            check(Kind::Announce, 30, 200, b"d14:failure reason3:nooe"),
            Verdict::Error
        ));
        let scrape =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei0e10:downloadedi0e10:incompletei0eeee";
        assert!(matches!(check(Kind::Scrape, 1, 200, scrape), Verdict::Ok));
        assert!(matches!(
            check(Kind::Scrape, 2, 200, scrape),
            Verdict::Invalid
        ));
    }
}
