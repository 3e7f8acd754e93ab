//! `compare`: starts each tracker pinned to its CPUs, waits until it answers,
//! runs the same load against each in alternating rounds (A B A B ...), and
//! prints one table of medians with ratios to the first tracker. Tracker CPU
//! time and peak memory come from /proc, so any tracker can be measured.

use crate::report::Report;
use crate::{http, udp, ws, LoadOpts};
use clap::Args;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Clone, Debug)]
pub struct CompareOpts {
    /// A tracker as NAME=COMMAND (run as `sh -c 'exec COMMAND'`, so it must
    /// listen on --target); repeat for each tracker, the first is the baseline
    #[arg(long = "tracker", required = true, value_name = "NAME=COMMAND")]
    pub trackers: Vec<String>,
    /// CPUs the trackers are pinned to
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub tracker_cpus: Vec<usize>,
    /// Protocol to load: udp, http or ws
    #[arg(long, default_value = "udp")]
    pub protocol: String,
    /// Rounds; each runs every tracker once, in order
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds a tracker has to start answering
    #[arg(long, default_value_t = 30.0)]
    pub start_timeout: f64,
    /// Seconds to wait once a tracker answers, before the load: for one
    /// that loads an access list after it starts listening (opentracker)
    #[arg(long, default_value_t = 0.0)]
    pub settle: f64,
    /// Also draw each tracker's responses/s and CPU per response, every
    /// round and the median, as an SVG chart in FILE
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub load: LoadOpts,
}

/// One tracker in one round.
#[derive(Clone, Debug)]
struct Sample {
    rate: f64,
    cpu_us_per_response: f64,
    peak_rss_kib: u64,
    p50_us: u64,
    p99_us: u64,
    bad: u64,
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// A `kB` figure of `/proc/PID/status`, such as `VmHWM` (peak resident
/// memory) or `VmRSS` (resident now).
pub(crate) fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn start(command: &str, cpus: &[usize]) -> Result<Child, String> {
    let cpus = cpus.to_vec();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &cpus {
                if c < libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| format!("start `{command}`: {e}"))
}

/// Whether something answers a tracker request at `target` now.
fn answers(protocol: &str, target: std::net::SocketAddr) -> bool {
    if protocol == "udp" {
        let local = if target.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let Ok(s) = std::net::UdpSocket::bind(local) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut req = Vec::new();
        bittorrent_tracker::protocol::udp::write_connect_request(&mut req, 0x5157);
        if s.send_to(&req, target).is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.recv(&mut buf), Ok(16..))
    } else {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        // A WebSocket tracker need not speak plain HTTP: ask it for an upgrade.
        let (req, want): (String, &[u8]) = if protocol == "ws" {
            (ws::upgrade_request(target), b"HTTP/1.1 101")
        } else {
            (
                "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
                b"HTTP/",
            )
        };
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = vec![0u8; want.len()];
        s.read_exact(&mut buf).is_ok() && buf == want
    }
}

pub(crate) fn stop(mut child: Child) {
    // SAFETY: signalling our own child by its PID.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits, up to `limit`, until `target` can be bound again. A tracker that
/// exits while the load's connections are still open leaves them closing
/// (FIN_WAIT) on its port for a moment, and the next tracker, started at
/// once, would find the port in use.
pub(crate) fn port_released(protocol: &str, target: std::net::SocketAddr, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        // std sets SO_REUSEADDR, as trackers do: TIME_WAIT is no obstacle.
        let free = if protocol == "udp" {
            std::net::UdpSocket::bind(target).is_ok()
        } else {
            std::net::TcpListener::bind(target).is_ok()
        };
        if free {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the tracker `name` and waits, up to `timeout` seconds, until it
/// answers `protocol` at `target`; says why when it does not.
pub(crate) fn start_answering(
    name: &str,
    command: &str,
    cpus: &[usize],
    protocol: &str,
    target: std::net::SocketAddr,
    timeout: f64,
) -> Result<Child, String> {
    let mut child = start(command, cpus)?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    while !answers(protocol, target) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!(
                "{name} exited ({status}) before answering: {}",
                err.trim()
            ));
        }
        if Instant::now() > deadline {
            stop(child);
            return Err(format!(
                "{name} did not answer on {target} within {timeout} s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(child)
}

/// `--tracker NAME=COMMAND` arguments, split.
pub(crate) fn parse_trackers(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|t| match t.split_once('=') {
            Some((n, c)) if !n.is_empty() && !c.is_empty() => Ok((n.to_string(), c.to_string())),
            _ => Err(format!("--tracker {t}: expected NAME=COMMAND")),
        })
        .collect()
}

fn one_run(o: &CompareOpts, name: &str, command: &str) -> Result<Sample, String> {
    let child = start_answering(
        name,
        command,
        &o.tracker_cpus,
        &o.protocol,
        o.load.target,
        o.start_timeout,
    )?;
    let pid = child.id();
    std::thread::sleep(Duration::from_secs_f64(o.settle.max(0.0)));
    let cpu_before = proc_cpu_seconds(pid).unwrap_or(0.0);
    let mut load = o.load.clone();
    load.quiet = true;
    let engine = match o.protocol.as_str() {
        "udp" => udp::engine,
        "http" => http::engine,
        _ => ws::engine,
    };
    let report: Result<Report, String> = crate::run(&o.protocol, engine, &load);
    let cpu = proc_cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let peak = proc_status_kib(pid, "VmHWM").unwrap_or(0);
    stop(child);
    port_released(&o.protocol, o.load.target, Duration::from_secs(10));
    let r = report?;
    let answered = r.total.answered.max(1) as f64;
    Ok(Sample {
        rate: r.rate(),
        cpu_us_per_response: cpu * 1e6 / answered,
        peak_rss_kib: peak,
        p50_us: r.total.p50_us,
        p99_us: r.total.p99_us,
        bad: r.total.errors + r.total.invalid + r.total.timeouts,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn run(o: &CompareOpts) -> Result<(), String> {
    if !["udp", "http", "ws"].contains(&o.protocol.as_str()) {
        return Err(format!(
            "--protocol {}: must be udp, http or ws",
            o.protocol
        ));
    }
    let trackers = parse_trackers(&o.trackers)?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); trackers.len()];
    for round in 0..o.rounds.max(1) {
        for (i, (name, command)) in trackers.iter().enumerate() {
            let s = one_run(o, name, command)?;
            eprintln!(
                "round {}: {name}: {:.0} responses/s, {:.2} µs CPU each, peak RSS {} MiB, p99 {} µs, errors/invalid/timeouts {}",
                round + 1,
                s.rate,
                s.cpu_us_per_response,
                s.peak_rss_kib / 1024,
                s.p99_us,
                s.bad
            );
            samples[i].push(s);
        }
    }
    let med = |i: usize, f: fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
    let base = |f: fn(&Sample) -> f64| med(0, f);
    let about = format!(
        "{} load: {}, {:.0} s a run, {} rounds, trackers on CPU {:?}, load on CPU {:?}",
        o.protocol,
        o.load.mode(&o.protocol),
        o.load.duration,
        o.rounds.max(1),
        o.tracker_cpus,
        o.load.cpus
    );
    println!("{about}; medians");
    println!();
    println!("| tracker | responses/s | ratio | CPU µs/response | ratio | peak RSS MiB | ratio | p50 µs | p99 µs | errors+invalid+timeouts |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (name, _)) in trackers.iter().enumerate() {
        let rate = med(i, |s| s.rate);
        let cpu = med(i, |s| s.cpu_us_per_response);
        let rss = med(i, |s| s.peak_rss_kib as f64);
        let ratio = |v: f64, b: f64| if b > 0.0 { v / b } else { 0.0 };
        println!(
            "| {name} | {rate:.0} | {:.2} | {cpu:.2} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            ratio(rate, base(|s| s.rate)),
            ratio(cpu, base(|s| s.cpu_us_per_response)),
            rss / 1024.0,
            ratio(rss, base(|s| s.peak_rss_kib as f64)),
            med(i, |s| s.p50_us as f64),
            med(i, |s| s.p99_us as f64),
            med(i, |s| s.bad as f64),
        );
    }
    if let Some(path) = &o.plot {
        let names: Vec<String> = trackers.iter().map(|t| t.0.clone()).collect();
        let of =
            |f: fn(&Sample) -> f64| samples.iter().map(|v| v.iter().map(f).collect()).collect();
        let panels = [
            crate::plot::Panel {
                title: "responses a second",
                values: of(|s| s.rate),
            },
            crate::plot::Panel {
                title: "CPU µs a response",
                values: of(|s| s.cpu_us_per_response),
            },
        ];
        std::fs::write(path, crate::plot::svg(&about, &names, &panels, median))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn reads_its_own_proc_figures() {
        let me = std::process::id();
        assert!(proc_cpu_seconds(me).is_some());
        assert!(proc_status_kib(me, "VmHWM").unwrap() > 0);
        assert!(proc_status_kib(me, "VmRSS").unwrap() > 0);
        assert_eq!(proc_status_kib(me, "VmRS"), None);
    }
}
