//! Figures as people read them on the `/stats` page: counts with thousands
//! separators, rates, an uptime, and text escaped for HTML and SVG.

use std::time::Duration;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: one decimal below 10 (`2.5`), whole with separators above
/// (`12,346`); anything not a positive finite number is `0`.
pub fn rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        "0".to_string()
    } else if per_second < 9.95 {
        format!("{per_second:.1}")
    } else {
        thousands(per_second.round() as u64)
    }
}

/// How long it has run: `42 s`, `12 min`, `4 h 12 min`, `3 d 4 h 12 min`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{minutes} min"),
        3_600..86_400 => format!("{hours} h {minutes} min"),
        _ => format!("{} d {hours} h {minutes} min", thousands(days)),
    }
}

/// Text safe inside an element or a quoted attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        for (n, s) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (12_345, "12,345"),
            (999_999, "999,999"),
            (1_000_000, "1,000,000"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(thousands(n), s);
        }
    }

    #[test]
    fn rates_read_well() {
        for (v, s) in [
            (0.0, "0"),
            (-1.0, "0"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (0.25, "0.2"),
            (2.5, "2.5"),
            (9.94, "9.9"),
            (9.96, "10"),
            (123_456.4, "123,456"),
        ] {
            assert_eq!(rate(v), s, "{v}");
        }
    }

    #[test]
    fn uptimes() {
        let secs = Duration::from_secs;
        for (d, s) in [
            (secs(0), "0 s"),
            (secs(59), "59 s"),
            (secs(60), "1 min"),
            (secs(3_599), "59 min"),
            (secs(3_600), "1 h 0 min"),
            (secs(4 * 3_600 + 12 * 60 + 59), "4 h 12 min"),
            (secs(86_400), "1 d 0 h 0 min"),
            (secs(3 * 86_400 + 4 * 3_600 + 12 * 60), "3 d 4 h 12 min"),
            (secs(1_234 * 86_400), "1,234 d 0 h 0 min"),
        ] {
            assert_eq!(uptime(d), s);
        }
    }

    #[test]
    fn escaped() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
