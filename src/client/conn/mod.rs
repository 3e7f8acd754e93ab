//! One connection to one tracker, blocking: announce and scrape over HTTP(S)
//! (ureq with rustls, [`http`]), UDP (BEP 15 and 41, [`udp`]) and WebSocket
//! (tungstenite, [`ws`]). This file holds what they share: the options, the
//! errors, the tracker URLs, and [`Conn`], which is one of the three.

mod http;
mod udp;
mod ws;

pub use http::Http;
pub use udp::Udp;
pub use ws::{Ws, WsStream};

use crate::protocol::ws::{Offer, Relayed};
use crate::protocol::{
    http as httpw, AnnounceRequest, AnnounceResponse, InfoHash, PeerId, ScrapeStats,
};
use std::fmt;
use std::io::ErrorKind;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How long to wait, and how to identify.
#[derive(Clone, Debug)]
pub struct ConnOptions {
    /// `User-Agent` for HTTP(S) and WebSocket handshakes.
    pub user_agent: String,
    /// Extra `key=value` pairs for HTTP announces (already percent-encoded).
    pub query: Vec<(String, String)>,
    /// HTTP and WebSocket: the longest wait for a reply.
    pub timeout: Duration,
    /// UDP: the first wait; BEP 15 doubles it on every retransmission.
    pub udp_timeout: Duration,
    /// UDP: retransmissions after the first try (BEP 15 allows up to 8).
    pub udp_retries: u32,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            user_agent: format!("bittorrent-tracker/{}", env!("CARGO_PKG_VERSION")),
            query: Vec::new(),
            timeout: Duration::from_secs(15),
            udp_timeout: Duration::from_secs(15),
            udp_retries: 8,
        }
    }
}

/// Why a request to a tracker failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerError {
    /// The URL cannot be used.
    BadUrl(String),
    /// The tracker said no: its `failure reason` or error message.
    Refused(String),
    /// No answer in time.
    Timeout,
    /// The tracker answered with something that is not a tracker reply.
    Invalid(String),
    /// Network trouble: refused connection, unreachable host, ...
    Io(String),
    /// This tracker's URL has no scrape form (BEP 48: the last path segment
    /// must start with `announce`).
    NoScrape,
    /// Told to stop while waiting.
    Cancelled,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::BadUrl(e) => write!(f, "bad tracker URL: {e}"),
            TrackerError::Refused(r) => write!(f, "tracker refused: {r}"),
            TrackerError::Timeout => write!(f, "no reply from the tracker in time"),
            TrackerError::Invalid(e) => write!(f, "invalid reply: {e}"),
            TrackerError::Io(e) => write!(f, "{e}"),
            TrackerError::NoScrape => write!(
                f,
                "this tracker URL has no scrape form (its path does not end in /announce)"
            ),
            TrackerError::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for TrackerError {}

impl From<httpw::ReplyError> for TrackerError {
    fn from(e: httpw::ReplyError) -> Self {
        match e {
            httpw::ReplyError::Failure(r) => TrackerError::Refused(r),
            httpw::ReplyError::Invalid(e) => TrackerError::Invalid(e),
        }
    }
}

pub(super) fn io(e: std::io::Error) -> TrackerError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TrackerError::Timeout,
        _ => TrackerError::Io(e.to_string()),
    }
}

/// The URL a tracker's scrape is at: the last path segment `announce...`
/// becomes `scrape...` (BEP 48).
pub fn scrape_url(announce: &Url) -> Option<Url> {
    let path = announce.path();
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let last = &path[cut..];
    let rest = last.strip_prefix("announce")?;
    let mut u = announce.clone();
    u.set_path(&format!("{}scrape{rest}", &path[..cut]));
    Some(u)
}

/// Parses a tracker URL: `http`, `https`, `udp`, `ws` or `wss`.
pub fn parse_url(s: &str) -> Result<Url, TrackerError> {
    let u = Url::parse(s).map_err(|e| TrackerError::BadUrl(format!("{s}: {e}")))?;
    match u.scheme() {
        "http" | "https" | "udp" | "ws" | "wss" if u.host().is_some() => Ok(u),
        "http" | "https" | "udp" | "ws" | "wss" => {
            Err(TrackerError::BadUrl(format!("{s}: no host")))
        }
        other => Err(TrackerError::BadUrl(format!(
            "{s}: `{other}` is not a tracker scheme (http, https, udp, ws, wss)"
        ))),
    }
}

/// A connection to one tracker.
pub enum Conn {
    Http(Http),
    Udp(Udp),
    Ws(Ws),
}

impl Conn {
    /// Prepares a connection to `url` (nothing is sent yet). `cancel` stops
    /// a wait early.
    pub fn new(url: Url, opts: ConnOptions, cancel: Arc<AtomicBool>) -> Result<Conn, TrackerError> {
        Ok(match url.scheme() {
            "http" | "https" => Conn::Http(Http::new(url, opts)),
            "udp" => Conn::Udp(Udp::new(url, opts, cancel)?),
            "ws" | "wss" => Conn::Ws(Ws {
                url,
                opts,
                socket: None,
                cancel,
            }),
            other => return Err(TrackerError::BadUrl(format!("scheme {other}"))),
        })
    }

    /// Announces; WebSocket offers go along (others ignore them). Messages
    /// relayed meanwhile go to `relayed`.
    pub fn announce(
        &mut self,
        a: &AnnounceRequest,
        offers: &[Offer],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<AnnounceResponse, TrackerError> {
        match self {
            Conn::Http(h) => h.announce(a),
            Conn::Udp(u) => u.announce(a),
            Conn::Ws(w) => w.announce(a, offers, relayed),
        }
    }

    /// Scrapes: counts for each hash, in the order asked (zeros for hashes
    /// the tracker did not mention).
    pub fn scrape(
        &mut self,
        hashes: &[InfoHash],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<Vec<ScrapeStats>, TrackerError> {
        let got = match self {
            Conn::Http(h) => h.scrape(hashes)?,
            Conn::Udp(u) => return u.scrape(hashes),
            Conn::Ws(w) => w.scrape(hashes, relayed)?,
        };
        Ok(hashes
            .iter()
            .map(|h| {
                got.iter()
                    .find(|(g, _)| g == h)
                    .map(|(_, s)| *s)
                    .unwrap_or_default()
            })
            .collect())
    }

    /// WebSocket: sends an answer to an offer that was relayed to us.
    pub fn answer(
        &mut self,
        info_hash: &InfoHash,
        peer_id: &PeerId,
        to: &PeerId,
        offer_id: &[u8; 20],
        answer: &str,
    ) -> Result<(), TrackerError> {
        match self {
            Conn::Ws(w) => w.answer(info_hash, peer_id, to, offer_id, answer),
            _ => Err(TrackerError::BadUrl(
                "answers go over WebSocket trackers only".into(),
            )),
        }
    }

    /// WebSocket: waits up to `wait` for relayed messages. Other trackers
    /// just wait.
    pub fn poll(&mut self, wait: Duration, relayed: &mut dyn FnMut(Relayed)) {
        match self {
            Conn::Ws(w) if w.socket.is_some() => w.poll(wait, relayed),
            _ => std::thread::sleep(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_urls_follow_bep_48() {
        let s = |a: &str| scrape_url(&Url::parse(a).unwrap()).map(|u| u.to_string());
        assert_eq!(
            s("http://t.example/announce").as_deref(),
            Some("http://t.example/scrape")
        );
        assert_eq!(
            s("http://t.example/x/announce.php?passkey=1").as_deref(),
            Some("http://t.example/x/scrape.php?passkey=1")
        );
        assert_eq!(s("http://t.example/a"), None);
        assert_eq!(s("http://t.example/announce/x"), None);
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("udp://[::1]:6969/announce").is_ok());
        assert!(parse_url("wss://tracker.example").is_ok());
        assert!(
            matches!(parse_url("ftp://x/announce"), Err(TrackerError::BadUrl(e)) if e.contains("not a tracker scheme"))
        );
        assert!(matches!(
            parse_url("not a url"),
            Err(TrackerError::BadUrl(_))
        ));
    }
}
