//! Test harness: the real `bittorrent-tracker` binary on loopback, and raw
//! UDP and HTTP clients that speak bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a tracker may take to say it listens before the test fails with
/// what it saw (a start takes milliseconds; this leaves room for a loaded
/// machine and fails long before the tracker's own 60 s limit).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a tracker has written so far, line by line (standard error, where
/// it logs, and standard output), shared with the threads that read it.
#[derive(Default)]
struct Output {
    lines: Mutex<(Vec<String>, usize)>,
    more: Condvar,
}

impl Output {
    /// Reads `from` to its end on a thread of its own, so the tracker never
    /// blocks on a full pipe.
    fn drain(self: &Arc<Self>, from: impl Read + Send + 'static) {
        let out = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                out.lines.lock().unwrap().0.push(line);
                out.more.notify_all();
            }
            out.lines.lock().unwrap().1 += 1;
            out.more.notify_all();
        });
    }

    /// Waits until `done` holds for the lines (or both pipes closed, or
    /// `timeout`); returns whether it held, and the lines.
    fn wait(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> (bool, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut g = self.lines.lock().unwrap();
        loop {
            if done(&g.0) {
                return (true, g.0.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if g.1 == 2 || left.is_zero() {
                return (false, g.0.clone());
            }
            g = self.more.wait_timeout(g, left).unwrap().0;
        }
    }
}

/// A log line of the tracker: `2026-12-01T15:07:01.123Z LEVEL message`.
/// Returns the level and the message; panics on a line of another form.
pub fn parse_log_line(line: &str) -> (&str, &str) {
    let mut parts = line.splitn(3, ' ');
    let (Some(time), Some(level), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("not a log line: {line:?}");
    };
    let t = time.as_bytes();
    assert!(
        t.len() == 24 && t[4] == b'-' && t[10] == b'T' && t[19] == b'.' && t[23] == b'Z',
        "not an RFC 3339 UTC time with milliseconds in {line:?}"
    );
    assert!(
        ["ERROR", "WARN", "INFO", "DEBUG"].contains(&level),
        "no level in {line:?}"
    );
    (level, msg)
}

/// A log line's time, in milliseconds since 1970 (UTC).
pub fn log_time_ms(line: &str) -> u64 {
    let t = &line[..24];
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits in the log time");
    // Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
    let (y, m, d) = (n(0..4) - (n(5..7) <= 2) as i64, n(5..7), n(8..10));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let ms = ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23);
    ms as u64
}

#[test]
fn log_times_are_epoch_milliseconds() {
    assert_eq!(log_time_ms("1970-01-01T00:00:01.002Z INFO x"), 1002);
    assert_eq!(
        log_time_ms("2026-12-01T15:18:26.919Z INFO x"),
        1_796_138_306_919
    );
    assert_eq!(
        log_time_ms("2028-03-01T00:00:00.000Z I") - log_time_ms("2028-02-28T23:59:59.999Z I"),
        86_400_001,
        "a leap day between"
    );
}

/// The messages of a tracker's log lines (every line must be one).
pub fn log_messages(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| parse_log_line(l).1.to_string())
        .collect()
}

/// A tracker process; killed (by its own PID) when dropped.
pub struct Tracker {
    child: Child,
    pub port: u16,
    /// The messages of its listening lines.
    pub listening: Vec<String>,
    output: Arc<Output>,
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

    /// Starts the tracker with `args` and waits (at most [`START_TIMEOUT`])
    /// for its listening lines. A tracker that exits or does not listen in
    /// time fails the test with everything it wrote, and for a hung start
    /// the CPU time each of its threads used.
    pub fn start_with(args: &[&str]) -> Tracker {
        Tracker::start_bin(env!("CARGO_BIN_EXE_bittorrent-tracker").as_ref(), args)
    }

    /// [`Tracker::start_with`] for the binary at `bin` (a copy, say).
    pub fn start_bin(bin: &std::path::Path, args: &[&str]) -> Tracker {
        // A binary just copied can be "busy" for a moment: a process another
        // test thread forked meanwhile holds the copy's write descriptor
        // until it execs.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut child = loop {
            match Command::new(bin)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
            {
                Err(e)
                    if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20))
                }
                started => break started.expect("start bittorrent-tracker"),
            }
        };
        let output = Arc::new(Output::default());
        output.drain(child.stdout.take().unwrap());
        output.drain(child.stderr.take().unwrap());
        // One listening line per protocol that starts: all three without a protocol flag.
        let flags = ["--http", "--udp", "--ws"];
        let any = flags.iter().any(|f| args.contains(f));
        let want = flags.iter().filter(|f| !any || args.contains(f)).count();
        let listening_lines = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.contains(" server listening on "))
                .map(|l| parse_log_line(l).1.to_string())
                .collect()
        };
        let (ok, lines) = output.wait(START_TIMEOUT, |l| listening_lines(l).len() >= want);
        if !ok {
            let threads = thread_cpu(child.id());
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            match exited {
                Some(status) => panic!("tracker {args:?} exited early ({status}):\n{}", lines.join("\n")),
                None => panic!(
                    "tracker {args:?} did not listen within {} s; its threads' CPU time: {threads}; it wrote:\n{}",
                    START_TIMEOUT.as_secs(),
                    lines.join("\n")
                ),
            }
        }
        let listening = listening_lines(&lines);
        let port = listening[0]
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .expect("port in the listening line");
        Tracker {
            child,
            port,
            listening,
            output,
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

    /// Every line the tracker has written so far.
    pub fn log(&self) -> Vec<String> {
        self.output.lines.lock().unwrap().0.clone()
    }

    /// Waits (at most `timeout`) for a line after the first `after` lines
    /// that contains `text`; fails the test with the log if none comes.
    pub fn wait_for_log(&self, after: usize, text: &str, timeout: Duration) -> String {
        let (ok, lines) = self
            .output
            .wait(timeout, |l| l.iter().skip(after).any(|l| l.contains(text)));
        assert!(
            ok,
            "no log line with {text:?} within {timeout:?}; the log:\n{}",
            lines.join("\n")
        );
        lines
            .into_iter()
            .skip(after)
            .find(|l| l.contains(text))
            .unwrap()
    }

    /// Waits (at most `timeout`) until `n` lines contain `text`, and returns
    /// them: a line the tracker wrote may still be on its way through the
    /// pipe when what it logged has been seen elsewhere. Fails the test with
    /// the log if they do not come.
    pub fn wait_for_lines(&self, text: &str, n: usize, timeout: Duration) -> Vec<String> {
        let (ok, lines) = self.output.wait(timeout, |l| {
            l.iter().filter(|l| l.contains(text)).count() >= n
        });
        assert!(
            ok,
            "not {n} log lines with {text:?} within {timeout:?}; the log:\n{}",
            lines.join("\n")
        );
        lines.into_iter().filter(|l| l.contains(text)).collect()
    }

    /// Sends SIGHUP and waits until the tracker says every worker reloaded
    /// its lists and certificate.
    pub fn hup(&self) {
        let mark = self.log().len();
        signal(self.child.id(), libc::SIGHUP);
        self.wait_for_log(mark, "(SIGHUP)", Duration::from_secs(20));
    }

    /// Sends SIGTERM, waits, and returns the exit status and everything the
    /// tracker wrote.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        signal(self.child.id(), libc::SIGTERM);
        let status = self.child.wait().unwrap();
        // Both pipes close when it exits: every line is in.
        let (_, lines) = self.output.wait(Duration::from_secs(10), |_| false);
        (status, lines)
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }
}

/// Each thread of process `pid` with the CPU time it used:
/// `tracker-0 36.00 s user + 0.20 s system (state R), ...`.
fn thread_cpu(pid: u32) -> String {
    let hz = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "unknown (the process is gone)".into();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let tick = |i: usize| f[i].parse::<u64>().unwrap_or(0) as f64 / hz;
        out.push(format!(
            "{name} {:.2} s user + {:.2} s system (state {})",
            tick(11),
            tick(12),
            f[0]
        ));
    }
    out.join(", ")
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
/// A fresh directory for one test, removed when the test ends, passed or
/// failed: some hold a copy of the tracker's binary (100 MiB in a debug
/// build), and a few hundred runs would fill the disk.
pub fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("bt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

pub struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::PathBuf;
    fn deref(&self) -> &std::path::PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

/// A WebSocket client connection to a tracker.
pub type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket connection to `t` at `path` (reads time out after 5 s).
pub fn ws_open(t: &Tracker, path: &str) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{}{path}", t.port)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ws
}

/// Sends one message and returns the next text message, parsed.
pub fn ws_call(ws: &mut Ws, v: serde_json::Value) -> serde_json::Value {
    ws.send(tungstenite::Message::text(v.to_string())).unwrap();
    loop {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Bytes as a WebTorrent binary string (one char per byte).
pub fn binary(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// The path of the program `name` from the Debian package `package`. When it
/// is missing, the test installs the package (apt-get, as root or through
/// `sudo -n`), as the interop tests install their npm packages; when that
/// fails too, the test fails with what to do. No check is skipped.
pub fn tool(name: &str, package: &str) -> std::path::PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let find = || {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
    };
    if let Some(found) = find() {
        return found;
    }
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find() {
        return found;
    }
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| -> std::process::Output {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        // Other test binaries may install at the same time: wait for dpkg's lock.
        c.args(["-o", "DPkg::Lock::Timeout=300", "-y", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{name} is missing and apt-get could not run: {e}"))
    };
    eprintln!("{name} is missing: installing Debian's {package}");
    let update = apt(&["update"]);
    let install = apt(&["install", "--no-install-recommends", package]);
    find().unwrap_or_else(|| {
        panic!(
            "{name} is missing and installing {package} failed; install it (`apt-get install {package}`, what .ci/run does) and run again.\napt-get update: {}\n{}\napt-get install: {}\n{}",
            update.status,
            String::from_utf8_lossy(&update.stderr),
            install.status,
            String::from_utf8_lossy(&install.stderr),
        )
    })
}

/// Reads until the server's close frame; its code. A connection that ends
/// without one fails the test.
pub fn ws_close_code(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => return u16::from(f.code),
            Ok(_) => continue,
            Err(e) => panic!("closed without a close frame: {e}"),
        }
    }
}
