//! A worker's part in handing its sockets and swarms to a new process (see
//! `crate::upgrade`). The sockets stay open throughout, shared with the new
//! process, so what arrives while the workers hand over waits in them.
//!
//! 1. **Draining.** No connection is accepted. Each open HTTP connection
//!    answers what it has been sent, with `Connection: close`, and closes;
//!    one that sends nothing for [`IDLE_GRACE`] is shut down for reading
//!    (what it sent before is still answered). WebSocket connections are
//!    shut down for reading at once and close with 1001 (going away), and
//!    WebTorrent clients reconnect. UDP is still served.
//! 2. **Frozen.** The UDP tasks stop at the end of their batch; once every
//!    worker has answered a round trip from each other worker, nothing
//!    forwarded is left in flight, and the shards are dumped.
//! 3. **Serving** again if the new process failed: the same sockets, the
//!    same swarms, as if nothing happened.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How long an open HTTP connection may stay silent while the worker
/// drains before it is shut down for reading.
pub(crate) const IDLE_GRACE: Duration = Duration::from_secs(1);

/// How long draining waits for connections to close at most.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// Where a worker is in a hand-over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    #[default]
    Serving,
    Draining,
    Frozen,
}

/// A worker's hand-over state: its phase and the tasks waiting for it to
/// change. The open connections it shuts are the worker's `conns`.
#[derive(Default)]
pub(crate) struct Handover {
    phase: Cell<Phase>,
    waiting: RefCell<slab::Slab<Waker>>,
    /// UDP tasks stopped by a freeze.
    parked: Cell<usize>,
}

impl Handover {
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    pub fn serving(&self) -> bool {
        self.phase.get() == Phase::Serving
    }

    /// Moves to `p` and wakes every task waiting for a change. Each waiter
    /// takes its own place out of `waiting` (when polled, or dropped): a
    /// place emptied here could be given to another waiter meanwhile, and
    /// the first would then take that one's out, leaving it asleep.
    pub fn set(&self, p: Phase) {
        self.phase.set(p);
        let wakers: Vec<Waker> = self
            .waiting
            .borrow()
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits until the phase satisfies `ok`.
    pub fn until<F: Fn(Phase) -> bool + Unpin>(&self, ok: F) -> Until<'_, F> {
        Until {
            h: self,
            ok,
            key: None,
        }
    }

    /// A UDP task stopped (`true`) or went on (`false`).
    pub fn park(&self, parked: bool) {
        let n = self.parked.get();
        self.parked
            .set(if parked { n + 1 } else { n.saturating_sub(1) });
    }

    pub fn parked(&self) -> usize {
        self.parked.get()
    }
}

/// The future of [`Handover::until`]; it forgets its waker when dropped.
pub(crate) struct Until<'a, F> {
    h: &'a Handover,
    ok: F,
    key: Option<usize>,
}

impl<F: Fn(Phase) -> bool + Unpin> Future for Until<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut waiting = this.h.waiting.borrow_mut();
        if let Some(k) = this.key.take() {
            waiting.try_remove(k);
        }
        if (this.ok)(this.h.phase.get()) {
            return Poll::Ready(());
        }
        this.key = Some(waiting.insert(cx.waker().clone()));
        Poll::Pending
    }
}

impl<F> Drop for Until<'_, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            if let Ok(mut waiting) = self.h.waiting.try_borrow_mut() {
                waiting.try_remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn waiters_wake_on_a_change_and_forget_themselves() {
        let h = Handover::default();
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut f = Box::pin(h.until(|p| p == Phase::Frozen));
        assert!(f.as_mut().poll(&mut cx).is_pending());
        // Polled again, it still holds one place, not two.
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(h.waiting.borrow().len(), 1);
        h.set(Phase::Draining);
        assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(
            h.waiting.borrow().len(),
            1,
            "woken, it keeps its place until polled"
        );
        assert!(f.as_mut().poll(&mut cx).is_pending(), "not frozen yet");
        h.set(Phase::Frozen);
        assert!(f.as_mut().poll(&mut cx).is_ready());
        // A dropped waiter leaves nothing behind.
        let mut g = Box::pin(h.until(|p| p == Phase::Serving));
        assert!(g.as_mut().poll(&mut cx).is_pending());
        drop(g);
        assert_eq!(h.waiting.borrow().len(), 0);
    }

    #[test]
    fn a_waiter_woken_with_others_never_takes_their_place() {
        // A UDP task waits for a freeze, an accept loop for the end of
        // serving; a drain wakes both. The accept loop, done waiting, must
        // not take the UDP task's new place, or the freeze finds it asleep.
        let h = Handover::default();
        let (udp, accept) = (
            Arc::new(Count(Default::default())),
            Arc::new(Count(Default::default())),
        );
        let (wu, wa) = (Waker::from(udp.clone()), Waker::from(accept.clone()));
        let mut a = Box::pin(h.until(|p| p == Phase::Frozen));
        let mut b = Box::pin(h.until(|p| p != Phase::Serving));
        // The accept loop came first: its place is the one the UDP task
        // gets after the drain.
        assert!(b.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
        assert!(a.as_mut().poll(&mut Context::from_waker(&wu)).is_pending());
        h.set(Phase::Draining);
        assert!(a.as_mut().poll(&mut Context::from_waker(&wu)).is_pending());
        assert!(b.as_mut().poll(&mut Context::from_waker(&wa)).is_ready());
        drop(b);
        let woken = udp.0.load(std::sync::atomic::Ordering::Relaxed);
        h.set(Phase::Frozen);
        assert_eq!(udp.0.load(std::sync::atomic::Ordering::Relaxed), woken + 1);
        assert!(a.as_mut().poll(&mut Context::from_waker(&wu)).is_ready());
        assert_eq!(h.waiting.borrow().len(), 0);
    }
}

/// One listening socket of a running tracker, as it hands it to a new
/// process: which worker serves it, and what it is.
#[derive(Debug)]
pub struct HandedSocket {
    pub worker: usize,
    pub udp: bool,
    pub fd: std::os::fd::OwnedFd,
}

/// What a new process starts from instead of binding and reading the state
/// file: the running tracker's sockets and its swarms (the state file's
/// format, streamed).
#[derive(Debug)]
pub struct Handed {
    pub sockets: Vec<HandedSocket>,
    pub swarms: std::sync::Arc<Vec<u8>>,
    /// The UDP connection-id key, and how long the old process's clock had
    /// run: the new one goes on with both.
    pub conn_key: [u8; 16],
    pub uptime: Duration,
}

/// How long a step of a hand-over may take every worker, past which the
/// hand-over is given up (and the workers serve on).
const STEP_LIMIT: Duration = Duration::from_secs(10);

impl super::Server {
    /// Copies of the listening sockets, for a new process to take over.
    pub fn handed_sockets(&self) -> &[HandedSocket] {
        &self.sockets
    }

    /// The UDP connection-id key and how long the clock has run, for a new
    /// process to go on with.
    pub fn handed_clock(&self) -> ([u8; 16], Duration) {
        (self.conn_key, self.started.elapsed())
    }

    /// Sends every worker the request `make` builds and collects what each
    /// hands back within `limit`; `doing` says what, if one does not.
    fn ask_all(
        &self,
        make: impl Fn(crossbeam_channel::Sender<super::mesh::Blob>) -> super::mesh::Control,
        limit: Duration,
        doing: &str,
    ) -> Result<Vec<super::mesh::Blob>, String> {
        let (tx, rx) = crossbeam_channel::unbounded();
        for c in &self.control {
            c.send(make(tx.clone()))
                .map_err(|_| "a worker has stopped".to_string())?;
        }
        drop(tx);
        let deadline = std::time::Instant::now() + limit;
        let mut got = Vec::with_capacity(self.control.len());
        while got.len() < self.control.len() {
            match rx.recv_deadline(deadline) {
                Ok(b) => got.push(b),
                Err(_) => {
                    return Err(format!(
                        "{} of {} workers did not {doing} in time",
                        self.control.len() - got.len(),
                        self.control.len()
                    ))
                }
            }
        }
        Ok(got)
    }

    /// Moves every worker to `phase`.
    fn step(&self, phase: Phase) -> Result<(), String> {
        let doing = format!("reach {phase:?}");
        self.ask_all(
            |tx| super::mesh::Control::Handover(phase, tx),
            STEP_LIMIT + DRAIN_LIMIT,
            &doing,
        )
        .map(drop)
    }

    /// First step of a hand-over: stops accepting connections and closes the
    /// open ones once they have been answered; UDP is still served.
    pub fn drain(&self) -> Result<(), String> {
        self.step(Phase::Draining)
    }

    /// Second step: stops serving UDP, waits until nothing forwarded is in
    /// flight, and returns every swarm in the state file's format.
    pub fn freeze(&self) -> Result<Vec<u8>, String> {
        self.step(Phase::Frozen)?;
        let blobs = self.ask_all(super::mesh::Control::Dump, STEP_LIMIT, "hand in its swarms")?;
        Ok(super::state::assemble(blobs))
    }

    /// Serves again as before the hand-over began (the new process failed).
    pub fn resume(&self) -> Result<(), String> {
        self.step(Phase::Serving)
    }

    /// Stops after a hand-over, without the last save: the new process holds
    /// the swarms now, and saves them.
    pub fn retire(mut self) {
        if let Some(saver) = self.saver.take() {
            saver.abandon();
        }
        self.shared
            .shutdown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for h in std::mem::take(&mut self.handles) {
            let _ = h.join();
        }
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// The sockets of `handed` for each of `workers`, checked against what
/// `cfg` serves: a configuration that needs other sockets (another worker
/// count, protocol or address) cannot take them over.
pub(super) fn adopt(
    cfg: &crate::config::ServerConfig,
    handed: &Handed,
    workers: usize,
) -> Result<(super::bind::Bound, Vec<super::start::Sockets>), String> {
    use super::bind::{Bound, Proto};
    let mut sockets: Vec<super::start::Sockets> =
        (0..workers).map(|_| Default::default()).collect();
    let mut endpoints: Vec<(Proto, std::net::SocketAddr)> = Vec::new();
    let mut port = None;
    for h in &handed.sockets {
        let s = socket2::Socket::from(h.fd.try_clone().map_err(|e| e.to_string())?);
        let addr = s
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or("a handed socket has no address")?;
        let proto = if h.udp { Proto::Udp } else { Proto::Tcp };
        let ty = s.r#type().map_err(|e| e.to_string())?;
        if (ty == socket2::Type::DGRAM) != h.udp {
            return Err(format!(
                "handed socket {addr} is not the kind it was said to be"
            ));
        }
        if *port.get_or_insert(addr.port()) != addr.port() {
            return Err("the handed sockets are on different ports".into());
        }
        let slot = sockets.get_mut(h.worker).ok_or_else(|| {
            format!("the running tracker has more workers than this configuration's {workers}")
        })?;
        *super::bind::place(slot, proto, addr.is_ipv6()) = Some(s);
        if h.worker == 0 {
            endpoints.push((proto, addr));
        }
    }
    // Every worker must have what worker 0 has, and the configuration must
    // serve exactly that.
    let want_tcp = cfg.http || cfg.ws;
    for (i, s) in sockets.iter().enumerate() {
        let has = [
            s.udp4.is_some(),
            s.udp6.is_some(),
            s.tcp4.is_some(),
            s.tcp6.is_some(),
        ];
        let first = &sockets[0];
        let first = [
            first.udp4.is_some(),
            first.udp6.is_some(),
            first.tcp4.is_some(),
            first.tcp6.is_some(),
        ];
        if has != first || (!has[0] && !has[1] && !has[2] && !has[3]) {
            return Err(format!(
                "the running tracker has {} workers, this configuration {workers} (worker {i} has no sockets)",
                handed.sockets.iter().map(|h| h.worker + 1).max().unwrap_or(0)
            ));
        }
    }
    let s0 = &sockets[0];
    if (s0.udp4.is_some() || s0.udp6.is_some()) != cfg.udp
        || (s0.tcp4.is_some() || s0.tcp6.is_some()) != want_tcp
    {
        return Err("the running tracker serves other protocols than this configuration".into());
    }
    let port = port.ok_or("no sockets were handed over")?;
    if cfg.port != 0 && cfg.port != port {
        return Err(format!(
            "the running tracker listens on port {port}, this configuration on {}",
            cfg.port
        ));
    }
    Ok((Bound { port, endpoints }, sockets))
}
