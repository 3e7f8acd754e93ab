//! Server configuration: its defaults, the optional TOML file, and the
//! command-line flags. Flags win over the file, the file over the defaults.

use clap::Parser;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// How much the server prints (to standard error, except the start-up lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing at all (`-s`).
    Silent,
    /// Errors only (`-q`).
    Errors,
    /// Errors and warnings.
    Warnings,
    /// Start-up lines, reloads, state saves (the default).
    Info,
    /// Also every refused connection and dropped client.
    Debug,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Silent => "silent",
            LogLevel::Errors => "error",
            LogLevel::Warnings => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "silent" => LogLevel::Silent,
            "error" => LogLevel::Errors,
            "warn" => LogLevel::Warnings,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => {
                return Err(format!(
                    "`{s}` is not a log level (silent, error, warn, info, debug)"
                ))
            }
        })
    }
}

/// Bounds on what clients can make the tracker hold or do. Each has a
/// default that suits a big public tracker; `[limits]` in the file sets them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open HTTP and WebSocket connections, all workers together; past it a
    /// new connection is closed at once.
    pub max_connections: usize,
    /// Torrents held, all workers together; past it announces for new
    /// torrents are refused (`tracker is full`), known ones go on.
    pub max_torrents: usize,
    /// Peers held, all workers together; past it new peers are refused,
    /// known ones go on.
    pub max_peers: usize,
    /// Largest HTTP request head (request line and headers), bytes: 431 past it.
    pub max_request_bytes: usize,
    /// Seconds a keep-alive HTTP connection may sit idle.
    pub idle_timeout: u32,
    /// Seconds a request may take to arrive whole once it has begun (slowloris).
    pub request_timeout: u32,
    /// Most `info_hash` values one scrape may name.
    pub max_scrape_hashes: usize,
    /// WebRTC offers remembered for their answers, all workers together.
    pub max_offers: usize,
    /// Messages waiting for one WebSocket connection; a client that reads
    /// slower is disconnected.
    pub ws_queue: usize,
    /// Largest WebSocket message, bytes: the connection closes with 1009.
    pub ws_max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_torrents: 20_000_000,
            max_peers: 100_000_000,
            max_request_bytes: 8 * 1024,
            idle_timeout: 30,
            request_timeout: 10,
            max_scrape_hashes: 256,
            max_offers: 1_000_000,
            ws_queue: 256,
            ws_max_message: 256 * 1024,
        }
    }
}

/// Everything a [`crate::Server`] needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// TCP and UDP port; 0 picks a free one (the same for every protocol).
    pub port: u16,
    pub http: bool,
    pub udp: bool,
    /// WebSocket (WebTorrent) tracker, on the HTTP port.
    pub ws: bool,
    /// IPv4 listen address; `None` serves no IPv4.
    pub listen_v4: Option<Ipv4Addr>,
    /// IPv6 listen address; `None` serves no IPv6.
    pub listen_v6: Option<Ipv6Addr>,
    /// When false, a host without IPv6 gets a warning and IPv4 only.
    pub require_v6: bool,
    /// Executors, one per core; each owns a shard of the info hashes.
    pub workers: usize,
    /// Pin each worker to its own allowed CPU.
    pub pin_workers: bool,
    /// With several workers, have the kernel deliver each UDP announce and
    /// scrape to the socket of the worker that owns its info hash.
    pub steer_udp: bool,
    /// Announce interval, seconds.
    pub interval: u32,
    /// `min interval` sent to HTTP clients, seconds (0: not sent).
    pub min_interval: u32,
    /// Seconds after its last announce that a peer is dropped.
    pub peer_ttl: u32,
    pub numwant_default: u32,
    pub numwant_max: u32,
    /// Take the HTTP client's address from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Answer `/scrape` without `info_hash` with every torrent.
    pub full_scrape: bool,
    /// Keep every peer's peer id, for non-compact HTTP replies.
    pub peer_ids: bool,
    /// Serve `/stats` and `/stats.json`.
    pub stats: bool,
    /// Serve `/metrics` (Prometheus).
    pub metrics: bool,
    /// Only these info hashes are tracked (one hex hash a line).
    pub allow: Option<PathBuf>,
    /// These info hashes are refused.
    pub deny: Option<PathBuf>,
    /// PEM certificate chain: the TCP port then speaks HTTPS and WSS too.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Swarms are saved here on shutdown and every `state_interval`, and
    /// restored at start.
    pub state: Option<PathBuf>,
    /// Seconds between state saves.
    pub state_interval: u32,
    pub limits: Limits,
    /// When started as root: the user to run as once the sockets are bound.
    pub user: Option<String>,
    /// The group to run as (default: the user's own).
    pub group: Option<String>,
    /// Torrents to make room for at start, over all workers: growing the
    /// torrent index later rebuilds it whole, a stall of milliseconds per
    /// million torrents.
    pub reserve_torrents: usize,
    /// Let the allocator back the heap with transparent huge pages. The
    /// `bittorrent-tracker` command turns them off for its process unless
    /// this is set (see `server::allow_huge_pages`; `Server::start` leaves
    /// the process-wide setting alone).
    pub huge_pages: bool,
    pub log: LogLevel,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: 8000,
            http: true,
            udp: true,
            ws: true,
            listen_v4: Some(Ipv4Addr::UNSPECIFIED),
            listen_v6: Some(Ipv6Addr::UNSPECIFIED),
            require_v6: false,
            workers: default_workers(),
            pin_workers: true,
            steer_udp: true,
            interval: 600,
            min_interval: 300,
            peer_ttl: 1200,
            numwant_default: 50,
            numwant_max: 82,
            trust_proxy: false,
            full_scrape: true,
            peer_ids: false,
            stats: true,
            metrics: true,
            allow: None,
            deny: None,
            tls_cert: None,
            tls_key: None,
            state: None,
            state_interval: 300,
            limits: Limits::default(),
            user: None,
            group: None,
            reserve_torrents: 0,
            huge_pages: false,
            log: LogLevel::Info,
        }
    }
}

/// One worker per CPU this process may run on.
pub fn default_workers() -> usize {
    core_affinity::get_core_ids()
        .map(|c| c.len())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The `bittorrent-tracker` command line.
#[derive(Parser, Debug)]
#[command(
    name = "bittorrent-tracker",
    version,
    about = "BitTorrent tracker: HTTP, UDP and WebSocket on one port, IPv4 and IPv6, one io_uring executor per core",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Port for every protocol (0: any free port) [default: 8000]
    #[arg(short, long)]
    pub port: Option<u16>,
    /// Enable the HTTP tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub http: bool,
    /// Enable the UDP tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub udp: bool,
    /// Enable the WebSocket tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub ws: bool,
    /// Announce interval in milliseconds [default: 600000]
    #[arg(long, value_name = "MS")]
    pub interval: Option<u64>,
    /// Take the client address from X-Forwarded-For (behind a reverse proxy)
    #[arg(long)]
    pub trust_proxy: bool,
    /// Print errors only
    #[arg(short, long)]
    pub quiet: bool,
    /// Print nothing
    #[arg(short, long)]
    pub silent: bool,
    /// Print the version and exit
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// TOML configuration file (see --print-config); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the configuration these flags and file give, as TOML, and exit
    #[arg(long)]
    pub print_config: bool,
    /// Track only the info hashes in FILE (40 hex digits a line, # comments); reloaded on SIGHUP
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Refuse the info hashes in FILE (same format); reloaded on SIGHUP
    #[arg(long, value_name = "FILE")]
    pub deny: Option<PathBuf>,
    /// PEM certificate chain: the TCP port also speaks HTTPS and WSS; reloaded on SIGHUP
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Save swarms to FILE on shutdown and every --state-interval, restore them at start
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Seconds between state saves [default: 300]
    #[arg(long, value_name = "SECS")]
    pub state_interval: Option<u32>,
    /// Do not serve /stats and /stats.json
    #[arg(long)]
    pub no_stats: bool,
    /// Do not serve /metrics
    #[arg(long)]
    pub no_metrics: bool,
    /// silent, error, warn, info or debug [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Worker executors, one per core [default: every CPU this process may use]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Do not pin workers to CPUs
    #[arg(long)]
    pub no_pin: bool,
    /// Do not steer UDP datagrams to their info hash's worker in the kernel (workers forward instead)
    #[arg(long)]
    pub no_steer: bool,
    /// IPv4 address to listen on, or `off` [default: 0.0.0.0]
    #[arg(long, value_name = "ADDR|off")]
    pub listen_v4: Option<String>,
    /// IPv6 address to listen on, or `off` [default: ::, skipped with a warning where the host has no IPv6]
    #[arg(long, value_name = "ADDR|off")]
    pub listen_v6: Option<String>,
    /// Peers returned when a client does not say [default: 50]
    #[arg(long, value_name = "N")]
    pub numwant: Option<u32>,
    /// Most peers returned, whatever a client asks [default: 82]
    #[arg(long, value_name = "N")]
    pub max_numwant: Option<u32>,
    /// Refuse /scrape without info_hash (full scrape)
    #[arg(long)]
    pub no_full_scrape: bool,
    /// Keep peers' peer ids, so that non-compact HTTP replies carry them
    /// (20 bytes more a peer; without it they list address and port)
    #[arg(long)]
    pub peer_ids: bool,
    /// Torrents to make room for at start (all workers together), so the
    /// torrent index never stalls a worker to grow while it serves [default: 0]
    #[arg(long, value_name = "N")]
    pub reserve_torrents: Option<usize>,
    /// Back the heap with transparent huge pages: fewer TLB misses, more
    /// resident memory (see tuning.md)
    #[arg(long)]
    pub huge_pages: bool,
    /// When started as root: bind, then run as this user (name or uid)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// When started as root: run as this group [default: the user's own]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Open HTTP and WebSocket connections at most [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Torrents held at most; new ones are refused past it [default: 20000000]
    #[arg(long, value_name = "N")]
    pub max_torrents: Option<usize>,
    /// Peers held at most; new ones are refused past it [default: 100000000]
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Client commands: ask a tracker instead of being one.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Announce to a tracker and print its reply
    Announce(crate::client::cli::AnnounceArgs),
    /// Scrape a tracker for one or more info hashes
    Scrape(crate::client::cli::ScrapeArgs),
}

/// The TOML file: every key optional, unknown keys refused by name.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    http: Option<bool>,
    udp: Option<bool>,
    ws: Option<bool>,
    listen_v4: Option<String>,
    listen_v6: Option<String>,
    workers: Option<usize>,
    pin_workers: Option<bool>,
    steer_udp: Option<bool>,
    interval: Option<u32>,
    min_interval: Option<u32>,
    peer_ttl: Option<u32>,
    numwant: Option<u32>,
    max_numwant: Option<u32>,
    trust_proxy: Option<bool>,
    full_scrape: Option<bool>,
    peer_ids: Option<bool>,
    stats: Option<bool>,
    metrics: Option<bool>,
    allow: Option<PathBuf>,
    deny: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    state: Option<PathBuf>,
    state_interval: Option<u32>,
    reserve_torrents: Option<usize>,
    huge_pages: Option<bool>,
    log: Option<String>,
    user: Option<String>,
    group: Option<String>,
    limits: Option<FileLimits>,
}

/// `[limits]` in the file.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_connections: Option<usize>,
    max_torrents: Option<usize>,
    max_peers: Option<usize>,
    max_request_bytes: Option<usize>,
    idle_timeout: Option<u32>,
    request_timeout: Option<u32>,
    max_scrape_hashes: Option<usize>,
    max_offers: Option<usize>,
    ws_queue: Option<usize>,
    ws_max_message: Option<usize>,
}

impl FileLimits {
    fn apply(self, l: &mut Limits) {
        let set = |dst: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *dst = v
            }
        };
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.max_torrents, self.max_torrents);
        set(&mut l.max_peers, self.max_peers);
        set(&mut l.max_request_bytes, self.max_request_bytes);
        set(&mut l.max_scrape_hashes, self.max_scrape_hashes);
        set(&mut l.max_offers, self.max_offers);
        set(&mut l.ws_queue, self.ws_queue);
        set(&mut l.ws_max_message, self.ws_max_message);
        if let Some(v) = self.idle_timeout {
            l.idle_timeout = v;
        }
        if let Some(v) = self.request_timeout {
            l.request_timeout = v;
        }
    }
}

fn parse_listen<T: std::str::FromStr>(s: &str, key: &str) -> Result<Option<T>, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{key}: `{s}` is not an address (or `off`)"))
}

/// Reads a TOML configuration file. Relative paths in it are taken from the
/// file's directory.
fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut f = parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut f.allow,
        &mut f.deny,
        &mut f.tls_cert,
        &mut f.tls_key,
        &mut f.state,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    Ok(f)
}

/// The configuration a TOML text gives over the defaults (what `--config`
/// reads, without its paths made relative to the file).
pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
    let mut c = ServerConfig::default();
    parse_file(text)?.apply(&mut c)?;
    c.check()?;
    Ok(c)
}

fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

impl FileConfig {
    /// Sets what the file says on `c`. The interval also moves `min_interval`
    /// and `peer_ttl` unless the file names them.
    fn apply(self, c: &mut ServerConfig) -> Result<(), String> {
        let set = |dst: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *dst = v
            }
        };
        if let Some(v) = self.port {
            c.port = v;
        }
        set(&mut c.http, self.http);
        set(&mut c.udp, self.udp);
        set(&mut c.ws, self.ws);
        if let Some(v) = &self.listen_v4 {
            c.listen_v4 = parse_listen(v, "listen_v4 (--listen-v4)")?;
        }
        if let Some(v) = &self.listen_v6 {
            c.listen_v6 = parse_listen(v, "listen_v6 (--listen-v6)")?;
            c.require_v6 = c.listen_v6.is_some();
        }
        match self.workers {
            Some(0) | None => {}
            Some(n) => c.workers = n,
        }
        set(&mut c.pin_workers, self.pin_workers);
        set(&mut c.steer_udp, self.steer_udp);
        if let Some(v) = self.interval {
            c.set_interval(v);
        }
        if let Some(v) = self.min_interval {
            c.min_interval = v;
        }
        if let Some(v) = self.peer_ttl {
            c.peer_ttl = v;
        }
        if let Some(v) = self.numwant {
            c.numwant_default = v;
        }
        if let Some(v) = self.max_numwant {
            c.numwant_max = v;
        }
        set(&mut c.trust_proxy, self.trust_proxy);
        set(&mut c.full_scrape, self.full_scrape);
        set(&mut c.peer_ids, self.peer_ids);
        set(&mut c.stats, self.stats);
        set(&mut c.metrics, self.metrics);
        for (dst, v) in [
            (&mut c.allow, self.allow),
            (&mut c.deny, self.deny),
            (&mut c.tls_cert, self.tls_cert),
            (&mut c.tls_key, self.tls_key),
            (&mut c.state, self.state),
        ] {
            if v.is_some() {
                *dst = v;
            }
        }
        if let Some(v) = self.state_interval {
            c.state_interval = v;
        }
        set(&mut c.huge_pages, self.huge_pages);
        if let Some(v) = self.reserve_torrents {
            c.reserve_torrents = v;
        }
        if let Some(v) = &self.log {
            c.log = v.parse().map_err(|e| format!("log: {e}"))?;
        }
        if let Some(l) = self.limits {
            l.apply(&mut c.limits);
        }
        if self.user.is_some() {
            c.user = self.user;
        }
        if self.group.is_some() {
            c.group = self.group;
        }
        Ok(())
    }
}

/// The shortest peer time-to-live that follows from the interval:
/// rtorrent re-announces no sooner than every 600 s and libtorrent no
/// sooner than every 300 s, whatever interval the tracker asks for, so a
/// shorter life would drop them from their swarms between announces. Two
/// minutes over rtorrent's 600 s leave room for a late announce.
pub const PEER_TTL_FLOOR: u32 = 720;

/// Intervals outside these bounds (seconds) are warned about at start: most
/// likely a unit mistaken (`--interval` takes milliseconds, the file's
/// `interval` seconds).
pub const INTERVAL_SANE: std::ops::RangeInclusive<u32> = 10..=86_400;

/// `secs` in the largest unit that fits: "45 s", "10 min", "6.9 days".
fn human_duration(secs: u32) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{:.0} min", secs as f64 / 60.0),
        7200..=172_799 => format!("{:.1} hours", secs as f64 / 3600.0),
        _ => format!("{:.1} days", secs as f64 / 86_400.0),
    }
}

impl ServerConfig {
    /// Sets the announce interval (seconds) and what follows from it: `min
    /// interval` half of it, peers kept for two intervals and at least
    /// [`PEER_TTL_FLOOR`].
    pub fn set_interval(&mut self, secs: u32) {
        self.interval = secs.max(1);
        self.min_interval = self.interval / 2;
        self.peer_ttl = self.interval.saturating_mul(2).max(PEER_TTL_FLOOR);
    }

    /// What is odd about the timing settings, for a warning at start: an
    /// interval whose unit was likely mistaken, or one shorter than real
    /// clients re-announce.
    pub fn interval_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let i = self.interval;
        if !INTERVAL_SANE.contains(&i) {
            w.push(format!(
                "the announce interval is {i} s ({}): clients re-announce that often and peers are dropped after {} s. \
                 --interval takes milliseconds (600000 = 10 minutes); `interval` in the configuration file takes seconds (600 = 10 minutes)",
                human_duration(i),
                self.peer_ttl
            ));
        }
        if i < 300 {
            w.push(format!(
                "the announce interval is {i} s: libtorrent-based clients (qBittorrent, Deluge) re-announce no sooner than every 300 s \
                 and rtorrent no sooner than every 600 s; peers are kept {} s{}",
                self.peer_ttl,
                if self.peer_ttl <= 600 {
                    ", so those clients drop out of their swarms between announces (raise peer_ttl above 600)"
                } else {
                    ", so they stay in their swarms"
                }
            ));
        }
        w
    }

    /// The same settings as a TOML file that `--config` reads, with every
    /// key documented.
    pub fn to_toml(&self) -> String {
        let mut t = String::from("# bittorrent-tracker configuration (bittorrent-tracker --config FILE).\n# Command-line flags override what is set here.\n\n");
        let mut key = |doc: &str, line: String| {
            for d in doc.lines() {
                let _ = writeln!(t, "# {d}");
            }
            let _ = writeln!(t, "{line}\n");
        };
        let path = |name: &str, p: &Option<PathBuf>, example: &str| match p {
            Some(p) => format!("{name} = {}", toml_str(&p.display().to_string())),
            None => format!("# {name} = \"{example}\""),
        };
        let addr = |a: Option<String>| a.unwrap_or_else(|| "off".into());
        key(
            "Port of every protocol (0: any free port).",
            format!("port = {}", self.port),
        );
        key(
            "Which trackers run: HTTP, UDP, WebSocket (WebTorrent, on the HTTP port).",
            format!("http = {}\nudp = {}\nws = {}", self.http, self.udp, self.ws),
        );
        key(
            "Listen addresses, or \"off\".",
            format!(
                "listen_v4 = {}\nlisten_v6 = {}",
                toml_str(&addr(self.listen_v4.map(|a| a.to_string()))),
                toml_str(&addr(self.listen_v6.map(|a| a.to_string())))
            ),
        );
        let workers = if self.workers == default_workers() {
            0
        } else {
            self.workers
        };
        key(
            &format!(
                "Worker executors, one per core (0: one per CPU, here {}).",
                default_workers()
            ),
            format!("workers = {workers}\npin_workers = {}", self.pin_workers),
        );
        key(
            "With several workers, the kernel hands each UDP announce and scrape to\nthe socket of the worker that owns its info hash (false: workers forward).",
            format!("steer_udp = {}", self.steer_udp),
        );
        key(
            "Announce interval, in seconds (the --interval flag takes milliseconds,\nlike the reference tracker's).",
            format!("interval = {}", self.interval),
        );
        key(
            "`min interval` told to HTTP clients, seconds (0: not sent).",
            format!("min_interval = {}", self.min_interval),
        );
        key(
            "Seconds without an announce after which a peer is dropped (by default twice\nthe interval and at least 720: rtorrent re-announces no sooner than every 600 s).",
            format!("peer_ttl = {}", self.peer_ttl),
        );
        key(
            "Peers returned when a client does not say, and at most.",
            format!(
                "numwant = {}\nmax_numwant = {}",
                self.numwant_default, self.numwant_max
            ),
        );
        key(
            "Take the client's address from X-Forwarded-For (only behind a proxy you run).",
            format!("trust_proxy = {}", self.trust_proxy),
        );
        key(
            "Answer /scrape without info_hash with every torrent.",
            format!("full_scrape = {}", self.full_scrape),
        );
        key(
            "Keep each peer's peer id, for non-compact HTTP replies (compact=0).\nIt costs 20 bytes a peer; without it those replies list address and port only.",
            format!("peer_ids = {}", self.peer_ids),
        );
        key(
            "Serve /stats and /stats.json, and /metrics (Prometheus).",
            format!("stats = {}\nmetrics = {}", self.stats, self.metrics),
        );
        key(
            "Allow and deny lists: 40 hex digits a line, # starts a comment.\nReloaded on SIGHUP; existing swarms are left as they are.",
            format!(
                "{}\n{}",
                path("allow", &self.allow, "/etc/bittorrent-tracker/allow.txt"),
                path("deny", &self.deny, "/etc/bittorrent-tracker/deny.txt")
            ),
        );
        key(
            "PEM certificate chain and key: the TCP port then serves HTTPS and WSS as\nwell as plain HTTP and WS. Reloaded on SIGHUP.",
            format!(
                "{}\n{}",
                path("tls_cert", &self.tls_cert, "/etc/bittorrent-tracker/cert.pem"),
                path("tls_key", &self.tls_key, "/etc/bittorrent-tracker/key.pem")
            ),
        );
        key(
            "Swarms and completed counts are saved here on shutdown and every\nstate_interval seconds, and restored at start.",
            format!(
                "{}\nstate_interval = {}",
                path("state", &self.state, "/var/lib/bittorrent-tracker/state"),
                self.state_interval
            ),
        );
        key(
            "Torrents to make room for at start (all workers together), so the torrent\nindex never stalls a worker to grow.",
            format!("reserve_torrents = {}", self.reserve_torrents),
        );
        key(
            "Back the heap with transparent huge pages: fewer TLB misses, about a\nquarter more resident memory (false: the process asks the kernel for none).",
            format!("huge_pages = {}", self.huge_pages),
        );
        key(
            "silent, error, warn, info or debug.",
            format!("log = \"{}\"", self.log.name()),
        );
        let name = |k: &str, v: &Option<String>, example: &str| match v {
            Some(v) => format!("{k} = {}", toml_str(v)),
            None => format!("# {k} = \"{example}\""),
        };
        key(
            "When started as root: bind the port, then run as this user and group.",
            format!(
                "{}\n{}",
                name("user", &self.user, "bittorrent-tracker"),
                name("group", &self.group, "bittorrent-tracker")
            ),
        );
        let l = &self.limits;
        t.push_str("# What clients can make the tracker hold or do.\n[limits]\n\n");
        let mut key = |doc: &str, line: String| {
            let _ = writeln!(t, "# {doc}\n{line}\n");
        };
        key(
            "Open HTTP and WebSocket connections, all workers together; more are closed at once.",
            format!("max_connections = {}", l.max_connections),
        );
        key(
            "Torrents held; past it announces for new torrents get \"tracker is full\".",
            format!("max_torrents = {}", l.max_torrents),
        );
        key(
            "Peers held; past it new peers get \"tracker is full\" (known ones go on).",
            format!("max_peers = {}", l.max_peers),
        );
        key(
            "Largest HTTP request line and headers, bytes (431 past it).",
            format!("max_request_bytes = {}", l.max_request_bytes),
        );
        key(
            "Seconds an idle keep-alive HTTP connection is kept.",
            format!("idle_timeout = {}", l.idle_timeout),
        );
        key(
            "Seconds a request may take to arrive whole (slow clients are cut off).",
            format!("request_timeout = {}", l.request_timeout),
        );
        key(
            "Most info hashes one scrape may name.",
            format!("max_scrape_hashes = {}", l.max_scrape_hashes),
        );
        key(
            "WebRTC offers remembered for their answers.",
            format!("max_offers = {}", l.max_offers),
        );
        key(
            "Messages queued for one WebSocket client; a slower reader is disconnected.",
            format!("ws_queue = {}", l.ws_queue),
        );
        key(
            "Largest WebSocket message, bytes (the connection closes with 1009).",
            format!("ws_max_message = {}", l.ws_max_message),
        );
        t
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Cli {
    /// What the flags set, in the file's terms; what they leave out stays `None`.
    fn overlay(self) -> Result<FileConfig, String> {
        let any = self.http || self.udp || self.ws;
        let flag = |on: bool, v: bool| on.then_some(v);
        if self.workers == Some(0) {
            return Err("--workers: must be at least 1".into());
        }
        let log = if self.silent {
            Some(LogLevel::Silent)
        } else if self.quiet {
            Some(LogLevel::Errors)
        } else {
            self.log_level
        };
        Ok(FileConfig {
            port: self.port,
            http: flag(any, self.http),
            udp: flag(any, self.udp),
            ws: flag(any, self.ws),
            listen_v4: self.listen_v4,
            listen_v6: self.listen_v6,
            workers: self.workers,
            pin_workers: flag(self.no_pin, false),
            steer_udp: flag(self.no_steer, false),
            interval: self
                .interval
                .map(|ms| ms.div_ceil(1000).clamp(1, u32::MAX as u64) as u32),
            min_interval: None,
            peer_ttl: None,
            numwant: self.numwant,
            max_numwant: self.max_numwant,
            trust_proxy: flag(self.trust_proxy, true),
            full_scrape: flag(self.no_full_scrape, false),
            peer_ids: flag(self.peer_ids, true),
            stats: flag(self.no_stats, false),
            metrics: flag(self.no_metrics, false),
            allow: self.allow,
            deny: self.deny,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            state: self.state,
            state_interval: self.state_interval,
            reserve_torrents: self.reserve_torrents,
            huge_pages: flag(self.huge_pages, true),
            log: log.map(|l| l.name().to_string()),
            user: self.user,
            group: self.group,
            limits: Some(FileLimits {
                max_connections: self.max_connections,
                max_torrents: self.max_torrents,
                max_peers: self.max_peers,
                ..FileLimits::default()
            }),
        })
    }

    /// The configuration these flags (and the file they name) describe:
    /// defaults, then the file, then the flags.
    pub fn into_config(mut self) -> Result<ServerConfig, String> {
        let mut c = ServerConfig::default();
        if let Some(path) = self.config.take() {
            read_file(&path)?.apply(&mut c)?;
        }
        self.overlay()?.apply(&mut c)?;
        c.numwant_default = c.numwant_default.min(c.numwant_max);
        c.check()?;
        Ok(c)
    }
}

impl ServerConfig {
    /// Refuses settings that cannot work together.
    pub fn check(&self) -> Result<(), String> {
        if self.listen_v4.is_none() && self.listen_v6.is_none() {
            return Err("listen_v4 and listen_v6 are both off: nothing to listen on".into());
        }
        if self.workers == 0 {
            return Err("workers: must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls_cert and tls_key go together: give both or neither".into());
        }
        if self.state.is_some() && self.state_interval == 0 {
            return Err("state_interval: must be at least 1 second".into());
        }
        let l = &self.limits;
        if l.max_request_bytes < 256 {
            return Err("limits.max_request_bytes: at least 256".into());
        }
        if l.idle_timeout == 0 || l.request_timeout == 0 {
            return Err("limits.idle_timeout and limits.request_timeout: at least 1 second".into());
        }
        if l.ws_queue == 0 || l.ws_max_message < 1024 {
            return Err("limits.ws_queue: at least 1; limits.ws_max_message: at least 1024".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<ServerConfig, String> {
        let mut v = vec!["bittorrent-tracker"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    #[test]
    fn reference_defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.port, c.http, c.udp, c.ws, c.interval),
            (8000, true, true, true, 600)
        );
        assert_eq!((c.numwant_default, c.numwant_max), (50, 82));
        assert_eq!(c.log, LogLevel::Info);
        assert!(!c.require_v6);
    }

    #[test]
    fn flags() {
        let c = cfg(&[
            "-p",
            "0",
            "--udp",
            "--interval",
            "1500",
            "-q",
            "--trust-proxy",
        ])
        .unwrap();
        assert_eq!(
            (c.port, c.http, c.udp, c.ws, c.interval),
            (0, false, true, false, 2)
        );
        assert_eq!(
            (c.min_interval, c.peer_ttl),
            (1, 720),
            "peers outlive rtorrent's 600 s"
        );
        assert_eq!(c.log, LogLevel::Errors);
        assert!(c.trust_proxy);
        let c = cfg(&["--ws"]).unwrap();
        assert_eq!((c.http, c.udp, c.ws), (false, false, true));
        assert_eq!(
            cfg(&["--reserve-torrents", "5000"])
                .unwrap()
                .reserve_torrents,
            5000
        );
        assert_eq!(cfg(&[]).unwrap().reserve_torrents, 0);
        assert!(!cfg(&[]).unwrap().huge_pages);
        assert!(cfg(&["--huge-pages"]).unwrap().huge_pages);
        let c = cfg(&[
            "--listen-v4",
            "127.0.0.1",
            "--listen-v6",
            "::1",
            "-s",
            "--workers",
            "3",
        ])
        .unwrap();
        assert_eq!(c.listen_v4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(c.listen_v6, Some(Ipv6Addr::LOCALHOST));
        assert!(c.require_v6);
        assert_eq!((c.workers, c.log), (3, LogLevel::Silent));
        assert!(cfg(&["--listen-v6", "off"]).unwrap().listen_v6.is_none());
        assert!(cfg(&["--listen-v4", "nope"])
            .unwrap_err()
            .contains("--listen-v4"));
        assert!(cfg(&["--workers", "0"]).is_err());
        assert!(cfg(&["--listen-v4", "off", "--listen-v6", "off"]).is_err());
        assert!(cfg(&["--tls-cert", "a.pem"]).is_err(), "a key goes with it");
        assert_eq!(cfg(&["--log-level", "debug"]).unwrap().log, LogLevel::Debug);
        assert!(cfg(&["--log-level", "loud"]).is_err());
        let c = cfg(&["--no-stats", "--no-metrics", "--allow", "a.txt"]).unwrap();
        assert!(!c.stats && !c.metrics);
        assert_eq!(c.allow, Some(PathBuf::from("a.txt")));
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bt-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn intervals_out_of_bounds_are_warned_about_with_the_unit() {
        let at = |secs| {
            let mut c = ServerConfig::default();
            c.set_interval(secs);
            c.interval_warnings()
        };
        assert!(at(600).is_empty(), "the default");
        assert!(at(300).is_empty(), "libtorrent's floor");
        let w = at(1);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("1 s (1 s)") && w[0].contains("--interval takes milliseconds"));
        assert!(w[1].contains("peers are kept 720 s, so they stay"), "{w:?}");
        let w = at(600_000);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("600000 s (6.9 days)") && w[0].contains("takes seconds"));
        // A time-to-live set below rtorrent's re-announce says what is lost.
        let mut c = ServerConfig::default();
        c.set_interval(60);
        c.peer_ttl = 120;
        let w = c.interval_warnings();
        assert!(w[0].contains("drop out of their swarms"), "{w:?}");
        assert_eq!(human_duration(7200), "2.0 hours");
        assert_eq!(human_duration(600), "10 min");
    }

    #[test]
    fn file_then_flags() {
        let dir = tempdir("file");
        let f = write(
            &dir,
            "tracker.toml",
            "port = 7000\nudp = false\ninterval = 120\nnumwant = 20\nallow = \"allow.txt\"\nlog = \"warn\"\nworkers = 3\nlisten_v6 = \"off\"\n",
        );
        let path = f.to_str().unwrap();
        let c = cfg(&["--config", path]).unwrap();
        assert_eq!((c.port, c.http, c.udp, c.ws), (7000, true, false, true));
        assert_eq!((c.interval, c.min_interval, c.peer_ttl), (120, 60, 720));
        assert_eq!((c.numwant_default, c.workers), (20, 3));
        assert_eq!(c.allow, Some(dir.join("allow.txt")), "relative to the file");
        assert_eq!((c.log, c.listen_v6), (LogLevel::Warnings, None));
        // Flags win.
        let c = cfg(&[
            "--config",
            path,
            "-p",
            "7001",
            "--udp",
            "-q",
            "--interval",
            "60000",
        ])
        .unwrap();
        assert_eq!((c.port, c.http, c.udp, c.ws), (7001, false, true, false));
        assert_eq!((c.interval, c.log), (60, LogLevel::Errors));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn file_errors_name_the_key_or_the_file() {
        let dir = tempdir("errors");
        let f = write(&dir, "bad.toml", "port = 8000\nintervall = 5\n");
        let e = cfg(&["--config", f.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("intervall") && e.contains("bad.toml"), "{e}");
        let f = write(&dir, "type.toml", "port = \"eighty\"\n");
        let e = cfg(&["--config", f.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("port"), "{e}");
        let f = write(&dir, "log.toml", "log = \"loud\"\n");
        assert!(cfg(&["--config", f.to_str().unwrap()])
            .unwrap_err()
            .contains("log"));
        let e = cfg(&["--config", "/nonexistent/tracker.toml"]).unwrap_err();
        assert!(e.contains("cannot read /nonexistent/tracker.toml"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let dir = tempdir("print");
        for c in [
            ServerConfig::default(),
            ServerConfig {
                port: 9,
                udp: false,
                listen_v4: None,
                workers: 5,
                interval: 30,
                min_interval: 7,
                peer_ttl: 99,
                allow: Some(PathBuf::from("/a b/allow \"x\".txt")),
                tls_cert: Some(PathBuf::from("/c.pem")),
                tls_key: Some(PathBuf::from("/k.pem")),
                state: Some(PathBuf::from("/s")),
                log: LogLevel::Debug,
                stats: false,
                ..ServerConfig::default()
            },
        ] {
            let text = c.to_toml();
            let f = write(&dir, "printed.toml", &text);
            let mut back = cfg(&["--config", f.to_str().unwrap()]).unwrap();
            back.require_v6 = c.require_v6;
            assert_eq!(back, c, "{text}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
