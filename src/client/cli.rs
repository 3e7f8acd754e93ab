//! The client commands: `bittorrent-tracker announce` and
//! `bittorrent-tracker scrape`.

use super::conn::{ConnOptions, TrackerError};
use crate::protocol::{AnnounceRequest, Event, InfoHash, PeerId};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// `bittorrent-tracker announce URL --info-hash HEX ...`
#[derive(Args, Debug)]
pub struct AnnounceArgs {
    /// Tracker announce URL (http, https, udp, ws, wss)
    pub url: String,
    /// Info hash, 40 hex digits
    #[arg(long, value_name = "HEX")]
    pub info_hash: String,
    /// started, completed, stopped, paused or update
    #[arg(long, default_value = "started")]
    pub event: String,
    /// Port this peer listens on
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// Peer id, 40 hex digits [default: -RS0100- and 12 random characters]
    #[arg(long, value_name = "HEX")]
    pub peer_id: Option<String>,
    /// Bytes left to download (0: a seeder) [default: not sent, a leecher]
    #[arg(long)]
    pub left: Option<u64>,
    /// Peers wanted [default: the tracker's]
    #[arg(long)]
    pub numwant: Option<u32>,
    /// Seconds to wait for the tracker (UDP retransmits within it)
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `bittorrent-tracker scrape URL HEX...`
#[derive(Args, Debug)]
pub struct ScrapeArgs {
    /// Tracker announce or scrape URL (http, https, udp, ws, wss)
    pub url: String,
    /// Info hashes, 40 hex digits each
    #[arg(required = true, value_name = "HEX")]
    pub info_hashes: Vec<String>,
    /// Seconds to wait for the tracker (UDP retransmits within it)
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Waits for a whole `secs`: HTTP and WebSocket in one wait, UDP in three
/// tries of 1, 2 and 4 sevenths.
fn conn_options(secs: u64) -> ConnOptions {
    let total = Duration::from_secs(secs.max(1));
    ConnOptions {
        timeout: total,
        udp_timeout: total / 7,
        udp_retries: 2,
        ..ConnOptions::default()
    }
}

fn hash(s: &str) -> Result<InfoHash, String> {
    InfoHash::from_hex(s).ok_or_else(|| format!("`{s}` is not an info hash (40 hex digits)"))
}

fn usage(e: String) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn failed(url: &str, e: TrackerError) -> ExitCode {
    if let TrackerError::BadUrl(_) = e {
        return usage(e.to_string());
    }
    eprintln!("error: {url}: {e}");
    ExitCode::FAILURE
}

fn random_peer_id() -> PeerId {
    const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut p = *b"-RS0100-000000000000";
    let mut r = [0u8; 12];
    let _ = getrandom::getrandom(&mut r);
    for (d, b) in p[8..].iter_mut().zip(r) {
        *d = ALNUM[b as usize % ALNUM.len()];
    }
    PeerId(p)
}

pub fn announce(a: AnnounceArgs) -> ExitCode {
    let info_hash = match hash(&a.info_hash) {
        Ok(h) => h,
        Err(e) => return usage(e),
    };
    let event = match a.event.as_str() {
        "started" => Event::Started,
        "completed" => Event::Completed,
        "stopped" => Event::Stopped,
        "paused" => Event::Paused,
        "update" | "none" | "" => Event::None,
        other => {
            return usage(format!(
                "`{other}` is not an event (started, completed, stopped, paused, update)"
            ))
        }
    };
    let peer_id = match &a.peer_id {
        Some(s) => match PeerId::from_hex(s) {
            Some(p) => p,
            None => return usage(format!("`{s}` is not a peer id (40 hex digits)")),
        },
        None => random_peer_id(),
    };
    if a.port == 0 {
        return usage("--port: must be 1 to 65535".into());
    }
    let req = AnnounceRequest {
        info_hash,
        peer_id,
        port: a.port,
        uploaded: 0,
        downloaded: 0,
        left: a.left,
        event,
        numwant: a.numwant,
        key: None,
    };
    match super::announce_once(&a.url, &req, &conn_options(a.timeout)) {
        Ok(r) => {
            if a.json {
                let v = serde_json::json!({
                    "url": a.url,
                    "info_hash": info_hash.to_string(),
                    "complete": r.complete,
                    "incomplete": r.incomplete,
                    "interval": r.interval,
                    "min_interval": r.min_interval,
                    "peers": r.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "warning": r.warning,
                });
                println!("{v}");
            } else {
                println!(
                    "{}: {} seeders, {} leechers, interval {} s{}",
                    a.url,
                    r.complete,
                    r.incomplete,
                    r.interval,
                    r.min_interval
                        .map_or(String::new(), |m| format!(", min interval {m} s"))
                );
                if let Some(w) = &r.warning {
                    println!("warning: {w}");
                }
                println!("peers ({}):", r.peers.len());
                for p in &r.peers {
                    println!("  {p}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(&a.url, e),
    }
}

pub fn scrape(a: ScrapeArgs) -> ExitCode {
    let hashes: Result<Vec<InfoHash>, String> = a.info_hashes.iter().map(|s| hash(s)).collect();
    let hashes = match hashes {
        Ok(h) => h,
        Err(e) => return usage(e),
    };
    // A scrape URL works as well as the announce URL it comes from.
    let url = a.url.replacen("/scrape", "/announce", 1);
    match super::scrape(&url, &hashes, &conn_options(a.timeout)) {
        Ok(stats) => {
            if a.json {
                let files: serde_json::Map<String, serde_json::Value> = hashes
                    .iter()
                    .zip(&stats)
                    .map(|(h, s)| {
                        (
                            h.to_string(),
                            serde_json::json!({"complete": s.complete, "incomplete": s.incomplete, "downloaded": s.downloaded}),
                        )
                    })
                    .collect();
                println!("{}", serde_json::json!({"url": a.url, "files": files}));
            } else {
                println!("{}:", a.url);
                for (h, s) in hashes.iter().zip(&stats) {
                    println!(
                        "  {h}  {} seeders, {} leechers, {} downloaded",
                        s.complete, s.incomplete, s.downloaded
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(&a.url, e),
    }
}
