//! The server's configuration: [`ServerConfig`], its defaults and its
//! checks. The TOML file sets its fields by their names ([`file`]); the
//! `--print-config` template comes from one table of keys and docs
//! ([`template`]); the command line sets them in `crate::cli`.

pub mod file;
pub mod lists;
pub mod template;

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// A configuration that cannot be used: the key (`limits.max_peers`), the
/// file it came from when it did, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file that said it.
    pub file: Option<PathBuf>,
    /// The key or flag at fault, when one is.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error of key `key`.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// An error of no one key.
    pub fn other(message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: None,
            key: None,
            message: message.into(),
        }
    }

    /// The same error, said of `file`.
    pub fn in_file(mut self, file: &std::path::Path) -> ConfigError {
        self.file = Some(file.to_path_buf());
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

/// How much the server logs (to standard error). In the file and on the
/// command line: `silent`, `error`, `warn`, `info`, `debug`.
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

impl Serialize for LogLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Bounds on what clients can make the tracker hold or do. Each has a
/// default that suits a big public tracker; `[limits]` in the file sets them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open HTTP and WebSocket connections, all workers together; past it a
    /// new connection is closed at once.
    pub max_connections: usize,
    /// Open HTTP and WebSocket connections from one address (an IPv6 /64),
    /// all workers together; past it a new connection from that address is
    /// closed at once, and other addresses are unaffected. Users behind
    /// carrier-grade NAT share one address by the hundred, and each
    /// WebTorrent tab keeps a connection open, hence the room; not applied
    /// with `trust_proxy`, where every connection comes from the proxy.
    pub max_connections_per_ip: usize,
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
    /// WebRTC offers one WebSocket connection may have relayed a second, on
    /// average (0: no limit). WebTorrent sends at most 5 offers an announce
    /// and announces every couple of minutes per torrent; past the rate the
    /// connection's further offers are dropped (its announces are still
    /// answered) and counted, so one client cannot flood a swarm's browsers.
    pub ws_offer_rate: u32,
    /// Offers a WebSocket connection may send at once before the rate
    /// applies: a tab that opens with many torrents announces them together.
    pub ws_offer_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_connections_per_ip: 1_000,
            max_torrents: 20_000_000,
            max_peers: 100_000_000,
            max_request_bytes: 8 * 1024,
            idle_timeout: 30,
            request_timeout: 10,
            max_scrape_hashes: 256,
            max_offers: 1_000_000,
            ws_queue: 256,
            ws_max_message: 256 * 1024,
            ws_offer_rate: 10,
            ws_offer_burst: 500,
        }
    }
}

/// Everything a [`crate::Server`] needs to know.
/// Its fields are the keys of the TOML file (`--config`), which sets them
/// directly: what the file leaves out keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// TCP and UDP port; 0 picks a free one (the same for every protocol).
    pub port: u16,
    pub http: bool,
    pub udp: bool,
    /// WebSocket (WebTorrent) tracker, on the HTTP port.
    pub ws: bool,
    /// IPv4 listen address; `None` serves no IPv4 (`"off"` in the file).
    #[serde(with = "listen")]
    pub listen_v4: Option<Ipv4Addr>,
    /// IPv6 listen address; `None` serves no IPv6 (`"off"` in the file).
    #[serde(with = "listen")]
    pub listen_v6: Option<Ipv6Addr>,
    /// When false, a host without IPv6 gets a warning and IPv4 only. Set
    /// when an IPv6 address is named (in the file or on the command line).
    #[serde(skip)]
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
    /// Peers a reply carries when the client does not say.
    pub numwant: u32,
    /// Most peers a reply carries, whatever the client asks.
    pub max_numwant: u32,
    /// Take the HTTP client's address from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Answer `/scrape` without `info_hash` with every torrent.
    pub full_scrape: bool,
    /// Seconds a full scrape's snapshot is served before it is built anew.
    pub full_scrape_interval: u32,
    /// Keep every peer's peer id, for non-compact HTTP replies.
    pub peer_ids: bool,
    /// Serve `/stats` and `/stats.json`.
    pub stats: bool,
    /// Serve `/metrics` (Prometheus).
    pub metrics: bool,
    /// Only these info hashes are tracked (one hex hash a line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<PathBuf>,
    /// These info hashes are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<PathBuf>,
    /// PEM certificate chain: the TCP port then speaks HTTPS and WSS too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Swarms are saved here on shutdown and every `state_interval`, and
    /// restored at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<PathBuf>,
    /// Seconds between state saves.
    pub state_interval: u32,
    /// `[limits]` in the file.
    pub limits: Limits,
    /// When started as root: the user to run as once the sockets are bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group to run as (default: the user's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Torrents to make room for at start, over all workers: growing the
    /// torrent index later rebuilds it whole, a stall of milliseconds per
    /// million torrents.
    pub reserve_torrents: usize,
    /// Let the allocator back the heap with transparent huge pages. The
    /// `bittorrent-tracker` command turns them off for its process unless
    /// this is set (see `thp::allow_huge_pages`; `Server::start` leaves
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
            numwant: 50,
            max_numwant: 82,
            trust_proxy: false,
            full_scrape: true,
            full_scrape_interval: 60,
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

/// Listen addresses in the file: an address, or `"off"` for none.
mod listen {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<S: Serializer, A: Display>(a: &Option<A>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, A: FromStr>(d: D) -> Result<Option<A>, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an address (or \"off\")")))
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
                 and rtorrent no sooner than every 600 s, whatever the tracker says"
            ));
        }
        if self.peer_ttl <= 600 {
            w.push(format!(
                "peers are kept only {} s after their last announce: rtorrent re-announces no sooner than every 600 s and drops out \
                 of its swarms between announces (raise peer_ttl above 600)",
                self.peer_ttl
            ));
        }
        w
    }
}

impl ServerConfig {
    /// Refuses settings that cannot work together.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.listen_v4.is_none() && self.listen_v6.is_none() {
            return Err(ConfigError::key(
                "listen_v4",
                "listen_v4 and listen_v6 are both off: nothing to listen on",
            ));
        }
        if self.workers == 0 {
            return Err(ConfigError::key("workers", "must be at least 1"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::key(
                "tls_cert",
                "tls_cert and tls_key go together: give both or neither",
            ));
        }
        if self.full_scrape_interval == 0 {
            return Err(ConfigError::key(
                "full_scrape_interval",
                "must be at least 1 second",
            ));
        }
        if self.state.is_some() && self.state_interval == 0 {
            return Err(ConfigError::key(
                "state_interval",
                "must be at least 1 second",
            ));
        }
        let l = &self.limits;
        if l.max_connections_per_ip == 0 {
            return Err(ConfigError::key(
                "limits.max_connections_per_ip",
                "at least 1",
            ));
        }
        if l.ws_offer_rate > 0 && l.ws_offer_burst == 0 {
            return Err(ConfigError::key(
                "limits.ws_offer_burst",
                "at least 1 while ws_offer_rate is set, or every offer is dropped",
            ));
        }
        if l.max_request_bytes < 256 {
            return Err(ConfigError::key("limits.max_request_bytes", "at least 256"));
        }
        if l.idle_timeout == 0 || l.request_timeout == 0 {
            let key = if l.idle_timeout == 0 {
                "limits.idle_timeout"
            } else {
                "limits.request_timeout"
            };
            return Err(ConfigError::key(key, "at least 1 second"));
        }
        if l.ws_queue == 0 || l.ws_max_message < 1024 {
            let (key, min) = if l.ws_queue == 0 {
                ("limits.ws_queue", "at least 1")
            } else {
                ("limits.ws_max_message", "at least 1024")
            };
            return Err(ConfigError::key(key, min));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            w.len(),
            2,
            "the unit and libtorrent's floor; peers are kept 720 s: {w:?}"
        );
        assert!(w[0].contains("1 s (1 s)") && w[0].contains("--interval takes milliseconds"));
        assert!(w[1].contains("no sooner than every 300 s"), "{w:?}");
        let w = at(600_000);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("600000 s (6.9 days)") && w[0].contains("takes seconds"));
        // A time-to-live set below rtorrent's re-announce says what is lost,
        // whatever the interval.
        let c = ServerConfig {
            peer_ttl: 300,
            ..ServerConfig::default()
        };
        let w = c.interval_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("drops out of its swarms"), "{w:?}");
        assert_eq!(human_duration(7200), "2.0 hours");
        assert_eq!(human_duration(600), "10 min");
    }
}
