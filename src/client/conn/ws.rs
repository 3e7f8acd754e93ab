//! Announce, scrape and relay over a WebSocket tracker (WebTorrent).

use super::shared::{io, ConnOptions, TrackerError};
use crate::protocol::ws::{self as wsw, Offer, Relayed, ServerMessage, WsAnnounce, WsRequest};
use crate::protocol::{AnnounceRequest, AnnounceResponse, InfoHash, PeerId, ScrapeStats};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Plain or TLS, under tungstenite.
pub enum WsStream {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

impl WsStream {
    pub(super) fn tcp(&self) -> &TcpStream {
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
    pub(super) url: Url,
    pub(super) opts: ConnOptions,
    pub(super) socket: Option<Box<tungstenite::WebSocket<WsStream>>>,
    pub(super) cancel: Arc<AtomicBool>,
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
    pub(super) fn connect(
        &mut self,
    ) -> Result<&mut tungstenite::WebSocket<WsStream>, TrackerError> {
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

    pub(super) fn send(&mut self, text: String) -> Result<(), TrackerError> {
        let r = self.connect()?.send(tungstenite::Message::text(text));
        if let Err(e) = r {
            self.socket = None;
            return Err(ws_err(e));
        }
        Ok(())
    }

    /// Reads one message, waiting up to `wait`; `Ok(None)` when none came.
    pub(super) fn read(&mut self, wait: Duration) -> Result<Option<ServerMessage>, TrackerError> {
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
    pub(super) fn until<T>(
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
            match m {
                ServerMessage::Relayed(r) => relayed(r),
                m => {
                    if let Some(r) = want(m) {
                        return r;
                    }
                }
            }
        }
    }

    pub(super) fn announce(
        &mut self,
        a: &AnnounceRequest,
        offers: &[Offer],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<AnnounceResponse, TrackerError> {
        self.send(
            WsRequest::Announce(Box::new(WsAnnounce::new(a.clone(), offers.to_vec()))).to_json(),
        )?;
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
                complete: complete.unwrap_or(0),
                incomplete: incomplete.unwrap_or(0),
                peers: Vec::new(),
                warning: None,
            })),
            ServerMessage::Failure { reason, info_hash } if info_hash.is_none_or(|h| h == hash) => {
                Some(Err(TrackerError::Refused(reason)))
            }
            _ => None,
        })
    }

    pub(super) fn scrape(
        &mut self,
        hashes: &[InfoHash],
        relayed: &mut dyn FnMut(Relayed),
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
        self.send(WsRequest::Scrape(hashes.to_vec()).to_json())?;
        self.until(relayed, |m| match m {
            ServerMessage::Scrape(files) => Some(Ok(files)),
            ServerMessage::Failure { reason, .. } => Some(Err(TrackerError::Refused(reason))),
            _ => None,
        })
    }

    pub(super) fn answer(
        &mut self,
        info_hash: &InfoHash,
        peer_id: &PeerId,
        to: &PeerId,
        offer_id: &[u8; 20],
        answer: &str,
    ) -> Result<(), TrackerError> {
        let raw = serde_json::value::RawValue::from_string(answer.to_string())
            .map_err(|e| TrackerError::Invalid(format!("the answer is not JSON: {e}")))?;
        let a = WsAnnounce::answer(*info_hash, *peer_id, *to, *offer_id, raw);
        self.send(WsRequest::Announce(Box::new(a)).to_json())
    }

    pub(super) fn poll(&mut self, wait: Duration, relayed: &mut dyn FnMut(Relayed)) {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            match self.read(left) {
                Ok(Some(ServerMessage::Relayed(r))) => relayed(r),
                Ok(Some(_)) => {}
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
