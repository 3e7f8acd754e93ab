//! UDP load: connect, announce and scrape over many source sockets, every
//! reply matched to its request by transaction id and checked.

use crate::report::{Live, Stats, Unpublished, Verdict};
use crate::workload::{open_loop_wait, Generator, Kind};
use crate::LoadOpts;
use bittorrent_tracker::mmsg::{RecvBatch, SendBatch};
use bittorrent_tracker::protocol::udp::{self, Reply};
use bittorrent_tracker::protocol::InfoHash;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Clients may use a connection id for a minute; renew before that.
const CONN_REFRESH: Duration = Duration::from_secs(50);
/// Most requests in flight per thread in open loop (slots are 16-bit).
const OPEN_LOOP_SLOTS: usize = 65_536;

struct Source {
    sock: UdpSocket,
    conn: Option<(u64, Instant)>,
    connecting: bool,
    /// Requests queued for one sendmmsg; tagged with their transaction ids.
    outbox: SendBatch,
}

#[derive(Clone, Copy)]
struct Pending {
    kind: Kind,
    at: Instant,
    source: usize,
    /// Announce: most peers allowed; scrape: entries expected.
    expect: u32,
    generation: u16,
}

/// In-flight requests by slot; the transaction id is `generation << 16 | slot`.
struct Slots {
    slots: Vec<Option<Pending>>,
    free: Vec<u16>,
    generation: u16,
    in_flight: usize,
}

impl Slots {
    fn new(n: usize) -> Slots {
        let n = n.clamp(1, OPEN_LOOP_SLOTS);
        Slots {
            slots: vec![None; n],
            free: (0..n as u32).rev().map(|i| i as u16).collect(),
            generation: 0,
            in_flight: 0,
        }
    }

    fn take(&mut self, p: Pending) -> Option<u32> {
        let slot = self.free.pop()?;
        self.generation = self.generation.wrapping_add(1);
        self.slots[slot as usize] = Some(Pending {
            generation: self.generation,
            ..p
        });
        self.in_flight += 1;
        Some(((self.generation as u32) << 16) | slot as u32)
    }

    fn release(&mut self, tid: u32) -> Option<Pending> {
        let slot = (tid & 0xffff) as usize;
        let p = self.slots.get(slot).copied().flatten()?;
        if p.generation != (tid >> 16) as u16 {
            return None;
        }
        self.slots[slot] = None;
        self.free.push(slot as u16);
        self.in_flight -= 1;
        Some(p)
    }

    /// Frees every request sent before `cutoff`; returns their kinds.
    fn expire(&mut self, cutoff: Instant, mut each: impl FnMut(&Pending)) {
        for slot in 0..self.slots.len() {
            if let Some(p) = self.slots[slot] {
                if p.at < cutoff {
                    each(&p);
                    self.slots[slot] = None;
                    self.free.push(slot as u16);
                    self.in_flight -= 1;
                }
            }
        }
    }
}

struct Load<'a> {
    opts: &'a LoadOpts,
    sources: Vec<Source>,
    slots: Slots,
    gen: Generator,
    stats: Stats,
    hashes: Vec<InfoHash>,
}

impl Load<'_> {
    /// Sends a datagram of random bytes from a random source: the tracker
    /// must not answer it (its connection id cannot be valid).
    fn send_junk(&mut self) {
        let s = self.gen.pick_peer() % self.sources.len();
        let gen = &mut self.gen;
        self.sources[s]
            .outbox
            .push(u32::MAX, None, |buf| gen.junk(buf));
        self.stats.sent[Kind::Garbage as usize] += 1;
    }

    /// Sends one request of `kind`, due at `due`. False when it could not go out now.
    fn send(&mut self, kind: Kind, due: Instant) -> bool {
        let n = self.sources.len();
        let (source, peer) = match kind {
            Kind::Announce => {
                let peer = self.gen.pick_peer();
                (peer % n, Some(peer))
            }
            _ => (self.gen.pick_peer() % n, None),
        };
        let conn = match (kind, self.sources[source].conn) {
            (Kind::Connect, _) => 0,
            (_, Some((id, _))) => id,
            (_, None) => return false,
        };
        let expect = match kind {
            Kind::Announce => self.gen.numwant(),
            Kind::Scrape => {
                self.gen.scrape(&mut self.hashes);
                self.hashes.len() as u32
            }
            // The mix draws no answers (WebSocket only) and no garbage here.
            Kind::Connect | Kind::Answer | Kind::Garbage => 0,
        };
        let pending = Pending {
            kind,
            at: due,
            source,
            expect,
            generation: 0,
        };
        let Some(tid) = self.slots.take(pending) else {
            return false;
        };
        let gen = &mut self.gen;
        let hashes = &self.hashes;
        self.sources[source]
            .outbox
            .push(tid, None, |buf| match kind {
                Kind::Connect | Kind::Answer | Kind::Garbage => {
                    udp::write_connect_request(buf, tid)
                }
                Kind::Announce => {
                    let peer = peer.expect("announces have a peer");
                    // The tracker keys peers by address and port: one port per peer of a source.
                    let port = 1 + ((peer / n) % 65_535) as u16;
                    let req = gen.announce(peer, port);
                    udp::write_announce_request(buf, conn, tid, &req, b"");
                }
                Kind::Scrape => udp::write_scrape_request(buf, conn, tid, hashes),
            });
        self.stats.sent[kind as usize] += 1;
        if kind == Kind::Connect {
            self.sources[source].connecting = true;
        }
        true
    }

    /// Sends every queued request, a batch per source. One the socket would
    /// not take is not counted as sent (open loop: due but not sent).
    fn flush(&mut self) {
        let (slots, stats, sources) = (&mut self.slots, &mut self.stats, &mut self.sources);
        for src in sources.iter_mut().filter(|s| !s.outbox.is_empty()) {
            let fd = src.sock.as_raw_fd();
            let connecting = &mut src.connecting;
            src.outbox.flush(fd, |tid| {
                if let Some(p) = slots.release(tid) {
                    stats.sent[p.kind as usize] -= 1;
                    stats.not_sent += 1;
                    if p.kind == Kind::Connect {
                        *connecting = false;
                    }
                }
            });
        }
    }

    /// Renews connection ids that are missing or getting old.
    fn keep_connected(&mut self, now: Instant) {
        for s in 0..self.sources.len() {
            let src = &self.sources[s];
            let stale = src
                .conn
                .is_none_or(|(_, at)| now.duration_since(at) > CONN_REFRESH);
            if stale && !src.connecting {
                let pending = Pending {
                    kind: Kind::Connect,
                    at: now,
                    source: s,
                    expect: 0,
                    generation: 0,
                };
                if let Some(tid) = self.slots.take(pending) {
                    self.sources[s]
                        .outbox
                        .push(tid, None, |buf| udp::write_connect_request(buf, tid));
                    self.stats.sent[Kind::Connect as usize] += 1;
                    self.sources[s].connecting = true;
                }
            }
        }
    }

    /// Takes every datagram waiting on source `s`.
    fn receive(&mut self, s: usize, inbox: &mut RecvBatch, now: Instant, u: &mut Unpublished) {
        let fd = self.sources[s].sock.as_raw_fd();
        loop {
            let n = inbox.recv(fd, libc::MSG_DONTWAIT);
            if n == 0 {
                return;
            }
            for i in 0..n {
                self.reply(inbox.packet(i), now, u);
            }
        }
    }

    /// Matches one reply to its request and checks it.
    fn reply(&mut self, packet: &[u8], now: Instant, u: &mut Unpublished) {
        let n = packet.len();
        let tid = if n >= 8 {
            u32::from_be_bytes(packet[4..8].try_into().unwrap())
        } else {
            u32::MAX
        };
        let Some(p) = self.slots.release(tid) else {
            self.stats.late += 1;
            return;
        };
        let v6 = self.opts.target.is_ipv6();
        let verdict = match (p.kind, udp::parse_reply(packet)) {
            (_, Some(Reply::Error { .. })) => Verdict::Error,
            (Kind::Connect, Some(Reply::Connect { connection_id, .. })) => {
                let src = &mut self.sources[p.source];
                src.conn = Some((connection_id, now));
                src.connecting = false;
                Verdict::Ok
            }
            (
                Kind::Announce,
                Some(Reply::Announce {
                    leechers,
                    seeders,
                    peers,
                    ..
                }),
            ) => {
                let size = if v6 { 18 } else { 6 };
                let count = (peers.len() / size) as u64;
                let fits = peers.len() % size == 0
                    && count <= p.expect as u64
                    && count <= leechers as u64 + seeders as u64;
                if fits {
                    Verdict::Ok
                } else {
                    Verdict::Invalid
                }
            }
            (Kind::Scrape, Some(Reply::Scrape { entries, .. }))
                if entries.len() == p.expect as usize =>
            {
                Verdict::Ok
            }
            _ => Verdict::Invalid,
        };
        if p.kind == Kind::Connect && verdict != Verdict::Ok {
            self.sources[p.source].connecting = false;
        }
        self.stats
            .tally(p.kind, verdict, now.saturating_duration_since(p.at), u);
    }
}

/// One load thread.
pub fn engine(
    opts: &LoadOpts,
    thread: usize,
    live: &Live,
    deadline: Instant,
) -> Result<Stats, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut sources = Vec::new();
    for i in 0..opts.sources.max(1) {
        let local = opts.source(thread, i);
        let std = std::net::UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
        std.connect(opts.target)
            .map_err(|e| format!("{local} to {}: {e}", opts.target))?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = socket2::SockRef::from(&std).set_recv_buffer_size(4 << 20);
        let mut sock = UdpSocket::from_std(std);
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        sources.push(Source {
            sock,
            conn: None,
            connecting: false,
            outbox: SendBatch::default(),
        });
    }
    let threads = opts.threads.max(1);
    let slots = match opts.rate {
        Some(_) => OPEN_LOOP_SLOTS,
        None => opts.window.max(1),
    };
    let mut load = Load {
        opts,
        sources,
        slots: Slots::new(slots),
        gen: Generator::new(&opts.workload, thread, threads, 0x10ad_5eed ^ thread as u64),
        stats: Stats::new(),
        hashes: Vec::new(),
    };
    let mut inbox = RecvBatch::new(64);
    let interval = opts
        .rate
        .map(|r| Duration::from_secs_f64(threads as f64 / r.max(1) as f64));
    let timeout = Duration::from_millis(opts.timeout_ms);
    let mut events = Events::with_capacity(1024);
    let mut next_due = Instant::now();
    let mut last_sweep = Instant::now();
    let mut unpublished = Unpublished::default();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        load.keep_connected(now);
        let wait = match interval {
            None => {
                // Closed loop: keep the window full.
                while load.slots.in_flight < slots {
                    if load.gen.garbage() {
                        load.send_junk();
                        continue;
                    }
                    let kind = load.gen.kind();
                    if !load.send(kind, now) {
                        break;
                    }
                }
                Duration::from_millis(5)
            }
            Some(every) => {
                // Open loop: send what is due, late or not; latency counts from when it was due.
                while next_due <= now {
                    if load.gen.garbage() {
                        load.send_junk();
                        next_due += every;
                        continue;
                    }
                    let kind = load.gen.kind();
                    if load.send(kind, next_due) {
                        load.stats.left(next_due, now);
                    } else {
                        load.stats.not_sent += 1;
                    }
                    next_due += every;
                }
                open_loop_wait(next_due, now)
            }
        };
        load.flush();
        poll.poll(&mut events, Some(wait))
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        for ev in events.iter() {
            load.receive(ev.token().0, &mut inbox, now, &mut unpublished);
        }
        if now.duration_since(last_sweep) >= Duration::from_millis(50) {
            last_sweep = now;
            let (stats, sources, u) = (&mut load.stats, &mut load.sources, &mut unpublished);
            load.slots.expire(now - timeout, |p| {
                stats.timeout(p.kind, u);
                if p.kind == Kind::Connect {
                    sources[p.source].connecting = false;
                }
            });
            load.stats.publish(live, &mut unpublished);
        }
    }
    // What is still in flight at the deadline is neither answered nor timed out.
    Ok(load.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_ids_and_refuse_stale_ones() {
        let mut s = Slots::new(2);
        let p = Pending {
            kind: Kind::Announce,
            at: Instant::now(),
            source: 0,
            expect: 1,
            generation: 0,
        };
        let a = s.take(p).unwrap();
        let b = s.take(p).unwrap();
        assert!(s.take(p).is_none(), "full");
        assert!(s.release(a).is_some());
        assert!(s.release(a).is_none(), "released once");
        let c = s.take(p).unwrap();
        assert_eq!(c & 0xffff, a & 0xffff, "slot reused");
        assert_ne!(c, a, "with a new generation");
        assert!(s.release(a).is_none());
        assert!(s.release(0xdead_beef).is_none());
        let mut expired = 0;
        s.expire(Instant::now() + Duration::from_secs(1), |_| expired += 1);
        assert_eq!((expired, s.in_flight), (2, 0));
        assert!(s.release(b).is_none());
    }
}
