//! What the library shows of a shard: every torrent with its counts and
//! peers (the reference's `server.torrents`). This walks every peer.

use crate::protocol::{InfoHash, PeerId};
use std::net::{IpAddr, SocketAddr};

/// One peer of a [`TorrentInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Address and announced port; `None` for a WebSocket peer, which is
    /// reached through its connection.
    pub addr: Option<SocketAddr>,
    /// Its peer id: always for WebSocket peers, and for the others when
    /// the tracker keeps peer ids.
    pub peer_id: Option<PeerId>,
    pub seeder: bool,
}

/// One torrent with its counts and peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentInfo {
    pub info_hash: InfoHash,
    pub complete: u32,
    pub incomplete: u32,
    pub downloaded: u32,
    pub peers: Vec<PeerInfo>,
}

pub(super) fn peer_addr(b: &[u8]) -> SocketAddr {
    let port = u16::from_be_bytes([b[b.len() - 2], b[b.len() - 1]]);
    let ip: IpAddr = match b.len() {
        6 => <[u8; 4]>::try_from(&b[..4]).expect("4 bytes").into(),
        _ => <[u8; 16]>::try_from(&b[..16]).expect("16 bytes").into(),
    };
    SocketAddr::new(ip, port)
}
