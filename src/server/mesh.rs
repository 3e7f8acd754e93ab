//! Messages between workers. Every worker has a lock-free single-producer
//! channel to every other (glommio's channel mesh): one mesh carries requests
//! to the owner of an info hash, another carries replies back, so a worker
//! busy sending replies never blocks one that is sending requests.

use super::stats::WorkerStats;
use crate::protocol::ws::WsAnnounce;
use crate::protocol::{AnnounceRequest, InfoHash, PeerId, Peers, ScrapeStats};
use crate::swarm::ws::Conn;
use crate::swarm::{Full, TorrentInfo, Want};
use std::net::{IpAddr, SocketAddr};

/// Slots in each channel of the mesh.
pub(crate) const CHANNEL_SIZE: usize = 4096;

/// A request for the owner of an info hash.
#[derive(Debug)]
pub(crate) enum Request {
    /// A UDP announce: the owner answers `src` from its own socket, which is
    /// bound to the same address and port.
    UdpAnnounce {
        transaction_id: u32,
        announce: AnnounceRequest,
        src: SocketAddr,
    },
    /// An HTTP announce; the reply goes back as [`Reply::Announce`].
    Announce {
        token: u32,
        announce: AnnounceRequest,
        ip: IpAddr,
        want: Want,
    },
    /// Counts for these hashes, in this order.
    Scrape { token: u32, hashes: Vec<InfoHash> },
    /// Counts for every torrent the owner has.
    /// A slice of the owner's torrents for a full scrape, from `at`.
    ScrapeSlice { token: u32, at: usize },
    /// The owner's counters and totals.
    Stats { token: u32 },
    /// A WebSocket announce from the peer on `conn`; the owner relays its
    /// offers and answer and replies with the counts.
    WsAnnounce {
        token: u32,
        conn: Conn,
        announce: Box<WsAnnounce>,
    },
    /// A message for WebSocket connection `conn` of the receiving worker.
    WsDeliver { conn: u64, text: String },
    /// The connection of a WebSocket peer closed.
    WsClosed {
        info_hash: InfoHash,
        peer_id: PeerId,
        conn: Conn,
    },
}

/// A reply to the worker that asked, matched by its token.
#[derive(Debug)]
pub(crate) enum Reply {
    Announce {
        token: u32,
        stats: Result<ScrapeStats, Full>,
        peers: Peers,
    },
    Scrape {
        token: u32,
        stats: Vec<ScrapeStats>,
    },
    ScrapeSlice {
        token: u32,
        entries: Vec<(InfoHash, ScrapeStats)>,
        /// Where the next slice starts; `None` after the last.
        next: Option<usize>,
    },
    WsAnnounce {
        token: u32,
        stats: Result<ScrapeStats, Full>,
    },
    Stats {
        token: u32,
        stats: Box<WorkerStats>,
    },
}

impl Reply {
    pub(crate) fn token(&self) -> u32 {
        match self {
            Reply::Announce { token, .. }
            | Reply::Scrape { token, .. }
            | Reply::ScrapeSlice { token, .. }
            | Reply::WsAnnounce { token, .. }
            | Reply::Stats { token, .. } => *token,
        }
    }
}

/// Requests from threads outside the executors (the [`super::Server`]
/// handle and the state saver), polled by each worker.
pub(crate) enum Control {
    Stats(crossbeam_channel::Sender<WorkerStats>),
    Torrents(crossbeam_channel::Sender<Vec<TorrentInfo>>),
    /// The shard's state records, taken a slice at a time between other
    /// work (`Save`), or at once (`Dump`, when the worker is frozen).
    Save(crossbeam_channel::Sender<Blob>),
    Dump(crossbeam_channel::Sender<Blob>),
    /// A step of a hand-over to a new process (see `handover`): the
    /// records when it freezes, nothing otherwise.
    Handover(super::handover::Phase, crossbeam_channel::Sender<Blob>),
}

/// A worker's state records, as it hands them in to be saved.
pub(crate) type Blob = (usize, Vec<u8>);
