//! Upgrading in place (`kill -USR2`, `bittorrent-tracker upgrade`): the
//! running tracker hands its sockets and swarms to the binary at its path.
//! Under UDP and keep-alive HTTP load no request is lost, the swarms come
//! through whole, WebSocket clients are told to reconnect, and a new binary
//! that fails leaves the old one serving.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A copy of the tracker binary in `dir`: what an upgrade starts is the file
/// at the running binary's path, which a test may replace.
fn copy_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bittorrent-tracker");
    std::fs::copy(env!("CARGO_BIN_EXE_bittorrent-tracker"), &bin).unwrap();
    bin
}

/// A receive buffer of `bytes` on `sock`, past `net.core.rmem_max` when the
/// test runs as root (as CI does).
fn force_recv_buffer(sock: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: the option value is a c_int that outlives the call.
    let forced = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        socket2::SockRef::from(sock)
            .set_recv_buffer_size(bytes as usize)
            .unwrap();
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Whether `pid` runs (a zombie, exited but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    bittorrent_tracker::upgrade::running(pid)
}

/// `bittorrent-tracker upgrade --pid-file FILE`, with the test's own binary.
fn upgrade(pid_file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
        .args([
            "upgrade",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--timeout",
            "60",
        ])
        .output()
        .unwrap()
}

/// Stops the process a pid file names (the new process of an upgrade is no
/// child of the test's).
struct StopAtEnd(PathBuf);

impl Drop for StopAtEnd {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                // SAFETY: kill has no memory arguments; the pid is the
                // tracker this test started (or its successor).
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(10);
                while alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn stats(addr: SocketAddr) -> serde_json::Value {
    serde_json::from_slice(&get(addr, "/stats.json").body).unwrap()
}

fn start(dir: &Path, bin: &Path, extra: &[&str]) -> (Tracker, PathBuf) {
    let pid_file = dir.join("tracker.pid");
    let mut args = vec![
        "-p",
        "0",
        "--workers",
        "2",
        "--listen-v4",
        "127.0.0.1",
        "--listen-v6",
        "off",
        "--pid-file",
        pid_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let t = Tracker::start_bin(bin, &args);
    assert!(
        eventually(|| pid_file.exists()),
        "no pid file at {}",
        pid_file.display()
    );
    (t, pid_file)
}

#[test]
fn an_upgrade_under_load_loses_no_request_and_keeps_every_swarm() {
    let dir = scratch("upgrade-load");
    let bin = copy_binary(&dir);
    let (t, pid_file) = start(&dir, &bin, &[]);
    let _stop = StopAtEnd(pid_file.clone());
    let old = read_pid(&pid_file);
    let target = t.v4();
    // Swarms to hand over: 300 torrents over UDP, each with a seeder and
    // a leecher that completed.
    let mut u = Udp::connect(target);
    for i in 0..300u16 {
        let h = hash((i % 2) as u8, (i / 2) as u8);
        u.announce(h, peer_id(1), 5, 2, 0, 10_000 + i);
        u.announce(h, peer_id(2), 0, 2, 0, 20_000 + i);
        u.announce(h, peer_id(1), 0, 1, 0, 10_000 + i);
    }
    let before = stats(target);
    let scrape_before = u.scrape(&[hash(0, 7), hash(1, 7)]);
    // A WebSocket client, told to reconnect when the tracker hands over.
    let mut ws = ws_open(&t, "/");
    let stop = AtomicBool::new(false);
    let udp_lost = Mutex::new(Vec::new());
    let upgrade_at: Mutex<Option<Instant>> = Mutex::new(None);
    let (udp_sent, http, reconnects) = std::thread::scope(|s| {
        // Open-loop UDP: 5,000 announces a second, each awaited 15 s, when
        // a BEP 15 client would send it again: until then it is not lost.
        let udp = s.spawn(|| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            // Room for the replies to what waited while the processes
            // handed over, which come at once: a small buffer here would
            // drop them (this client's loss, not the tracker's).
            force_recv_buffer(&sock, 8 << 20);
            sock.connect(target).unwrap();
            let mut c = Udp::connect(target);
            let conn = c.conn;
            let pending: Mutex<HashMap<u32, Instant>> = Mutex::new(HashMap::new());
            let done = AtomicBool::new(false);
            std::thread::scope(|s2| {
                s2.spawn(|| {
                    sock.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    let mut buf = [0u8; 2048];
                    while !done.load(Ordering::Relaxed) || !pending.lock().unwrap().is_empty() {
                        if let Ok(n) = sock.recv(&mut buf) {
                            assert!(n >= 20 && buf[3] == 1, "an announce reply: {:?}", &buf[..n]);
                            let tid = u32::from_be_bytes(buf[4..8].try_into().unwrap());
                            pending.lock().unwrap().remove(&tid);
                        }
                        let mut p = pending.lock().unwrap();
                        let late: Vec<u32> = p
                            .iter()
                            .filter(|(_, at)| at.elapsed() > Duration::from_secs(15))
                            .map(|(&tid, _)| tid)
                            .collect();
                        for tid in late {
                            let at = p.remove(&tid).unwrap();
                            udp_lost.lock().unwrap().push((tid, at));
                        }
                    }
                });
                let mut sent = 0u32;
                let began = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let due = began + Duration::from_micros(200) * sent;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    c.conn = conn;
                    let (tid, req) = c.announce_bytes(
                        hash(0, 200),
                        peer_id(3),
                        1,
                        0,
                        10,
                        (30_000 + sent % 5_000) as u16,
                    );
                    pending.lock().unwrap().insert(tid, Instant::now());
                    sock.send(&req).unwrap();
                    sent += 1;
                }
                done.store(true, Ordering::Relaxed);
                sent
            })
        });
        // HTTP: eight clients, one request at a time each; a connection the
        // tracker closes after an answer is opened again. Six keep their
        // connections alive; two open a new one for every request, so that
        // connections arrive while the old process stops accepting.
        let clients: Vec<_> = (0..8u8)
            .map(|c| {
                let stop = &stop;
                s.spawn(move || {
                    let path = announce_target(hash(1, 200), peer_id(40 + c), 7000, 1, "");
                    let close = if c >= 6 { "Connection: close\r\n" } else { "" };
                    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{close}\r\n");
                    let (mut answered, mut reconnects) = (0u64, 0u64);
                    // Answers are awaited 20 s: a new connection waits in
                    // the listener's queue while the processes hand over.
                    let open = || {
                        let s = tcp(target);
                        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        s
                    };
                    let mut conn = open();
                    while !stop.load(Ordering::Relaxed) {
                        conn.write_all(request.as_bytes()).unwrap();
                        let r = read_response(&mut conn).unwrap_or_else(|| {
                            panic!("HTTP client {c}: a request failed after {answered} answers")
                        });
                        assert_eq!(r.status, 200);
                        answered += 1;
                        if r.header("connection") == Some("close") {
                            reconnects += 1;
                            conn = open();
                        }
                    }
                    (answered, reconnects)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        *upgrade_at.lock().unwrap() = Some(Instant::now());
        let out = upgrade(&pid_file);
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "upgrade: {said}\n{}",
            t.log().join("\n")
        );
        assert!(said.contains("upgraded"), "{said}");
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        let (mut answered, mut reconnects) = (0, 0);
        for h in clients {
            let (a, r) = h.join().unwrap();
            answered += a;
            reconnects += r;
        }
        (udp.join().unwrap(), answered, reconnects)
    });
    let lost = udp_lost.into_inner().unwrap();
    let up = upgrade_at.into_inner().unwrap().unwrap();
    // When the lost ones were sent, in ms after the upgrade command began.
    let sent_at: Vec<i128> = lost
        .iter()
        .map(|(_, at)| {
            at.duration_since(up).as_millis() as i128 - up.duration_since(*at).as_millis() as i128
        })
        .collect();
    let timings: Vec<String> = t
        .log()
        .into_iter()
        .filter(|l| l.contains("upgrade:"))
        .collect();
    let said = format!(
        "{udp_sent} UDP announces sent, {} lost (sent {:?} to {:?} ms after the upgrade began); {http} HTTP answers, {reconnects} reconnects\n{}",
        lost.len(),
        sent_at.iter().min(),
        sent_at.iter().max(),
        timings.join("\n")
    );
    eprintln!("{said}");
    assert!(lost.is_empty(), "{said}");
    assert!(udp_sent > 5_000 && http > 100, "{said}");
    // Each HTTP client was told once to reconnect: the old process closed
    // its connections, the new one served the rest.
    assert!(reconnects >= 8, "{said}");
    // A new process serves, the old one has stopped, the pid file says so.
    let new = read_pid(&pid_file);
    assert_ne!(new, old);
    assert!(alive(new));
    assert!(
        eventually(|| !alive(old)),
        "the old process {old} still runs"
    );
    // The WebSocket client was told to go away (1001) and reconnect.
    assert_eq!(ws_close_code(&mut ws), 1001);
    // Every swarm came through: the torrents, their peers and completed
    // counts, plus what was announced under load.
    let after = stats(target);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&before, "completed"), 300, "{before}");
    assert_eq!(n(&after, "completed"), 300, "{after}");
    // The two torrents of the load are new.
    assert_eq!(
        n(&after, "torrents"),
        n(&before, "torrents") + 2,
        "{before} -> {after}"
    );
    assert_eq!(u.scrape(&[hash(0, 7), hash(1, 7)]), scrape_before);
    assert!(after["peersAll"].as_u64().unwrap() >= before["peersAll"].as_u64().unwrap());
    // The new process logs that it took over; the old one, that it stopped.
    let log = t.log().join("\n");
    assert!(
        log.contains("took over the running tracker's sockets and swarms"),
        "{log}"
    );
    assert!(
        log.contains(&format!("process {new} serves now; this one stops")),
        "{log}"
    );
}

#[test]
fn a_new_binary_that_fails_leaves_the_old_one_serving() {
    let dir = scratch("upgrade-fails");
    let bin = copy_binary(&dir);
    let cfg = dir.join("tracker.toml");
    std::fs::write(&cfg, "interval = 600\n").unwrap();
    let (t, pid_file) = start(&dir, &bin, &["--config", cfg.to_str().unwrap()]);
    let _stop = StopAtEnd(pid_file.clone());
    let old = read_pid(&pid_file);
    let mut u = Udp::connect(t.v4());
    u.announce(hash(0, 1), peer_id(1), 5, 2, 0, 6001);
    let serves = |u: &mut Udp| {
        assert_eq!(u.scrape(&[hash(0, 1)]), vec![(0, 0, 1)]);
        assert_eq!(get(t.v4(), "/stats.json").status, 200);
    };
    // 0. Nothing at the binary's path.
    let real = dir.join("real");
    std::fs::rename(&bin, &real).unwrap();
    let out = upgrade(&pid_file);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&format!("process {old} serves on")), "{said}");
    assert!(said.contains("cannot start"), "{said}");
    serves(&mut u);
    // 1. The file at the binary's path now fails at once.
    let script = dir.join("broken");
    std::fs::write(&script, "#!/bin/sh\necho 'not a tracker' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&script, &bin).unwrap();
    let out = upgrade(&pid_file);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&format!("process {old} serves on")), "{said}");
    assert!(said.contains("exit status: 3"), "{said}");
    serves(&mut u);
    assert_eq!(read_pid(&pid_file), old);
    // 2. The binary is back, but the configuration it reads is broken now.
    std::fs::rename(&real, &bin).unwrap();
    std::fs::write(&cfg, "interval = \"soon\"\n").unwrap();
    let out = upgrade(&pid_file);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("serves on"), "{said}");
    serves(&mut u);
    // 3. Fixed: the same binary takes over (a restart in place), swarm and all.
    std::fs::write(&cfg, "interval = 600\n").unwrap();
    let out = upgrade(&pid_file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(read_pid(&pid_file), old);
    serves(&mut u);
    let log = t.log().join("\n");
    assert!(
        log.contains("upgrade failed, serving on as before"),
        "{log}"
    );
}
