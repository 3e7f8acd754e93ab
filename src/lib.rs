//! A BitTorrent tracker: HTTP (BEP 3/23/7/48), UDP (BEP 15/41) and WebTorrent
//! WebSocket trackers on one port, IPv4 and IPv6, on one glommio (io_uring)
//! executor per core, each owning a shard of the info hashes.
//!
//! - [`protocol`]: wire formats, sans-IO.
//! - [`swarm`]: tracker state, pure data.
//! - [`answer`]: what the owner of an info hash answers, pure.
//! - [`server`]: the runtime.
//! - [`mmsg`]: batched datagram I/O (recvmmsg/sendmmsg), for the server and
//!   the load generator.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod answer;
pub mod cli;
pub mod client;
pub mod config;
pub mod manual;
pub mod mmsg;
pub mod protocol;
pub mod rng;
pub mod server;
pub mod swarm;
pub mod thp;
pub mod upgrade;

pub use config::ServerConfig;
pub use protocol::Protocol;
pub use protocol::{AnnounceRequest, Event, InfoHash, PeerId, ScrapeStats};
pub use server::access::{FilterAction, FilterRequest};
pub use server::events::{PeerEvent, ServerEvent};
pub use server::stats::Stats;
pub use server::{Server, ServerBuilder, StartError};
pub use swarm::{PeerInfo, TorrentInfo};
