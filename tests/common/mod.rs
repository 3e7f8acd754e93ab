//! Test harness: the real `bittorrent-tracker` binary on loopback, and raw
//! UDP and HTTP clients that speak bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A tracker process; killed (by its own PID) when dropped.
pub struct Tracker {
    child: Child,
    pub port: u16,
    pub stdout: Vec<String>,
}

impl Tracker {
    /// Starts the tracker with two workers on 127.0.0.1 and [::1], port 0.
    pub fn start(extra: &[&str]) -> Tracker {
        let mut args = vec![
            "-p",
            "0",
            "--workers",
            "2",
            "--listen-v4",
            "127.0.0.1",
            "--listen-v6",
            "::1",
        ];
        args.extend_from_slice(extra);
        Tracker::start_with(&args)
    }

    pub fn start_with(args: &[&str]) -> Tracker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bittorrent-tracker");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut stdout = Vec::new();
        // One listening line per protocol that starts: all three without a protocol flag.
        let flags = ["--http", "--udp", "--ws"];
        let any = flags.iter().any(|f| args.contains(f));
        let want = flags.iter().filter(|f| !any || args.contains(f)).count();
        let mut port = 0;
        while stdout.len() < want {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("tracker exited early: {stdout:?} {err}");
            }
            let line = line.trim_end().to_string();
            port = line
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .expect("port in the listening line");
            stdout.push(line);
        }
        // Keep draining stdout so the tracker never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Tracker {
            child,
            port,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn v4(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn v6(&self) -> SocketAddr {
        format!("[::1]:{}", self.port).parse().unwrap()
    }

    /// Sends SIGHUP: the tracker reloads its lists and certificate.
    pub fn hup(&self) {
        signal(self.child.id(), libc::SIGHUP);
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }
}

/// The value of one line of `/proc/PID/status` (`key` without its colon),
/// trimmed: what the kernel says of a process.
pub fn proc_status(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Runs the tracker binary to its end (for start-up failures).
pub fn run_tracker(args: &[&str]) -> std::process::Output {
    run_tracker_in(args, None)
}

/// Runs the tracker binary to its end, optionally in directory `dir`.
pub fn run_tracker_in(args: &[&str], dir: Option<&std::path::Path>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"));
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.args(args).output().unwrap()
}

/// Sends `sig` to our own child process.
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; the PID is a child we started and have not reaped.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one test's files.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Polls `f` every 50 ms for up to 5 s until it holds.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A 20-byte info hash owned by worker `owner` of two (`owner()` reads the
/// first four bytes big-endian, modulo the worker count), told apart by `tag`.
pub fn hash(owner: u8, tag: u8) -> [u8; 20] {
    let mut h = [tag; 20];
    h[0..4].copy_from_slice(&[0x10, tag, 0x00, owner]);
    h
}

pub fn peer_id(n: u8) -> [u8; 20] {
    let mut p = *b"-TT0001-000000000000";
    p[19] = b'0' + n % 10;
    p[18] = b'0' + n / 10;
    p
}

// ---- UDP ----

pub struct Udp {
    pub sock: UdpSocket,
    pub target: SocketAddr,
    pub conn: u64,
    pub tid: u32,
}

impl Udp {
    /// A client socket bound to `local` (an address on loopback, port 0) that
    /// has done the connect exchange.
    pub fn connect_from(local: &str, target: SocketAddr) -> Udp {
        let sock = UdpSocket::bind(local).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut u = Udp {
            sock,
            target,
            conn: 0,
            tid: 1000,
        };
        let tid = u.next_tid();
        let mut req = Vec::new();
        req.extend_from_slice(&0x41727101980u64.to_be_bytes());
        req.extend_from_slice(&0u32.to_be_bytes());
        req.extend_from_slice(&tid.to_be_bytes());
        let resp = u.roundtrip(&req).expect("connect reply");
        assert_eq!(resp.len(), 16, "connect reply is 16 bytes");
        assert_eq!(&resp[0..4], &[0, 0, 0, 0]);
        assert_eq!(&resp[4..8], &tid.to_be_bytes());
        u.conn = u64::from_be_bytes(resp[8..16].try_into().unwrap());
        u
    }

    pub fn connect(target: SocketAddr) -> Udp {
        let local = if target.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        Udp::connect_from(local, target)
    }

    pub fn next_tid(&mut self) -> u32 {
        self.tid += 1;
        self.tid
    }

    /// Sends and waits for one datagram; `None` after a 5 s (or set) timeout.
    pub fn roundtrip(&self, req: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(req, self.target).unwrap();
        let mut buf = [0u8; 2048];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// Raw announce bytes (98), BEP 15 layout.
    #[allow(clippy::too_many_arguments)]
    pub fn announce_bytes(
        &mut self,
        hash: [u8; 20],
        peer: [u8; 20],
        left: u64,
        event: u32,
        numwant: i32,
        port: u16,
    ) -> (u32, Vec<u8>) {
        let tid = self.next_tid();
        let mut r = Vec::with_capacity(98);
        r.extend_from_slice(&self.conn.to_be_bytes());
        r.extend_from_slice(&1u32.to_be_bytes());
        r.extend_from_slice(&tid.to_be_bytes());
        r.extend_from_slice(&hash);
        r.extend_from_slice(&peer);
        r.extend_from_slice(&0u64.to_be_bytes()); // downloaded
        r.extend_from_slice(&left.to_be_bytes());
        r.extend_from_slice(&0u64.to_be_bytes()); // uploaded
        r.extend_from_slice(&event.to_be_bytes());
        r.extend_from_slice(&0u32.to_be_bytes()); // ip
        r.extend_from_slice(&7u32.to_be_bytes()); // key
        r.extend_from_slice(&numwant.to_be_bytes());
        r.extend_from_slice(&port.to_be_bytes());
        (tid, r)
    }

    /// Announces and returns (interval, leechers, seeders, peers as (address bytes, port)).
    pub fn announce(
        &mut self,
        hash: [u8; 20],
        peer: [u8; 20],
        left: u64,
        event: u32,
        numwant: i32,
        port: u16,
    ) -> AnnounceReply {
        let (tid, req) = self.announce_bytes(hash, peer, left, event, numwant, port);
        let resp = self.roundtrip(&req).expect("announce reply");
        assert_eq!(&resp[0..4], &[0, 0, 0, 1], "announce action: {resp:?}");
        assert_eq!(&resp[4..8], &tid.to_be_bytes());
        let size = if self.target.is_ipv6() { 18 } else { 6 };
        assert_eq!((resp.len() - 20) % size, 0);
        AnnounceReply {
            interval: u32::from_be_bytes(resp[8..12].try_into().unwrap()),
            leechers: u32::from_be_bytes(resp[12..16].try_into().unwrap()),
            seeders: u32::from_be_bytes(resp[16..20].try_into().unwrap()),
            peers: resp[20..].chunks(size).map(|c| c.to_vec()).collect(),
        }
    }

    /// Scrapes and returns (seeders, completed, leechers) per hash.
    pub fn scrape(&mut self, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let tid = self.next_tid();
        let mut r = Vec::new();
        r.extend_from_slice(&self.conn.to_be_bytes());
        r.extend_from_slice(&2u32.to_be_bytes());
        r.extend_from_slice(&tid.to_be_bytes());
        hashes.iter().for_each(|h| r.extend_from_slice(h));
        let resp = self.roundtrip(&r).expect("scrape reply");
        assert_eq!(&resp[0..4], &[0, 0, 0, 2]);
        assert_eq!(&resp[4..8], &tid.to_be_bytes());
        assert_eq!(resp.len(), 8 + 12 * hashes.len());
        resp[8..]
            .chunks(12)
            .map(|c| {
                let n = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().unwrap());
                (n(0), n(4), n(8))
            })
            .collect()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct AnnounceReply {
    pub interval: u32,
    pub leechers: u32,
    pub seeders: u32,
    pub peers: Vec<Vec<u8>>,
}

impl AnnounceReply {
    /// Peer ports, sorted.
    pub fn ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .peers
            .iter()
            .map(|p| u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]))
            .collect();
        v.sort();
        v
    }
}

// ---- HTTP ----

/// One HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (with Content-Length) from a stream.
pub fn read_response(s: &mut impl Read) -> Option<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(Response {
        status,
        headers,
        body,
    })
}

pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    let mut s = tcp(addr);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s).expect("a response")
}

/// `%XX` for every byte: the most escaped form a client can send.
pub fn esc(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

pub fn announce_target(
    hash: [u8; 20],
    peer: [u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        esc(&hash),
        esc(&peer)
    )
}

/// Whether the server closed the connection: end of stream or a reset. A
/// read that times out (the connection is still open) is not closed.
pub fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}
