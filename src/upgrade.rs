//! Upgrading in place: `kill -USR2 PID` (or `bittorrent-tracker upgrade
//! --pid-file FILE`) has the running tracker start the binary at its path
//! with the same arguments and hand it its listening sockets and swarms, the
//! way nginx hands over to a new binary.
//!
//! The sockets are the same ones, inherited across `exec`: a datagram or a
//! connection that arrives while the processes hand over waits in them and
//! is lost to neither. In order:
//!
//! 1. The running tracker (the *old* process) starts the new binary with a
//!    socket pair to talk over and its listening sockets' descriptors, named
//!    in the environment.
//! 2. The new process reads its configuration and says `ready`; one that
//!    cannot (it is missing, crashes, refuses its configuration, does not
//!    answer within [`READY_WAIT`]) leaves the old one serving.
//! 3. The old process drains its connections (answers what each was sent,
//!    with `Connection: close`; WebSocket clients are told 1001 and
//!    reconnect), then stops reading UDP and streams its swarms (the state
//!    file's format) to the new one. Nothing is announced to it after that.
//! 4. The new process restores the swarms, serves on the same sockets, writes
//!    the pid file, and says `serving PID`. The old one exits without saving
//!    (the new one saves from now on). If the new process fails instead, the
//!    old one serves again, with its swarms as they were.

use crate::config::LogLevel;
use crate::server::{Handed, HandedSocket, Server};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The descriptor of the socket the new process talks to the old one over.
const ENV_CONTROL: &str = "BITTORRENT_TRACKER_HANDOVER_FD";
/// The listening sockets it takes over: `worker:udp|tcp:fd`, comma-separated.
const ENV_SOCKETS: &str = "BITTORRENT_TRACKER_HANDOVER_SOCKETS";

/// How long the new process may take to read its configuration and say
/// `ready`, and then to restore the swarms and serve.
pub const READY_WAIT: Duration = Duration::from_secs(30);
pub const SERVING_WAIT: Duration = Duration::from_secs(60);

/// Hands `server`'s sockets and swarms to a new process running `exe` with
/// `args`; returns its pid once it serves. On an error the new process is
/// stopped (if it still runs) and `server` serves on as before.
pub fn hand_over(
    server: &Server,
    exe: &Path,
    args: &[OsString],
    log: &dyn Fn(LogLevel, std::fmt::Arguments<'_>),
) -> Result<u32, String> {
    let started = Instant::now();
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
    let sockets: Vec<(RawFd, String)> = server
        .handed_sockets()
        .iter()
        .map(|s| {
            let kind = if s.udp { "udp" } else { "tcp" };
            let fd = s.fd.as_raw_fd();
            (fd, format!("{}:{kind}:{fd}", s.worker))
        })
        .collect();
    let theirs_fd = theirs.as_raw_fd();
    let mut inherit: Vec<RawFd> = sockets.iter().map(|s| s.0).collect();
    inherit.push(theirs_fd);
    let mut cmd = Command::new(exe);
    cmd.args(args).env(ENV_CONTROL, theirs_fd.to_string()).env(
        ENV_SOCKETS,
        sockets
            .iter()
            .map(|s| s.1.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    // SAFETY: between fork and exec only fcntl runs, which is
    // async-signal-safe, on descriptors this process holds open.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(theirs);
    let pid = child.id();
    log(
        LogLevel::Info,
        format_args!("upgrade: started {} as process {pid}", exe.display()),
    );
    let give_up = |child: &mut Child, why: String| -> String {
        // A process that closed its end may be exiting: its status, if it
        // comes within a second, says more than "stopped".
        let until = Instant::now() + Duration::from_secs(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break format!(" (it exited: {status})"),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break " (stopped)".to_string();
                }
            }
        };
        format!("process {pid}: {why}{status}")
    };
    let mut lines = BufReader::new(ours.try_clone().map_err(|e| e.to_string())?);
    let said = read_line(&mut lines, READY_WAIT);
    if said.as_deref() != Ok("ready") {
        return Err(give_up(&mut child, not_said("ready", said)));
    }
    // From here on, whatever fails must leave this process serving.
    let drained = server.drain();
    let frozen = Instant::now();
    let swarms = drained.and_then(|()| server.freeze());
    let (key, uptime) = server.handed_clock();
    let sent = swarms.and_then(|swarms| {
        let n = swarms.len();
        ours.write_all(&key)
            .and_then(|()| ours.write_all(&(uptime.as_millis() as u64).to_be_bytes()))
            .and_then(|()| ours.write_all(&(n as u64).to_be_bytes()))
            .and_then(|()| ours.write_all(&swarms))
            .map(|()| n)
            .map_err(|e| format!("cannot send the swarms: {e}"))
    });
    let outcome = sent.and_then(|n| {
        log(
            LogLevel::Info,
            format_args!(
                "upgrade: handed {n} bytes of swarms to process {pid} after {} ms",
                started.elapsed().as_millis()
            ),
        );
        match read_line(&mut lines, SERVING_WAIT) {
            Ok(l) if l == format!("serving {pid}") => {
                log(
                    LogLevel::Info,
                    format_args!(
                        "upgrade: process {pid} serves, {} ms after the signal was taken; UDP waited {} ms in the sockets",
                        started.elapsed().as_millis(),
                        frozen.elapsed().as_millis()
                    ),
                );
                Ok(pid)
            }
            said => Err(not_said("serving", said)),
        }
    });
    match outcome {
        Ok(pid) => Ok(pid),
        Err(why) => {
            let why = give_up(&mut child, why);
            server
                .resume()
                .map_err(|e| format!("{why}; and serving again failed: {e}"))?;
            Err(why)
        }
    }
}

fn not_said(want: &str, said: Result<String, String>) -> String {
    match said {
        Ok(l) if l.starts_with("failed: ") => l["failed: ".len()..].to_string(),
        Ok(l) => format!("said {l:?} instead of {want:?}"),
        Err(e) => format!("did not say {want:?}: {e}"),
    }
}

/// Reads one line (without its end) within `wait`.
fn read_line(r: &mut BufReader<UnixStream>, wait: Duration) -> Result<String, String> {
    r.get_ref()
        .set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Err("it closed the connection".into()),
        Ok(_) => Ok(line.trim_end().to_string()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("nothing within {} s", wait.as_secs()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The new process's side: the old one's sockets, and the line to it.
pub struct Successor {
    control: UnixStream,
    sockets: Vec<HandedSocket>,
}

impl Successor {
    /// This process was started to take over from a running tracker: what
    /// the environment names, taken (and removed from the environment, so
    /// that nothing started from here inherits it).
    pub fn from_env() -> Result<Option<Successor>, String> {
        let (Some(control), Some(sockets)) =
            (std::env::var_os(ENV_CONTROL), std::env::var_os(ENV_SOCKETS))
        else {
            return Ok(None);
        };
        // Called at start, before any other thread runs.
        std::env::remove_var(ENV_CONTROL);
        std::env::remove_var(ENV_SOCKETS);
        let fd = |s: &str| -> Result<OwnedFd, String> {
            let fd: RawFd = s.parse().map_err(|_| format!("bad descriptor {s:?}"))?;
            // SAFETY: fcntl only asks whether the descriptor is open.
            if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                return Err(format!("descriptor {fd} is not open"));
            }
            // SAFETY: the descriptor is open, was inherited for this
            // process, and nothing else here owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: the descriptor is owned above; from now on it closes
            // on exec like every other.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            Ok(owned)
        };
        let control = UnixStream::from(fd(&control.to_string_lossy())?);
        let mut handed = Vec::new();
        for part in sockets
            .to_string_lossy()
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let mut f = part.split(':');
            let (Some(w), Some(kind), Some(n), None) = (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(format!("bad socket {part:?}"));
            };
            handed.push(HandedSocket {
                worker: w.parse().map_err(|_| format!("bad worker in {part:?}"))?,
                udp: match kind {
                    "udp" => true,
                    "tcp" => false,
                    _ => return Err(format!("bad kind in {part:?}")),
                },
                fd: fd(n)?,
            });
        }
        Ok(Some(Successor {
            control,
            sockets: handed,
        }))
    }

    /// Says `ready` and receives the swarms: what to start the server from.
    pub fn receive(&mut self) -> Result<Handed, String> {
        self.control
            .write_all(b"ready\n")
            .map_err(|e| format!("cannot reach the running tracker: {e}"))?;
        self.control
            .set_read_timeout(Some(SERVING_WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn_key = [0u8; 16];
        let mut uptime = [0u8; 8];
        let mut len = [0u8; 8];
        self.control
            .read_exact(&mut conn_key)
            .and_then(|()| self.control.read_exact(&mut uptime))
            .and_then(|()| self.control.read_exact(&mut len))
            .map_err(|e| format!("no swarms from the running tracker: {e}"))?;
        let n = u64::from_be_bytes(len) as usize;
        let mut swarms = vec![0u8; n];
        self.control
            .read_exact(&mut swarms)
            .map_err(|e| format!("the swarms were cut short: {e}"))?;
        Ok(Handed {
            sockets: std::mem::take(&mut self.sockets),
            swarms: std::sync::Arc::new(swarms),
            conn_key,
            uptime: Duration::from_millis(u64::from_be_bytes(uptime)),
        })
    }

    /// Tells the old process this one serves: it stops.
    pub fn serving(mut self) {
        let _ = writeln!(self.control, "serving {}", std::process::id());
    }

    /// Tells the old process why this one cannot take over: it serves on.
    pub fn failed(mut self, why: &str) {
        let _ = writeln!(self.control, "failed: {}", why.replace('\n', " "));
    }
}

/// Writes this process's pid to `path` (through a temporary file, so a
/// reader never sees half of it).
pub fn write_pid_file(path: &Path) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

/// Removes the pid file if it still names this process (after an upgrade it
/// names the new one).
pub fn remove_pid_file(path: &Path) {
    if read_pid(path) == Some(std::process::id()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether process `pid` runs: it exists and has not exited (a process that
/// exited stays a zombie until its parent reaps it).
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Where the old process writes how an upgrade went, beside the pid file:
/// `ok PID` or `failed: why`.
pub fn outcome_file(pid_file: &Path) -> PathBuf {
    let mut p = pid_file.as_os_str().to_owned();
    p.push(".upgrade");
    PathBuf::from(p)
}

/// `bittorrent-tracker upgrade --pid-file FILE`: signals the tracker the
/// file names and waits for the outcome. Returns what to print, or why it
/// failed.
pub fn request(pid_file: &Path, wait: Duration) -> Result<String, String> {
    let pid = read_pid(pid_file).ok_or_else(|| format!("{}: no pid in it", pid_file.display()))?;
    let outcome = outcome_file(pid_file);
    let _ = std::fs::remove_file(&outcome);
    // SAFETY: kill has no memory arguments.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR2) } != 0 {
        return Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(text) = std::fs::read_to_string(&outcome) {
            let text = text.trim().to_string();
            if let Some(new) = text.strip_prefix("ok ") {
                // The old process exits once the new one serves.
                while running(pid) {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "process {new} serves, but {pid} has not stopped within {} s",
                            wait.as_secs()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(format!("upgraded: process {new} serves, {pid} has stopped"));
            }
            if text.starts_with("failed") {
                return Err(format!("process {pid} serves on: {text}"));
            }
        }
        if !running(pid) {
            return Err(format!(
                "process {pid} stopped without saying how the upgrade went"
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no outcome from process {pid} within {} s",
                wait.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tells systemd (a `Type=notify` unit, `NotifyAccess=all` so that the new
/// process of an upgrade may speak) how the service is: `READY=1`,
/// `MAINPID=…`, `STOPPING=1`. Nothing without `$NOTIFY_SOCKET`.
pub fn notify_systemd(state: &str) {
    use std::os::unix::ffi::OsStrExt;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_bytes();
    let _ = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
        }
        None => sock.send_to(state.as_bytes(), &path),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_hears_what_the_tracker_says() {
        let dir = std::env::temp_dir().join(format!("bt-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Only this test reads the variable.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify_systemd("MAINPID=42\nREADY=1");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=42\nREADY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_process_that_exited_does_not_run() {
        assert!(running(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie, which does not run.
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(pid) {
            assert!(Instant::now() < deadline, "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!running(pid));
    }
}
