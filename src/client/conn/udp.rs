//! Announce and scrape over UDP (BEP 15, with BEP 41's URL data).

use super::shared::{io, ConnOptions, TrackerError};
use crate::protocol::{udp as udpw, AnnounceRequest, AnnounceResponse, InfoHash, ScrapeStats};
use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// A connection id is used for a minute at most (BEP 15).
const CONNECTION_ID_LIFE: Duration = Duration::from_secs(60);

pub struct Udp {
    pub(super) url: Url,
    pub(super) addr: SocketAddr,
    pub(super) sock: UdpSocket,
    pub(super) conn: Option<(u64, Instant)>,
    pub(super) opts: ConnOptions,
    pub(super) cancel: Arc<AtomicBool>,
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_ne_bytes(b)
}

impl Udp {
    pub(super) fn new(
        url: Url,
        opts: ConnOptions,
        cancel: Arc<AtomicBool>,
    ) -> Result<Udp, TrackerError> {
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
    pub(super) fn exchange(
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

    pub(super) fn connection_id(&mut self) -> Result<u64, TrackerError> {
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

    pub(super) fn announce(
        &mut self,
        a: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
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
    pub(super) fn forget_on_refusal(&mut self, message: &[u8]) {
        if String::from_utf8_lossy(message)
            .to_ascii_lowercase()
            .contains("connection")
        {
            self.conn = None;
        }
    }

    pub(super) fn scrape(&mut self, hashes: &[InfoHash]) -> Result<Vec<ScrapeStats>, TrackerError> {
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
