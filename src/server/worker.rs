//! A worker's context: its [`Shard`], its sockets and its share of the mesh,
//! what every front (UDP, HTTP, WebSocket) uses to serve. The thread's
//! start-up is in `start.rs`, requests from other workers in `dispatch.rs`.

use super::access::Lists;
use super::access::{Access, FilterAction, FilterRequest};
use super::events::{PeerEvent, ServerEvent};
use super::full_scrape::{self, Snapshot};
use super::handover::{Phase, DRAIN_LIMIT, IDLE_GRACE};
use super::logging::debug_request;
use super::logging::log;
use super::mesh::{Reply, Request};
use super::shared::Shared;
use super::stats::{Counters, Stats, WorkerStats};
use crate::config::{LogLevel, ServerConfig};
use crate::protocol::udp::ConnectionIds;
use crate::protocol::Protocol;
use crate::protocol::{AnnounceRequest, InfoHash, Peers, ScrapeStats};
use crate::swarm::{Shard, Want};
use futures_channel::oneshot;
use glommio::channels::channel_mesh::Senders;
use glommio::net::UdpSocket;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tracker time at start: it counts seconds from here, so that peers
/// restored from a state file can keep a `last_seen` before the start.
pub(crate) const CLOCK_BASE: u32 = 1 << 24;
/// Torrents written per slice of a periodic state save.
const SAVE_SLICE: usize = 4096;

/// How long `/stats` and `/metrics` wait for the other workers' figures.
const STATS_WAIT: Duration = Duration::from_secs(1);
/// Ticks for one full sweep of a shard (one minute).
const SWEEP_TICKS: usize = 240;

/// A worker's state, shared by its tasks (all on one thread).
pub(crate) struct Worker {
    pub id: usize,
    pub workers: usize,
    pub cfg: Arc<ServerConfig>,
    pub shard: RefCell<Shard>,
    pub conn_ids: ConnectionIds,
    pub udp4: Option<UdpSocket>,
    pub udp6: Option<UdpSocket>,
    /// Scratch peer buffers for replies built on this worker.
    pub peers: RefCell<Peers>,
    pub counters: Counters,
    /// This worker's share of `limits.max_connections`.
    pub max_connections: usize,
    pub shared: Arc<Shared>,
    /// This worker's copy of the lists and filter.
    pub access: RefCell<Access>,
    /// This worker's TLS acceptor, when the server has a certificate.
    pub tls: RefCell<Option<futures_rustls::TlsAcceptor>>,
    generation: Cell<u64>,
    now: Cell<u32>,
    started: Instant,
    requests: Option<Senders<Request>>,
    replies: Option<Senders<Reply>>,
    pending: RefCell<Slab<oneshot::Sender<Reply>>>,
    /// This worker's WebSocket connections: their outgoing queues by id.
    ws_conns: RefCell<HashMap<u64, futures_channel::mpsc::Sender<String>>>,
    next_ws: Cell<u64>,
    /// The one buffer its WebSocket connections read into (see `ws::read_into`).
    pub ws_read: RefCell<Box<[u8]>>,
    /// Holds the worker back after light turns (see `pace`).
    pub pace: super::pace::Pacer,
    /// Its part in handing over to a new process (see `handover`).
    pub handover: super::handover::Handover,
    /// Its open TCP connections, with their deadlines (see `conns`).
    pub conns: super::conns::Conns,
}

impl Worker {
    /// A worker's context, as its thread starts it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        workers: usize,
        cfg: Arc<ServerConfig>,
        shard: Shard,
        conn_ids: ConnectionIds,
        udp: (Option<UdpSocket>, Option<UdpSocket>),
        shared: Arc<Shared>,
        mesh: (Option<Senders<Request>>, Option<Senders<Reply>>),
        started: Instant,
    ) -> Worker {
        let (access, tls) = shared.current();
        Worker {
            id,
            workers,
            shard: RefCell::new(shard),
            conn_ids,
            udp4: udp.0,
            udp6: udp.1,
            peers: RefCell::new(Peers::default()),
            counters: Counters::default(),
            max_connections: cfg.limits.max_connections.div_ceil(workers),
            access: RefCell::new(access),
            tls: RefCell::new(tls.map(futures_rustls::TlsAcceptor::from)),
            generation: Cell::new(shared.generation()),
            shared,
            now: Cell::new(clock(started)),
            started,
            requests: mesh.0,
            replies: mesh.1,
            pending: RefCell::new(Slab::new()),
            ws_conns: RefCell::new(HashMap::new()),
            next_ws: Cell::new(0),
            ws_read: RefCell::new(vec![0; 16 * 1024].into_boxed_slice()),
            pace: Default::default(),
            handover: Default::default(),
            conns: Default::default(),
            cfg,
        }
    }

    /// The reload generation this worker has applied.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Sends a reply to worker `to`, which asked; it may be shutting down,
    /// and then the reply is moot.
    pub async fn reply_to(&self, to: usize, reply: Reply) {
        if let Some(tx) = &self.replies {
            let _ = tx.send_to(to, reply).await;
        }
    }
    /// Tracker time in seconds since start, refreshed every tick.
    #[inline]
    pub fn now(&self) -> u32 {
        self.now.get()
    }

    #[inline]
    pub fn owner(&self, hash: &InfoHash) -> usize {
        hash.owner(self.workers)
    }

    pub fn udp(&self, v6: bool) -> Option<&UdpSocket> {
        if v6 {
            self.udp6.as_ref()
        } else {
            self.udp4.as_ref()
        }
    }

    /// Sends a request to its owner without waiting for a reply.
    pub async fn forward(&self, owner: usize, req: Request) -> bool {
        match &self.requests {
            Some(tx) => tx.send_to(owner, req).await.is_ok(),
            None => false,
        }
    }

    /// Sends a request to its owner and waits for the reply; `None` when the
    /// owner is gone (shutting down).
    pub async fn call(&self, owner: usize, make: impl FnOnce(u32) -> Request) -> Option<Reply> {
        /// Frees the reply's slot unless the request went out: a call given
        /// up while it waited to send (the owner's channel full) would leave
        /// it taken for good. Once sent, the reply frees it when it comes.
        struct Unsent<'a> {
            pending: &'a RefCell<Slab<oneshot::Sender<Reply>>>,
            token: Option<usize>,
        }
        impl Drop for Unsent<'_> {
            fn drop(&mut self) {
                if let Some(t) = self.token {
                    self.pending.borrow_mut().try_remove(t);
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        let token = self.pending.borrow_mut().insert(tx);
        let mut unsent = Unsent {
            pending: &self.pending,
            token: Some(token),
        };
        if !self.forward(owner, make(token as u32)).await {
            return None;
        }
        unsent.token = None;
        rx.await.ok()
    }

    /// Counts for `hashes` (any owners), in their order.
    pub async fn scrape(&self, hashes: &[InfoHash]) -> Vec<ScrapeStats> {
        let mut stats = vec![ScrapeStats::default(); hashes.len()];
        let mut remote: Vec<Vec<usize>> = vec![Vec::new(); self.workers];
        {
            let shard = self.shard.borrow();
            for (i, h) in hashes.iter().enumerate() {
                match self.owner(h) {
                    o if o == self.id => stats[i] = shard.scrape(h),
                    o => remote[o].push(i),
                }
            }
        }
        for (owner, idx) in remote.iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            let asked: Vec<InfoHash> = idx.iter().map(|&i| hashes[i]).collect();
            if let Some(Reply::Scrape { stats: got, .. }) = self
                .call(owner, |token| Request::Scrape {
                    token,
                    hashes: asked,
                })
                .await
            {
                for (&i, s) in idx.iter().zip(got) {
                    stats[i] = s;
                }
            }
        }
        stats
    }

    /// This worker's own figures.
    pub fn own_stats(&self) -> WorkerStats {
        let shard = self.shard.borrow();
        WorkerStats {
            worker: self.id,
            counters: self.counters.snapshot(),
            torrents: shard.torrents(),
            totals: shard.totals(),
            clients: shard.clients().collect(),
        }
    }

    /// Every worker's figures, merged, with every worker's health. A worker
    /// that does not answer within [`STATS_WAIT`] (it is stalled) is left
    /// out of the figures; its health says so.
    pub async fn stats(&self) -> Stats {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;
        let mut all = vec![self.own_stats()];
        // Every other worker is asked at once, so one stalled worker holds up
        // the answer by STATS_WAIT at most and hides no healthy one.
        type Ask<'a> = Pin<Box<dyn Future<Output = Option<Reply>> + 'a>>;
        let mut asks: Vec<Option<Ask<'_>>> = (0..self.workers)
            .filter(|&o| o != self.id)
            .map(|o| Some(Box::pin(self.call(o, |token| Request::Stats { token })) as Ask<'_>))
            .collect();
        let mut got = Vec::new();
        let gather = futures_lite::future::poll_fn(|cx| {
            for slot in asks.iter_mut() {
                if let Some(ask) = slot {
                    if let Poll::Ready(r) = ask.as_mut().poll(cx) {
                        got.extend(r);
                        *slot = None;
                    }
                }
            }
            if asks.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        futures_lite::future::or(gather, glommio::timer::sleep(STATS_WAIT)).await;
        for r in got {
            if let Reply::Stats { stats, .. } = r {
                all.push(*stats);
            }
        }
        let mut s = Stats::merge(all);
        self.shared.add_figures(&mut s);
        s
    }

    /// Registers a WebSocket connection's outgoing queue; returns its id.
    pub fn ws_register(&self, queue: futures_channel::mpsc::Sender<String>) -> u64 {
        let id = self.next_ws.get();
        self.next_ws.set(id + 1);
        self.ws_conns.borrow_mut().insert(id, queue);
        id
    }

    pub fn ws_unregister(&self, id: u64) {
        self.ws_conns.borrow_mut().remove(&id);
    }

    /// Queues a message for one of this worker's WebSocket connections. A
    /// connection whose queue is full reads too slowly: its queue is dropped,
    /// which closes it.
    pub fn ws_deliver_local(&self, id: u64, text: String) {
        let mut conns = self.ws_conns.borrow_mut();
        if let Some(q) = conns.get_mut(&id) {
            if q.try_send(text).is_err() {
                conns.remove(&id);
            }
        }
    }

    /// Takes the lists and TLS configuration anew after a reload.
    fn refresh(&self) {
        let g = self.shared.generation();
        if g != self.generation.get() {
            let (access, tls) = self.shared.current();
            *self.access.borrow_mut() = access;
            *self.tls.borrow_mut() = tls.map(futures_rustls::TlsAcceptor::from);
            self.generation.set(g);
        }
    }

    /// No lists and no filter hook: every request passes.
    #[inline]
    pub fn open_access(&self) -> bool {
        self.access.borrow().is_open()
    }

    /// Checks a request against the lists and the filter hook: the reason
    /// when it is refused.
    pub fn refused(&self, r: &FilterRequest<'_>) -> Option<String> {
        let access = self.access.borrow();
        if access.is_open() {
            return None;
        }
        access.check(r).err()
    }

    /// Checks every hash of a scrape (or, with none, a scrape of every
    /// torrent): the first refusal's reason.
    pub fn scrape_refused(
        &self,
        hashes: &[InfoHash],
        addr: IpAddr,
        protocol: Protocol,
        path: &[u8],
        query: &[u8],
    ) -> Option<String> {
        if self.open_access() {
            return None;
        }
        let mut r = FilterRequest {
            action: FilterAction::Scrape,
            info_hash: None,
            peer_id: None,
            addr,
            protocol,
            path,
            query,
        };
        if hashes.is_empty() {
            return self.refused(&r);
        }
        hashes.iter().find_map(|h| {
            r.info_hash = Some(h);
            self.refused(&r)
        })
    }

    /// The full scrape, from the shared snapshot: built anew (by this
    /// worker, gathering every shard a slice at a time) when it is older
    /// than `full_scrape_interval` or was filtered by lists since reloaded.
    /// While another worker builds, the previous snapshot is served if the
    /// lists are the same, or the new one awaited.
    pub async fn full_scrape(&self) -> Arc<Snapshot> {
        let fs = &self.shared.full_scrapes;
        let every = Duration::from_secs(self.cfg.full_scrape_interval.max(1) as u64);
        loop {
            let generation = self.generation.get();
            let current = fs.current().filter(|s| s.generation == generation);
            if let Some(s) = current.as_ref().filter(|s| s.built.elapsed() < every) {
                return s.clone();
            }
            if let Some(_building) = fs.start_build() {
                let s = Arc::new(self.build_full_scrape(generation).await);
                fs.publish(s.clone());
                return s;
            }
            if let Some(s) = current {
                return s;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Moves this worker to `phase` of a hand-over (see `handover`) and
    /// returns once it is there: drained (or [`DRAIN_LIMIT`] passed),
    /// frozen with nothing of its own in flight at another worker (then with
    /// its shard's records), or serving again.
    pub async fn hand_over(&self, phase: Phase) -> Vec<u8> {
        let h = &self.handover;
        h.set(phase);
        match phase {
            Phase::Serving => Vec::new(),
            Phase::Draining => {
                self.conns.shut_reads(true);
                let began = Instant::now();
                let mut idle_shut = false;
                while !self.conns.is_empty() && began.elapsed() < DRAIN_LIMIT {
                    if !idle_shut && began.elapsed() >= IDLE_GRACE {
                        self.conns.shut_reads(false);
                        idle_shut = true;
                    }
                    glommio::timer::sleep(Duration::from_millis(2)).await;
                }
                if !self.conns.is_empty() {
                    log(
                        &self.cfg,
                        LogLevel::Warnings,
                        format_args!(
                            "upgrade: worker {}: {} connections still open after {} s of draining",
                            self.id,
                            self.conns.len(),
                            DRAIN_LIMIT.as_secs()
                        ),
                    );
                }
                Vec::new()
            }
            Phase::Frozen => {
                // Each UDP task stops at the end of its batch.
                let tasks = [false, true]
                    .iter()
                    .filter(|&&v6| self.udp(v6).is_some())
                    .count();
                let began = Instant::now();
                while h.parked() < tasks && began.elapsed() < DRAIN_LIMIT {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                // What this worker forwarded before is served before a
                // round trip behind it.
                for owner in (0..self.workers).filter(|&o| o != self.id) {
                    self.call(owner, |token| Request::Stats { token }).await;
                }
                Vec::new()
            }
        }
    }

    /// Gathers every shard's counts a slice at a time and has them encoded
    /// off the worker.
    async fn build_full_scrape(&self, generation: u64) -> Snapshot {
        let mut entries = Vec::new();
        let mut at = Some(0);
        while let Some(from) = at {
            at = self
                .shard
                .borrow()
                .scrape_slice(from, full_scrape::SLICE, &mut entries);
            futures_lite::future::yield_now().await;
        }
        for owner in (0..self.workers).filter(|&o| o != self.id) {
            let mut at = Some(0);
            while let Some(from) = at {
                at = match self
                    .call(owner, |token| Request::ScrapeSlice { token, at: from })
                    .await
                {
                    Some(Reply::ScrapeSlice {
                        entries: got, next, ..
                    }) => {
                        entries.extend(got);
                        next
                    }
                    _ => None,
                };
            }
        }
        let lists = self.access.borrow().lists.clone();
        let (interval, with_ws) = (self.cfg.interval, self.cfg.ws);
        let (tx, rx) = futures_channel::oneshot::channel();
        let encode = move || {
            let s = full_scrape::encode(entries, &lists, interval, generation, with_ws);
            let _ = tx.send(s);
        };
        match std::thread::Builder::new()
            .name("tracker-scrape".into())
            .spawn(encode)
        {
            Ok(_) => {}
            Err(e) => {
                log(
                    &self.cfg,
                    LogLevel::Errors,
                    format_args!("full scrape: no thread to encode it on ({e})"),
                );
            }
        }
        match rx.await {
            Ok(s) => s,
            // The thread could not start: an empty reply, this once.
            Err(_) => {
                full_scrape::encode(Vec::new(), &Lists::default(), interval, generation, with_ws)
            }
        }
    }

    /// Tells the event stream that a WebSocket peer left with its connection.
    pub fn ws_left(&self, info_hash: InfoHash, peer_id: crate::protocol::PeerId) {
        if let Some(events) = &self.shared.events {
            events.send(ServerEvent {
                event: PeerEvent::Stop,
                info_hash,
                peer_id,
                addr: None,
                protocol: Protocol::Ws,
            });
        }
    }

    /// Applies a UDP or HTTP announce this worker owns, received here or
    /// forwarded alike: the one place its result is recorded (the event
    /// stream, the debug line). `peers` is cleared, then gets the peers for
    /// the reply.
    pub fn apply_announce(
        &self,
        a: &AnnounceRequest,
        ip: IpAddr,
        want: &Want,
        peers: &mut Peers,
        p: Protocol,
    ) -> Result<ScrapeStats, crate::swarm::Full> {
        peers.clear();
        let r = self
            .shard
            .borrow_mut()
            .announce(a, ip, self.now(), want, peers);
        let from = SocketAddr::new(ip, a.port);
        let hash = Some(&a.info_hash);
        match &r {
            Ok(s) => {
                self.announced(a, Some(from), p);
                debug_request!(
                    self.cfg,
                    p,
                    "announce",
                    from,
                    hash,
                    "ok, event {:?}, {} seeders {} leechers, {} peers",
                    a.event.as_str(),
                    s.complete,
                    s.incomplete,
                    peers.v4.len() / 6 + peers.v6.len() / 18
                );
            }
            Err(full) => {
                debug_request!(
                    self.cfg,
                    p,
                    "announce",
                    from,
                    hash,
                    "refused: {}",
                    full.message()
                )
            }
        }
        r
    }

    /// Tells the event stream about an announce this worker applied.
    #[inline]
    pub fn announced(&self, a: &AnnounceRequest, addr: Option<SocketAddr>, p: Protocol) {
        if let Some(events) = &self.shared.events {
            events.emit(a, addr, p);
        }
    }

    /// The shard's state records, a slice at a time so requests go on
    /// between slices (`sliced`), or all at once.
    pub async fn state_records(&self, sliced: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            {
                let shard = self.shard.borrow();
                if at >= shard.torrents() {
                    break;
                }
                at = shard.dump(at, SAVE_SLICE, self.now(), &mut out);
            }
            if sliced {
                futures_lite::future::yield_now().await;
            }
        }
        out
    }

    pub fn tick(&self) {
        let now = clock(self.started);
        if self.now.replace(now) != now {
            self.conns.shut_overdue(now);
        }
        self.refresh();
        self.shared.beats.beat(self.id, self.generation.get());
        self.shared
            .history
            .publish(self.id, self.counters.requests_by_protocol());
        let mut shard = self.shard.borrow_mut();
        let budget = shard.torrents() / SWEEP_TICKS + 64;
        shard.sweep(now, budget);
    }

    /// Hands a reply from another worker to the task that asked.
    pub fn deliver(&self, reply: Reply) {
        let sender = self.pending.borrow_mut().try_remove(reply.token() as usize);
        if let Some(tx) = sender {
            // The asker may have gone (its connection closed): nothing to do.
            let _ = tx.send(reply);
        }
    }
}

/// Tracker time: seconds since `started`, from [`CLOCK_BASE`].
pub(crate) fn clock(started: Instant) -> u32 {
    CLOCK_BASE.saturating_add(started.elapsed().as_secs().min(u32::MAX as u64) as u32)
}
