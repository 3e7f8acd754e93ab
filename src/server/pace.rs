//! Pacing a worker's wakeups under sparse load.
//!
//! A request that arrives alone costs the worker a whole turn of glommio's
//! reactor: waking, consuming the rings, cancelling and re-arming its
//! preemption timers, and, when it runs out of work, a `membarrier` and a
//! sleep. When requests come one or two a turn, that costs more than the
//! requests: at 60k HTTP requests/s over 1,000 connections the worker used
//! 98% of its core in open loop, against half that in closed loop.
//!
//! The pacer is a task that runs once per turn in which a TCP connection
//! received something. If that turn brought little work and came soon after
//! the previous one, it holds the worker's thread back (a plain sleep, so
//! nothing else runs either) until `PACE` has passed since the previous
//! turn. Completions gather meanwhile in io_uring and datagrams in the UDP
//! socket, and the next turn serves them together. A busy worker is never
//! held back, and a quiet one answers at once: the first request after a
//! pause finds the last turn long past.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Turns of a worker that is held back come at most this often.
const PACE: Duration = Duration::from_micros(100);

/// A turn that brought this much work (requests, messages, datagrams) is
/// busy enough: the worker goes straight on.
const BUSY: u32 = 16;

/// How long to hold a worker back after a turn that brought `work` and
/// began `since` after the previous one ended.
fn hold(work: u32, since: Duration) -> Option<Duration> {
    (work < BUSY && since < PACE).then(|| PACE - since)
}

/// One worker's pacer.
#[derive(Default)]
pub(crate) struct Pacer {
    /// Work done since the pacer last ran.
    work: Cell<u32>,
    /// The pacer, when it waits for a connection to receive something.
    waker: Cell<Option<Waker>>,
}

impl Pacer {
    /// A TCP connection received a request or message: wakes the pacer to
    /// run at the end of this turn.
    #[inline]
    pub fn received(&self) {
        self.add(1);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Other work done this turn (datagrams answered, forwarded requests
    /// served), which does not wake the pacer but keeps it from holding a
    /// busy worker back.
    #[inline]
    pub fn add(&self, n: usize) {
        self.work.set(
            self.work
                .get()
                .saturating_add(n.try_into().unwrap_or(u32::MAX)),
        );
    }

    /// Runs the pacer until the executor stops.
    pub async fn run(&self) {
        let mut last = Instant::now();
        loop {
            std::future::poll_fn(|cx| {
                if self.work.get() > 0 {
                    Poll::Ready(())
                } else {
                    self.waker.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            if let Some(d) = hold(self.work.replace(0), last.elapsed()) {
                std::thread::sleep(d);
            }
            last = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_only_a_light_turn_that_came_soon() {
        let us = Duration::from_micros;
        assert_eq!(hold(1, us(10)), Some(us(90)));
        assert_eq!(hold(BUSY - 1, us(0)), Some(PACE));
        // busy: straight on
        assert_eq!(hold(BUSY, us(10)), None);
        assert_eq!(hold(u32::MAX, us(0)), None);
        // the previous turn is long past: a quiet worker answers at once
        assert_eq!(hold(1, PACE), None);
        assert_eq!(hold(1, Duration::from_secs(3)), None);
    }

    #[test]
    fn the_pacer_runs_when_a_connection_receives_and_holds_the_turn_back() {
        use std::rc::Rc;
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let p = Rc::new(Pacer::default());
                let task = glommio::spawn_local({
                    let p = p.clone();
                    async move { p.run().await }
                })
                .detach();
                // It waits for work.
                glommio::executor().yield_now().await;
                let waiting = p.waker.take();
                assert!(waiting.is_some(), "the pacer waits for work");
                p.waker.set(waiting);
                // Two requests, one after the other: the second turn is held
                // back until PACE has passed since the first.
                let t0 = Instant::now();
                p.received();
                glommio::executor().yield_now().await;
                assert_eq!(p.work.get(), 0, "the pacer took the turn's work");
                p.received();
                glommio::executor().yield_now().await;
                assert!(t0.elapsed() >= PACE, "{:?}", t0.elapsed());
                task.cancel();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
