//! Fair shares per client address: open HTTP and WebSocket connections are
//! counted by address (IPv6 by its /64, what one host or subscriber gets),
//! over every worker, so that one address cannot hold every connection the
//! tracker allows. Counts live in a fixed table of atomic counters indexed
//! by a keyed hash of the address: no lock, no allocation per connection,
//! and nobody can pick addresses that collide on purpose. Two addresses
//! share a counter with a chance of 1 in 65,536.

use crate::protocol::canonical_ip;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const BUCKETS: usize = 1 << 16;

/// Open connections by address.
pub(crate) struct PerAddress {
    keys: ahash::RandomState,
    counts: Box<[AtomicU32]>,
    limit: u32,
}

/// A connection counted against its address; dropping it (when the
/// connection ends) gives its place back.
pub(crate) struct Place {
    table: Arc<PerAddress>,
    bucket: usize,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.table.counts[self.bucket].fetch_sub(1, Ordering::Relaxed);
    }
}

impl PerAddress {
    /// At most `limit` open connections per address.
    pub fn new(limit: usize) -> PerAddress {
        PerAddress {
            keys: ahash::RandomState::new(),
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            limit: limit.min(u32::MAX as usize) as u32,
        }
    }

    fn bucket(&self, ip: IpAddr) -> usize {
        let key: u128 = match canonical_ip(ip) {
            IpAddr::V4(a) => u32::from(a) as u128,
            // A /64: what one host or one subscriber's network gets.
            IpAddr::V6(a) => (u128::from(a) >> 64) | (1 << 64),
        };
        self.keys.hash_one(key) as usize & (BUCKETS - 1)
    }

    /// A place for a new connection from `ip`, or `None` when that address
    /// holds its limit already.
    pub fn enter(table: &Arc<PerAddress>, ip: IpAddr) -> Option<Place> {
        let bucket = table.bucket(ip);
        let before = table.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let place = Place {
            table: table.clone(),
            bucket,
        };
        (before < table.limit).then_some(place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_at_its_limit_leaves_others_their_places() {
        let t = Arc::new(PerAddress::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let (p1, p2) = (PerAddress::enter(&t, a), PerAddress::enter(&t, a));
        assert!(p1.is_some() && p2.is_some());
        assert!(
            PerAddress::enter(&t, a).is_none(),
            "the third from one address"
        );
        assert!(
            PerAddress::enter(&t, "::ffff:192.0.2.1".parse().unwrap()).is_none(),
            "mapped is the same"
        );
        assert!(
            PerAddress::enter(&t, "192.0.2.2".parse().unwrap()).is_some(),
            "another address"
        );
        drop(p1);
        assert!(PerAddress::enter(&t, a).is_some(), "a place given back");
        // One /64 is one address; another /64 is another.
        let v6 = |s: &str| -> IpAddr { s.parse().unwrap() };
        let held = [
            PerAddress::enter(&t, v6("2001:db8::1")),
            PerAddress::enter(&t, v6("2001:db8::2")),
        ];
        assert!(held.iter().all(Option::is_some));
        assert!(PerAddress::enter(&t, v6("2001:db8::ffff")).is_none());
        assert!(PerAddress::enter(&t, v6("2001:db8:0:1::1")).is_some());
    }
}
