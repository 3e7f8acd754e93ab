//! The runtime, and the only code that knows glommio: one `LocalExecutor`
//! per core, each with its own `SO_REUSEPORT` sockets and shard.

mod http;
mod mesh;
mod udp;
mod worker;
mod ws;

use crate::config::{LogLevel, ServerConfig};
use crate::protocol::udp::ConnectionIds;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use socket2::{Domain, Protocol, Socket, Type};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::Sockets;

/// The pure parts of the request paths, shard in, reply bytes out: what the
/// workers run for requests they own, exposed for benchmarks.
pub use http::announce_reply as http_announce_reply;
pub use udp::announce_reply as udp_announce_reply;

pub(crate) fn log(cfg: &ServerConfig, level: LogLevel, msg: fmt::Arguments<'_>) {
    if cfg.log >= level {
        eprintln!("{msg}");
    }
}

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
        }
    }
}

impl std::error::Error for StartError {}

/// A running tracker.
pub struct Server {
    handles: Vec<ExecutorJoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
    port: u16,
    http: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
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
                            LogLevel::Info,
                            format_args!("warning: no IPv6 on this host ({e}); serving IPv4 only"),
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

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    b
}

impl Server {
    /// Binds every socket, starts one pinned executor per worker, and returns
    /// once all of them serve.
    pub fn start(cfg: ServerConfig) -> Result<Server, StartError> {
        // Fail early, on this thread, with a clear reason when io_uring is unusable.
        drop(
            LocalExecutorBuilder::new(Placement::Unbound)
                .make()
                .map_err(|e| StartError::Runtime(e.to_string()))?,
        );
        let bound = probe(&cfg)?;
        let workers = cfg.workers.max(1);
        let sockets = bind_workers(&bound, workers)?;
        let cfg = Arc::new(cfg);
        let shutdown = Arc::new(AtomicBool::new(false));
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
            let placement = match cores.get(id % cores.len().max(1)) {
                Some(core) => Placement::Fixed(core.id),
                None => Placement::Unbound,
            };
            let start = worker::Start {
                id,
                workers,
                cfg: cfg.clone(),
                sockets,
                requests: requests.clone(),
                replies: replies.clone(),
                shutdown: shutdown.clone(),
                conn_ids: conn_ids.clone(),
                started,
                seed: u64::from_le_bytes(random_bytes()),
                ready: ready_tx.clone(),
            };
            let handle = LocalExecutorBuilder::new(placement)
                .name(&format!("tracker-{id}"))
                .spawn(move || worker::run(start))
                .map_err(|e| StartError::Worker(e.to_string()))?;
            handles.push(handle);
        }
        drop(ready_tx);
        for _ in 0..workers {
            if let Err(e) = ready_rx.recv_timeout(Duration::from_secs(30)) {
                shutdown.store(true, Ordering::Relaxed);
                return Err(StartError::Worker(format!("not ready: {e}")));
            }
        }
        let pick = |p: Proto| {
            bound
                .endpoints
                .iter()
                .filter(|e| e.0 == p)
                .map(|e| e.1)
                .collect()
        };
        Ok(Server {
            handles,
            shutdown,
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
        self.shutdown.clone()
    }

    /// Waits until the workers stop (after [`Server::shutdown_flag`] is set).
    pub fn wait(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(self) {
        self.shutdown.store(true, Ordering::Relaxed);
        self.wait();
    }
}
