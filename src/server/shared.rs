//! What the workers share with the [`super::Server`] handle: set rarely
//! (start, reload, shutdown), read on their tick, never per request.

use super::access::Access;
use super::events::EventSink;
use super::full_scrape::FullScrapes;
use super::history::History;
use super::mesh::Blob;
use super::per_address::PerAddress;
use super::process::ProcessInfo;
use super::stats::Stats;
use super::watchdog;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The shared state.
pub(crate) struct Shared {
    pub shutdown: Arc<AtomicBool>,
    /// Bumped by every reload; a worker whose copy is older fetches anew.
    pub generation: AtomicU64,
    pub access: Mutex<Access>,
    pub tls: Mutex<Option<Arc<rustls::ServerConfig>>>,
    pub events: Option<EventSink>,
    /// Where workers hand in their swarms as they stop (with a state file).
    pub state: Option<crossbeam_channel::Sender<Blob>>,
    /// Every worker's heartbeat.
    pub beats: Arc<watchdog::Heartbeats>,
    /// Every worker's request totals, and the request rates sampled from
    /// them (by the watchdog thread).
    pub history: Arc<History>,
    /// Open connections by client address, over every worker.
    pub per_address: Arc<PerAddress>,
    /// The full scrape's snapshot.
    pub full_scrapes: FullScrapes,
}

impl Shared {
    /// Adds to the workers' merged figures what no worker holds: every
    /// worker's heartbeat, the uptime and request rates, the process's own
    /// figures and the full-scrape snapshot's. Both `/stats` and
    /// `Server::stats` end with this.
    pub fn add_figures(&self, s: &mut Stats) {
        s.health = self.beats.health();
        s.uptime = self.history.uptime();
        s.rates = self.history.rates();
        s.process = ProcessInfo::read();
        s.full_scrape_builds = self.full_scrapes.builds();
        s.full_scrape_age = self.full_scrapes.current().map(|f| f.built.elapsed());
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current lists, hook and TLS configuration.
    pub fn current(&self) -> (Access, Option<Arc<rustls::ServerConfig>>) {
        let access = self
            .access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let tls = self.tls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (access, tls)
    }
}
