//! Requests per second by protocol over the last hour, for the `/stats`
//! chart.
//!
//! Each worker publishes its request totals by protocol on its tick (three
//! relaxed stores every 250 ms; nothing on the request path). The watchdog
//! thread adds them up every [`SAMPLE_EVERY`] and keeps the rate since the
//! sample before in a ring of [`SAMPLES`]: one hour.

use crate::protocol::Protocol;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the request totals are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Rates kept: one hour of them.
pub const SAMPLES: usize = 360;
/// The time the ring spans.
pub const SPAN: Duration = Duration::from_secs(SAMPLE_EVERY.as_secs() * SAMPLES as u64);

const P: usize = Protocol::ALL.len();

/// Requests per second by protocol over one interval between samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RatePoint {
    /// How long before the figures were read the interval ended.
    pub ago: Duration,
    /// Requests per second, by protocol in [`Protocol::ALL`] order.
    pub per_second: [f64; P],
}

/// The rates of the last hour, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub points: Vec<RatePoint>,
}

impl Rates {
    /// The latest rate of protocol `p`, if there is one yet.
    pub fn latest(&self, p: Protocol) -> Option<f64> {
        self.points.last().map(|r| r.per_second[p as usize])
    }
}

/// One interval's rates and when it ended (since the server started).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rate {
    at: Duration,
    per_second: [f64; P],
}

/// The samples: the last totals taken, and the rates between them.
#[derive(Debug)]
struct Ring {
    rates: VecDeque<Rate>,
    last: Option<(Duration, [u64; P])>,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            rates: VecDeque::with_capacity(SAMPLES),
            last: None,
        }
    }

    /// Takes the totals at `at`: the rate since the previous sample joins
    /// the ring, the oldest leaving it once it holds [`SAMPLES`]. A total
    /// lower than before (its counter started again from zero) counts whole.
    fn sample(&mut self, at: Duration, totals: [u64; P]) {
        if let Some((then, before)) = self.last {
            let secs = at.saturating_sub(then).as_secs_f64();
            if secs <= 0.0 {
                return;
            }
            let per_second = std::array::from_fn(|p| {
                let n = totals[p].checked_sub(before[p]).unwrap_or(totals[p]);
                n as f64 / secs
            });
            if self.rates.len() == SAMPLES {
                self.rates.pop_front();
            }
            self.rates.push_back(Rate { at, per_second });
        }
        self.last = Some((at, totals));
    }

    /// Whether a sample is due at `now`.
    fn due(&self, now: Duration) -> bool {
        self.last
            .is_none_or(|(then, _)| now.saturating_sub(then) >= SAMPLE_EVERY)
    }

    /// The rates of the last [`SPAN`] as seen at `now`, oldest first.
    fn rates(&self, now: Duration) -> Rates {
        Rates {
            points: self
                .rates
                .iter()
                .map(|r| RatePoint {
                    ago: now.saturating_sub(r.at),
                    per_second: r.per_second,
                })
                .filter(|r| r.ago <= SPAN)
                .collect(),
        }
    }
}

/// What the workers publish and the sampler keeps; shared by all.
pub(crate) struct History {
    started: Instant,
    /// Each worker's request totals by protocol, as of its last tick.
    published: Box<[[AtomicU64; P]]>,
    ring: Mutex<Ring>,
}

impl History {
    pub fn new(workers: usize) -> History {
        History {
            started: Instant::now(),
            published: (0..workers).map(|_| Default::default()).collect(),
            ring: Mutex::new(Ring::new()),
        }
    }

    /// Worker `id`'s request totals by protocol (on its tick).
    pub fn publish(&self, id: usize, totals: [u64; P]) {
        for (slot, n) in self.published[id].iter().zip(totals) {
            slot.store(n, Ordering::Relaxed);
        }
    }

    /// How long since the server started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Takes a sample of every worker's totals if one is due (the sampler
    /// calls this more often than [`SAMPLE_EVERY`]).
    pub fn sample_if_due(&self) {
        let now = self.started.elapsed();
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.due(now) {
            let mut totals = [0u64; P];
            for worker in self.published.iter() {
                for (t, n) in totals.iter_mut().zip(worker) {
                    *t = t.wrapping_add(n.load(Ordering::Relaxed));
                }
            }
            ring.sample(now, totals);
        }
    }

    /// The rates of the last hour.
    pub fn rates(&self) -> Rates {
        let now = self.started.elapsed();
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rates(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn rates_are_differences_over_the_interval() {
        let mut r = Ring::new();
        assert!(r.due(secs(0)));
        r.sample(secs(0), [100, 5, 0]);
        assert!(r.rates(secs(0)).points.is_empty(), "one sample, no rate");
        assert!(!r.due(secs(9)) && r.due(secs(10)));
        r.sample(secs(10), [1_100, 5, 30]);
        // A late sample: the rate is over the time that really passed.
        r.sample(secs(30), [2_100, 45, 30]);
        let got = r.rates(secs(35));
        assert_eq!(
            got.points,
            vec![
                RatePoint {
                    ago: secs(25),
                    per_second: [100.0, 0.0, 3.0]
                },
                RatePoint {
                    ago: secs(5),
                    per_second: [50.0, 2.0, 0.0]
                },
            ]
        );
        assert_eq!(got.latest(Protocol::Udp), Some(50.0));
        assert_eq!(Rates::default().latest(Protocol::Udp), None);
    }

    #[test]
    fn a_counter_that_starts_again_counts_whole_and_time_standing_still_counts_nothing() {
        let mut r = Ring::new();
        r.sample(secs(0), [1_000, 1_000, 1_000]);
        r.sample(secs(10), [50, 2_000, 1_000]);
        r.sample(secs(10), [60, 2_010, 1_000]);
        let p = r.rates(secs(10)).points;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].per_second, [5.0, 100.0, 0.0]);
        assert!(p[0].per_second.iter().all(|v| v.is_finite()));
        // The sample at the same instant was not taken: the next rate
        // runs from the one before it.
        r.sample(secs(20), [150, 2_000, 1_000]);
        assert_eq!(r.rates(secs(20)).points[1].per_second, [10.0, 0.0, 0.0]);
    }

    #[test]
    fn the_ring_keeps_the_last_hour() {
        let mut r = Ring::new();
        let room = r.rates.capacity();
        let every = SAMPLE_EVERY.as_secs();
        let n = SAMPLES as u64 + 50;
        for i in 0..=n {
            r.sample(secs(i * every), [i * i, 0, 0]);
        }
        let now = secs(n * every);
        let p = r.rates(now).points;
        assert_eq!(p.len(), SAMPLES, "full, and no larger");
        assert_eq!(r.rates.capacity(), room, "no allocation after the start");
        assert_eq!(p.last().unwrap().ago, secs(0));
        assert_eq!(p[0].ago, SPAN - SAMPLE_EVERY, "oldest first");
        // i² - (i-1)² = 2i - 1 requests in each interval.
        let newest = (2 * n - 1) as f64 / every as f64;
        assert_eq!(p.last().unwrap().per_second[0], newest);
        // Rates older than an hour are not shown: 15 min later, those that
        // ended 0, 10, ... 2,700 s before are.
        let later = r.rates(now + secs(15 * 60)).points;
        assert_eq!(later.len(), 2_700 / every as usize + 1);
        assert_eq!(later[0].ago, SPAN);
    }

    #[test]
    fn published_totals_are_summed_over_the_workers() {
        let h = History::new(2);
        h.sample_if_due();
        h.publish(0, [10, 1, 0]);
        h.publish(1, [20, 0, 4]);
        h.sample_if_due();
        assert!(h.rates().points.is_empty(), "not due yet");
        // As if the first sample was taken 10 s ago.
        h.ring.lock().unwrap().last = Some((Duration::ZERO, [0; P]));
        let h = History {
            started: Instant::now() - SAMPLE_EVERY,
            ..h
        };
        h.sample_if_due();
        let p = h.rates().points;
        assert_eq!(p.len(), 1);
        let per = p[0].per_second;
        assert!(
            (per[0] - 3.0).abs() < 0.01 && (per[2] - 0.4).abs() < 0.01,
            "{per:?}"
        );
    }
}
