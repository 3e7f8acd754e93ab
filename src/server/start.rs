//! A worker thread from start to stop: it joins the mesh, builds its shard
//! (restored from the state file), starts its tasks (the fronts, the mesh
//! and control loops, the pacer), says it is ready, ticks until shutdown,
//! and hands in its swarms.

use super::mesh::{Control, Reply, Request};
use super::shared::Shared;
use super::worker::{clock, Worker};
use super::{dispatch, http, udp};
use crate::config::ServerConfig;
use crate::protocol::udp::ConnectionIds;
use crate::protocol::Peers;
use crate::swarm::Shard;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::{TcpListener, UdpSocket};
use glommio::spawn_local;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a worker refreshes its clock, sweeps and checks for shutdown.
const TICK: Duration = Duration::from_millis(250);
/// How often a worker looks for requests from outside the executors.
const CONTROL_POLL: Duration = Duration::from_millis(10);

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
    /// Where to restore this worker's torrents from, and how old they are
    /// (seconds).
    pub restore: Option<super::state::Source>,
    pub restore_age: u32,
    pub restore_torrents: usize,
    pub conn_ids: ConnectionIds,
    pub started: Instant,
    pub seed: u64,
    /// Where the worker says it serves, or why it could not start.
    pub ready: crossbeam_channel::Sender<Result<usize, String>>,
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
            let _ = ready.send(Err(format!("worker {id} could not join the worker mesh")));
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
    if let Some(source) = &restore {
        super::state::restore(source, id, workers, restore_age, &mut shard, clock(started));
    }
    let w = Rc::new(Worker::new(
        id,
        workers,
        cfg,
        shard,
        conn_ids,
        (udp_socket(sockets.udp4), udp_socket(sockets.udp6)),
        shared,
        (req_tx, rep_tx),
        started,
    ));
    if let Some(rx) = req_rx.as_mut() {
        for (from, stream) in rx.streams() {
            let w = w.clone();
            spawn_local(async move {
                let mut out = Vec::with_capacity(crate::protocol::udp::MAX_REPLY);
                let mut peers = Peers::default();
                while let Some(req) = stream.recv().await {
                    dispatch::serve_request(&w, from, req, &mut out, &mut peers).await;
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
                    dispatch::serve_control(&w, c).await;
                }
            }
        })
        .detach();
    }
    w.shared.beats.beat(id, w.generation());
    let _ = ready.send(Ok(id));
    while !w.shared.shutdown.load(Ordering::Relaxed) {
        glommio::timer::sleep(TICK).await;
        w.tick();
    }
    if let Some(tx) = &w.shared.state {
        let records = w.state_records(false).await;
        let _ = tx.send((id, records));
    }
}
