//! The runtime, and the only code that knows glommio: one `LocalExecutor`
//! per core, each with its own `SO_REUSEPORT` sockets and shard.

pub mod access;
mod dispatch;
pub mod events;
mod http;
pub mod logging;
mod mesh;
mod pace;
mod privileges;
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
use events::{EventSink, ServerEvent};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use shared::Shared;
use socket2::{Domain, Protocol, Socket, Type};
use start::Sockets;
use stats::{Stats, WorkerStats};
use std::fmt;
use std::io;
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

/// Allows or forbids transparent huge pages for the whole process
/// (`PR_SET_THP_DISABLE`). mimalloc asks for them (`MADV_HUGEPAGE`) on its
/// arenas, and then a 2 MiB page is resident as soon as one byte of it is
/// touched: under the default UDP load that was 90 MiB resident against
/// 70 MiB without, at the same responses per second (see tuning.md). The
/// `bittorrent-tracker` command forbids them unless `huge_pages` is set;
/// `Server::start` leaves the process's setting alone.
pub fn allow_huge_pages(on: bool) -> io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(!on), 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) use logging::log;

/// Why the server did not start. Each says what to do about it.
#[derive(Debug)]
pub enum StartError {
    /// The port is taken (by this tracker or another program).
    PortInUse {
        proto: &'static str,
        addr: SocketAddr,
    },
    /// Binding failed otherwise.
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        error: io::Error,
    },
    /// No io_uring executor could be made.
    Runtime(String),
    /// A worker did not come up.
    Worker(String),
    /// The configuration cannot work, or a file it names cannot be used
    /// (allow or deny list, TLS certificate or key, state file).
    Config(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::PortInUse { proto, addr } => write!(
                f,
                "cannot listen on {addr} ({proto}): the port is in use; stop what holds it or pick another with -p"
            ),
            StartError::Bind { proto, addr, error } => {
                write!(f, "cannot listen on {addr} ({proto}): {error}")
            }
            StartError::Runtime(e) => write!(
                f,
                "cannot start an io_uring executor ({e}): this needs Linux 5.8 or later with io_uring allowed \
                 (sysctl kernel.io_uring_disabled=0; containers: a seccomp profile that permits io_uring) and, \
                 before Linux 5.12, a locked-memory limit of 16 MiB or more per worker (ulimit -l, systemd \
                 LimitMEMLOCK); see tuning.md"
            ),
            StartError::Worker(e) => write!(f, "a worker failed to start: {e}"),
            StartError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

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

    /// Starts the server as configured.
    pub fn start(self) -> Result<Server, StartError> {
        Server::launch(self)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

fn socket(addr: SocketAddr, proto: Proto, reuse_port: bool) -> io::Result<Socket> {
    let (ty, p) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(p))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    match proto {
        Proto::Tcp => s.set_reuse_address(true)?,
        Proto::Udp => {
            // Best effort: the kernel caps these at net.core.{r,w}mem_max (tuning.md).
            let _ = s.set_recv_buffer_size(8 << 20);
            let _ = s.set_send_buffer_size(8 << 20);
        }
    }
    s.bind(&addr.into())?;
    if proto == Proto::Tcp {
        s.listen(4096)?;
    }
    Ok(s)
}

fn is_no_ipv6(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(97 /* EAFNOSUPPORT */)
}

struct Bound {
    port: u16,
    endpoints: Vec<(Proto, SocketAddr)>,
}

/// Settles the port and the endpoints: each is bound once without
/// `SO_REUSEPORT`, so that a port another process (or another copy of this
/// tracker) holds is an error instead of a silently shared port.
fn probe(cfg: &ServerConfig) -> Result<Bound, StartError> {
    let mut ips: Vec<IpAddr> = Vec::new();
    ips.extend(cfg.listen_v4.map(IpAddr::V4));
    ips.extend(cfg.listen_v6.map(IpAddr::V6));
    let mut protos = Vec::new();
    if cfg.http || cfg.ws {
        protos.push(Proto::Tcp);
    }
    if cfg.udp {
        protos.push(Proto::Udp);
    }
    let tries = if cfg.port == 0 { 32 } else { 1 };
    'attempt: for attempt in 0..tries {
        let mut port = cfg.port;
        let mut held = Vec::new();
        let mut endpoints = Vec::new();
        for &ip in &ips {
            for &proto in &protos {
                let addr = SocketAddr::new(ip, port);
                match socket(addr, proto, false) {
                    Ok(s) => {
                        if port == 0 {
                            port = s
                                .local_addr()
                                .ok()
                                .and_then(|a| a.as_socket())
                                .map_or(0, |a| a.port());
                        }
                        held.push(s);
                        endpoints.push((proto, SocketAddr::new(ip, port)));
                    }
                    Err(e) if ip.is_ipv6() && !cfg.require_v6 && is_no_ipv6(&e) => {
                        log(
                            cfg,
                            LogLevel::Warnings,
                            format_args!("no IPv6 on this host ({e}); serving IPv4 only"),
                        );
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        if cfg.port == 0 && attempt + 1 < tries {
                            continue 'attempt;
                        }
                        return Err(StartError::PortInUse {
                            proto: proto.name(),
                            addr,
                        });
                    }
                    Err(error) => {
                        return Err(StartError::Bind {
                            proto: proto.name(),
                            addr,
                            error,
                        })
                    }
                }
            }
        }
        if endpoints.is_empty() {
            break;
        }
        drop(held);
        return Ok(Bound { port, endpoints });
    }
    Err(StartError::Worker("no endpoint could be bound".into()))
}

fn bind_workers(bound: &Bound, workers: usize) -> Result<Vec<Sockets>, StartError> {
    (0..workers)
        .map(|_| {
            let mut s = Sockets::default();
            for &(proto, addr) in &bound.endpoints {
                let sock = socket(addr, proto, true).map_err(|error| match error.kind() {
                    io::ErrorKind::AddrInUse => StartError::PortInUse {
                        proto: proto.name(),
                        addr,
                    },
                    _ => StartError::Bind {
                        proto: proto.name(),
                        addr,
                        error,
                    },
                })?;
                let slot = match (proto, addr.is_ipv6()) {
                    (Proto::Udp, false) => &mut s.udp4,
                    (Proto::Udp, true) => &mut s.udp6,
                    (Proto::Tcp, false) => &mut s.tcp4,
                    (Proto::Tcp, true) => &mut s.tcp6,
                };
                *slot = Some(sock);
            }
            Ok(s)
        })
        .collect()
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
    ready: &crossbeam_channel::Receiver<usize>,
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
            Ok(id) => {
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
        } = b;
        cfg.check().map_err(|e| StartError::Config(e.to_string()))?;
        let (lists, tls) = load_files(&cfg).map_err(StartError::Config)?;
        let restored = state::load(&cfg, cfg.workers.max(1)).map_err(StartError::Config)?;
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
        let bound = probe(&cfg)?;
        let workers = cfg.workers.max(1);
        let sockets = bind_workers(&bound, workers)?;
        if workers > 1 && cfg.steer_udp {
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
        privileges::drop_to(cfg.user.as_deref(), cfg.group.as_deref())
            .map_err(StartError::Config)?;
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
        });

        let mut control = Vec::with_capacity(workers);
        let conn_ids = ConnectionIds::new(random_bytes());
        let started = Instant::now();
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
                restore: restored.path.clone(),
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
        let watchdog = watchdog::start(cfg.clone(), shared.beats.clone(), shared.shutdown.clone());
        let pick = |p: Proto| {
            bound
                .endpoints
                .iter()
                .filter(|e| e.0 == p)
                .map(|e| e.1)
                .collect()
        };
        if let (true, Some(path)) = (restored.damaged, &restored.path) {
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
        s.health = self.health();
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
