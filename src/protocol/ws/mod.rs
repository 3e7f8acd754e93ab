//! WebTorrent tracker messages: JSON text frames. `info_hash`, `peer_id`,
//! `offer_id` and `to_peer_id` are 20-character "binary strings" whose
//! characters are the bytes 0-255. Offers and answers (WebRTC session
//! descriptions) pass through untouched as raw JSON.
//!
//! [`request`]: what a client sends (announces with offers, answers,
//! scrapes), parsed by the tracker and written by clients; [`reply`]: what
//! the tracker sends (announce and scrape replies, relayed offers and
//! answers, failures), written by the tracker and read by clients.

mod binary;
pub mod frame;
pub mod reply;
pub mod request;
#[cfg(test)]
mod tests;

pub use binary::{binary20, to_binary};
pub use reply::*;
pub use request::*;
