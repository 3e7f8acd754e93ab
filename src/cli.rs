//! The `bittorrent-tracker` command line: the reference tracker's flags and
//! this tracker's own, which set [`ServerConfig`]'s fields over the file
//! that `--config` names, and the client's subcommands. It sits above the
//! library's parts: the configuration knows nothing of it.

use crate::config::file::read_file;
use crate::config::{ConfigError, LogLevel, ServerConfig};
use clap::Parser;
use std::path::PathBuf;

/// What `--help` ends with: where the documentation is once the binary is
/// installed on its own (its man page), and where in the source.
pub const AFTER_HELP: &str = "\
Signals: SIGHUP reloads the lists and the TLS certificate; SIGINT and SIGTERM stop (saving --state).

Documentation: man bittorrent-tracker (bittorrent-tracker --man-page writes it).
Shell completions: bittorrent-tracker --completions bash|zsh|fish|elvish|powershell.
In the source: README.md, docs/operating.md, docs/configuration.md and tuning.md.";

/// The `bittorrent-tracker` command line.
#[derive(Parser, Debug)]
#[command(
    name = "bittorrent-tracker",
    version,
    about = "BitTorrent tracker: HTTP, UDP and WebSocket on one port, IPv4 and IPv6, one io_uring executor per core",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
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
    /// Print the version and exit (-V too)
    #[arg(short = 'v', visible_short_alias = 'V', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// TOML configuration file (see --print-config); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the configuration these flags and file give, as TOML, and exit
    #[arg(long)]
    pub print_config: bool,
    /// Write the process id to FILE once serving (and keep it true across an upgrade)
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Print the man page (roff) and exit
    #[arg(long, hide = true)]
    pub man_page: bool,
    /// Print the completion script for SHELL and exit
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,
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
    /// Seconds a full scrape's snapshot is served before it is built anew [default: 60]
    #[arg(long, value_name = "SECS")]
    pub full_scrape_interval: Option<u32>,
    /// Keep peers' peer ids, so that non-compact HTTP replies carry them
    /// (20 bytes more a peer; without it they list address and port)
    #[arg(long)]
    pub peer_ids: bool,
    /// Torrents to make room for at start (all workers together), so the
    /// torrent index never stalls a worker to grow while it serves [default: 0]
    #[arg(long, value_name = "N")]
    pub reserve_torrents: Option<usize>,
    /// Back the heap with transparent huge pages: fewer TLB misses, about a
    /// quarter more resident memory
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
    /// Open connections from one address (IPv6: one /64) at most [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Torrents held at most; new ones are refused past it [default: 20000000]
    #[arg(long, value_name = "N")]
    pub max_torrents: Option<usize>,
    /// Peers held at most; new ones are refused past it [default: 100000000]
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    /// WebRTC offers a WebSocket connection may have relayed a second; 0: no limit [default: 10]
    #[arg(long, value_name = "N")]
    pub ws_offer_rate: Option<u32>,
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
    /// Upgrade a running tracker in place: it hands its sockets and swarms to
    /// the binary at its path, started with the same arguments (what
    /// SIGUSR2 does), and this waits for the outcome
    Upgrade(UpgradeArgs),
}

/// `bittorrent-tracker upgrade`.
#[derive(clap::Args, Debug)]
pub struct UpgradeArgs {
    /// The running tracker's --pid-file
    #[arg(long, value_name = "FILE")]
    pub pid_file: PathBuf,
    /// Seconds to wait for the outcome
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// An address flag: an address, or `off` for none.
fn listen<T: std::str::FromStr>(s: &str, flag: &str) -> Result<Option<T>, ConfigError> {
    if s == "off" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ConfigError::key(flag, format!("`{s}` is not an address (or `off`)")))
}

impl Cli {
    /// Sets on `c` what the flags say; what they leave out stays.
    fn apply(self, c: &mut ServerConfig) -> Result<(), ConfigError> {
        if let Some(p) = self.port {
            c.port = p;
        }
        if self.http || self.udp || self.ws {
            (c.http, c.udp, c.ws) = (self.http, self.udp, self.ws);
        }
        if let Some(a) = &self.listen_v4 {
            c.listen_v4 = listen(a, "--listen-v4")?;
        }
        if let Some(a) = &self.listen_v6 {
            c.listen_v6 = listen(a, "--listen-v6")?;
            c.require_v6 = c.listen_v6.is_some();
        }
        match self.workers {
            Some(0) => return Err(ConfigError::key("--workers", "must be at least 1")),
            Some(n) => c.workers = n,
            None => {}
        }
        c.pin_workers &= !self.no_pin;
        c.steer_udp &= !self.no_steer;
        if let Some(ms) = self.interval {
            c.set_interval(ms.div_ceil(1000).clamp(1, u32::MAX as u64) as u32);
        }
        if let Some(n) = self.numwant {
            c.numwant = n;
        }
        if let Some(n) = self.max_numwant {
            c.max_numwant = n;
        }
        c.trust_proxy |= self.trust_proxy;
        c.full_scrape &= !self.no_full_scrape;
        if let Some(s) = self.full_scrape_interval {
            c.full_scrape_interval = s;
        }
        c.peer_ids |= self.peer_ids;
        c.stats &= !self.no_stats;
        c.metrics &= !self.no_metrics;
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
        if let Some(s) = self.state_interval {
            c.state_interval = s;
        }
        if let Some(n) = self.reserve_torrents {
            c.reserve_torrents = n;
        }
        c.huge_pages |= self.huge_pages;
        if self.silent {
            c.log = LogLevel::Silent;
        } else if self.quiet {
            c.log = LogLevel::Errors;
        } else if let Some(l) = self.log_level {
            c.log = l;
        }
        if self.user.is_some() {
            c.user = self.user;
        }
        if self.group.is_some() {
            c.group = self.group;
        }
        let l = &mut c.limits;
        for (dst, v) in [
            (&mut l.max_connections, self.max_connections),
            (&mut l.max_connections_per_ip, self.max_connections_per_ip),
            (&mut l.max_torrents, self.max_torrents),
            (&mut l.max_peers, self.max_peers),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        if let Some(v) = self.ws_offer_rate {
            l.ws_offer_rate = v;
        }
        Ok(())
    }

    /// The configuration these flags (and the file they name) describe:
    /// defaults, then the file, then the flags; checked.
    pub fn into_config(mut self) -> Result<ServerConfig, ConfigError> {
        let mut c = match self.config.take() {
            Some(path) => read_file(&path)?,
            None => ServerConfig::default(),
        };
        self.apply(&mut c)?;
        c.numwant = c.numwant.min(c.max_numwant);
        c.check()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::{Path, PathBuf};

    fn cfg(args: &[&str]) -> Result<ServerConfig, String> {
        let mut v = vec!["bittorrent-tracker"];
        v.extend_from_slice(args);
        Ok(Cli::try_parse_from(v)
            .map_err(|e| e.to_string())?
            .into_config()?)
    }

    #[test]
    fn reference_defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.port, c.http, c.udp, c.ws, c.interval),
            (8000, true, true, true, 600)
        );
        assert_eq!((c.numwant, c.max_numwant), (50, 82));
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
        assert_eq!((c.numwant, c.workers), (20, 3));
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
            let text = c.to_toml().unwrap();
            let f = write(&dir, "printed.toml", &text);
            let back = cfg(&["--config", f.to_str().unwrap()]).unwrap();
            assert_eq!(back, c, "{text}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
