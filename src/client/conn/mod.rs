//! One connection to one tracker, blocking: announce and scrape over HTTP(S)
//! (ureq with rustls, [`http`]), UDP (BEP 15 and 41, [`udp`]) and WebSocket
//! (tungstenite, [`ws`]). This file holds what they share: the options, the
//! errors, the tracker URLs, and [`Conn`], which is one of the three.

mod http;
mod shared;
mod udp;
mod ws;

pub use http::Http;
pub use shared::{parse_url, scrape_url, ConnOptions, TrackerError};
pub use udp::Udp;
pub use ws::{Ws, WsStream};

use crate::protocol::ws::{Offer, Relayed};
use crate::protocol::{AnnounceRequest, AnnounceResponse, InfoHash, PeerId, ScrapeStats};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

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
