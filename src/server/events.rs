//! The server's event stream: every announce, as the reference server emits
//! `start`, `complete`, `update` and `stop`, on a bounded crossbeam channel.
//! A full channel never slows a worker: the event is dropped and counted.

use crate::protocol::Protocol;
use crate::protocol::{AnnounceRequest, Event, InfoHash, PeerId};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a peer told the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// `started`.
    Start,
    /// `completed`.
    Complete,
    /// A regular announce (no event, or `paused`).
    Update,
    /// `stopped`, or a WebSocket connection that closed.
    Stop,
}

impl PeerEvent {
    pub fn of(e: Event) -> PeerEvent {
        match e {
            Event::Started => PeerEvent::Start,
            Event::Completed => PeerEvent::Complete,
            Event::Stopped => PeerEvent::Stop,
            Event::None | Event::Paused => PeerEvent::Update,
        }
    }
}

/// One announce, as the server's event stream tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: PeerEvent,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// Address and announced port; `None` for WebSocket peers.
    pub addr: Option<SocketAddr>,
    pub protocol: Protocol,
}

/// The sending half, shared by the workers.
pub(crate) struct EventSink {
    tx: crossbeam_channel::Sender<ServerEvent>,
    pub rx: crossbeam_channel::Receiver<ServerEvent>,
    dropped: AtomicU64,
}

impl EventSink {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        EventSink {
            tx,
            rx,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn emit(&self, a: &AnnounceRequest, addr: Option<SocketAddr>, protocol: Protocol) {
        self.send(ServerEvent {
            event: PeerEvent::of(a.event),
            info_hash: a.info_hash,
            peer_id: a.peer_id,
            addr,
            protocol,
        });
    }

    pub fn send(&self, ev: ServerEvent) {
        if self.tx.try_send(ev).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the receiver did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
