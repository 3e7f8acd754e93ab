//! One executor per core: its [`Shard`], its sockets, and its share of the mesh.

use super::access::{Access, FilterAction, FilterRequest};
use super::events::{PeerEvent, ServerEvent};
use super::logging::debug_request;
use super::mesh::{Reply, Request};
use super::stats::{Counters, Stats, WorkerStats};
use super::Shared;
use super::{http, log, udp, ws};
use crate::config::{LogLevel, ServerConfig};
use crate::protocol::udp::ConnectionIds;
use crate::protocol::Protocol;
use crate::protocol::{AnnounceRequest, InfoHash, Peers, ScrapeStats};
use crate::swarm::{Shard, TorrentInfo, Want};
use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::net::{TcpListener, UdpSocket};
use glommio::spawn_local;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a worker refreshes its clock, sweeps and checks for shutdown.
const TICK: Duration = Duration::from_millis(250);
/// How often a worker looks for requests from outside the executors.
const CONTROL_POLL: Duration = Duration::from_millis(10);
/// Tracker time at start: it counts seconds from here, so that peers
/// restored from a state file can keep a `last_seen` before the start.
pub(crate) const CLOCK_BASE: u32 = 1 << 24;
/// Torrents written per slice of a periodic state save.
const SAVE_SLICE: usize = 4096;

/// Requests from threads outside the executors (the [`super::Server`] handle).
pub(crate) enum Control {
    Stats(crossbeam_channel::Sender<WorkerStats>),
    Torrents(crossbeam_channel::Sender<Vec<TorrentInfo>>),
    /// The shard's state records.
    Save(crossbeam_channel::Sender<super::state::Blob>),
}
/// How long `/stats` and `/metrics` wait for the other workers' figures.
const STATS_WAIT: Duration = Duration::from_secs(1);
/// Ticks for one full sweep of a shard (one minute).
const SWEEP_TICKS: usize = 240;

/// The sockets one worker serves, bound with `SO_REUSEPORT` to the shared port.
#[derive(Default)]
pub(crate) struct Sockets {
    pub udp4: Option<socket2::Socket>,
    pub udp6: Option<socket2::Socket>,
    pub tcp4: Option<socket2::Socket>,
    pub tcp6: Option<socket2::Socket>,
}

/// What a worker thread starts from.
pub(crate) struct Start {
    pub id: usize,
    pub workers: usize,
    pub cfg: Arc<ServerConfig>,
    pub sockets: Sockets,
    pub requests: MeshBuilder<Request, Full>,
    pub replies: MeshBuilder<Reply, Full>,
    pub shared: Arc<Shared>,
    pub control: crossbeam_channel::Receiver<Control>,
    /// State records to restore, and how old they are (seconds).
    /// The state file to restore this worker's torrents from.
    pub restore: Option<std::path::PathBuf>,
    pub restore_age: u32,
    pub restore_torrents: usize,
    pub conn_ids: ConnectionIds,
    pub started: Instant,
    pub seed: u64,
    pub ready: crossbeam_channel::Sender<usize>,
}

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
    /// Holds the worker back after light turns (see `pace`).
    pub pace: super::pace::Pacer,
}

impl Worker {
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
        let (tx, rx) = oneshot::channel();
        let token = self.pending.borrow_mut().insert(tx) as u32;
        if !self.forward(owner, make(token)).await {
            self.pending.borrow_mut().try_remove(token as usize);
            return None;
        }
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

    /// Every torrent of every shard with its counts, sorted by hash.
    pub async fn scrape_all(&self) -> Vec<(InfoHash, ScrapeStats)> {
        let mut all = Vec::new();
        self.shard.borrow().scrape_all(&mut all);
        for owner in (0..self.workers).filter(|&o| o != self.id) {
            if let Some(Reply::ScrapeAll { entries, .. }) =
                self.call(owner, |token| Request::ScrapeAll { token }).await
            {
                all.extend(entries);
            }
        }
        all.sort_unstable_by_key(|e| e.0);
        all
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
        let mut all = vec![self.own_stats()];
        let deadline = Instant::now() + STATS_WAIT;
        for owner in (0..self.workers).filter(|&o| o != self.id) {
            let ask = async { self.call(owner, |token| Request::Stats { token }).await };
            let give_up = async {
                glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                None
            };
            if let Some(Reply::Stats { stats, .. }) = futures_lite::future::or(ask, give_up).await {
                all.push(*stats);
            }
        }
        let mut s = Stats::merge(all);
        s.health = self.shared.beats.health();
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

    /// Every torrent with its counts that the lists let through (a full
    /// scrape), sorted by hash.
    pub async fn scrape_all_allowed(&self) -> Vec<(InfoHash, ScrapeStats)> {
        let mut all = self.scrape_all().await;
        let lists = self.access.borrow().lists.clone();
        if !lists.is_open() {
            all.retain(|(h, _)| lists.allows(h));
        }
        all
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
    async fn state_records(&self, sliced: bool) -> Vec<u8> {
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

    async fn serve_control(&self, c: Control) {
        match c {
            Control::Stats(tx) => {
                let _ = tx.send(self.own_stats());
            }
            Control::Torrents(tx) => {
                let mut all = Vec::new();
                self.shard.borrow().torrents_info(&mut all);
                let _ = tx.send(all);
            }
            Control::Save(tx) => {
                let _ = tx.send((self.id, self.state_records(true).await));
            }
        }
    }

    fn tick(&self) {
        let now = clock(self.started);
        self.now.set(now);
        self.refresh();
        self.shared.beats.beat(self.id, self.generation.get());
        let mut shard = self.shard.borrow_mut();
        let budget = shard.torrents() / SWEEP_TICKS + 64;
        shard.sweep(now, budget);
    }

    /// Serves one request from another worker.
    async fn serve_request(&self, from: usize, req: Request, out: &mut Vec<u8>, peers: &mut Peers) {
        self.pace.add(1);
        let reply = match req {
            Request::UdpAnnounce {
                transaction_id,
                announce,
                src,
            } => {
                out.clear();
                udp::owner_announce(self, transaction_id, &announce, src, peers, out);
                udp::send(self, out, src).await;
                return;
            }
            Request::Announce {
                token,
                announce,
                ip,
                want,
            } => {
                let mut peers = Peers::default();
                let stats = self.apply_announce(&announce, ip, &want, &mut peers, Protocol::Http);
                Reply::Announce {
                    token,
                    stats,
                    peers,
                }
            }
            Request::Scrape { token, hashes } => {
                let shard = self.shard.borrow();
                let stats = hashes.iter().map(|h| shard.scrape(h)).collect();
                Reply::Scrape { token, stats }
            }
            Request::ScrapeAll { token } => {
                let mut entries = Vec::new();
                self.shard.borrow().scrape_all(&mut entries);
                Reply::ScrapeAll { token, entries }
            }
            Request::Stats { token } => Reply::Stats {
                token,
                stats: Box::new(self.own_stats()),
            },
            Request::WsAnnounce {
                token,
                conn,
                announce,
            } => {
                let stats = ws::at_owner(self, conn, &announce).await;
                Reply::WsAnnounce { token, stats }
            }
            Request::WsDeliver { conn, text } => return self.ws_deliver_local(conn, text),
            Request::WsClosed {
                info_hash,
                peer_id,
                conn,
            } => {
                self.shard
                    .borrow_mut()
                    .ws_remove(&info_hash, &peer_id, conn);
                return;
            }
        };
        if let Some(tx) = &self.replies {
            // The asker may be shutting down; its reply is then moot.
            let _ = tx.send_to(from, reply).await;
        }
    }

    fn deliver(&self, reply: Reply) {
        let sender = self.pending.borrow_mut().try_remove(reply.token() as usize);
        if let Some(tx) = sender {
            // The asker may have gone (its connection closed): nothing to do.
            let _ = tx.send(reply);
        }
    }
}

fn udp_socket(s: Option<socket2::Socket>) -> Option<UdpSocket> {
    // SAFETY: the descriptor is a bound UDP socket whose ownership moves here.
    s.map(|s| unsafe { UdpSocket::from_raw_fd(s.into_raw_fd()) })
}

fn tcp_listener(s: Option<socket2::Socket>) -> Option<TcpListener> {
    // SAFETY: the descriptor is a listening TCP socket whose ownership moves here.
    s.map(|s| unsafe { TcpListener::from_raw_fd(s.into_raw_fd()) })
}

/// The body of a worker thread: joins the mesh, starts its tasks, and ticks
/// until shutdown.
pub(crate) async fn run(start: Start) {
    let Start {
        id,
        workers,
        cfg,
        sockets,
        requests,
        replies,
        shared,
        control,
        restore,
        restore_age,
        restore_torrents,
        conn_ids,
        started,
        seed,
        ready,
    } = start;
    shared.beats.started(id);
    let (req_tx, mut req_rx, rep_tx, mut rep_rx) = if workers > 1 {
        let (Ok((a, b)), Ok((c, d))) = (requests.join().await, replies.join().await) else {
            log(
                &cfg,
                LogLevel::Errors,
                format_args!("worker {id}: could not join the worker mesh"),
            );
            return;
        };
        (Some(a), Some(b), Some(c), Some(d))
    } else {
        (None, None, None, None)
    };
    let mut shard = Shard::with_capacity(
        cfg.peer_ttl,
        seed,
        cfg.reserve_torrents
            .div_ceil(workers)
            .max(restore_torrents + restore_torrents / 4),
    );
    shard.set_limits(crate::swarm::ShardLimits {
        max_torrents: cfg.limits.max_torrents.div_ceil(workers),
        max_peers: cfg.limits.max_peers.div_ceil(workers),
        max_offers: cfg.limits.max_offers.div_ceil(workers),
    });
    shard.keep_peer_ids(cfg.peer_ids);
    let now = clock(started);
    if let Some(path) = &restore {
        super::state::restore(path, id, workers, restore_age, &mut shard, now);
    }
    let (access, tls) = shared.current();
    let w = Rc::new(Worker {
        id,
        workers,
        shard: RefCell::new(shard),
        conn_ids,
        udp4: udp_socket(sockets.udp4),
        udp6: udp_socket(sockets.udp6),
        peers: RefCell::new(Peers::default()),
        counters: Counters::default(),
        max_connections: cfg.limits.max_connections.div_ceil(workers),
        access: RefCell::new(access),
        tls: RefCell::new(tls.map(futures_rustls::TlsAcceptor::from)),
        generation: Cell::new(shared.generation()),
        shared,
        now: Cell::new(now),
        started,
        requests: req_tx,
        replies: rep_tx,
        pending: RefCell::new(Slab::new()),
        ws_conns: RefCell::new(HashMap::new()),
        next_ws: Cell::new(0),
        pace: Default::default(),
        cfg,
    });
    if let Some(rx) = req_rx.as_mut() {
        for (from, stream) in rx.streams() {
            let w = w.clone();
            spawn_local(async move {
                let mut out = Vec::with_capacity(crate::protocol::udp::MAX_REPLY);
                let mut peers = Peers::default();
                while let Some(req) = stream.recv().await {
                    w.serve_request(from, req, &mut out, &mut peers).await;
                }
            })
            .detach();
        }
    }
    if let Some(rx) = rep_rx.as_mut() {
        for (_, stream) in rx.streams() {
            let w = w.clone();
            spawn_local(async move {
                while let Some(reply) = stream.recv().await {
                    w.deliver(reply);
                }
            })
            .detach();
        }
    }
    for v6 in [false, true] {
        if w.udp(v6).is_some() {
            spawn_local(udp::serve(w.clone(), v6)).detach();
        }
    }
    if w.cfg.http || w.cfg.ws {
        let w = w.clone();
        spawn_local(async move { w.pace.run().await }).detach();
    }
    for listener in [tcp_listener(sockets.tcp4), tcp_listener(sockets.tcp6)]
        .into_iter()
        .flatten()
    {
        spawn_local(http::accept(w.clone(), listener)).detach();
    }
    {
        let w = w.clone();
        spawn_local(async move {
            loop {
                glommio::timer::sleep(CONTROL_POLL).await;
                while let Ok(c) = control.try_recv() {
                    w.serve_control(c).await;
                }
            }
        })
        .detach();
    }
    w.shared.beats.beat(id, w.generation.get());
    let _ = ready.send(id);
    while !w.shared.shutdown.load(Ordering::Relaxed) {
        glommio::timer::sleep(TICK).await;
        w.tick();
    }
    if let Some(tx) = &w.shared.state {
        let records = w.state_records(false).await;
        let _ = tx.send((id, records));
    }
}

/// Tracker time: seconds since `started`, from [`CLOCK_BASE`].
pub(crate) fn clock(started: Instant) -> u32 {
    CLOCK_BASE.saturating_add(started.elapsed().as_secs().min(u32::MAX as u64) as u32)
}
