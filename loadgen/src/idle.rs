//! `idle`: what idle connections cost a tracker in memory. Opens N
//! connections (HTTP keep-alive or WebSocket), each from one of many
//! loopback source addresses; each makes one announce and reads its answer,
//! then all stay open and silent, as browsers between announces and HTTP
//! clients between keep-alive requests do. The tracker's resident memory
//! (`VmRSS` in /proc) is read before the first opens and once the last has
//! settled. Trackers given with `--tracker` are started one after another
//! (pinned, as `compare` does) and shown side by side.

use crate::compare;
use bittorrent_tracker::protocol::ws::{WsAnnounce, WsRequest};
use bittorrent_tracker::protocol::{http, AnnounceRequest, Event, PeerId};
use clap::Args;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Connections opened from one source address at most, under the per-address
/// caps trackers keep (this one's default is 1,000).
const PER_SOURCE: usize = 250;

#[derive(Args, Clone, Debug)]
pub struct IdleOpts {
    /// A tracker as NAME=COMMAND (run as `sh -c 'exec COMMAND'`, so it must
    /// listen on --target); repeat to compare, the first is the baseline.
    /// Without it, --pid names a tracker already running
    #[arg(long = "tracker", value_name = "NAME=COMMAND")]
    pub trackers: Vec<String>,
    /// The running tracker's process, when no --tracker is given
    #[arg(long, required_unless_present = "trackers")]
    pub pid: Option<u32>,
    /// CPUs the started trackers are pinned to
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub tracker_cpus: Vec<usize>,
    /// Protocol of the connections: http or ws
    #[arg(long, default_value = "ws")]
    pub protocol: String,
    /// Connections to open and hold
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Tracker address (its HTTP and WebSocket port); loopback IPv4, so that
    /// the connections can come from many source addresses
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub target: SocketAddr,
    /// Seconds a started tracker has to start answering
    #[arg(long, default_value_t = 30.0)]
    pub start_timeout: f64,
    /// Seconds to wait after the last connection opened, before reading the
    /// tracker's memory
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
}

/// One tracker's figures.
struct Sample {
    before_kib: u64,
    after_kib: u64,
    open_secs: f64,
    /// Connections the tracker closed before its memory was read.
    closed: usize,
}

impl Sample {
    fn bytes_each(&self, n: usize) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 * 1024.0 / n.max(1) as f64
    }
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    compare::proc_status_kib(pid, "VmRSS")
        .ok_or_else(|| format!("process {pid}: no VmRSS in /proc/{pid}/status"))
}

/// Raises this process's open-file limit to its hard limit: it holds every
/// connection it opens.
fn raise_nofile() {
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The i-th connection's source address: 250 a loopback address.
fn source(i: usize) -> SocketAddr {
    let n = i / PER_SOURCE;
    SocketAddr::from(([127, 3 + (n / 250) as u8, (n % 250) as u8, 9], 0))
}

fn connect(target: SocketAddr, i: usize) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&source(i).into())?;
    s.connect_timeout(&target.into(), Duration::from_secs(5))?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Connection `i`'s announce: a seeder of one of a thousand torrents,
/// wanting no peers and (over WebSocket) making no offers, so that what is
/// measured is the connection, not the swarm.
fn announce(i: usize) -> AnnounceRequest {
    let mut id = *b"-LGIDLE-000000000000";
    id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    let mut a = AnnounceRequest::new(crate::workload::info_hash((i % 1000) as u32), PeerId(id));
    a.port = 1 + (i % 65_535) as u16;
    a.left = Some(0);
    a.event = Event::Started;
    a.numwant = Some(0);
    a
}

/// Reads one HTTP response; its status.
fn read_response(s: &mut TcpStream) -> Result<u16, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        match crate::http::parse_response(&buf) {
            Some(Ok(r)) => return Ok(r.status),
            Some(Err(())) => return Err("answered with no HTTP response".into()),
            None => {}
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed before its answer".into()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// An open connection, held for its memory's sake.
enum Held {
    Http(TcpStream),
    Ws(Box<WebSocket<TcpStream>>),
}

impl Held {
    /// Whether the tracker has closed it (or reset it) since.
    fn closed(&self) -> bool {
        let s = match self {
            Held::Http(s) => s,
            Held::Ws(ws) => ws.get_ref(),
        };
        let mut b = [0u8; 1];
        let _ = s.set_nonblocking(true);
        let closed = match s.peek(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        };
        let _ = s.set_nonblocking(false);
        closed
    }
}

/// Opens connection `i`, announces once and reads the answer.
fn open_one(o: &IdleOpts, i: usize) -> Result<Held, String> {
    let mut s = connect(o.target, i).map_err(|e| format!("connect: {e}"))?;
    let a = announce(i);
    if o.protocol == "http" {
        let mut q = String::from("/announce");
        http::write_announce_query(&a, &[], &mut q);
        write!(s, "GET {q} HTTP/1.1\r\nHost: {}\r\n\r\n", o.target)
            .map_err(|e| format!("announce: {e}"))?;
        let status = read_response(&mut s)?;
        if status != 200 {
            return Err(format!("announce answered with status {status}"));
        }
        return Ok(Held::Http(s));
    }
    s.write_all(crate::ws::upgrade_request(o.target).as_bytes())
        .map_err(|e| format!("upgrade: {e}"))?;
    // The head a byte at a time: nothing of what follows it is taken.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Ok(_) => return Err("closed during the upgrade".into()),
            Err(e) => return Err(format!("upgrade: {e}")),
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "no upgrade: {}",
            String::from_utf8_lossy(&head[..head.len().min(200)])
        ));
    }
    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    let msg = WsRequest::Announce(Box::new(WsAnnounce::new(a, Vec::new()))).to_json();
    ws.send(Message::text(msg))
        .map_err(|e| format!("announce: {e}"))?;
    loop {
        match ws.read().map_err(|e| format!("announce: {e}"))? {
            Message::Text(t) if t.contains("\"failure reason\"") => {
                return Err(format!("announce refused: {t}"))
            }
            Message::Text(_) => return Ok(Held::Ws(Box::new(ws))),
            _ => {}
        }
    }
}

/// Opens every connection against the tracker `pid`, with a line of progress
/// a second; returns the figures (and keeps the connections until then).
fn measure(o: &IdleOpts, pid: u32, name: &str) -> Result<Sample, String> {
    let before_kib = rss_kib(pid)?;
    let start = Instant::now();
    let mut last = start;
    let mut held = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let h = open_one(o, i).map_err(|e| {
            format!(
                "{name}: connection {} of {} (from {}): {e}",
                i + 1,
                o.connections,
                source(i).ip()
            )
        })?;
        held.push(h);
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!(
                "[{:>5.1} s] {name}: {} connections open, tracker RSS {} MiB",
                start.elapsed().as_secs_f64(),
                held.len(),
                rss_kib(pid)? / 1024
            );
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(o.settle.max(0.0)));
    let after_kib = rss_kib(pid)?;
    let closed = held.iter().filter(|h| h.closed()).count();
    drop(held);
    Ok(Sample {
        before_kib,
        after_kib,
        open_secs,
        closed,
    })
}

pub fn run(o: &IdleOpts) -> Result<(), String> {
    if !["http", "ws"].contains(&o.protocol.as_str()) {
        return Err(format!("--protocol {}: must be http or ws", o.protocol));
    }
    if !matches!(o.target, SocketAddr::V4(t) if t.ip().is_loopback()) {
        return Err(format!(
            "--target {}: must be a loopback IPv4 address (the connections come from 127.3.x.9)",
            o.target
        ));
    }
    if o.connections == 0 {
        return Err("--connections 0: nothing to measure".into());
    }
    raise_nofile();
    let trackers = compare::parse_trackers(&o.trackers)?;
    let mut rows = Vec::new();
    if trackers.is_empty() {
        let pid = o.pid.expect("clap requires --pid without --tracker");
        rows.push((format!("process {pid}"), measure(o, pid, "tracker")?));
    }
    for (name, command) in &trackers {
        let child = compare::start_answering(
            name,
            command,
            &o.tracker_cpus,
            &o.protocol,
            o.target,
            o.start_timeout,
        )?;
        let sample = measure(o, child.id(), name);
        compare::stop(child);
        compare::port_released(&o.protocol, o.target, Duration::from_secs(10));
        let s = sample?;
        eprintln!(
            "{name}: {:.0} bytes a connection (RSS {} -> {} MiB), {} closed by the tracker",
            s.bytes_each(o.connections),
            s.before_kib / 1024,
            s.after_kib / 1024,
            s.closed
        );
        rows.push((name.clone(), s));
    }
    println!(
        "{} idle {} connections, each after one announce (no offers, no peers wanted); tracker RSS (VmRSS) before and {} s after the last opened",
        o.connections,
        if o.protocol == "ws" { "WebSocket" } else { "HTTP keep-alive" },
        o.settle
    );
    println!();
    println!("| tracker | RSS before MiB | RSS with them MiB | bytes a connection | ratio | seconds to open them | closed by the tracker |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let base = rows[0].1.bytes_each(o.connections);
    for (name, s) in &rows {
        let each = s.bytes_each(o.connections);
        println!(
            "| {name} | {:.1} | {:.1} | {each:.0} | {:.2} | {:.1} | {} |",
            s.before_kib as f64 / 1024.0,
            s.after_kib as f64 / 1024.0,
            if base > 0.0 { each / base } else { 0.0 },
            s.open_secs,
            s.closed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_hold_at_most_250_connections_each() {
        assert_eq!(source(0), source(PER_SOURCE - 1));
        assert_ne!(source(0), source(PER_SOURCE));
        assert_eq!(source(0).ip().to_string(), "127.3.0.9");
        assert_eq!(source(250 * PER_SOURCE).ip().to_string(), "127.4.0.9");
    }

    #[test]
    fn bytes_a_connection() {
        let s = Sample {
            before_kib: 1000,
            after_kib: 1100,
            open_secs: 1.0,
            closed: 0,
        };
        assert_eq!(s.bytes_each(100), 1024.0);
        assert_eq!(s.bytes_each(0), 102_400.0);
    }
}
