//! The runtime, and the only code that knows glommio: one `LocalExecutor`
//! per core, each with its own `SO_REUSEPORT` sockets and shard.

pub mod access;
mod bind;
mod chart;
mod conns;
mod dispatch;
mod error;
pub mod events;
mod full_scrape;
mod handover;
pub mod history;
pub use handover::{Handed, HandedSocket};
mod http;
pub mod logging;
mod mesh;
mod pace;
mod per_address;
mod privileges;
pub mod process;
pub mod readable;
mod shared;
mod start;
mod state;
pub mod stats;
mod steer;
mod tls;
mod udp;
pub mod watchdog;
mod worker;
mod ws;

use crate::config::{LogLevel, ServerConfig};
use crate::protocol::udp::ConnectionIds;
use crate::swarm::TorrentInfo;
use access::{Access, FilterHook, FilterRequest, Lists};
use bind::{bind_workers, probe, Proto};
pub use error::StartError;
use events::{EventSink, ServerEvent};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use shared::Shared;
use stats::{Stats, WorkerStats};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Memory each executor registers with io_uring for storage I/O. The
/// tracker does no storage I/O through glommio, so it takes glommio's
/// minimum instead of its default of 10 MiB a worker, which would be
/// resident (pinned) for nothing.
const IO_MEMORY: usize = 64 << 10;

use logging::log;

/// Reads what a reload reads: the lists and the TLS files.
fn load_files(cfg: &ServerConfig) -> Result<(Lists, Option<Arc<rustls::ServerConfig>>), String> {
    let lists = Lists::load(cfg.allow.as_deref(), cfg.deny.as_deref())?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls::load(c, k)?),
        _ => None,
    };
    Ok((lists, tls))
}

/// A running tracker.
pub struct Server {
    handles: Vec<ExecutorJoinHandle<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    cfg: Arc<ServerConfig>,
    control: Vec<crossbeam_channel::Sender<mesh::Control>>,
    saver: Option<state::Saver>,
    /// Copies of the listening sockets, to hand to a new process, with the
    /// connection-id key and when the clock started.
    sockets: Vec<HandedSocket>,
    conn_key: [u8; 16],
    started: Instant,
    port: u16,
    http: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

/// Builds a [`Server`]: the reference server's options, a filter and an
/// event stream.
///
/// ```no_run
/// use bittorrent_tracker::Server;
/// let server = Server::builder()
///     .filter(|r| if r.query.starts_with(b"passkey=letmein") { Ok(()) } else { Err("bad passkey".into()) })
///     .events(10_000)
///     .listen(8000, None)
///     .unwrap();
/// println!("{:?}", server.http_addrs());
/// ```
#[derive(Clone, Default)]
pub struct ServerBuilder {
    cfg: ServerConfig,
    filter: Option<FilterHook>,
    events: Option<usize>,
    handed: Option<Arc<Handed>>,
}

impl ServerBuilder {
    /// Starts from `cfg` instead of the defaults.
    pub fn config(mut self, cfg: ServerConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Which trackers run (all three by default).
    pub fn protocols(mut self, http: bool, udp: bool, ws: bool) -> Self {
        (self.cfg.http, self.cfg.udp, self.cfg.ws) = (http, udp, ws);
        self
    }

    /// The announce interval; `min interval` and the peer time-to-live follow it.
    pub fn interval(mut self, every: Duration) -> Self {
        self.cfg
            .set_interval(every.as_secs().clamp(1, u32::MAX as u64) as u32);
        self
    }

    /// Take HTTP clients' addresses from `X-Forwarded-For`.
    pub fn trust_proxy(mut self, on: bool) -> Self {
        self.cfg.trust_proxy = on;
        self
    }

    /// Worker executors (default: one per CPU).
    pub fn workers(mut self, n: usize) -> Self {
        self.cfg.workers = n;
        self
    }

    /// The reference's `filter`: called for every announce and scrape;
    /// `Err(reason)` refuses it with that reason.
    pub fn filter<F>(mut self, f: F) -> Self
    where
        F: Fn(&FilterRequest<'_>) -> Result<(), String> + Send + Sync + 'static,
    {
        self.filter = Some(Arc::new(f));
        self
    }

    /// Emits an event for every announce on a channel of `capacity` events
    /// (see [`Server::events`]); events that find it full are dropped and
    /// counted.
    pub fn events(mut self, capacity: usize) -> Self {
        self.events = Some(capacity);
        self
    }

    /// Listens on `port` (0: any free one) of `host`, or of every address
    /// (IPv4 and IPv6) when `host` is `None`, like the reference's
    /// `server.listen(port, hostname)`.
    pub fn listen(mut self, port: u16, host: Option<IpAddr>) -> Result<Server, StartError> {
        self.cfg.port = port;
        match host {
            Some(IpAddr::V4(a)) => (self.cfg.listen_v4, self.cfg.listen_v6) = (Some(a), None),
            Some(IpAddr::V6(a)) => {
                (self.cfg.listen_v4, self.cfg.listen_v6) = (None, Some(a));
                self.cfg.require_v6 = true;
            }
            None => {}
        }
        self.start()
    }

    /// Takes over a running tracker's sockets and swarms instead of
    /// binding and reading the state file (see `crate::upgrade`).
    pub fn handed(mut self, h: Handed) -> Self {
        self.handed = Some(Arc::new(h));
        self
    }

    /// Starts the server as configured.
    pub fn start(self) -> Result<Server, StartError> {
        Server::launch(self)
    }
}

/// How long the workers may take to start before the start fails, and how
/// often a slow start is reported meanwhile.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_REPORT: Duration = Duration::from_secs(10);
/// How long a reload waits for every worker to apply it.
const RELOAD_WAIT: Duration = Duration::from_secs(5);

/// Waits for every worker to say it serves. A slow start is logged every
/// [`READY_REPORT`] with the workers still missing and the CPU time their
/// threads used (a spinning worker uses it all, a blocked one none).
fn wait_ready(
    cfg: &ServerConfig,
    beats: &watchdog::Heartbeats,
    ready: &crossbeam_channel::Receiver<Result<usize, String>>,
    workers: usize,
) -> Result<(), StartError> {
    let started = Instant::now();
    let mut is_ready = vec![false; workers];
    let mut left = workers;
    let mut report = READY_REPORT;
    while left > 0 {
        let elapsed = started.elapsed();
        let wait = report.min(READY_TIMEOUT).saturating_sub(elapsed);
        match ready.recv_timeout(wait) {
            Ok(Err(why)) => return Err(StartError::Worker(why)),
            Ok(Ok(id)) => {
                if !std::mem::replace(&mut is_ready[id], true) {
                    left -= 1;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(StartError::Worker(
                    "every worker stopped before all were ready (see the errors above)".into(),
                ))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let missing: Vec<String> = (0..workers)
                    .filter(|&i| !is_ready[i])
                    .map(|i| match beats.cpu_split(i) {
                        Some((user, system)) => format!(
                            "{i} (its thread used {:.1} s user and {:.1} s system CPU)",
                            user.as_secs_f64(),
                            system.as_secs_f64()
                        ),
                        None => format!("{i} (its thread has not started)"),
                    })
                    .collect();
                let elapsed = started.elapsed();
                if elapsed >= READY_TIMEOUT {
                    return Err(StartError::Worker(format!(
                        "worker {} not ready after {} s",
                        missing.join(", "),
                        elapsed.as_secs()
                    )));
                }
                log(
                    cfg,
                    LogLevel::Warnings,
                    format_args!(
                        "still waiting for worker {} to start, after {} s",
                        missing.join(", "),
                        elapsed.as_secs()
                    ),
                );
                report += READY_REPORT;
            }
        }
    }
    Ok(())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    b
}

impl Server {
    /// A builder, for library users.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds every socket, starts one pinned executor per worker, and returns
    /// once all of them serve.
    pub fn start(cfg: ServerConfig) -> Result<Server, StartError> {
        Server::builder().config(cfg).start()
    }

    fn launch(b: ServerBuilder) -> Result<Server, StartError> {
        let ServerBuilder {
            cfg,
            filter,
            events,
            handed,
        } = b;
        cfg.check().map_err(|e| StartError::Config(e.to_string()))?;
        let (lists, tls) = load_files(&cfg).map_err(StartError::Config)?;
        let workers = cfg.workers.max(1);
        let restored = match &handed {
            Some(h) => state::load_handed(&cfg, h.swarms.clone(), workers),
            None => state::load(&cfg, workers),
        }
        .map_err(StartError::Config)?;
        // Fail early, with a clear reason, when io_uring is unusable. The
        // trial executor runs on a thread of its own: a ring made on the
        // caller's thread can leave it with interrupted system calls (EINTR)
        // after the ring is gone, which a library caller would not expect.
        std::thread::spawn(|| {
            LocalExecutorBuilder::new(Placement::Unbound)
                .io_memory(IO_MEMORY)
                .make()
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| StartError::Runtime("the trial executor panicked".into()))?
        .map_err(StartError::Runtime)?;
        let (bound, sockets) = match &handed {
            Some(h) => handover::adopt(&cfg, h, workers).map_err(|e| {
                StartError::Config(format!(
                    "cannot take over the running tracker's sockets: {e}"
                ))
            })?,
            None => {
                let bound = probe(&cfg)?;
                let sockets = bind_workers(&bound, workers)?;
                (bound, sockets)
            }
        };
        // Bound here or handed over: DF as this configuration allows.
        for sock in sockets.iter().filter_map(|s| s.udp4.as_ref()) {
            bind::udp4_dont_fragment(sock, &cfg);
        }
        let mut handing = Vec::new();
        for (worker, s) in sockets.iter().enumerate() {
            for (sock, udp) in [
                (&s.udp4, true),
                (&s.udp6, true),
                (&s.tcp4, false),
                (&s.tcp6, false),
            ] {
                if let Some(sock) = sock {
                    let fd = sock
                        .try_clone()
                        .map_err(|e| StartError::Runtime(e.to_string()))?;
                    handing.push(HandedSocket {
                        worker,
                        udp,
                        fd: fd.into(),
                    });
                }
            }
        }
        // Handed sockets are steered already: the program belongs to the
        // socket group.
        if handed.is_none() && workers > 1 && cfg.steer_udp {
            // UDP announces then land on their owner's socket; without the
            // program they are forwarded, which still works.
            for sock in [&sockets[0].udp4, &sockets[0].udp6].into_iter().flatten() {
                if let Err(e) = steer::attach(sock, workers) {
                    log(
                        &cfg,
                        LogLevel::Warnings,
                        format_args!("udp: no steering by info hash, workers will forward ({e})"),
                    );
                }
            }
        }
        // A process that takes over from a running tracker was started by it,
        // after it dropped its privileges: it runs as the user already.
        // SAFETY: geteuid has no arguments and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if handed.is_none() || root {
            privileges::drop_to(cfg.user.as_deref(), cfg.group.as_deref())
                .map_err(StartError::Config)?;
        }
        if let Some(path) = &cfg.state {
            state::check_writable(path).map_err(StartError::Config)?;
        }
        for w in cfg.interval_warnings() {
            log(&cfg, LogLevel::Warnings, format_args!("{w}"));
        }
        let cfg = Arc::new(cfg);
        let (state_tx, state_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            shutdown: Arc::new(AtomicBool::new(false)),
            generation: AtomicU64::new(0),
            access: Mutex::new(Access {
                lists: Arc::new(lists),
                hook: filter,
            }),
            tls: Mutex::new(tls),
            events: events.map(EventSink::new),
            state: cfg.state.is_some().then_some(state_tx),
            beats: Arc::new(watchdog::Heartbeats::new(workers)),
            history: Arc::new(history::History::new(workers)),
            per_address: Arc::new(per_address::PerAddress::new(
                cfg.limits.max_connections_per_ip,
            )),
            full_scrapes: Default::default(),
        });

        let mut control = Vec::with_capacity(workers);
        // A process that takes over goes on with the old one's connection
        // ids and clock: the ids its clients hold stay good, and the swarms'
        // times mean what they meant.
        let (conn_key, started) = match &handed {
            Some(h) => (
                h.conn_key,
                Instant::now()
                    .checked_sub(h.uptime)
                    .unwrap_or_else(Instant::now),
            ),
            None => (random_bytes(), Instant::now()),
        };
        let conn_ids = ConnectionIds::new(conn_key);
        let requests = MeshBuilder::full(workers, mesh::CHANNEL_SIZE);
        let replies = MeshBuilder::full(workers, mesh::CHANNEL_SIZE);
        let cores = if cfg.pin_workers {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(workers);
        let mut handles = Vec::with_capacity(workers);
        for (id, sockets) in sockets.into_iter().enumerate() {
            let (control_tx, control_rx) = crossbeam_channel::unbounded();
            control.push(control_tx);
            let placement = match cores.get(id % cores.len().max(1)) {
                Some(core) => Placement::Fixed(core.id),
                None => Placement::Unbound,
            };
            let start = start::Start {
                id,
                workers,
                cfg: cfg.clone(),
                sockets,
                requests: requests.clone(),
                replies: replies.clone(),
                shared: shared.clone(),
                control: control_rx,
                restore: restored.source.clone(),
                restore_torrents: restored.torrents[id],
                restore_age: restored.age,
                conn_ids: conn_ids.clone(),
                started,
                seed: u64::from_le_bytes(random_bytes()),
                ready: ready_tx.clone(),
            };
            let handle = LocalExecutorBuilder::new(placement)
                .name(&format!("tracker-{id}"))
                .io_memory(IO_MEMORY)
                .spawn(move || start::run(start))
                .map_err(|e| StartError::Worker(e.to_string()))?;
            handles.push(handle);
        }
        drop(ready_tx);
        if let Err(e) = wait_ready(&cfg, &shared.beats, &ready_rx, workers) {
            shared.shutdown.store(true, Ordering::Relaxed);
            return Err(e);
        }
        let watchdog = watchdog::start(
            cfg.clone(),
            shared.beats.clone(),
            shared.history.clone(),
            shared.shutdown.clone(),
        );
        let pick = |p: Proto| {
            bound
                .endpoints
                .iter()
                .filter(|e| e.0 == p)
                .map(|e| e.1)
                .collect()
        };
        if let (true, Some(state::Source::File(path))) = (restored.damaged, &restored.source) {
            state::keep_aside(&cfg, path);
        }
        let saver = cfg
            .state
            .is_some()
            .then(|| state::Saver::start(cfg.clone(), control.clone(), state_rx));
        Ok(Server {
            handles,
            watchdog,
            shared,
            cfg,
            control,
            saver,
            sockets: handing,
            conn_key,
            started,
            port: bound.port,
            http: pick(Proto::Tcp),
            udp: pick(Proto::Udp),
        })
    }

    /// The port every protocol listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Addresses the HTTP and WebSocket trackers listen on.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http
    }

    /// Addresses the UDP tracker listens on.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// A flag that, once set, makes the workers stop (for signal handlers).
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shared.shutdown.clone()
    }

    /// Whether the workers have been told to stop.
    pub fn is_stopping(&self) -> bool {
        self.shared.shutdown.load(Ordering::Relaxed)
    }

    /// Reads the allow and deny lists and the TLS certificate and key again
    /// (what SIGHUP does). On any error nothing changes. Returns once every
    /// worker has applied them (each does on its next tick, within 250 ms);
    /// a worker that has not after 5 s is logged, and applies them when it
    /// runs again. Swarms are left as they are.
    pub fn reload(&self) -> Result<(), String> {
        let (lists, tls) = load_files(&self.cfg)?;
        self.shared
            .access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lists = Arc::new(lists);
        *self.shared.tls.lock().unwrap_or_else(|e| e.into_inner()) = tls;
        let g = self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let beats = &self.shared.beats;
        let started = Instant::now();
        loop {
            let behind: Vec<usize> = (0..beats.workers())
                .filter(|&i| beats.applied(i) < g)
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= RELOAD_WAIT {
                log(
                    &self.cfg,
                    LogLevel::Errors,
                    format_args!(
                        "reload: worker {behind:?} has not applied it after {} s; it will when it runs again",
                        RELOAD_WAIT.as_secs()
                    ),
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What each worker's heartbeat says: whether it is stalled, and how
    /// long since it last beat. Answers even when a worker is stuck.
    pub fn health(&self) -> Vec<watchdog::WorkerHealth> {
        self.shared.beats.health()
    }

    /// Asks every worker and gathers the answers (`None` if one is gone).
    fn ask<T: Send + 'static>(
        &self,
        make: impl Fn(crossbeam_channel::Sender<T>) -> mesh::Control,
    ) -> Option<Vec<T>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        for c in &self.control {
            c.send(make(tx.clone())).ok()?;
        }
        drop(tx);
        (0..self.control.len())
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).ok())
            .collect()
    }

    /// Every torrent with its counts and peers, sorted by info hash: the
    /// reference's `server.torrents`. This walks every peer of every worker,
    /// so it is for tools and tests, not for a tight loop.
    pub fn torrents(&self) -> Vec<TorrentInfo> {
        let mut all: Vec<TorrentInfo> = self
            .ask(mesh::Control::Torrents)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        all.sort_unstable_by_key(|t| t.info_hash);
        all
    }

    /// The figures of `/stats.json` and `/metrics`, merged over the workers.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::merge(
            self.ask::<WorkerStats>(mesh::Control::Stats)
                .unwrap_or_default(),
        );
        self.shared.add_figures(&mut s);
        s
    }

    /// The event stream ([`ServerBuilder::events`]): a receiver of every
    /// announce. Clones share one queue.
    pub fn events(&self) -> Option<crossbeam_channel::Receiver<ServerEvent>> {
        self.shared.events.as_ref().map(|e| e.rx.clone())
    }

    /// Events dropped because the event stream was full.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events.as_ref().map_or(0, |e| e.dropped())
    }

    /// Waits until the workers stop (after [`Server::shutdown_flag`] is
    /// set), then writes the state file when there is one. An error says
    /// why the swarms were not saved.
    pub fn wait(mut self) -> Result<(), String> {
        for h in std::mem::take(&mut self.handles) {
            let _ = h.join();
        }
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        match self.saver.take() {
            Some(saver) => saver.finish(),
            None => Ok(()),
        }
    }

    /// Stops the workers and waits for them (and the last state save).
    pub fn shutdown(self) -> Result<(), String> {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.wait()
    }
}
