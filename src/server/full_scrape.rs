//! The full scrape (`/scrape` without `info_hash`, and its WebSocket
//! twin) served from a snapshot. A reply lists every torrent: tens of
//! megabytes on a big tracker. Built per request, a client repeating it
//! would take a worker away from everyone for the build, and ten at once
//! would hold ten copies. Instead one snapshot is built at most every
//! `full_scrape_interval`: the counts are gathered from every shard a slice
//! at a time (so no worker stalls for more than a slice), sorted, filtered
//! by the lists and encoded off the workers on a thread of its own, and
//! kept as immutable shared buffers (bencode, the same gzipped, and JSON)
//! that every requester is served from. Only one build runs at a time;
//! requests meanwhile get the previous snapshot if the lists have not
//! changed since, or wait for the new one.

use super::access::Lists;
use crate::protocol::{http, ws, InfoHash, ScrapeStats};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Torrents a worker reads for a snapshot in one go: well under a
/// millisecond of its time.
pub(crate) const SLICE: usize = 8192;

/// One full scrape, ready to serve.
pub(crate) struct Snapshot {
    /// The reload generation whose lists it was filtered by.
    pub generation: u64,
    pub built: Instant,
    pub torrents: usize,
    /// The HTTP reply body (bencode), and the same gzipped.
    pub http: Vec<u8>,
    pub http_gzip: Vec<u8>,
    /// The WebSocket reply (empty when the WebSocket tracker is off).
    pub ws: String,
}

/// The snapshot the workers share, and whether one is being built.
#[derive(Default)]
pub(crate) struct FullScrapes {
    current: Mutex<Option<Arc<Snapshot>>>,
    building: AtomicBool,
    builds: AtomicU64,
}

/// Clears `building` when the build ends, however it ends.
pub(crate) struct Building<'a>(&'a FullScrapes);

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.0.building.store(false, Ordering::Release);
    }
}

impl FullScrapes {
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The right to build the next snapshot, if no one else is building.
    pub fn start_build(&self) -> Option<Building<'_>> {
        // Only a won race makes a guard: one made and dropped on a lost race
        // (as `then_some` would) clears the winner's flag, and every
        // requester meanwhile built a snapshot of its own.
        let won = self
            .building
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            Some(Building(self))
        } else {
            None
        }
    }

    pub fn publish(&self, s: Arc<Snapshot>) {
        self.builds.fetch_add(1, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// Snapshots built so far.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }
}

/// Sorts, filters and encodes the gathered counts (on a thread of its own:
/// for a million torrents this is a good part of a second).
pub(crate) fn encode(
    mut entries: Vec<(InfoHash, ScrapeStats)>,
    lists: &Lists,
    interval: u32,
    generation: u64,
    with_ws: bool,
) -> Snapshot {
    if !lists.is_open() {
        entries.retain(|(h, _)| lists.allows(h));
    }
    entries.sort_unstable_by_key(|e| e.0);
    // A torrent moved between two slices was seen twice.
    entries.dedup_by_key(|e| e.0);
    let mut body = Vec::with_capacity(64 + entries.len() * 64);
    http::write_scrape_reply(&mut body, &entries, interval);
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&body);
    let http_gzip = gz.finish().unwrap_or_default();
    Snapshot {
        generation,
        built: Instant::now(),
        torrents: entries.len(),
        // Escaped binary strings make it the largest of the three: only
        // when the WebSocket tracker runs.
        ws: if with_ws {
            ws::scrape_reply(&entries)
        } else {
            String::new()
        },
        http: body,
        http_gzip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn one_build_at_a_time_and_a_lost_race_takes_nothing_away() {
        let fs = FullScrapes::default();
        let first = fs.start_build().expect("the first asks and builds");
        assert!(fs.start_build().is_none(), "a second waits");
        assert!(fs.start_build().is_none(), "and so does a third");
        drop(first);
        assert!(fs.start_build().is_some(), "the next build, once done");
    }

    #[test]
    fn a_snapshot_is_sorted_filtered_and_gzipped() {
        let s = |c| ScrapeStats {
            complete: c,
            incomplete: 0,
            downloaded: 0,
        };
        let (a, b, c) = (InfoHash([1; 20]), InfoHash([2; 20]), InfoHash([3; 20]));
        let mut lists = Lists::default();
        lists.deny.insert(c);
        let snap = encode(
            vec![(b, s(2)), (a, s(1)), (c, s(3)), (b, s(2))],
            &lists,
            600,
            7,
            true,
        );
        assert_eq!((snap.torrents, snap.generation), (2, 7));
        let mut want = Vec::new();
        http::write_scrape_reply(&mut want, &[(a, s(1)), (b, s(2))], 600);
        assert_eq!(snap.http, want);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&snap.http_gzip[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, want);
        assert_eq!(snap.ws, ws::scrape_reply(&[(a, s(1)), (b, s(2))]));
        assert!(encode(vec![(a, s(1))], &lists, 600, 7, false).ws.is_empty());
        let f = FullScrapes::default();
        let first = f.start_build();
        assert!(
            first.is_some() && f.start_build().is_none(),
            "one build at a time"
        );
        drop(first);
        assert!(f.start_build().is_some());
    }
}
