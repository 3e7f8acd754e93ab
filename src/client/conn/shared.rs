//! What the three protocols' connections share: their options, their
//! errors, and the tracker URLs.

use crate::protocol::http as httpw;
use std::fmt;
use std::io::ErrorKind;
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
