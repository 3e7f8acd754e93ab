//! Counts, latency histograms, the live progress line and the final report.

use crate::workload::Kind;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Request kinds counted apart (see [`Kind`]).
pub const KINDS: usize = 5;

/// A duration in whole microseconds, within the histograms' bounds.
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 60_000_000)
}

/// What one load thread saw.
pub struct Stats {
    pub sent: [u64; KINDS],
    pub ok: [u64; KINDS],
    /// Well-formed error replies (UDP action 3, HTTP `failure reason`).
    pub errors: [u64; KINDS],
    /// Replies that break the protocol: wrong action, size, counts; bad HTTP.
    pub invalid: [u64; KINDS],
    pub timeouts: [u64; KINDS],
    /// Replies that came after their request had timed out.
    pub late: u64,
    /// Open loop: requests due but not sent (in-flight limit or no idle connection).
    pub not_sent: u64,
    /// HTTP: connections the server closed between requests (after a reply
    /// with `Connection: close`, or while idle), opened again. Not failures:
    /// no request was lost.
    pub reconnects: u64,
    /// Latency in microseconds, per kind (answered requests only).
    pub latency: [Histogram<u64>; KINDS],
    /// Open loop: how long after its due time each request left, in
    /// microseconds. Latency counts from the due time, so a tail here is
    /// the generator's own, not the tracker's.
    pub lag: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Stats {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Stats {
            sent: [0; KINDS],
            ok: [0; KINDS],
            errors: [0; KINDS],
            invalid: [0; KINDS],
            timeouts: [0; KINDS],
            late: 0,
            not_sent: 0,
            reconnects: 0,
            latency: [h(), h(), h(), h(), h()],
            lag: h(),
        }
    }

    /// Open loop: a request due at `due` leaves at `now`.
    pub fn left(&mut self, due: Instant, now: Instant) {
        let _ = self.lag.record(micros(now.saturating_duration_since(due)));
    }

    pub fn record(&mut self, kind: Kind, latency: Duration) {
        let _ = self.latency[kind as usize].record(micros(latency));
    }

    pub fn merge(&mut self, o: &Stats) {
        for k in 0..KINDS {
            self.sent[k] += o.sent[k];
            self.ok[k] += o.ok[k];
            self.errors[k] += o.errors[k];
            self.invalid[k] += o.invalid[k];
            self.timeouts[k] += o.timeouts[k];
            let _ = self.latency[k].add(&o.latency[k]);
        }
        let _ = self.lag.add(&o.lag);
        self.late += o.late;
        self.not_sent += o.not_sent;
        self.reconnects += o.reconnects;
    }
}

/// What a reply turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// A well-formed error reply: answered, but not served.
    Error,
    Invalid,
}

/// Counts not yet shown on the progress line.
#[derive(Default)]
pub struct Unpublished {
    sent_before: u64,
    answered: u64,
    bad: u64,
}

impl Stats {
    /// Counts one reply of a `kind` request sent `latency` ago.
    pub fn tally(&mut self, kind: Kind, verdict: Verdict, latency: Duration, u: &mut Unpublished) {
        let k = kind as usize;
        match verdict {
            Verdict::Ok => self.ok[k] += 1,
            Verdict::Error => self.errors[k] += 1,
            Verdict::Invalid => self.invalid[k] += 1,
        }
        if verdict != Verdict::Invalid {
            self.record(kind, latency);
            u.answered += 1;
        }
        if verdict != Verdict::Ok {
            u.bad += 1;
        }
    }

    /// Counts a request that got no reply in time.
    pub fn timeout(&mut self, kind: Kind, u: &mut Unpublished) {
        self.timeouts[kind as usize] += 1;
        u.bad += 1;
    }

    /// Adds what happened since the last call to the progress counters.
    pub fn publish(&self, live: &Live, u: &mut Unpublished) {
        let sent: u64 = self.sent.iter().sum();
        live.add(sent - u.sent_before, u.answered, u.bad);
        *u = Unpublished {
            sent_before: sent,
            ..Unpublished::default()
        };
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// Counters a load thread publishes for the progress line.
#[derive(Default)]
#[repr(align(64))]
pub struct Live {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub bad: AtomicU64,
}

impl Live {
    pub fn add(&self, sent: u64, answered: u64, bad: u64) {
        self.sent.fetch_add(sent, Ordering::Relaxed);
        self.answered.fetch_add(answered, Ordering::Relaxed);
        self.bad.fetch_add(bad, Ordering::Relaxed);
    }
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct Line {
    pub sent: u64,
    pub answered: u64,
    pub per_second: f64,
    pub errors: u64,
    pub invalid: u64,
    pub timeouts: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// The final report, also written as JSON with `--json`.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub protocol: String,
    pub target: String,
    pub mode: String,
    pub seconds: f64,
    pub threads: usize,
    pub connect: Line,
    pub announce: Line,
    pub scrape: Line,
    /// WebSocket: answers sent (to offers received) and answers received
    /// for offers sent; latency from the offer to its answer.
    pub answer: Line,
    /// Garbage (`--garbage`): answered when refused as it should be.
    pub garbage: Line,
    pub total: Line,
    pub late: u64,
    pub not_sent: u64,
    /// HTTP: connections the server closed between requests, opened again.
    pub reconnects: u64,
    /// Open loop: how late requests left the generator (all zero in closed loop).
    pub send_lag: Lag,
}

/// Quantiles of how late requests left the generator, in microseconds.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Lag {
    fn of(h: &Histogram<u64>) -> Lag {
        if h.is_empty() {
            return Lag::default();
        }
        Lag {
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

fn line(s: &Stats, k: Option<usize>, secs: f64) -> Line {
    let ks: Vec<usize> = k.map_or((0..KINDS).collect(), |k| vec![k]);
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    ks.iter().for_each(|&k| {
        let _ = h.add(&s.latency[k]);
    });
    let sum = |a: &[u64; KINDS]| ks.iter().map(|&k| a[k]).sum::<u64>();
    let answered = sum(&s.ok) + sum(&s.errors);
    let q = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    Line {
        sent: sum(&s.sent),
        answered,
        per_second: answered as f64 / secs,
        errors: sum(&s.errors),
        invalid: sum(&s.invalid),
        timeouts: sum(&s.timeouts),
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
        p999_us: q(0.999),
        max_us: if h.is_empty() { 0 } else { h.max() },
    }
}

impl Report {
    pub fn new(
        protocol: &str,
        target: &str,
        mode: String,
        seconds: f64,
        threads: usize,
        s: &Stats,
    ) -> Report {
        Report {
            protocol: protocol.into(),
            target: target.into(),
            mode,
            seconds,
            threads,
            connect: line(s, Some(0), seconds),
            announce: line(s, Some(1), seconds),
            scrape: line(s, Some(2), seconds),
            answer: line(s, Some(3), seconds),
            garbage: line(s, Some(4), seconds),
            total: line(s, None, seconds),
            late: s.late,
            not_sent: s.not_sent,
            reconnects: s.reconnects,
            send_lag: Lag::of(&s.lag),
        }
    }

    /// Requests answered per second, all kinds.
    pub fn rate(&self) -> f64 {
        self.total.per_second
    }

    pub fn print(&self) {
        println!(
            "{} load on {}: {}, {:.1} s, {} thread(s)",
            self.protocol, self.target, self.mode, self.seconds, self.threads
        );
        println!(
            "{:<9} {:>11} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "",
            "sent",
            "answered",
            "per second",
            "errors",
            "invalid",
            "timeouts",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs"
        );
        for (name, l) in [
            ("connect", &self.connect),
            ("announce", &self.announce),
            ("scrape", &self.scrape),
            ("answer", &self.answer),
            ("garbage", &self.garbage),
            ("total", &self.total),
        ] {
            if l.sent == 0 && name != "total" {
                continue;
            }
            println!(
                "{:<9} {:>11} {:>11} {:>11.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                name,
                l.sent,
                l.answered,
                l.per_second,
                l.errors,
                l.invalid,
                l.timeouts,
                l.p50_us,
                l.p90_us,
                l.p99_us,
                l.p999_us
            );
        }
        if self.late > 0 || self.not_sent > 0 {
            println!(
                "late replies: {}, due but not sent: {}",
                self.late, self.not_sent
            );
        }
        if self.reconnects > 0 {
            println!(
                "reconnects (the server closed a connection between requests; no request lost): {}",
                self.reconnects
            );
        }
        if self.send_lag != Lag::default() {
            let l = &self.send_lag;
            println!(
                "sent after due (the generator's lag, counted in latency): p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
                l.p50_us, l.p99_us, l.p999_us, l.max_us
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_add_up_by_kind() {
        let mut a = Stats::new();
        a.sent = [1, 10, 2, 0, 0];
        a.ok = [1, 8, 2, 0, 0];
        a.errors = [0, 1, 0, 0, 0];
        a.timeouts = [0, 1, 0, 0, 0];
        for us in [100u64, 200, 300, 400] {
            a.record(Kind::Announce, Duration::from_micros(us));
        }
        let mut b = Stats::new();
        b.sent = [0, 10, 0, 0, 0];
        b.ok = [0, 10, 0, 0, 0];
        b.record(Kind::Announce, Duration::from_micros(1000));
        a.merge(&b);
        let r = Report::new("udp", "x", "closed".into(), 2.0, 1, &a);
        assert_eq!(
            (r.announce.sent, r.announce.answered, r.announce.errors),
            (20, 19, 1)
        );
        assert_eq!(r.total.sent, 23);
        assert_eq!(r.total.answered, 22);
        assert_eq!(r.total.per_second, 11.0);
        assert_eq!(r.announce.p50_us, 300);
        assert_eq!(r.announce.max_us, 1000);
        assert_eq!(r.scrape.p50_us, 0);
        // Closed loop: nothing left late, nothing to show.
        assert_eq!(r.send_lag, Lag::default());
    }

    #[test]
    fn send_lag_is_how_late_requests_left() {
        let t = Instant::now();
        let us = Duration::from_micros;
        let mut a = Stats::new();
        for late in 0..98 {
            a.left(t, t + us(late % 3));
        }
        a.left(t, t + us(5_000));
        // Sent early (a clock step): counted as not late, not as a panic.
        a.left(t + us(10), t);
        let mut b = Stats::new();
        b.left(t, t + us(40_000));
        a.merge(&b);
        let r = Report::new("http", "x", "open".into(), 1.0, 2, &a);
        assert_eq!(r.send_lag.p50_us, 1);
        // Three significant digits: a value reads back within 0.1%.
        assert!(
            (5_000..=5_005).contains(&r.send_lag.p99_us),
            "{:?}",
            r.send_lag
        );
        assert!(
            (40_000..=40_040).contains(&r.send_lag.max_us),
            "{:?}",
            r.send_lag
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"send_lag\":{\"p50_us\":1,"), "{json}");
    }
}
