//! The `/stats` chart: requests per second by protocol over the last hour,
//! an SVG drawn here from the sampled rates (no script, nothing fetched).
//! While the tracker is younger than that, the time axis spans what it has
//! (a minute at least), so the first minutes are not a sliver at the edge.

use super::history::{Rates, SAMPLE_EVERY, SPAN};
use super::readable::{rate, thousands};
use crate::protocol::Protocol;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 340.0;
/// The plot's edges: room on the left for the rates and the axis title,
/// above for the legend, below for the times.
const LEFT: f64 = 100.0;
const RIGHT: f64 = WIDTH - 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = HEIGHT - 40.0;
/// No tracker answers this many requests a second: the scale stops here.
const MOST: f64 = 1e15;
/// The time axes, in seconds: a span and the step between its labels.
const SPANS: [(u64, u64); 7] = [
    (60, 10),
    (120, 30),
    (300, 60),
    (600, 120),
    (900, 300),
    (1_800, 300),
    (SPAN.as_secs(), 600),
];

/// A protocol's name in the legend, and its colour.
fn looks(p: Protocol) -> (&'static str, &'static str) {
    match p {
        Protocol::Udp => ("UDP", "#1f77b4"),
        Protocol::Http => ("HTTP", "#d95f02"),
        Protocol::Ws => ("WebSocket", "#2ca02c"),
    }
}

/// The rate axis for rates up to `max`: a round step (1, 2 or 5 times a
/// power of ten, at least 1) and how many steps it takes to reach `max`
/// (at least one).
fn scale(max: f64) -> (u64, u64) {
    let max = if max.is_finite() {
        max.clamp(0.0, MOST)
    } else {
        0.0
    };
    let mut power = 1u64;
    let step = loop {
        if let Some(s) = [1, 2, 5]
            .map(|m| m * power)
            .into_iter()
            .find(|&s| s as f64 * 5.0 >= max)
        {
            break s;
        }
        power *= 10;
    };
    (step, ((max / step as f64).ceil() as u64).max(1))
}

/// The time axis: the shortest span that holds every rate (each covers the
/// [`SAMPLE_EVERY`] before it), and its step, in seconds.
fn time_axis(rates: &Rates) -> (u64, u64) {
    let oldest = rates
        .points
        .first()
        .map_or(0, |r| (r.ago + SAMPLE_EVERY).as_secs());
    SPANS
        .into_iter()
        .find(|&(span, _)| span >= oldest)
        .unwrap_or(SPANS[SPANS.len() - 1])
}

/// A time on the axis: `now`, `90 s ago`, `5 min ago`.
fn ago(secs: u64) -> String {
    match secs {
        0 => "now".to_string(),
        s if s.is_multiple_of(60) => format!("{} min ago", s / 60),
        s => format!("{s} s ago"),
    }
}

/// The chart, `rates` oldest first.
pub fn requests_per_second(rates: &Rates) -> String {
    let mut s = String::with_capacity(2048 + rates.points.len() * 3 * 16);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-label=\"Requests per second by protocol\">\n\
         <g font-family=\"sans-serif\" font-size=\"13\" fill=\"#333\">\n\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\"/>\n",
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let max = rates
        .points
        .iter()
        .flat_map(|r| r.per_second)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (step, steps) = scale(max);
    let top = (step * steps) as f64;
    let (span, every) = time_axis(rates);
    let x = |ago: f64| RIGHT - ago.clamp(0.0, span as f64) / span as f64 * (RIGHT - LEFT);
    let y = |v: f64| {
        let v = if v.is_finite() {
            v.clamp(0.0, top)
        } else {
            0.0
        };
        BOTTOM - v / top * (BOTTOM - TOP)
    };
    // Rates: a grid line and a label at each step.
    for i in 0..=steps {
        let at = y((i * step) as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{at:.1}\" x2=\"{RIGHT}\" y2=\"{at:.1}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 8.0,
            at + 4.5,
            thousands(i * step)
        );
    }
    let middle = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{middle}\" transform=\"rotate(-90 18 {middle})\" text-anchor=\"middle\">requests per second</text>"
    );
    // Time: from the span's start to now.
    for t in (0..=span).step_by(every as usize) {
        let (at, label) = (x(t as f64), ago(t));
        let _ = writeln!(
            s,
            "<line x1=\"{at:.1}\" y1=\"{TOP}\" x2=\"{at:.1}\" y2=\"{BOTTOM}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{at:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            BOTTOM + 20.0
        );
    }
    let _ = writeln!(
        s,
        "<path d=\"M{LEFT} {TOP}V{BOTTOM}H{RIGHT}\" fill=\"none\" stroke=\"#888\"/>"
    );
    // The legend, with each protocol's latest rate.
    for (i, p) in Protocol::ALL.into_iter().enumerate() {
        let (name, colour) = looks(p);
        let at = LEFT + i as f64 * 230.0;
        let now = rates
            .latest(p)
            .map(|v| format!(" {}/s", rate(v)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<line x1=\"{at}\" y1=\"20\" x2=\"{}\" y2=\"20\" stroke=\"{colour}\" stroke-width=\"4\"/>\
             <text x=\"{}\" y=\"25\" class=\"legend {}\">{name}{now}</text>",
            at + 28.0,
            at + 36.0,
            p.name()
        );
    }
    if !rates.points.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{RIGHT}\" y=\"25\" text-anchor=\"end\" fill=\"#777\">latest: the last {} s</text>",
            SAMPLE_EVERY.as_secs()
        );
    }
    // A line for each protocol, and a dot at its latest rate.
    for p in Protocol::ALL {
        let (_, colour) = looks(p);
        let points: Vec<String> = rates
            .points
            .iter()
            .map(|r| {
                let (px, py) = (x(r.ago.as_secs_f64()), y(r.per_second[p as usize]));
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline class=\"series {}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\" stroke-linejoin=\"round\"/>",
            p.name(),
            points.join(" ")
        );
        if let Some(last) = points.last() {
            let (cx, cy) = last.split_once(',').unwrap_or_default();
            let _ = writeln!(
                s,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3.5\" fill=\"{colour}\"/>"
            );
        }
    }
    if rates.points.len() < 2 {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{middle}\" text-anchor=\"middle\" fill=\"#777\">collecting… \
             (a sample every {} s)</text>",
            (LEFT + RIGHT) / 2.0,
            SAMPLE_EVERY.as_secs()
        );
    }
    s.push_str("</g>\n</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::history::RatePoint;
    use std::time::Duration;

    fn polyline(svg: &str, p: Protocol) -> Vec<(f64, f64)> {
        let start = format!("<polyline class=\"series {}\" points=\"", p.name());
        let rest = &svg[svg
            .find(&start)
            .unwrap_or_else(|| panic!("{start} in {svg}"))
            + start.len()..];
        rest[..rest.find('"').unwrap()]
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    /// Every number in the SVG's attributes parses and is finite.
    fn numbers_finite(svg: &str) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        for attr in [
            " x=\"",
            " y=\"",
            " cx=\"",
            " cy=\"",
            " x1=\"",
            " y2=\"",
            " width=\"",
        ] {
            for part in svg.split(attr).skip(1) {
                let v: f64 = part[..part.find('"').unwrap()].parse().unwrap();
                assert!(v.is_finite() && (0.0..=WIDTH).contains(&v), "{attr}{v}");
            }
        }
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(scale(0.0), (1, 1));
        assert_eq!(scale(f64::NAN), (1, 1));
        assert_eq!(scale(0.3), (1, 1));
        assert_eq!(scale(3.0), (1, 3));
        assert_eq!(scale(100.0), (20, 5));
        assert_eq!(scale(101.0), (50, 3));
        assert_eq!(scale(123_456.0), (50_000, 3));
        assert_eq!(scale(f64::INFINITY), (1, 1));
        let (step, n) = scale(1e300);
        assert!(step as f64 * n as f64 >= MOST);
    }

    #[test]
    fn no_samples_yet_draws_the_axes_and_says_so() {
        let svg = requests_per_second(&Rates::default());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("collecting…") && !svg.contains(">latest"));
        for p in Protocol::ALL {
            assert!(polyline(&svg, p).is_empty());
        }
        for text in [
            ">UDP</text>",
            ">HTTP</text>",
            ">WebSocket</text>",
            ">requests per second</text>",
            ">1 min ago</text>",
            ">30 s ago</text>",
            ">now</text>",
            ">0</text>",
            ">1</text>",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        numbers_finite(&svg);
    }

    #[test]
    fn rates_are_drawn_to_scale_with_the_latest_in_the_legend() {
        let point = |ago: u64, udp: f64, http: f64| RatePoint {
            ago: Duration::from_secs(ago),
            per_second: [udp, http, 0.0],
        };
        let rates = Rates {
            points: vec![
                point(3_600, 10_000.0, 0.0),
                point(1_800, 123_456.0, 2.5),
                point(0, 60_000.0, 1_500.0),
            ],
        };
        let svg = requests_per_second(&rates);
        assert!(!svg.contains("collecting"));
        assert!(svg.contains(">latest: the last 10 s</text>"));
        numbers_finite(&svg);
        for text in [
            ">UDP 60,000/s</text>",
            ">HTTP 1,500/s</text>",
            ">WebSocket 0/s</text>",
            ">150,000</text>",
            ">100,000</text>",
            ">60 min ago</text>",
            ">30 min ago</text>",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        let udp = polyline(&svg, Protocol::Udp);
        assert_eq!(udp.len(), 3);
        // An hour ago at the left edge, now at the right; 150,000 at the top.
        assert_eq!((udp[0].0, udp[2].0), (LEFT, RIGHT));
        assert!((udp[1].0 - (LEFT + RIGHT) / 2.0).abs() < 0.1);
        let y = |v: f64| BOTTOM - v / 150_000.0 * (BOTTOM - TOP);
        for (got, want) in udp.iter().zip([10_000.0, 123_456.0, 60_000.0]) {
            assert!((got.1 - y(want)).abs() < 0.1, "{got:?} for {want}");
        }
        let ws = polyline(&svg, Protocol::Ws);
        assert!(ws.iter().all(|&(_, y)| y == BOTTOM), "{ws:?}");
        assert_eq!(
            svg.matches("<circle").count(),
            3,
            "a dot at each latest rate"
        );
    }

    #[test]
    fn the_time_axis_spans_what_there_is_up_to_an_hour() {
        let since = |oldest: u64| Rates {
            points: vec![
                RatePoint {
                    ago: Duration::from_secs(oldest),
                    per_second: [1.0; 3],
                },
                RatePoint::default(),
            ],
        };
        assert_eq!(time_axis(&Rates::default()), (60, 10));
        assert_eq!(time_axis(&since(50)), (60, 10));
        assert_eq!(time_axis(&since(51)), (120, 30));
        assert_eq!(time_axis(&since(70)), (120, 30));
        assert_eq!(time_axis(&since(1_000)), (1_800, 300));
        assert_eq!(time_axis(&since(3_600)), (3_600, 600));
        let svg = requests_per_second(&since(70));
        for text in [
            ">2 min ago</text>",
            ">90 s ago</text>",
            ">1 min ago</text>",
            ">30 s ago</text>",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        assert_eq!(svg.matches(" ago</text>").count(), 4, "{svg}");
        // The oldest rate sits where its time is: 70 s of 120 from the right.
        let udp = polyline(&svg, Protocol::Udp);
        assert!(
            (udp[0].0 - (RIGHT - 70.0 / 120.0 * (RIGHT - LEFT))).abs() < 0.1,
            "{udp:?}"
        );
        for (s, text) in [
            (0, "now"),
            (30, "30 s ago"),
            (90, "90 s ago"),
            (120, "2 min ago"),
        ] {
            assert_eq!(ago(s), text);
        }
    }

    #[test]
    fn one_rate_is_a_dot() {
        let rates = Rates {
            points: vec![RatePoint {
                ago: Duration::from_secs(4),
                per_second: [0.0; 3],
            }],
        };
        let svg = requests_per_second(&rates);
        assert!(svg.contains("collecting…") && svg.contains(">UDP 0/s</text>"));
        assert_eq!(polyline(&svg, Protocol::Http).len(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        numbers_finite(&svg);
    }
}
