//! What a shard may hold and what a reply wants: the limits, the refusal
//! when they are reached, and how many peers a request gets.

/// What one shard may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLimits {
    /// Torrents; past it, announces for new ones are refused.
    pub max_torrents: usize,
    /// Peers (all kinds); past it, new peers are refused.
    pub max_peers: usize,
    /// Relayed offers remembered; past it, new offers are relayed but their
    /// answers are not.
    pub max_offers: usize,
}

impl Default for ShardLimits {
    fn default() -> Self {
        ShardLimits {
            max_torrents: usize::MAX,
            max_peers: usize::MAX,
            max_offers: 250_000,
        }
    }
}

/// An announce refused because the shard holds all it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    Torrents,
    Peers,
}

impl Full {
    /// The failure reason a client gets.
    pub fn message(self) -> &'static str {
        match self {
            Full::Torrents => "tracker is full: no new torrents for now",
            Full::Peers => "tracker is full: no new peers for now",
        }
    }
}

/// The numwant a request gets: `requested` when it said one, else `default`,
/// never more than `max`.
pub fn numwant(requested: Option<u32>, default: u32, max: u32) -> usize {
    requested.unwrap_or(default).min(max) as usize
}

/// Which peers a reply wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Most peers to return (already resolved with [`numwant`]).
    pub peers: usize,
    /// Also return peers of the other address family (HTTP: `peers6` for an
    /// IPv4 announcer); UDP replies carry only the packet's own family.
    pub both_families: bool,
    /// Fill `Peers::ids4`/`ids6` too (non-compact HTTP replies).
    pub ids: bool,
}
