//! Tracker client: the reference package's `Client` in Rust terms. One std
//! thread per announce URL; events come out on a crossbeam-channel
//! receiver. It never imports `server/`.
//!
//! ```no_run
//! use bittorrent_tracker::client::{Client, ClientEvent, ClientOptions};
//! use bittorrent_tracker::{InfoHash, PeerId};
//!
//! let opts = ClientOptions::new(
//!     InfoHash::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap(),
//!     PeerId(*b"-BT0001-123456789012"),
//!     6881,
//!     &["udp://tracker.example:6969/announce", "https://tracker.example/announce"],
//! );
//! let client = Client::new(opts);
//! client.start();
//! for ev in client.events().iter() {
//!     if let ClientEvent::Peer { addr, .. } = ev {
//!         println!("peer {addr}");
//!     }
//! }
//! ```

pub mod cli;
pub mod conn;

use crate::protocol::ws::{Offer, Relayed};
use crate::protocol::{AnnounceRequest, AnnounceResponse, Event, InfoHash, PeerId, ScrapeStats};
use conn::{Conn, ConnOptions, TrackerError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use conn::{parse_url, scrape_url};

/// Bytes moved so far, as a tracker wants to hear them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still to get; 0 makes the client a seeder.
    pub left: u64,
}

/// Supplies the transfer figures at each announce.
pub type StatsFn = Arc<dyn Fn() -> TransferStats + Send + Sync>;
/// Supplies WebRTC offers for a WebSocket announce that wants this many.
pub type OffersFn = Arc<dyn Fn(usize) -> Vec<Offer> + Send + Sync>;

/// What a [`Client`] is built from.
#[derive(Clone)]
pub struct ClientOptions {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The port this peer listens on.
    pub port: u16,
    pub announce: Vec<String>,
    /// Peers wanted per announce (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// Sent along as `key`, so a tracker can tell this peer across addresses.
    pub key: Option<u32>,
    /// Transfer figures at each announce; without it, `update(Some(..))`
    /// values are remembered, and a fresh client reports 0 left as a leecher
    /// (`left` absent).
    pub stats: Option<StatsFn>,
    /// WebRTC offers for WebSocket trackers.
    pub offers: Option<OffersFn>,
    pub conn: ConnOptions,
}

impl ClientOptions {
    /// Options with the defaults: the tracker's numwant, BEP 15 timing.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16, announce: &[&str]) -> Self {
        ClientOptions {
            info_hash,
            peer_id,
            port,
            announce: announce.iter().map(|s| s.to_string()).collect(),
            numwant: None,
            key: None,
            stats: None,
            offers: None,
            conn: ConnOptions::default(),
        }
    }
}

/// What a [`Client`] tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A tracker answered an announce.
    Update {
        url: String,
        complete: u32,
        incomplete: u32,
        interval: u32,
    },
    /// A peer from a tracker's announce reply.
    Peer { url: String, addr: SocketAddr },
    /// A tracker answered a scrape.
    Scrape {
        url: String,
        info_hash: InfoHash,
        complete: u32,
        incomplete: u32,
        downloaded: u32,
    },
    /// A tracker failed or sent garbage; the client carries on with the
    /// others and tries this one again later.
    Warning { url: String, message: String },
    /// Nothing can be done: no announce URL could be used.
    Error { message: String },
    /// A WebSocket tracker relayed another peer's WebRTC offer (answer it
    /// with [`Client::answer`]) or the answer to one of this client's.
    Relayed { url: String, relayed: Relayed },
}

enum Cmd {
    Announce(Event, Option<TransferStats>),
    Scrape,
    Answer {
        to: PeerId,
        offer_id: [u8; 20],
        answer: String,
    },
    /// Announce `stopped` (if started) and end.
    Stop,
}

struct Worker {
    url: String,
    tx: Sender<Cmd>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A tracker client for one torrent, announcing to every URL it was given.
pub struct Client {
    workers: Vec<Worker>,
    events: Receiver<ClientEvent>,
}

/// When a failed announce is tried again, at the latest.
const RETRY_AFTER: Duration = Duration::from_secs(60);

impl Client {
    /// A client that has not announced yet. URLs that cannot be used come
    /// out as warnings (and an error when none is left).
    pub fn new(opts: ClientOptions) -> Client {
        let (etx, events) = crossbeam_channel::unbounded();
        let opts = Arc::new(opts);
        let mut workers = Vec::new();
        for url in &opts.announce {
            let cancel = Arc::new(AtomicBool::new(false));
            let conn =
                conn::parse_url(url).and_then(|u| Conn::new(u, opts.conn.clone(), cancel.clone()));
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    let _ = etx.send(ClientEvent::Warning {
                        url: url.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut run = Run {
                url: url.clone(),
                cancel: cancel.clone(),
                conn,
                opts: opts.clone(),
                events: etx.clone(),
                last: None,
                interval: None,
                min_interval: Duration::ZERO,
                started: false,
                stats: TransferStats {
                    left: u64::MAX,
                    ..TransferStats::default()
                },
                pending: None,
            };
            let thread = std::thread::Builder::new()
                .name("tracker-client".into())
                .spawn(move || run.main(rx))
                .ok();
            workers.push(Worker {
                url: url.clone(),
                tx,
                cancel,
                thread,
            });
        }
        if workers.is_empty() {
            let _ = etx.send(ClientEvent::Error {
                message: "no usable announce URL".into(),
            });
        }
        Client { workers, events }
    }

    /// The event stream.
    pub fn events(&self) -> &Receiver<ClientEvent> {
        &self.events
    }

    fn all(&self, make: impl Fn() -> Cmd) {
        for w in &self.workers {
            let _ = w.tx.send(make());
        }
    }

    /// Announces `started` and keeps announcing at the tracker's interval.
    pub fn start(&self) {
        self.all(|| Cmd::Announce(Event::Started, None));
    }

    /// Announces now (with these figures, when given), though never sooner
    /// than the tracker's `min interval` after the last announce.
    pub fn update(&self, stats: Option<TransferStats>) {
        self.all(|| Cmd::Announce(Event::None, stats));
    }

    /// Announces `completed`.
    pub fn complete(&self, stats: Option<TransferStats>) {
        self.all(|| Cmd::Announce(Event::Completed, stats));
    }

    /// Asks every tracker for this torrent's counts (as `Scrape` events).
    pub fn scrape(&self) {
        self.all(|| Cmd::Scrape);
    }

    /// Answers an offer that a WebSocket tracker at `url` relayed.
    pub fn answer(&self, url: &str, to: PeerId, offer_id: [u8; 20], answer: &str) {
        for w in self.workers.iter().filter(|w| w.url == url) {
            let _ = w.tx.send(Cmd::Answer {
                to,
                offer_id,
                answer: answer.to_string(),
            });
        }
    }

    /// Announces `stopped` to every tracker (that was started) and waits
    /// for them, each within its timeout.
    pub fn stop(mut self) {
        self.all(|| Cmd::Stop);
        self.join();
    }

    /// Ends at once: no `stopped`, waits cut short.
    pub fn destroy(mut self) {
        for w in &self.workers {
            w.cancel.store(true, Ordering::Relaxed);
        }
        self.workers.iter().for_each(|w| {
            let _ = w.tx.send(Cmd::Stop);
        });
        self.join();
    }

    fn join(&mut self) {
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for w in &self.workers {
            w.cancel.store(true, Ordering::Relaxed);
            let _ = w.tx.send(Cmd::Stop);
        }
    }
}

/// One tracker's thread.
struct Run {
    url: String,
    /// Set by `destroy`: end without a word to the tracker.
    cancel: Arc<AtomicBool>,
    conn: Conn,
    opts: Arc<ClientOptions>,
    events: Sender<ClientEvent>,
    last: Option<Instant>,
    /// The tracker's interval, once it said one.
    interval: Option<Duration>,
    min_interval: Duration,
    started: bool,
    /// Figures given with `update`/`complete`, for trackers without a stats callback.
    stats: TransferStats,
    /// An update waiting for `min interval` to pass.
    pending: Option<Instant>,
}

impl Run {
    fn emit(&self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    fn warn(&self, e: &TrackerError) {
        self.emit(ClientEvent::Warning {
            url: self.url.clone(),
            message: e.to_string(),
        });
    }

    /// Hands relayed offers and answers on as events.
    fn relay(&self) -> impl FnMut(Relayed) {
        let (events, url) = (self.events.clone(), self.url.clone());
        move |r| {
            let _ = events.send(ClientEvent::Relayed {
                url: url.clone(),
                relayed: r,
            });
        }
    }

    /// When the next periodic announce is due.
    fn due(&self) -> Option<Instant> {
        let regular = match (self.started, self.last) {
            (true, Some(t)) => Some(t + self.interval.unwrap_or(RETRY_AFTER)),
            _ => None,
        };
        match (regular, self.pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn main(&mut self, rx: Receiver<Cmd>) {
        loop {
            let wait = self.due().map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            // WebSocket trackers relay offers at any time: keep reading.
            let cmd = if matches!(self.conn, Conn::Ws(_)) && self.started {
                match rx.try_recv() {
                    Ok(c) => Ok(c),
                    Err(crossbeam_channel::TryRecvError::Empty) => {
                        let mut relay = self.relay();
                        self.conn
                            .poll(wait.min(Duration::from_millis(200)), &mut relay);
                        Err(RecvTimeoutError::Timeout)
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        Err(RecvTimeoutError::Disconnected)
                    }
                }
            } else {
                rx.recv_timeout(wait)
            };
            match cmd {
                Ok(Cmd::Announce(event, stats)) => {
                    if let Some(s) = stats {
                        self.stats = s;
                    }
                    let too_soon = self.last.is_some_and(|t| t.elapsed() < self.min_interval);
                    if event == Event::None && too_soon {
                        self.pending = self.last.map(|t| t + self.min_interval);
                    } else {
                        self.announce(event);
                    }
                }
                Ok(Cmd::Scrape) => self.scrape(),
                Ok(Cmd::Answer {
                    to,
                    offer_id,
                    answer,
                }) => {
                    let (h, p) = (self.opts.info_hash, self.opts.peer_id);
                    if let Err(e) = self.conn.answer(&h, &p, &to, &offer_id, &answer) {
                        self.warn(&e);
                    }
                }
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if self.started && !self.cancel.load(Ordering::Relaxed) {
                        self.announce(Event::Stopped);
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.due().is_some_and(|d| d <= Instant::now()) {
                        self.announce(Event::None);
                    }
                }
            }
        }
    }

    fn request(&self, event: Event) -> AnnounceRequest {
        let s = match &self.opts.stats {
            Some(f) => f(),
            None => self.stats,
        };
        AnnounceRequest {
            info_hash: self.opts.info_hash,
            peer_id: self.opts.peer_id,
            port: self.opts.port,
            uploaded: s.uploaded,
            downloaded: s.downloaded,
            left: (s.left != u64::MAX).then_some(s.left),
            event,
            numwant: self.opts.numwant,
            key: self.opts.key,
        }
    }

    fn announce(&mut self, event: Event) {
        let req = self.request(event);
        let offers = match (&self.opts.offers, &self.conn) {
            (Some(f), Conn::Ws(_)) if event != Event::Stopped => {
                f(self.opts.numwant.unwrap_or(10) as usize)
            }
            _ => Vec::new(),
        };
        self.pending = None;
        self.last = Some(Instant::now());
        if event == Event::Started {
            self.started = true;
        }
        let mut relay = self.relay();
        let result = self.conn.announce(&req, &offers, &mut relay);
        match result {
            Ok(r) => self.answered(r),
            Err(TrackerError::Cancelled) => {}
            Err(e) => {
                self.warn(&e);
                // Try again within a minute rather than a whole interval.
                let retry = self.interval.unwrap_or(RETRY_AFTER).min(RETRY_AFTER);
                self.pending = Some(Instant::now() + retry);
            }
        }
    }

    fn answered(&mut self, r: AnnounceResponse) {
        if let Some(w) = &r.warning {
            self.emit(ClientEvent::Warning {
                url: self.url.clone(),
                message: format!("tracker warning: {w}"),
            });
        }
        self.interval = Some(Duration::from_secs(r.interval.max(1) as u64));
        self.min_interval = Duration::from_secs(r.min_interval.unwrap_or(0) as u64);
        self.emit(ClientEvent::Update {
            url: self.url.clone(),
            complete: r.complete,
            incomplete: r.incomplete,
            interval: r.interval,
        });
        for addr in r.peers {
            self.emit(ClientEvent::Peer {
                url: self.url.clone(),
                addr,
            });
        }
    }

    fn scrape(&mut self) {
        let h = self.opts.info_hash;
        let mut relay = self.relay();
        match self.conn.scrape(&[h], &mut relay) {
            Ok(s) => {
                let s = s.first().copied().unwrap_or_default();
                self.emit(ClientEvent::Scrape {
                    url: self.url.clone(),
                    info_hash: h,
                    complete: s.complete,
                    incomplete: s.incomplete,
                    downloaded: s.downloaded,
                });
            }
            Err(TrackerError::Cancelled) => {}
            Err(e) => self.warn(&e),
        }
    }
}

/// One announce to one tracker, waiting for the reply: what the
/// `announce` command does.
pub fn announce_once(
    url: &str,
    req: &AnnounceRequest,
    opts: &ConnOptions,
) -> Result<AnnounceResponse, TrackerError> {
    let u = conn::parse_url(url)?;
    let mut c = Conn::new(u, opts.clone(), Arc::new(AtomicBool::new(false)))?;
    c.announce(req, &[], &mut |_| {})
}

/// Counts for several torrents from one tracker, in the order asked: the
/// reference's static `Client.scrape({announce, infoHash: [...]})`. Works
/// over every protocol; UDP asks 74 hashes a packet.
pub fn scrape(
    url: &str,
    hashes: &[InfoHash],
    opts: &ConnOptions,
) -> Result<Vec<ScrapeStats>, TrackerError> {
    let u = conn::parse_url(url)?;
    let mut c = Conn::new(u, opts.clone(), Arc::new(AtomicBool::new(false)))?;
    c.scrape(hashes, &mut |_| {})
}
