//! `compare --plot FILE.svg`: each tracker's responses a second and CPU per
//! response as an SVG chart, every round a dot and the median a bar, so a
//! reader sees the spread and not only the median.

/// One panel: a figure per tracker and round.
pub struct Panel<'a> {
    pub title: &'a str,
    /// `values[tracker][round]`.
    pub values: Vec<Vec<f64>>,
}

const ROW: f64 = 34.0;
const LABEL: f64 = 170.0;
const WIDTH: f64 = 330.0;
const GAP: f64 = 40.0;
const TOP: f64 = 56.0;

use bittorrent_tracker::server::readable::{escape as esc, thousands};

/// A round number for the axis' end: 1, 2 or 5 times a power of ten, at
/// least `max`.
fn nice(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&v| v >= max)
        .unwrap_or(10.0 * p)
}

fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        thousands(v.round() as u64)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v:.2}")
    }
}

/// The chart: `title` above, a row per tracker (`names`), a panel per
/// figure side by side.
pub fn svg(
    title: &str,
    names: &[String],
    panels: &[Panel<'_>],
    median: fn(Vec<f64>) -> f64,
) -> String {
    let rows = names.len() as f64;
    let width = LABEL + panels.len() as f64 * (WIDTH + GAP) + 10.0;
    let height = TOP + rows * ROW + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        esc(title)
    );
    for (i, name) in names.iter().enumerate() {
        let y = TOP + i as f64 * ROW + ROW / 2.0 + 4.0;
        s.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{y:.0}\" text-anchor=\"end\">{}</text>\n",
            LABEL - 10.0,
            esc(name)
        ));
    }
    for (p, panel) in panels.iter().enumerate() {
        let x0 = LABEL + p as f64 * (WIDTH + GAP);
        let max = nice(panel.values.iter().flatten().copied().fold(0.0, f64::max));
        let x = |v: f64| x0 + (v / max).clamp(0.0, 1.0) * WIDTH;
        s.push_str(&format!(
            "<text x=\"{x0:.0}\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\n",
            TOP - 22.0,
            esc(panel.title)
        ));
        // The axis: 0, half, the end.
        let bottom = TOP + rows * ROW;
        for f in [0.0, 0.5, 1.0] {
            let xv = x0 + f * WIDTH;
            s.push_str(&format!(
                "<line x1=\"{xv:.1}\" y1=\"{TOP:.0}\" x2=\"{xv:.1}\" y2=\"{bottom:.0}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{xv:.1}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
                bottom + 16.0,
                fmt(f * max)
            ));
        }
        for (i, rounds) in panel.values.iter().enumerate() {
            let y = TOP + i as f64 * ROW;
            let m = median(rounds.clone());
            s.push_str(&format!(
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9ecae1\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#08306b\">{}</text>\n",
                y + 6.0,
                x(m) - x0,
                ROW - 12.0,
                x(m).min(x0 + WIDTH - 60.0) + 4.0,
                y + ROW / 2.0 + 4.0,
                fmt(m)
            ));
            for &v in rounds {
                s.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#08306b\"><title>{}</title></circle>\n",
                    x(v),
                    y + ROW / 2.0,
                    fmt(v)
                ));
            }
        }
    }
    s.push_str(&format!(
        "<text x=\"10\" y=\"{:.0}\" fill=\"#555\">bar: median; dots: each round</text>\n</svg>\n",
        height - 8.0
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    #[test]
    fn every_round_is_a_dot_and_every_median_a_bar() {
        let names = vec!["ours".to_string(), "<theirs>".to_string()];
        let panels = [
            Panel {
                title: "responses/s",
                values: vec![
                    vec![400_000.0, 410_000.0, 405_000.0],
                    vec![200_000.0, 210_000.0, 190_000.0],
                ],
            },
            Panel {
                title: "CPU µs/response",
                values: vec![vec![2.5, 2.4, 2.6], vec![4.8, 4.9, 5.0]],
            },
        ];
        let s = svg("udp", &names, &panels, median);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n"));
        assert_eq!(
            s.matches("<circle").count(),
            12,
            "2 trackers, 3 rounds, 2 panels"
        );
        assert_eq!(
            s.matches("<rect x=").count(),
            4,
            "a median bar per tracker and panel"
        );
        assert!(s.contains(">405,000<") && s.contains(">2.50<"), "{s}");
        assert!(s.contains("&lt;theirs&gt;") && !s.contains("<theirs>"));
        assert!(
            s.contains(">500,000<"),
            "the rate axis ends on a round number: {s}"
        );
        assert!(!s.contains("NaN") && !s.contains("inf"));
    }

    #[test]
    fn nothing_measured_draws_without_nan() {
        let s = svg(
            "ws",
            &["a".to_string()],
            &[Panel {
                title: "x",
                values: vec![vec![]],
            }],
            median,
        );
        assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(120_000.0), 200_000.0);
    }
}
