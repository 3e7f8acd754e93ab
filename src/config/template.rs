//! What `--print-config` prints: every key of the file with its doc, from
//! one table ([`KEYS`]) and the values of a [`ServerConfig`] as serde
//! writes them. A test holds the table to the struct: no field without a
//! key here, no key here without a field.

use super::{default_workers, ConfigError, ServerConfig};
use std::fmt::Write as _;

/// Keys that share one comment in the template.
pub struct Group {
    /// `None` for the top level, else the `[section]`.
    pub section: Option<&'static str>,
    /// The keys, each with an example value printed (commented out) when
    /// the key has no value.
    pub keys: &'static [(&'static str, &'static str)],
    /// The comment. `{cpus}` is replaced by this machine's CPU count.
    pub doc: &'static str,
}

const fn top(keys: &'static [(&'static str, &'static str)], doc: &'static str) -> Group {
    Group {
        section: None,
        keys,
        doc,
    }
}

/// Every key of the configuration file, in the template's order.
pub const KEYS: &[Group] = &[
    top(&[("port", "")], "Port of every protocol (0: any free port)."),
    top(
        &[("http", ""), ("udp", ""), ("ws", "")],
        "Which trackers run: HTTP, UDP, WebSocket (WebTorrent, on the HTTP port).",
    ),
    top(
        &[("listen_v4", ""), ("listen_v6", "")],
        "Listen addresses, or \"off\".",
    ),
    top(
        &[("workers", ""), ("pin_workers", "")],
        "Worker executors, one per core (0: one per CPU, here {cpus}).",
    ),
    top(
        &[("steer_udp", "")],
        "With several workers, the kernel hands each UDP announce and scrape to\nthe socket of the worker that owns its info hash (false: workers forward).",
    ),
    top(
        &[("interval", "")],
        "Announce interval, in seconds (the --interval flag takes milliseconds,\nlike the reference tracker's).",
    ),
    top(
        &[("min_interval", "")],
        "`min interval` told to HTTP clients, seconds (0: not sent).",
    ),
    top(
        &[("peer_ttl", "")],
        "Seconds without an announce after which a peer is dropped (by default twice\nthe interval and at least 720: rtorrent re-announces no sooner than every 600 s).",
    ),
    top(
        &[("numwant", ""), ("max_numwant", "")],
        "Peers returned when a client does not say, and at most.",
    ),
    top(
        &[("trust_proxy", "")],
        "Take the client's address from X-Forwarded-For (only behind a proxy you run).",
    ),
    top(
        &[("full_scrape", ""), ("full_scrape_interval", "")],
        "Answer /scrape without info_hash with every torrent, from a snapshot built\nat most every full_scrape_interval seconds.",
    ),
    top(
        &[("peer_ids", "")],
        "Keep each peer's peer id, for non-compact HTTP replies (compact=0).\nIt costs 20 bytes a peer; without it those replies list address and port only.",
    ),
    top(
        &[("stats", ""), ("metrics", "")],
        "Serve /stats and /stats.json, and /metrics (Prometheus).",
    ),
    top(
        &[
            ("allow", "/etc/bittorrent-tracker/allow.txt"),
            ("deny", "/etc/bittorrent-tracker/deny.txt"),
        ],
        "Allow and deny lists: 40 hex digits a line, # starts a comment.\nReloaded on SIGHUP; existing swarms are left as they are.",
    ),
    top(
        &[
            ("tls_cert", "/etc/bittorrent-tracker/cert.pem"),
            ("tls_key", "/etc/bittorrent-tracker/key.pem"),
        ],
        "PEM certificate chain and key: the TCP port then serves HTTPS and WSS as\nwell as plain HTTP and WS. Reloaded on SIGHUP.",
    ),
    top(
        &[
            ("state", "/var/lib/bittorrent-tracker/state"),
            ("state_interval", ""),
        ],
        "Swarms and completed counts are saved here on shutdown and every\nstate_interval seconds, and restored at start.",
    ),
    top(
        &[("reserve_torrents", "")],
        "Torrents to make room for at start (all workers together), so the torrent\nindex never stalls a worker to grow.",
    ),
    top(
        &[("huge_pages", "")],
        "Back the heap with transparent huge pages: fewer TLB misses, about a\nquarter more resident memory (false: the process asks the kernel for none).",
    ),
    top(&[("log", "")], "silent, error, warn, info or debug."),
    top(
        &[
            ("user", "bittorrent-tracker"),
            ("group", "bittorrent-tracker"),
        ],
        "When started as root: bind the port, then run as this user and group.",
    ),
    Group {
        section: Some("limits"),
        keys: &[("max_connections", "")],
        doc: "Open HTTP and WebSocket connections, all workers together; more are closed at once.",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_connections_per_ip", "")],
        doc: "Open connections from one address (an IPv6 /64); more from it are closed at once.\nRoom for users behind carrier-grade NAT; not applied with trust_proxy.",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_torrents", "")],
        doc: "Torrents held; past it announces for new torrents get \"tracker is full\".",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_peers", "")],
        doc: "Peers held; past it new peers get \"tracker is full\" (known ones go on).",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_request_bytes", "")],
        doc: "Largest HTTP request line and headers, bytes (431 past it).",
    },
    Group {
        section: Some("limits"),
        keys: &[("idle_timeout", "")],
        doc: "Seconds an idle keep-alive HTTP connection is kept.",
    },
    Group {
        section: Some("limits"),
        keys: &[("request_timeout", "")],
        doc: "Seconds a request may take to arrive whole (slow clients are cut off).",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_scrape_hashes", "")],
        doc: "Most info hashes one scrape may name.",
    },
    Group {
        section: Some("limits"),
        keys: &[("max_offers", "")],
        doc: "WebRTC offers remembered for their answers.",
    },
    Group {
        section: Some("limits"),
        keys: &[("ws_queue", "")],
        doc: "Messages queued for one WebSocket client; a slower reader is disconnected.",
    },
    Group {
        section: Some("limits"),
        keys: &[("ws_max_message", "")],
        doc: "Largest WebSocket message, bytes (the connection closes with 1009).",
    },
    Group {
        section: Some("limits"),
        keys: &[("ws_offer_rate", ""), ("ws_offer_burst", "")],
        doc: "WebRTC offers one WebSocket connection may have relayed: so many a second on\naverage (0: no limit), and so many at once. Past it further offers are dropped\n(the announce is still answered). WebTorrent sends at most 5 an announce.",
    },
];

/// The comments that open each section.
fn section_doc(section: &str) -> &'static str {
    match section {
        "limits" => "What clients can make the tracker hold or do.",
        _ => "",
    }
}

impl ServerConfig {
    /// The same settings as a TOML file that `--config` reads, with every
    /// key documented. `workers` is printed as 0 (one per CPU) when it is
    /// this machine's CPU count, so the file suits another machine.
    ///
    /// A configuration the file format cannot hold (a path that is not
    /// UTF-8, a number over 2^63 - 1, both only from the command line) is an
    /// error that says so.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let values = toml::Table::try_from(self).map_err(|e| {
            ConfigError::other(format!(
                "this configuration cannot be written as TOML: {}",
                e.to_string().trim_end()
            ))
        })?;
        let mut t = String::from(
            "# bittorrent-tracker configuration (bittorrent-tracker --config FILE).\n# Command-line flags override what is set here.\n\n",
        );
        let mut section = None;
        for g in KEYS {
            if g.section != section {
                let name = g.section.expect("sections come after the top level");
                let _ = writeln!(t, "# {}\n[{name}]\n", section_doc(name));
                section = g.section;
            }
            let table = match g.section {
                None => &values,
                Some(s) => values[s].as_table().expect("a section is a table"),
            };
            let doc = g.doc.replace("{cpus}", &default_workers().to_string());
            for line in doc.lines() {
                let _ = writeln!(t, "# {line}");
            }
            for &(key, example) in g.keys {
                match table.get(key) {
                    Some(_) if key == "workers" && self.workers == default_workers() => {
                        let _ = writeln!(t, "workers = 0");
                    }
                    Some(v) => {
                        let _ = writeln!(t, "{key} = {v}");
                    }
                    None => {
                        let _ = writeln!(t, "# {key} = {}", toml::Value::from(example));
                    }
                }
            }
            t.push('\n');
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    /// Every key a configuration with every option set serializes to.
    fn fields() -> BTreeSet<String> {
        let all = ServerConfig {
            allow: Some(PathBuf::from("a")),
            deny: Some(PathBuf::from("d")),
            tls_cert: Some(PathBuf::from("c")),
            tls_key: Some(PathBuf::from("k")),
            state: Some(PathBuf::from("s")),
            user: Some("u".into()),
            group: Some("g".into()),
            ..ServerConfig::default()
        };
        let t = toml::Table::try_from(&all).unwrap();
        let mut keys = BTreeSet::new();
        for (k, v) in &t {
            match v.as_table() {
                Some(sub) => keys.extend(sub.keys().map(|s| format!("{k}.{s}"))),
                None => {
                    keys.insert(k.clone());
                }
            }
        }
        keys
    }

    #[test]
    fn the_table_names_every_field_once() {
        let mut listed = Vec::new();
        for g in KEYS {
            for (k, _) in g.keys {
                listed.push(match g.section {
                    Some(s) => format!("{s}.{k}"),
                    None => k.to_string(),
                });
            }
        }
        let set: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(set.len(), listed.len(), "a key listed twice");
        assert_eq!(set, fields(), "the template's keys and the struct's fields");
    }

    #[test]
    fn every_key_is_documented_and_printed() {
        let text = ServerConfig::default().to_toml().unwrap();
        for k in fields() {
            let key = k.rsplit('.').next().unwrap();
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))
                    || l.starts_with(&format!("# {key} = "))),
                "{key} in\n{text}"
            );
        }
        assert!(text.contains("\n[limits]\n"));
        assert!(text.contains("# allow = \"/etc/bittorrent-tracker/allow.txt\""));
        // What only flags can set and a file cannot hold is an error, not a panic.
        let mut c = ServerConfig::default();
        c.limits.max_peers = usize::MAX;
        let e = c.to_toml().unwrap_err();
        assert!(e.message.contains("cannot be written as TOML"), "{e}");
    }
}
