//! Counters and their renderings: `/stats` (HTML), `/stats.json` (the
//! reference's fields) and `/metrics` (Prometheus text).
//!
//! Each worker counts its own requests in plain cells (no atomics, no
//! sharing) and its shard keeps peer totals as peers come and go; a stats
//! request gathers one [`WorkerStats`] per worker over the mesh and merges
//! them. Nothing here walks the peers.

use super::chart;
use super::history::{Rates, SAMPLE_EVERY};
use super::process::ProcessInfo;
use super::readable::{escape, thousands, uptime};
use super::watchdog::WorkerHealth;
use crate::protocol::clients::ClientKey;
use crate::protocol::Protocol;
use crate::swarm::Totals;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Connect,
    Announce,
    Scrape,
    /// `/stats`, `/stats.json`, `/metrics`.
    Stats,
    /// Anything else: unknown paths, unparseable packets and messages.
    Other,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Announce,
        Action::Scrape,
        Action::Stats,
        Action::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Announce => "announce",
            Action::Scrape => "scrape",
            Action::Stats => "stats",
            Action::Other => "other",
        }
    }
}

/// Why the tracker turned a client away before serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A new connection past `limits.max_connections`.
    MaxConnections,
    /// A new connection from an address holding `limits.max_connections_per_ip`.
    MaxConnectionsPerIp,
    /// A WebRTC offer past its connection's `limits.ws_offer_rate`, dropped.
    WsOfferRate,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [
        Refusal::MaxConnections,
        Refusal::MaxConnectionsPerIp,
        Refusal::WsOfferRate,
    ];

    /// The `reason` label of `tracker_refused_total`: the limit's key.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::WsOfferRate => "ws_offer_rate",
        }
    }
}

const P: usize = Protocol::ALL.len();
const A: usize = Action::ALL.len();
const R: usize = Refusal::ALL.len();

/// A worker's request counters. Only its own thread touches them.
#[derive(Default)]
pub(crate) struct Counters {
    requests: [[Cell<u64>; A]; P],
    responses: [[Cell<u64>; A]; P],
    errors: [[Cell<u64>; A]; P],
    bytes_in: [Cell<u64>; P],
    bytes_out: [Cell<u64>; P],
    forwarded: Cell<u64>,
    connections: [Cell<u64>; P],
    refused: [Cell<u64>; R],
}

#[inline]
fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl Counters {
    /// A request arrived (`bytes` long, when the protocol counts by message).
    #[inline]
    pub fn request(&self, p: Protocol, a: Action) {
        bump(&self.requests[p as usize][a as usize], 1);
    }
    /// A request was answered.
    #[inline]
    pub fn response(&self, p: Protocol, a: Action) {
        bump(&self.responses[p as usize][a as usize], 1);
    }
    /// A request was refused, answered with an error or not at all.
    #[inline]
    pub fn error(&self, p: Protocol, a: Action) {
        bump(&self.errors[p as usize][a as usize], 1);
    }
    #[inline]
    pub fn bytes_in(&self, p: Protocol, n: usize) {
        bump(&self.bytes_in[p as usize], n as u64);
    }
    #[inline]
    pub fn bytes_out(&self, p: Protocol, n: usize) {
        bump(&self.bytes_out[p as usize], n as u64);
    }
    /// A request went to the worker that owns its info hash.
    #[inline]
    pub fn forwarded(&self) {
        bump(&self.forwarded, 1);
    }
    /// A client turned away for `why`.
    #[inline]
    pub fn refused(&self, why: Refusal, n: u64) {
        bump(&self.refused[why as usize], n);
    }
    /// A connection opened (`true`) or closed.
    pub fn connection(&self, p: Protocol, open: bool) {
        let c = &self.connections[p as usize];
        c.set(if open {
            c.get() + 1
        } else {
            c.get().saturating_sub(1)
        });
    }

    /// Requests received by protocol, every action together.
    pub fn requests_by_protocol(&self) -> [u64; P] {
        self.requests
            .each_ref()
            .map(|r| r.iter().map(Cell::get).fold(0, u64::wrapping_add))
    }

    /// Open HTTP and WebSocket connections.
    pub fn open_connections(&self) -> u64 {
        self.connections.iter().map(Cell::get).sum()
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let grid = |g: &[[Cell<u64>; A]; P]| g.each_ref().map(|r| r.each_ref().map(Cell::get));
        CounterSnapshot {
            requests: grid(&self.requests),
            responses: grid(&self.responses),
            errors: grid(&self.errors),
            bytes_in: self.bytes_in.each_ref().map(Cell::get),
            bytes_out: self.bytes_out.each_ref().map(Cell::get),
            forwarded: self.forwarded.get(),
            connections: self.connections.each_ref().map(Cell::get),
            refused: self.refused.each_ref().map(Cell::get),
        }
    }
}

/// A copy of a worker's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub requests: [[u64; A]; P],
    pub responses: [[u64; A]; P],
    pub errors: [[u64; A]; P],
    pub bytes_in: [u64; P],
    pub bytes_out: [u64; P],
    pub forwarded: u64,
    /// Open HTTP and WebSocket connections (UDP has none).
    pub connections: [u64; P],
    /// Clients turned away, by [`Refusal`].
    pub refused: [u64; R],
}

impl CounterSnapshot {
    pub fn requests(&self, p: Protocol, a: Action) -> u64 {
        self.requests[p as usize][a as usize]
    }
    pub fn responses(&self, p: Protocol, a: Action) -> u64 {
        self.responses[p as usize][a as usize]
    }
    pub fn errors(&self, p: Protocol, a: Action) -> u64 {
        self.errors[p as usize][a as usize]
    }

    fn add(&mut self, o: &CounterSnapshot) {
        for p in 0..P {
            for a in 0..A {
                self.requests[p][a] += o.requests[p][a];
                self.responses[p][a] += o.responses[p][a];
                self.errors[p][a] += o.errors[p][a];
            }
            self.bytes_in[p] += o.bytes_in[p];
            self.bytes_out[p] += o.bytes_out[p];
            self.connections[p] += o.connections[p];
        }
        self.forwarded += o.forwarded;
        for r in 0..R {
            self.refused[r] += o.refused[r];
        }
    }
}

/// One worker's figures: its counters and its shard's totals.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub worker: usize,
    pub counters: CounterSnapshot,
    /// Torrents the shard knows (active or kept for their `completed` count).
    pub torrents: usize,
    pub totals: Totals,
    /// Peers by client and version.
    pub clients: Vec<(ClientKey, u32)>,
}

/// Every worker's figures, and their sum.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub workers: Vec<WorkerStats>,
    pub total: WorkerStats,
    /// Every worker's heartbeat, stalled or not (also those missing from
    /// `workers` because they did not answer).
    pub health: Vec<WorkerHealth>,
    /// What the system says of the process.
    pub process: ProcessInfo,
    /// Full-scrape snapshots built so far, and the age of the current one.
    pub full_scrape_builds: u64,
    pub full_scrape_age: Option<std::time::Duration>,
    /// How long the server has run.
    pub uptime: std::time::Duration,
    /// Requests per second by protocol over the last hour.
    pub rates: Rates,
}

impl Stats {
    /// Merges the workers' figures (in any order).
    pub fn merge(mut workers: Vec<WorkerStats>) -> Stats {
        workers.sort_by_key(|w| w.worker);
        let mut total = WorkerStats::default();
        let mut clients: BTreeMap<ClientKey, u32> = BTreeMap::new();
        for w in &workers {
            total.counters.add(&w.counters);
            total.torrents += w.torrents;
            let (t, s) = (&mut total.totals, &w.totals);
            t.seeders += s.seeders;
            t.leechers += s.leechers;
            t.peers_v4 += s.peers_v4;
            t.peers_v6 += s.peers_v6;
            t.peers_ws += s.peers_ws;
            t.completed += s.completed;
            t.active_torrents += s.active_torrents;
            for &(k, n) in &w.clients {
                *clients.entry(k).or_default() += n;
            }
        }
        total.clients = clients.into_iter().collect();
        Stats {
            workers,
            total,
            health: Vec::new(),
            process: ProcessInfo::default(),
            full_scrape_builds: 0,
            full_scrape_age: None,
            uptime: std::time::Duration::ZERO,
            rates: Rates::default(),
        }
    }

    /// Peers by client name, then version.
    pub fn clients(&self) -> BTreeMap<&'static str, BTreeMap<String, u64>> {
        let mut out: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        for &(k, n) in &self.total.clients {
            let (name, version) = k.describe();
            *out.entry(name).or_default().entry(version).or_default() += n as u64;
        }
        out
    }

    /// `/stats.json`: the reference's fields, plus this tracker's own.
    ///
    /// A peer here is a peer in a swarm: a client in three swarms counts
    /// three times. The reference counts distinct peer ids by walking every
    /// peer of every swarm on each request; that walk is what this tracker
    /// avoids, so `peersSeederAndLeecher` (one peer id seeding one torrent
    /// and leeching another) is always 0.
    pub fn json(&self) -> String {
        let t = &self.total.totals;
        let c = &self.total.counters;
        let mut clients = serde_json::Map::new();
        for (name, versions) in self.clients() {
            let v: serde_json::Map<String, serde_json::Value> = versions
                .into_iter()
                .map(|(v, n)| (v, serde_json::Value::from(n)))
                .collect();
            clients.insert(name.to_string(), serde_json::Value::Object(v));
        }
        let mut requests = serde_json::Map::new();
        for p in Protocol::ALL {
            let per: serde_json::Map<String, serde_json::Value> = Action::ALL
                .iter()
                .filter(|&&a| c.requests(p, a) > 0)
                .map(|&a| (a.name().to_string(), c.requests(p, a).into()))
                .collect();
            requests.insert(p.name().to_string(), per.into());
        }
        serde_json::json!({
            "torrents": self.total.torrents,
            "activeTorrents": t.active_torrents,
            "peersAll": t.seeders + t.leechers,
            "peersSeederOnly": t.seeders,
            "peersLeecherOnly": t.leechers,
            "peersSeederAndLeecher": 0,
            "peersIPv4": t.peers_v4,
            "peersIPv6": t.peers_v6,
            "peersWebSocket": t.peers_ws,
            "completed": t.completed,
            "clients": clients,
            "workers": self.health.len().max(self.workers.len()),
            "stalledWorkers": self.stalled(),
            "refused": Refusal::ALL
                .iter()
                .map(|&r| (r.name().to_string(), serde_json::Value::from(c.refused[r as usize])))
                .collect::<serde_json::Map<_, _>>(),
            "requests": requests,
        })
        .to_string()
    }

    /// `/stats`: the same figures as a page that reloads itself, with a
    /// chart of the request rates over the last hour.
    pub fn html(&self) -> String {
        let t = &self.total.totals;
        let mut h = String::with_capacity(32 * 1024);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"{}\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Tracker statistics</title>\
             <style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
             td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}\
             p.about{{color:#555}}p.stalled{{color:#a00}}svg.chart{{max-width:100%;height:auto}}</style>\
             </head><body>\n<h1>Tracker statistics</h1>\n\
             <p class=\"about\">bittorrent-tracker {} · up {} · {} workers · this page reloads every {} s</p>\n",
            SAMPLE_EVERY.as_secs(),
            env!("CARGO_PKG_VERSION"),
            uptime(self.uptime),
            thousands(self.health.len().max(self.workers.len()) as u64),
            SAMPLE_EVERY.as_secs(),
        );
        for w in self.health.iter().filter(|w| w.stalled) {
            let _ = writeln!(
                h,
                "<p class=\"stalled\"><strong>Worker {} is stalled:</strong> no heartbeat for {:.1} s; \
                 the requests it owns wait, and its figures are left out.</p>",
                w.worker,
                w.heartbeat_age.as_secs_f64()
            );
        }
        h.push_str("<h2>Requests per second</h2>\n");
        h.push_str(&chart::requests_per_second(&self.rates));
        h.push_str("<h2>Swarms</h2>\n<table>\n");
        let row = |h: &mut String, name: &str, v: u64| {
            let _ = writeln!(
                h,
                "<tr><th>{name}</th><td class=\"n\">{}</td></tr>",
                thousands(v)
            );
        };
        row(&mut h, "Torrents", self.total.torrents as u64);
        row(&mut h, "Active torrents", t.active_torrents as u64);
        row(&mut h, "Peers", (t.seeders + t.leechers) as u64);
        row(&mut h, "Seeders", t.seeders as u64);
        row(&mut h, "Leechers", t.leechers as u64);
        row(&mut h, "IPv4 peers", t.peers_v4 as u64);
        row(&mut h, "IPv6 peers", t.peers_v6 as u64);
        row(&mut h, "WebSocket peers", t.peers_ws as u64);
        row(&mut h, "Downloads completed", t.completed);
        h.push_str("</table>\n<h2>Clients</h2>\n<table>\n<tr><th>Client</th><th>Version</th><th>Peers</th></tr>\n");
        for (name, versions) in self.clients() {
            for (version, n) in versions {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    escape(name),
                    escape(&version),
                    thousands(n)
                );
            }
        }
        h.push_str("</table>\n<h2>Requests</h2>\n<table>\n<tr><th>Protocol</th><th>Action</th><th>Requests</th><th>Answered</th><th>Errors</th></tr>\n");
        let c = &self.total.counters;
        for p in Protocol::ALL {
            for a in Action::ALL {
                if c.requests(p, a) == 0 {
                    continue;
                }
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    p.name(),
                    a.name(),
                    thousands(c.requests(p, a)),
                    thousands(c.responses(p, a)),
                    thousands(c.errors(p, a))
                );
            }
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }

    /// The workers whose heartbeats stopped.
    pub fn stalled(&self) -> Vec<usize> {
        self.health
            .iter()
            .filter(|w| w.stalled)
            .map(|w| w.worker)
            .collect()
    }

    /// `/metrics`: Prometheus text format. Totals carry no `worker` label;
    /// the per-worker series are the `tracker_worker_*` families.
    pub fn prometheus(&self) -> String {
        let mut m = String::with_capacity(8192);
        let c = &self.total.counters;
        let help = |m: &mut String, name: &str, kind: &str, text: &str| {
            let _ = writeln!(m, "# HELP {name} {text}\n# TYPE {name} {kind}");
        };
        help(
            &mut m,
            "tracker_build_info",
            "gauge",
            "The tracker's version, as a label.",
        );
        let _ = writeln!(
            m,
            "tracker_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        help(
            &mut m,
            "tracker_full_scrape_builds_total",
            "counter",
            "Full-scrape snapshots built (at most one every full_scrape_interval).",
        );
        let _ = writeln!(
            m,
            "tracker_full_scrape_builds_total {}",
            self.full_scrape_builds
        );
        if let Some(age) = self.full_scrape_age {
            help(
                &mut m,
                "tracker_full_scrape_age_seconds",
                "gauge",
                "Age of the full-scrape snapshot being served.",
            );
            let _ = writeln!(
                m,
                "tracker_full_scrape_age_seconds {:.3}",
                age.as_secs_f64()
            );
        }
        let p = &self.process;
        if let Some(t) = p.start_time_seconds {
            help(
                &mut m,
                "process_start_time_seconds",
                "gauge",
                "When the process started, in seconds since 1970.",
            );
            let _ = writeln!(m, "process_start_time_seconds {t:.2}");
        }
        if let Some(b) = p.resident_memory_bytes {
            help(
                &mut m,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the process, bytes.",
            );
            let _ = writeln!(m, "process_resident_memory_bytes {b}");
        }
        if let Some(n) = p.open_fds {
            help(
                &mut m,
                "process_open_fds",
                "gauge",
                "File descriptors the process has open.",
            );
            let _ = writeln!(m, "process_open_fds {n}");
        }
        for (name, text, get) in [
            (
                "tracker_requests_total",
                "Requests received.",
                CounterSnapshot::requests as fn(&CounterSnapshot, Protocol, Action) -> u64,
            ),
            (
                "tracker_responses_total",
                "Requests answered successfully.",
                CounterSnapshot::responses,
            ),
            (
                "tracker_errors_total",
                "Requests refused, answered with an error, or dropped.",
                CounterSnapshot::errors,
            ),
        ] {
            help(&mut m, name, "counter", text);
            for p in Protocol::ALL {
                for a in Action::ALL {
                    let _ = writeln!(
                        m,
                        "{name}{{protocol=\"{}\",action=\"{}\"}} {}",
                        p.name(),
                        a.name(),
                        get(c, p, a)
                    );
                }
            }
        }
        for (name, text, v) in [
            (
                "tracker_received_bytes_total",
                "Bytes received.",
                &c.bytes_in,
            ),
            ("tracker_sent_bytes_total", "Bytes sent.", &c.bytes_out),
        ] {
            help(&mut m, name, "counter", text);
            for p in Protocol::ALL {
                let _ = writeln!(m, "{name}{{protocol=\"{}\"}} {}", p.name(), v[p as usize]);
            }
        }
        help(
            &mut m,
            "tracker_connections",
            "gauge",
            "Open HTTP and WebSocket connections.",
        );
        for p in [Protocol::Http, Protocol::Ws] {
            let _ = writeln!(
                m,
                "tracker_connections{{protocol=\"{}\"}} {}",
                p.name(),
                c.connections[p as usize]
            );
        }
        help(
            &mut m,
            "tracker_forwarded_total",
            "counter",
            "Requests handed to the worker that owns their info hash.",
        );
        let _ = writeln!(m, "tracker_forwarded_total {}", c.forwarded);
        help(
            &mut m,
            "tracker_refused_total",
            "counter",
            "Clients turned away before they were served, by the limit that did it.",
        );
        for r in Refusal::ALL {
            let _ = writeln!(
                m,
                "tracker_refused_total{{reason=\"{}\"}} {}",
                r.name(),
                c.refused[r as usize]
            );
        }
        let gauges = |w: &WorkerStats| {
            let t = &w.totals;
            [
                ("torrents", "Torrents known.", w.torrents as u64),
                (
                    "active_torrents",
                    "Torrents with at least one peer.",
                    t.active_torrents as u64,
                ),
                ("seeders", "Peers that seed.", t.seeders as u64),
                ("leechers", "Peers that leech.", t.leechers as u64),
                (
                    "peers_ipv4",
                    "HTTP and UDP peers over IPv4.",
                    t.peers_v4 as u64,
                ),
                (
                    "peers_ipv6",
                    "HTTP and UDP peers over IPv6.",
                    t.peers_v6 as u64,
                ),
                ("peers_websocket", "WebSocket peers.", t.peers_ws as u64),
                (
                    "completed_total",
                    "Downloads completed (completed events).",
                    t.completed,
                ),
            ]
        };
        for (i, (name, text, v)) in gauges(&self.total).into_iter().enumerate() {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            help(&mut m, &format!("tracker_{name}"), kind, text);
            let _ = writeln!(m, "tracker_{name} {v}");
            let per = format!("tracker_worker_{name}");
            help(&mut m, &per, kind, &format!("{text} By worker."));
            for w in &self.workers {
                let _ = writeln!(m, "{per}{{worker=\"{}\"}} {}", w.worker, gauges(w)[i].2);
            }
        }
        help(
            &mut m,
            "tracker_worker_requests_total",
            "counter",
            "Requests received, by worker.",
        );
        for w in &self.workers {
            for p in Protocol::ALL {
                let n: u64 = w.counters.requests[p as usize].iter().sum();
                let _ = writeln!(
                    m,
                    "tracker_worker_requests_total{{worker=\"{}\",protocol=\"{}\"}} {n}",
                    w.worker,
                    p.name()
                );
            }
        }
        // Name, type, help, and the sample of one worker.
        type HealthMetric = (
            &'static str,
            &'static str,
            &'static str,
            fn(&WorkerHealth) -> String,
        );
        let health: [HealthMetric; 3] = [
            (
                "tracker_worker_stalled",
                "gauge",
                "1 while a worker has missed its heartbeats for 3 s or more (stuck, spinning or starved of CPU).",
                |w| u8::from(w.stalled).to_string(),
            ),
            (
                "tracker_worker_stalls_total",
                "counter",
                "Times a worker was found stalled.",
                |w| w.stalls.to_string(),
            ),
            (
                "tracker_worker_heartbeat_age_seconds",
                "gauge",
                "Seconds since a worker's last heartbeat (it beats every 0.25 s).",
                |w| format!("{:.3}", w.heartbeat_age.as_secs_f64()),
            ),
        ];
        for (name, kind, text, value) in health {
            help(&mut m, name, kind, text);
            for w in &self.health {
                let _ = writeln!(m, "{name}{{worker=\"{}\"}} {}", w.worker, value(w));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PeerId;

    fn worker(id: usize, seeders: usize, leechers: usize, client: &[u8; 8]) -> WorkerStats {
        let c = Counters::default();
        c.request(Protocol::Udp, Action::Announce);
        c.response(Protocol::Udp, Action::Announce);
        c.request(Protocol::Http, Action::Scrape);
        c.error(Protocol::Http, Action::Scrape);
        c.bytes_in(Protocol::Udp, 98);
        let mut p = [b'0'; 20];
        p[..8].copy_from_slice(client);
        WorkerStats {
            worker: id,
            counters: c.snapshot(),
            torrents: 3,
            totals: Totals {
                seeders,
                leechers,
                peers_v4: seeders + leechers,
                active_torrents: 2,
                completed: 7,
                ..Totals::default()
            },
            clients: vec![(ClientKey::of(&PeerId(p)), (seeders + leechers) as u32)],
        }
    }

    #[test]
    fn merged_json_has_the_reference_fields() {
        let s = Stats::merge(vec![
            worker(1, 1, 2, b"-qB4650-"),
            worker(0, 3, 0, b"-qB4650-"),
        ]);
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["torrents"], 6);
        assert_eq!(v["activeTorrents"], 4);
        assert_eq!(v["peersAll"], 6);
        assert_eq!(v["peersSeederOnly"], 4);
        assert_eq!(v["peersLeecherOnly"], 2);
        assert_eq!(v["peersIPv4"], 6);
        assert_eq!(v["peersIPv6"], 0);
        assert_eq!(v["clients"]["qBittorrent"]["4.6.5"], 6);
        assert_eq!(v["requests"]["udp"]["announce"], 2);
        assert_eq!(s.workers[0].worker, 0);
    }

    #[test]
    fn prometheus_lines() {
        let mut s = Stats::merge(vec![
            worker(0, 1, 2, b"-TR4060-"),
            worker(1, 0, 1, b"-TR4060-"),
        ]);
        s.health = vec![
            WorkerHealth {
                worker: 0,
                heartbeat_age: std::time::Duration::from_millis(120),
                stalled: false,
                stalls: 0,
            },
            WorkerHealth {
                worker: 1,
                heartbeat_age: std::time::Duration::from_millis(4250),
                stalled: true,
                stalls: 2,
            },
        ];
        assert_eq!(s.stalled(), vec![1]);
        assert!(s.json().contains("\"stalledWorkers\":[1]"), "{}", s.json());
        assert!(s.html().contains("Worker 1 is stalled"));
        let m = s.prometheus();
        for line in [
            "tracker_requests_total{protocol=\"udp\",action=\"announce\"} 2",
            "tracker_errors_total{protocol=\"http\",action=\"scrape\"} 2",
            "tracker_received_bytes_total{protocol=\"udp\"} 196",
            "tracker_seeders 1",
            "tracker_leechers 3",
            "tracker_worker_leechers{worker=\"1\"} 1",
            "tracker_worker_stalled{worker=\"0\"} 0",
            "tracker_worker_stalled{worker=\"1\"} 1",
            "tracker_worker_stalls_total{worker=\"1\"} 2",
            "tracker_worker_heartbeat_age_seconds{worker=\"1\"} 4.250",
            "tracker_completed_total 14",
            "# TYPE tracker_completed_total counter",
            "# TYPE tracker_torrents gauge",
        ] {
            assert!(m.lines().any(|l| l == line), "missing {line}\n{m}");
        }
        // Every sample line is `name{labels} value` or `name value`.
        for l in m.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap();
        }
    }

    /// Every element the page opens it closes, in order (void elements
    /// and `<.../>` aside).
    fn assert_well_formed(html: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            let end = at + rest[at..].find('>').expect("a tag ends");
            let tag = &rest[at + 1..end];
            rest = &rest[end + 1..];
            let name = tag
                .trim_start_matches('/')
                .split([' ', '\n'])
                .next()
                .unwrap();
            if tag.starts_with('!') || tag.ends_with('/') || name == "meta" {
                continue;
            }
            if tag.starts_with('/') {
                assert_eq!(open.pop(), Some(name), "</{name}> closes what is open");
            } else {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
    }

    #[test]
    fn html_shows_the_figures_readable_and_escaped() {
        let mut s = Stats::merge(vec![worker(0, 2, 1, b"-qB4650-")]);
        s.total.totals.completed = 1_234_567;
        s.uptime = std::time::Duration::from_secs(3 * 86_400 + 4 * 3_600 + 12 * 60 + 5);
        let h = s.html();
        assert!(h.contains("<tr><th>Seeders</th><td class=\"n\">2</td></tr>"));
        assert!(h.contains("<tr><th>Downloads completed</th><td class=\"n\">1,234,567</td></tr>"));
        assert!(h.contains("<td>qBittorrent</td><td>4.6.5</td><td class=\"n\">3</td>"));
        assert!(h.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(h.contains(&format!(
            "bittorrent-tracker {} · up 3 d 4 h 12 min · 1 workers",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(h.contains("<svg ") && h.contains("collecting…"));
        assert_eq!(h.matches("<polyline class=\"series ").count(), 3);
        assert!(
            !h.contains("src=") && !h.contains("href="),
            "nothing fetched"
        );
        assert_well_formed(&h);
    }
}
