//! WebTorrent's "binary strings": 20 bytes as 20 characters U+0000-U+00FF;
//! and JSON numbers read as counts.

/// Decodes a binary string of exactly 20 characters, each at most U+00FF.
pub fn binary20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        if n == 20 || c as u32 > 0xff {
            return None;
        }
        out[n] = c as u32 as u8;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// Encodes bytes as a binary string.
pub fn to_binary(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

pub(crate) fn count(v: Option<f64>) -> u64 {
    // JSON numbers; negative, fractional or absurd values count as 0.
    v.filter(|x| x.is_finite() && *x >= 0.0)
        .map_or(0, |x| x.min(u64::MAX as f64) as u64)
}
