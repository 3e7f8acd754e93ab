//! Server configuration: its defaults and the command-line flags that set it.

use clap::Parser;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How much the server prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing at all (`-s`).
    Silent,
    /// Errors only (`-q`).
    Errors,
    /// Start-up lines and warnings.
    Info,
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
    /// Most `info_hash` values one HTTP scrape may name.
    pub max_scrape_hashes: usize,
    /// Torrents to make room for at start, over all workers: growing the
    /// torrent map later copies it whole, a stall of milliseconds per
    /// million torrents.
    pub reserve_torrents: usize,
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
            interval: 600,
            min_interval: 300,
            peer_ttl: 1200,
            numwant_default: 50,
            numwant_max: 82,
            trust_proxy: false,
            full_scrape: true,
            max_scrape_hashes: 256,
            reserve_torrents: 0,
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
    disable_version_flag = true
)]
pub struct Cli {
    /// Port for every protocol (0: any free port)
    #[arg(short, long, default_value_t = 8000)]
    pub port: u16,
    /// Enable the HTTP tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub http: bool,
    /// Enable the UDP tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub udp: bool,
    /// Enable the WebSocket tracker (with none of --http/--udp/--ws, all start)
    #[arg(long)]
    pub ws: bool,
    /// Announce interval in milliseconds
    #[arg(long, default_value_t = 600_000, value_name = "MS")]
    pub interval: u64,
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
    /// Worker executors, one per core [default: every CPU this process may use]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Do not pin workers to CPUs
    #[arg(long)]
    pub no_pin: bool,
    /// IPv4 address to listen on, or `off`
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR|off")]
    pub listen_v4: String,
    /// IPv6 address to listen on, or `off` [default: ::, skipped with a warning where the host has no IPv6]
    #[arg(long, value_name = "ADDR|off")]
    pub listen_v6: Option<String>,
    /// Peers returned when a client does not say
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub numwant: u32,
    /// Most peers returned, whatever a client asks
    #[arg(long, default_value_t = 82, value_name = "N")]
    pub max_numwant: u32,
    /// Refuse /scrape without info_hash (full scrape)
    #[arg(long)]
    pub no_full_scrape: bool,
    /// Torrents to make room for at start (all workers together), so the
    /// torrent map never stalls a worker to grow while it serves
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub reserve_torrents: usize,
}

fn parse_listen<T: std::str::FromStr>(s: &str, flag: &str) -> Result<Option<T>, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{flag}: `{s}` is not an address (or `off`)"))
}

impl Cli {
    /// The configuration these flags describe.
    pub fn into_config(self) -> Result<ServerConfig, String> {
        let d = ServerConfig::default();
        let any = self.http || self.udp || self.ws;
        let interval = self.interval.div_ceil(1000).clamp(1, u32::MAX as u64) as u32;
        let listen_v6 = match &self.listen_v6 {
            Some(s) => parse_listen(s, "--listen-v6")?,
            None => d.listen_v6,
        };
        let cfg = ServerConfig {
            port: self.port,
            http: !any || self.http,
            udp: !any || self.udp,
            ws: !any || self.ws,
            listen_v4: parse_listen(&self.listen_v4, "--listen-v4")?,
            require_v6: self.listen_v6.is_some() && listen_v6.is_some(),
            listen_v6,
            workers: match self.workers {
                Some(0) => return Err("--workers: must be at least 1".into()),
                Some(n) => n,
                None => d.workers,
            },
            pin_workers: !self.no_pin,
            interval,
            min_interval: interval / 2,
            peer_ttl: interval.saturating_mul(2),
            numwant_default: self.numwant.min(self.max_numwant),
            numwant_max: self.max_numwant,
            trust_proxy: self.trust_proxy,
            full_scrape: !self.no_full_scrape,
            reserve_torrents: self.reserve_torrents,
            log: if self.silent {
                LogLevel::Silent
            } else if self.quiet {
                LogLevel::Errors
            } else {
                LogLevel::Info
            },
            ..d
        };
        if cfg.listen_v4.is_none() && cfg.listen_v6.is_none() {
            return Err("--listen-v4 and --listen-v6 are both off: nothing to listen on".into());
        }
        Ok(cfg)
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
        assert_eq!((c.min_interval, c.peer_ttl), (1, 4));
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
    }
}
