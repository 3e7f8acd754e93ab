//! Heartbeats: every worker beats on each tick (250 ms) and says which
//! reload it has applied. A watchdog thread logs a worker whose beats stop
//! for [`STALL_AFTER`] (its executor is stuck, spinning, or starved of CPU:
//! the requests it owns wait) and logs again when it beats once more;
//! `/metrics` and `/stats.json` show the same from any other worker. The
//! same thread samples the request rates for the `/stats` chart.

use super::history::History;
use super::logging::log;
use crate::config::{LogLevel, ServerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Beats missed for this long make a worker stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// How often the watchdog looks.
const LOOK_EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Beat {
    /// Milliseconds from `Heartbeats::started` to the last beat.
    last_ms: AtomicU64,
    /// The reload generation the worker has applied.
    generation: AtomicU64,
    /// Whether the watchdog has found it stalled (and not yet recovered).
    stalled: AtomicBool,
    /// Stalls so far.
    stalls: AtomicU64,
    /// The worker thread's id (0 until it starts), for its CPU time.
    tid: AtomicU64,
}

/// Every worker's heartbeat, shared with the watchdog and the server handle.
pub(crate) struct Heartbeats {
    started: Instant,
    beats: Vec<Beat>,
}

/// What the heartbeats say of one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerHealth {
    pub worker: usize,
    /// Since the last heartbeat.
    pub heartbeat_age: Duration,
    /// Beats missed for [`STALL_AFTER`] or more.
    pub stalled: bool,
    /// Stalls since start.
    pub stalls: u64,
}

impl Heartbeats {
    pub fn new(workers: usize) -> Heartbeats {
        Heartbeats {
            started: Instant::now(),
            beats: (0..workers).map(|_| Beat::default()).collect(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Worker `id` runs on the calling thread (called once, at its start).
    pub fn started(&self, id: usize) {
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        self.beats[id].tid.store(tid as u64, Ordering::Relaxed);
    }

    /// CPU time that worker `id`'s thread has used: user, system.
    pub fn cpu_split(&self, id: usize) -> Option<(Duration, Duration)> {
        match self.beats[id].tid.load(Ordering::Relaxed) {
            0 => None,
            tid => thread_cpu(tid),
        }
    }

    /// CPU time (user and system) that worker `id`'s thread has used.
    pub fn cpu(&self, id: usize) -> Option<Duration> {
        self.cpu_split(id).map(|(u, s)| u + s)
    }

    /// Worker `id` is alive and has applied reload `generation`.
    pub fn beat(&self, id: usize, generation: u64) {
        let b = &self.beats[id];
        b.last_ms.store(self.elapsed_ms(), Ordering::Relaxed);
        b.generation.store(generation, Ordering::Release);
    }

    /// The reload generation worker `id` has applied.
    pub fn applied(&self, id: usize) -> u64 {
        self.beats[id].generation.load(Ordering::Acquire)
    }

    pub fn workers(&self) -> usize {
        self.beats.len()
    }

    pub fn health(&self) -> Vec<WorkerHealth> {
        let now = self.elapsed_ms();
        self.beats
            .iter()
            .enumerate()
            .map(|(worker, b)| WorkerHealth {
                worker,
                heartbeat_age: Duration::from_millis(
                    now.saturating_sub(b.last_ms.load(Ordering::Relaxed)),
                ),
                stalled: b.stalled.load(Ordering::Relaxed),
                stalls: b.stalls.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// One look: marks and logs workers that stopped beating or beat
    /// again. `cpu_seen` is the watchdog's memory: each worker's CPU time
    /// when it was last seen beating, to tell a spinning worker (it used
    /// CPU all along) from one asleep or waiting for a CPU.
    fn look(&self, cfg: &ServerConfig, cpu_seen: &mut [Option<Duration>]) {
        for h in self.health() {
            let b = &self.beats[h.worker];
            let late = h.heartbeat_age >= STALL_AFTER;
            let cpu = self.cpu(h.worker);
            let used = match (cpu, cpu_seen[h.worker]) {
                (Some(now), Some(then)) => format!(
                    "; its thread used {:.2} s of CPU since",
                    now.saturating_sub(then).as_secs_f64()
                ),
                _ => String::new(),
            };
            if late && !h.stalled {
                b.stalled.store(true, Ordering::Relaxed);
                b.stalls.fetch_add(1, Ordering::Relaxed);
                log(
                    cfg,
                    LogLevel::Errors,
                    format_args!(
                        "worker {} has missed its heartbeats for {:.1} s{used}: it is stuck, spinning, starved \
                         of CPU or gone, and the requests it owns wait (tracker_worker_stalled in /metrics)",
                        h.worker,
                        h.heartbeat_age.as_secs_f64()
                    ),
                );
            } else if !late && h.stalled {
                b.stalled.store(false, Ordering::Relaxed);
                log(
                    cfg,
                    LogLevel::Warnings,
                    format_args!("worker {} beats again after a stall{used}", h.worker),
                );
            }
            if !late {
                cpu_seen[h.worker] = cpu;
            }
        }
    }
}

/// Starts the watchdog thread, which also takes the request-rate samples
/// (the first at once); it ends when `stop` is set.
pub(crate) fn start(
    cfg: Arc<ServerConfig>,
    beats: Arc<Heartbeats>,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tracker-watchdog".into())
        .spawn(move || {
            let mut cpu_seen = vec![None; beats.workers()];
            while !stop.load(Ordering::Relaxed) {
                history.sample_if_due();
                std::thread::sleep(LOOK_EVERY);
                beats.look(&cfg, &mut cpu_seen);
            }
        })
        .ok()
}

/// CPU time a thread of this process has used in user and in system mode
/// (`/proc/self/task/TID/stat`).
pub(crate) fn thread_cpu(tid: u64) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces: state is
    // the first, utime and stime the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    let (user, system): (u64, u64) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / hz as f64);
    (hz > 0).then(|| (secs(user), secs(system)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_stops_beating_is_stalled_until_it_beats_again() {
        let cfg = ServerConfig {
            log: LogLevel::Silent,
            ..ServerConfig::default()
        };
        let hb = Heartbeats::new(2);
        let mut seen = vec![None; 2];
        hb.started(0);
        hb.beat(0, 0);
        hb.beat(1, 0);
        hb.look(&cfg, &mut seen);
        assert!(
            seen[0].is_some() && seen[1].is_none(),
            "CPU time of started workers"
        );
        assert!(hb.health().iter().all(|h| !h.stalled));
        // Worker 1's last beat was long ago.
        hb.beats[1].last_ms.store(0, Ordering::Relaxed);
        let hb = Heartbeats {
            started: Instant::now() - STALL_AFTER - Duration::from_millis(10),
            beats: hb.beats,
        };
        hb.beat(0, 3);
        hb.look(&cfg, &mut seen);
        let h = hb.health();
        assert!(!h[0].stalled && h[1].stalled, "{h:?}");
        assert_eq!((h[1].stalls, hb.applied(0), hb.applied(1)), (1, 3, 0));
        assert!(h[1].heartbeat_age >= STALL_AFTER);
        hb.look(&cfg, &mut seen);
        assert_eq!(hb.health()[1].stalls, 1, "one stall, counted once");
        hb.beat(1, 3);
        hb.look(&cfg, &mut seen);
        let h = hb.health();
        assert!(!h[1].stalled && h[1].stalls == 1, "{h:?}");
    }
}
