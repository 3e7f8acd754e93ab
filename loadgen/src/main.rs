//! `tracker-loadgen`: drives a BitTorrent tracker with a realistic workload and
//! reports what it answered, or compares several trackers side by side.

#![deny(clippy::undocumented_unsafe_blocks)]

mod compare;
mod floor;
mod http;
mod idle;
mod plot;
mod report;
mod udp;
mod workload;
mod ws;

use clap::{Args, Parser, Subcommand};
use report::{Live, Report, Stats};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Workload;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tracker-loadgen",
    version,
    about = "Load generator and side-by-side comparison for BitTorrent trackers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// UDP (BEP 15) load
    Udp(LoadOpts),
    /// HTTP load over keep-alive connections
    Http(LoadOpts),
    /// WebSocket (WebTorrent) load: announces with offers, answers to offers
    Ws(LoadOpts),
    /// Stateless responders (UDP, HTTP, WebSocket): the most this machine's kernel path can answer
    Floor(floor::FloorOpts),
    /// Print the workload's info hashes, 40 hex digits a line: an access list
    /// for trackers that serve only listed torrents (Debian's opentracker)
    Hashes {
        /// Torrents in the model, as for the load
        #[arg(long, default_value_t = 1_000_000)]
        torrents: u32,
    },
    /// Start trackers one after another, load each in alternating rounds, print one table
    Compare(compare::CompareOpts),
    /// Memory that idle HTTP or WebSocket connections cost a tracker: open
    /// many, one announce each, hold them, read its RSS before and after
    Idle(idle::IdleOpts),
}

/// How to load a tracker.
#[derive(Args, Clone, Debug)]
pub struct LoadOpts {
    /// Tracker address (UDP or HTTP port)
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub target: SocketAddr,
    /// Seconds to run
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Load threads
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the load threads to, e.g. 1 or 2,3
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Closed loop: requests in flight per thread (UDP)
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Open loop: requests per second in all (latency at a given load); without it, closed loop
    #[arg(long)]
    pub rate: Option<u64>,
    /// Milliseconds before an unanswered request counts as a timeout
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Source addresses per thread (127.x.y.z for a loopback IPv4 target), so SO_REUSEPORT spreads the load
    #[arg(long, default_value_t = 32)]
    pub sources: usize,
    /// HTTP and WebSocket: connections in all
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// WebSocket: offers in each announce
    #[arg(long, default_value_t = 5)]
    pub offers: usize,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// No live progress line
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub workload: Workload,
}

impl LoadOpts {
    /// How the load was driven, for the report.
    pub fn mode(&self, protocol: &str) -> String {
        let shape = if protocol != "udp" {
            format!("{} connections", self.connections)
        } else {
            format!("window {} per thread", self.window)
        };
        match self.rate {
            Some(r) => format!("open loop at {r}/s, {shape}"),
            None => format!("closed loop, {shape}"),
        }
    }

    /// The `i`-th source address of load thread `thread`: distinct loopback
    /// addresses for a loopback IPv4 target, the wildcard otherwise.
    pub fn source(&self, thread: usize, i: usize) -> SocketAddr {
        match self.target {
            SocketAddr::V4(t) if t.ip().is_loopback() => {
                let n = thread * self.sources.max(1) + i;
                SocketAddr::from((
                    [
                        127,
                        1 + (n / 64_000) as u8,
                        ((n / 250) % 256) as u8,
                        2 + (n % 250) as u8,
                    ],
                    0,
                ))
            }
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(t) if t.ip().is_loopback() => "[::1]:0".parse().unwrap(),
            SocketAddr::V6(_) => "[::]:0".parse().unwrap(),
        }
    }
}

impl LoadOpts {
    /// Starts a non-blocking TCP connection to the target from source address
    /// `source` of load thread `thread`, registered with `poll` under `token`
    /// for reading and writing. The connection completes later (writable).
    pub fn connect_tcp(
        &self,
        thread: usize,
        source: usize,
        poll: &mio::Poll,
        token: mio::Token,
    ) -> std::io::Result<mio::net::TcpStream> {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(self.target),
            socket2::Type::STREAM,
            None,
        )?;
        s.set_nonblocking(true)?;
        s.bind(&self.source(thread, source).into())?;
        let _ = s.set_nodelay(true);
        match s.connect(&self.target.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let mut stream = mio::net::TcpStream::from_std(s.into());
        poll.registry().register(
            &mut stream,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        Ok(stream)
    }
}

/// Pins the calling thread to one CPU.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays in bounds for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu < libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// A load engine: one thread's worth of load until the deadline.
pub type Engine = fn(&LoadOpts, usize, &Live, Instant) -> Result<Stats, String>;

/// Runs `engine` on every load thread, shows progress, and reports.
pub fn run(protocol: &str, engine: Engine, opts: &LoadOpts) -> Result<Report, String> {
    let threads = opts.threads.max(1);
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.duration.max(0.1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (opts, live) = (opts.clone(), lives[t].clone());
            std::thread::spawn(move || {
                if let Some(&cpu) = opts.cpus.get(t % opts.cpus.len().max(1)) {
                    pin(cpu);
                }
                engine(&opts, t, &live, deadline)
            })
        })
        .collect();
    let mut last = (0u64, start);
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if !opts.quiet && now.duration_since(last.1) >= Duration::from_secs(1) {
            let sum = |f: fn(&Live) -> &std::sync::atomic::AtomicU64| -> u64 {
                lives.iter().map(|l| f(l).load(Ordering::Relaxed)).sum()
            };
            let (sent, answered, bad) = (sum(|l| &l.sent), sum(|l| &l.answered), sum(|l| &l.bad));
            let rate = (answered - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
            eprintln!(
                "[{:>5.1} s] sent {sent}, answered {answered} ({rate:.0}/s), errors/invalid/timeouts {bad}",
                now.duration_since(start).as_secs_f64()
            );
            last = (answered, now);
        }
    }
    let mut total = Stats::new();
    for h in handles {
        total.merge(
            &h.join()
                .map_err(|_| "a load thread panicked".to_string())??,
        );
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Report::new(
        protocol,
        &opts.target.to_string(),
        opts.mode(protocol),
        secs,
        threads,
        &total,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Udp(o) => run("udp", udp::engine, &o).map(|r| show(&r, o.json)),
        Cmd::Http(o) => run("http", http::engine, &o).map(|r| show(&r, o.json)),
        Cmd::Ws(o) => run("ws", ws::engine, &o).map(|r| show(&r, o.json)),
        Cmd::Floor(o) => floor::run(&o),
        Cmd::Hashes { torrents } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            (0..torrents)
                .try_for_each(|t| writeln!(out, "{}", workload::hex(&workload::info_hash(t))))
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())
        }
        Cmd::Compare(o) => compare::run(&o),
        Cmd::Idle(o) => idle::run(&o),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn show(r: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(r).expect("a report serializes")
        );
    } else {
        r.print();
    }
}
