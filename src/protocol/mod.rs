//! Wire formats, sans-IO: bytes in, typed values out, and back.
//!
//! Every front (UDP, HTTP, later WebSocket) turns its request into the same
//! [`AnnounceRequest`] before it reaches a [`crate::swarm::Shard`].

pub mod bencode;
pub mod clients;
pub mod head;
pub mod http;
pub mod udp;
pub mod ws;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A torrent's 20-byte SHA-1 info hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's 20-byte id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

fn parse_hex20(s: &str) -> Option<[u8; 20]> {
    let s = s.as_bytes();
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

pub(crate) const fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl InfoHash {
    /// Parses 40 hexadecimal digits (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex20(s).map(InfoHash)
    }

    /// The owning worker of this hash among `workers`: the first four bytes,
    /// big-endian, modulo the worker count.
    #[inline]
    pub fn owner(&self, workers: usize) -> usize {
        let w = workers.max(1) as u32;
        (u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) % w) as usize
    }
}

impl PeerId {
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex20(s).map(PeerId)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}
impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// The announce event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Event {
    /// A regular update (no event, or an empty one).
    #[default]
    None,
    Started,
    Completed,
    Stopped,
    /// BEP 21: the peer paused; it stays in the swarm.
    Paused,
}

impl Event {
    /// The name used on the HTTP and WebSocket wire (`""` for an update).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::None => "",
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
            Event::Paused => "paused",
        }
    }
}

/// One announce, whatever front it came through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The port the peer listens on (1..=65535).
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes left to download; `None` when the client did not say (a leecher).
    pub left: Option<u64>,
    pub event: Event,
    /// Peers wanted; `None` for the tracker's default.
    pub numwant: Option<u32>,
    pub key: Option<u32>,
}

impl AnnounceRequest {
    /// An update from `peer_id` in swarm `info_hash` that says nothing
    /// else: no port, no counts, no event; the fields are set from there.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> AnnounceRequest {
        AnnounceRequest {
            info_hash,
            peer_id,
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: Event::None,
            numwant: None,
            key: None,
        }
    }

    /// A peer with nothing left to download is a seeder.
    pub fn is_seeder(&self) -> bool {
        self.left == Some(0)
    }
}

/// Counts for one torrent, as a scrape reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// `completed` events seen.
    pub downloaded: u32,
}

/// A tracker's answer to an announce, as a client reads it (any protocol).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Seconds a client must wait between announces, when the tracker says.
    pub min_interval: Option<u32>,
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    pub peers: Vec<std::net::SocketAddr>,
    /// A `warning message` the tracker sent along.
    pub warning: Option<String>,
}

/// Peers in compact form: 6 bytes (IPv4) or 18 bytes (IPv6) each.
pub fn compact_peers(bytes: &[u8], v6: bool) -> impl Iterator<Item = std::net::SocketAddr> + '_ {
    let size = if v6 { 18 } else { 6 };
    bytes.chunks_exact(size).map(move |c| {
        let port = u16::from_be_bytes([c[size - 2], c[size - 1]]);
        let ip: IpAddr = if v6 {
            <[u8; 16]>::try_from(&c[..16]).expect("16 bytes").into()
        } else {
            <[u8; 4]>::try_from(&c[..4]).expect("4 bytes").into()
        };
        std::net::SocketAddr::new(ip, port)
    })
}

/// Peers picked for one reply, in compact wire form, filled by
/// [`crate::swarm::Shard::announce`] and read by every front's encoder.
/// Kept by the caller and reused, so a reply allocates nothing once warm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// 6 bytes per IPv4 peer: address, then port.
    pub v4: Vec<u8>,
    /// 18 bytes per IPv6 peer.
    pub v6: Vec<u8>,
    /// Peer ids of `v4`, in the same order, when asked for (non-compact replies).
    pub ids4: Vec<PeerId>,
    /// Peer ids of `v6`, likewise.
    pub ids6: Vec<PeerId>,
}

impl Peers {
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.ids4.clear();
        self.ids6.clear();
    }
    /// Number of peers held.
    pub fn len(&self) -> usize {
        self.v4.len() / 6 + self.v6.len() / 18
    }
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 peer it names.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Compact peer bytes: 4-byte address and 2-byte port, big-endian.
pub fn compact_v4(ip: Ipv4Addr, port: u16) -> [u8; 6] {
    let o = ip.octets();
    let p = port.to_be_bytes();
    [o[0], o[1], o[2], o[3], p[0], p[1]]
}

/// Compact peer bytes: 16-byte address and 2-byte port, big-endian.
pub fn compact_v6(ip: std::net::Ipv6Addr, port: u16) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&ip.octets());
    out[16..].copy_from_slice(&port.to_be_bytes());
    out
}

/// Which of the tracker's protocols (fronts) a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Http,
    Ws,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Udp, Protocol::Http, Protocol::Ws];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Ws => "ws",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_owner() {
        let h = InfoHash::from_hex("0000000300000000000000000000000000000000").unwrap();
        assert_eq!(h.to_string(), "0000000300000000000000000000000000000000");
        assert_eq!(h.owner(2), 1);
        assert_eq!(h.owner(3), 0);
        assert_eq!(h.owner(1), 0);
        assert!(InfoHash::from_hex("zz00000300000000000000000000000000000000").is_none());
        assert!(InfoHash::from_hex("00").is_none());
        assert_eq!(
            InfoHash::from_hex("ABCDEF0000000000000000000000000000000000")
                .unwrap()
                .0[..3],
            [0xab, 0xcd, 0xef]
        );
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical_ip(ip), "10.1.2.3".parse::<IpAddr>().unwrap());
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(canonical_ip(ip), ip);
    }
}
