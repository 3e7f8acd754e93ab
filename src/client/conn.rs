//! One connection to one tracker, blocking: announce and scrape over HTTP(S)
//! (ureq with rustls), UDP (BEP 15 and 41) and WebSocket (tungstenite).

use crate::protocol::ws::{self as wsw, ClientOffer, ServerMessage};
use crate::protocol::{
    http as httpw, udp as udpw, AnnounceRequest, AnnounceResponse, InfoHash, PeerId, ScrapeStats,
};
use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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

fn io(e: std::io::Error) -> TrackerError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TrackerError::Timeout,
        _ => TrackerError::Io(e.to_string()),
    }
}

/// A message a WebSocket tracker sent unasked: another peer's offer, or the
/// answer to one of ours.
#[derive(Debug)]
pub enum Relayed {
    Offer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: [u8; 20],
        offer: String,
    },
    Answer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: [u8; 20],
        answer: String,
    },
}

impl Relayed {
    /// The relayed message in `m`, or `m` itself when it is something else.
    fn from_message(m: ServerMessage) -> Result<Relayed, ServerMessage> {
        match m {
            ServerMessage::Offer {
                info_hash,
                peer_id,
                offer_id,
                offer,
            } => Ok(Relayed::Offer {
                info_hash,
                peer_id,
                offer_id,
                offer: offer.get().to_string(),
            }),
            ServerMessage::Answer {
                info_hash,
                peer_id,
                offer_id,
                answer,
            } => Ok(Relayed::Answer {
                info_hash,
                peer_id,
                offer_id,
                answer: answer.get().to_string(),
            }),
            other => Err(other),
        }
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
        offers: &[ClientOffer],
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

// ---- HTTP ----

pub struct Http {
    url: Url,
    agent: ureq::Agent,
    opts: ConnOptions,
}

impl Http {
    fn new(url: Url, opts: ConnOptions) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .user_agent(opts.user_agent.as_str())
            .http_status_as_error(false)
            .build()
            .new_agent();
        Http { url, agent, opts }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, TrackerError> {
        let mut resp = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::Timeout(_) => TrackerError::Timeout,
            ureq::Error::Io(e) => io(e),
            e => TrackerError::Io(e.to_string()),
        })?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|e| TrackerError::Invalid(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(TrackerError::Invalid(format!(
                "HTTP {status}: {}",
                text.trim()
            )));
        }
        Ok(body)
    }

    fn announce(&mut self, a: &AnnounceRequest) -> Result<AnnounceResponse, TrackerError> {
        let mut url = self.url.to_string();
        httpw::write_announce_query(a, &self.opts.query, &mut url);
        let body = self.get(&url)?;
        Ok(httpw::parse_announce_response(&body)?)
    }

    fn scrape(
        &mut self,
        hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
        let mut url = scrape_url(&self.url)
            .ok_or(TrackerError::NoScrape)?
            .to_string();
        httpw::write_scrape_query(hashes, &mut url);
        let body = self.get(&url)?;
        Ok(httpw::parse_scrape_response(&body)?)
    }
}

// ---- UDP ----

/// A connection id is used for a minute at most (BEP 15).
const CONNECTION_ID_LIFE: Duration = Duration::from_secs(60);

pub struct Udp {
    url: Url,
    addr: SocketAddr,
    sock: UdpSocket,
    conn: Option<(u64, Instant)>,
    opts: ConnOptions,
    cancel: Arc<AtomicBool>,
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_ne_bytes(b)
}

impl Udp {
    fn new(url: Url, opts: ConnOptions, cancel: Arc<AtomicBool>) -> Result<Udp, TrackerError> {
        let port = url.port().ok_or_else(|| {
            TrackerError::BadUrl(format!("{url}: a UDP tracker URL needs a port"))
        })?;
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| TrackerError::Io(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| TrackerError::Io(format!("{host} has no address")))?;
        let local: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("an address")
        } else {
            "0.0.0.0:0".parse().expect("an address")
        };
        let sock = UdpSocket::bind(local).map_err(io)?;
        // Connected: only the tracker's datagrams arrive, and an ICMP "port
        // unreachable" comes back as "connection refused" at once.
        sock.connect(addr).map_err(io)?;
        Ok(Udp {
            url,
            addr,
            sock,
            conn: None,
            opts,
            cancel,
        })
    }

    /// Sends `req` (rewritten for each try by `make`) and waits for a reply
    /// with its transaction id, retransmitting after 15·2ⁿ s (the
    /// configured base), n up to the configured retries.
    fn exchange(
        &mut self,
        make: &mut dyn FnMut(u32, &mut Vec<u8>),
    ) -> Result<Vec<u8>, TrackerError> {
        let mut out = Vec::with_capacity(128);
        let mut buf = vec![0u8; 65536];
        for attempt in 0..=self.opts.udp_retries {
            let tid = random_u32();
            out.clear();
            make(tid, &mut out);
            match self.sock.send(&out) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err(TrackerError::Io(format!(
                        "{}: connection refused",
                        self.addr
                    )))
                }
                r => r.map_err(io)?,
            };
            let wait = self.opts.udp_timeout.saturating_mul(1 << attempt.min(16));
            let deadline = Instant::now() + wait;
            loop {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(TrackerError::Cancelled);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock
                    .set_read_timeout(Some(left.min(Duration::from_millis(250))))
                    .map_err(io)?;
                match self.sock.recv(&mut buf) {
                    Ok(n) => {
                        let reply = &buf[..n];
                        if reply.len() >= 8 && reply[4..8] == tid.to_be_bytes() {
                            return Ok(reply.to_vec());
                        }
                        // Another transaction's (late) reply: keep waiting.
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // An ICMP "port unreachable" from an earlier send: no tracker there.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        return Err(TrackerError::Io(format!(
                            "{}: connection refused",
                            self.addr
                        )))
                    }
                    Err(e) => return Err(io(e)),
                }
            }
        }
        Err(TrackerError::Timeout)
    }

    fn connection_id(&mut self) -> Result<u64, TrackerError> {
        if let Some((id, at)) = self.conn {
            if at.elapsed() < CONNECTION_ID_LIFE {
                return Ok(id);
            }
        }
        let reply = self.exchange(&mut |tid, out| udpw::write_connect_request(out, tid))?;
        match udpw::parse_reply(&reply) {
            Some(udpw::Reply::Connect { connection_id, .. }) => {
                self.conn = Some((connection_id, Instant::now()));
                Ok(connection_id)
            }
            Some(udpw::Reply::Error { message, .. }) => Err(TrackerError::Refused(
                String::from_utf8_lossy(message).into_owned(),
            )),
            _ => Err(TrackerError::Invalid("not a connect reply".into())),
        }
    }

    fn announce(&mut self, a: &AnnounceRequest) -> Result<AnnounceResponse, TrackerError> {
        let cid = self.connection_id()?;
        // BEP 41: the announce URL's path and query go along.
        let mut url_data = self.url.path().as_bytes().to_vec();
        if let Some(q) = self.url.query() {
            url_data.push(b'?');
            url_data.extend_from_slice(q.as_bytes());
        }
        if url_data == b"/" {
            url_data.clear();
        }
        let reply = self
            .exchange(&mut |tid, out| udpw::write_announce_request(out, cid, tid, a, &url_data))?;
        match udpw::parse_reply(&reply) {
            Some(udpw::Reply::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            }) => {
                let v6 = self.addr.is_ipv6();
                let size = if v6 { 18 } else { 6 };
                if peers.len() % size != 0 {
                    return Err(TrackerError::Invalid(format!(
                        "peers not a multiple of {size} bytes"
                    )));
                }
                Ok(AnnounceResponse {
                    interval,
                    min_interval: None,
                    complete: seeders,
                    incomplete: leechers,
                    peers: crate::protocol::compact_peers(peers, v6).collect(),
                    warning: None,
                })
            }
            Some(udpw::Reply::Error { message, .. }) => {
                self.forget_on_refusal(message);
                Err(TrackerError::Refused(
                    String::from_utf8_lossy(message).into_owned(),
                ))
            }
            _ => Err(TrackerError::Invalid("not an announce reply".into())),
        }
    }

    /// An error about the connection id means a new one is needed.
    fn forget_on_refusal(&mut self, message: &[u8]) {
        if String::from_utf8_lossy(message)
            .to_ascii_lowercase()
            .contains("connection")
        {
            self.conn = None;
        }
    }

    fn scrape(&mut self, hashes: &[InfoHash]) -> Result<Vec<ScrapeStats>, TrackerError> {
        let mut all = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(udpw::MAX_SCRAPE_HASHES) {
            let cid = self.connection_id()?;
            let reply =
                self.exchange(&mut |tid, out| udpw::write_scrape_request(out, cid, tid, chunk))?;
            match udpw::parse_reply(&reply) {
                Some(udpw::Reply::Scrape { entries, .. }) if entries.len() >= chunk.len() => {
                    all.extend(entries[..chunk.len()].iter().map(udpw::scrape_entry));
                }
                Some(udpw::Reply::Scrape { entries, .. }) => {
                    return Err(TrackerError::Invalid(format!(
                        "{} counts for {} hashes",
                        entries.len(),
                        chunk.len()
                    )))
                }
                Some(udpw::Reply::Error { message, .. }) => {
                    self.forget_on_refusal(message);
                    return Err(TrackerError::Refused(
                        String::from_utf8_lossy(message).into_owned(),
                    ));
                }
                _ => return Err(TrackerError::Invalid("not a scrape reply".into())),
            }
        }
        Ok(all)
    }
}

// ---- WebSocket ----

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Plain or TLS, under tungstenite.
pub enum WsStream {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

impl WsStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            WsStream::Plain(s) => s,
            WsStream::Tls(s) => &s.sock,
        }
    }
}

impl std::io::Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            WsStream::Plain(s) => s.read(buf),
            WsStream::Tls(s) => s.read(buf),
        }
    }
}

impl std::io::Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            WsStream::Plain(s) => s.write(buf),
            WsStream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            WsStream::Plain(s) => s.flush(),
            WsStream::Tls(s) => s.flush(),
        }
    }
}

pub struct Ws {
    url: Url,
    opts: ConnOptions,
    socket: Option<Box<tungstenite::WebSocket<WsStream>>>,
    cancel: Arc<AtomicBool>,
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn ws_err(e: tungstenite::Error) -> TrackerError {
    match e {
        tungstenite::Error::Io(e) => io(e),
        e => TrackerError::Io(e.to_string()),
    }
}

impl Ws {
    fn connect(&mut self) -> Result<&mut tungstenite::WebSocket<WsStream>, TrackerError> {
        if self.socket.is_none() {
            let addrs = self
                .url
                .socket_addrs(|| None)
                .map_err(|e| TrackerError::Io(format!("cannot resolve {}: {e}", self.url)))?;
            let addr = addrs
                .first()
                .ok_or_else(|| TrackerError::Io(format!("{} has no address", self.url)))?;
            let tcp = TcpStream::connect_timeout(addr, self.opts.timeout).map_err(io)?;
            tcp.set_read_timeout(Some(self.opts.timeout)).map_err(io)?;
            tcp.set_write_timeout(Some(self.opts.timeout)).map_err(io)?;
            let _ = tcp.set_nodelay(true);
            let stream = if self.url.scheme() == "wss" {
                let host = self.url.host_str().unwrap_or_default().to_string();
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| TrackerError::BadUrl(e.to_string()))?;
                let conn = rustls::ClientConnection::new(tls_config(), name)
                    .map_err(|e| TrackerError::Io(e.to_string()))?;
                WsStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            } else {
                WsStream::Plain(tcp)
            };
            let mut req =
                tungstenite::client::IntoClientRequest::into_client_request(self.url.as_str())
                    .map_err(|e| TrackerError::BadUrl(e.to_string()))?;
            if let Ok(v) = self.opts.user_agent.parse() {
                req.headers_mut().insert("User-Agent", v);
            }
            let (ws, _) = tungstenite::client(req, stream).map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => ws_err(e),
                tungstenite::HandshakeError::Interrupted(_) => TrackerError::Timeout,
            })?;
            self.socket = Some(Box::new(ws));
        }
        Ok(self.socket.as_mut().expect("connected above"))
    }

    fn send(&mut self, text: String) -> Result<(), TrackerError> {
        let r = self.connect()?.send(tungstenite::Message::text(text));
        if let Err(e) = r {
            self.socket = None;
            return Err(ws_err(e));
        }
        Ok(())
    }

    /// Reads one message, waiting up to `wait`; `Ok(None)` when none came.
    fn read(&mut self, wait: Duration) -> Result<Option<ServerMessage>, TrackerError> {
        let Some(ws) = self.socket.as_mut() else {
            return Err(TrackerError::Io("not connected".into()));
        };
        let _ = ws
            .get_ref()
            .tcp()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => wsw::parse_server_message(t.as_str())
                .map(Some)
                .map_err(TrackerError::Invalid),
            Ok(tungstenite::Message::Close(_)) => {
                self.socket = None;
                Err(TrackerError::Io("the tracker closed the connection".into()))
            }
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            Err(e) => {
                self.socket = None;
                Err(ws_err(e))
            }
        }
    }

    /// Reads until `want` picks a message out, handing relayed ones on.
    fn until<T>(
        &mut self,
        relayed: &mut dyn FnMut(Relayed),
        mut want: impl FnMut(ServerMessage) -> Option<Result<T, TrackerError>>,
    ) -> Result<T, TrackerError> {
        let deadline = Instant::now() + self.opts.timeout;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(TrackerError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TrackerError::Timeout);
            }
            let Some(m) = self.read(left.min(Duration::from_millis(250)))? else {
                continue;
            };
            match Relayed::from_message(m) {
                Ok(r) => relayed(r),
                Err(m) => {
                    if let Some(r) = want(m) {
                        return r;
                    }
                }
            }
        }
    }

    fn announce(
        &mut self,
        a: &AnnounceRequest,
        offers: &[ClientOffer],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<AnnounceResponse, TrackerError> {
        self.send(wsw::client_announce(a, offers))?;
        let hash = a.info_hash;
        self.until(relayed, |m| match m {
            ServerMessage::Announce {
                info_hash,
                interval,
                complete,
                incomplete,
            } if info_hash == hash => Some(Ok(AnnounceResponse {
                interval: interval.unwrap_or(120),
                min_interval: None,
                complete,
                incomplete,
                peers: Vec::new(),
                warning: None,
            })),
            ServerMessage::Failure { reason, info_hash } if info_hash.is_none_or(|h| h == hash) => {
                Some(Err(TrackerError::Refused(reason)))
            }
            _ => None,
        })
    }

    fn scrape(
        &mut self,
        hashes: &[InfoHash],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
        self.send(wsw::client_scrape(hashes))?;
        self.until(relayed, |m| match m {
            ServerMessage::Scrape(files) => Some(Ok(files)),
            ServerMessage::Failure { reason, .. } => Some(Err(TrackerError::Refused(reason))),
            _ => None,
        })
    }

    fn answer(
        &mut self,
        info_hash: &InfoHash,
        peer_id: &PeerId,
        to: &PeerId,
        offer_id: &[u8; 20],
        answer: &str,
    ) -> Result<(), TrackerError> {
        let raw = serde_json::value::RawValue::from_string(answer.to_string())
            .map_err(|e| TrackerError::Invalid(format!("the answer is not JSON: {e}")))?;
        self.send(wsw::client_answer(info_hash, peer_id, to, offer_id, &raw))
    }

    fn poll(&mut self, wait: Duration, relayed: &mut dyn FnMut(Relayed)) {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            match self.read(left) {
                Ok(Some(m)) => {
                    if let Ok(r) = Relayed::from_message(m) {
                        relayed(r);
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    // Gone; the next announce reconnects.
                    std::thread::sleep(left);
                    return;
                }
            }
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
