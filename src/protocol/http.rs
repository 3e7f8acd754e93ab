//! HTTP tracker (BEP 3, 7, 23, 48): announce and scrape query strings parsed
//! from raw bytes, and bencoded replies.

use super::{bencode, AnnounceRequest, Event, InfoHash, PeerId, Peers, ScrapeStats};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an announce or scrape was refused; the text goes out as `failure reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    MissingInfoHash,
    InvalidInfoHash,
    MissingPeerId,
    InvalidPeerId,
    MissingPort,
    InvalidPort,
    InvalidEvent,
    InvalidNumber(&'static str),
    TooManyInfoHashes,
}

impl QueryError {
    pub fn message(self) -> &'static str {
        match self {
            QueryError::MissingInfoHash => "missing info_hash",
            QueryError::InvalidInfoHash => "invalid info_hash",
            QueryError::MissingPeerId => "missing peer_id",
            QueryError::InvalidPeerId => "invalid peer_id",
            QueryError::MissingPort => "missing port",
            QueryError::InvalidPort => "invalid port",
            QueryError::InvalidEvent => "invalid event",
            QueryError::InvalidNumber("uploaded") => "invalid uploaded",
            QueryError::InvalidNumber("downloaded") => "invalid downloaded",
            QueryError::InvalidNumber("left") => "invalid left",
            QueryError::InvalidNumber("numwant") => "invalid numwant",
            QueryError::InvalidNumber("key") => "invalid key",
            QueryError::InvalidNumber(_) => "invalid number",
            QueryError::TooManyInfoHashes => "too many info_hash values",
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
impl std::error::Error for QueryError {}

/// An HTTP announce: the shared request plus how the reply is to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnnounce {
    pub request: AnnounceRequest,
    /// `compact=0` asks for a list of dictionaries; anything else gets compact peers.
    pub compact: bool,
    /// `no_peer_id=1`: leave `peer id` out of a non-compact list.
    pub no_peer_id: bool,
}

/// Splits a query string into its `key=value` pairs (raw, still percent-encoded).
pub fn pairs(query: &[u8]) -> Pairs<'_> {
    Pairs { rest: query }
}

/// The pairs of a query (see [`pairs`]), found with `memchr`: parsing the
/// query is a tenth of an HTTP announce's own work, and a byte-at-a-time
/// split was half of that.
pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let pair = match memchr::memchr(b'&', self.rest) {
                Some(i) => {
                    let p = &self.rest[..i];
                    self.rest = &self.rest[i + 1..];
                    p
                }
                None => std::mem::take(&mut self.rest),
            };
            if pair.is_empty() {
                continue;
            }
            return Some(match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            });
        }
    }
}

/// Percent-decodes `raw` into exactly 20 bytes. `%XX` is decoded (either case);
/// every other byte, `+` included, stands for itself.
///
/// Every announce decodes two of these, and a client escapes a random
/// share of the bytes, so the loop has no branch on whether a byte is
/// escaped: it decodes both ways from a padded copy and picks one.
pub fn decode20(raw: &[u8]) -> Option<[u8; 20]> {
    // 20 bytes are at most 60 escaped; the copy leaves room to read two
    // bytes past any of them (a trailing `%` reads padding, which is no
    // hex digit).
    if raw.len() < 20 || raw.len() > 60 {
        return None;
    }
    let mut padded = [0u8; 62];
    padded[..raw.len()].copy_from_slice(raw);
    let mut out = [0u8; 20];
    let mut i = 0;
    let mut bad = 0u8;
    for o in out.iter_mut() {
        if i >= raw.len() {
            return None;
        }
        let b = padded[i];
        let escaped = b == b'%';
        let hi = HEX_VALUE[padded[i + 1] as usize];
        let lo = HEX_VALUE[padded[i + 2] as usize];
        bad |= (hi | lo) & (escaped as u8).wrapping_neg();
        *o = if escaped { (hi << 4) | (lo & 15) } else { b };
        i += 1 + 2 * escaped as usize;
    }
    (i == raw.len() && bad & 0xf0 == 0).then_some(out)
}

/// Each byte's value as a hexadecimal digit, 0xff for a byte that is none.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = super::hex_val(c as u8) {
            t[c] = v;
        }
        c += 1;
    }
    t
};

/// Bytes `%XX`-escaped except the RFC 3986 unreserved ones: how a client
/// writes `info_hash` and `peer_id`.
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Appends `?` or `&` to `out`, whichever continues its query.
fn next_param(out: &mut String) {
    out.push(if out.contains('?') { '&' } else { '?' });
}

/// Writes an announce's query onto `out` (a URL or a path, with or without
/// a query already): `info_hash`, `peer_id`, `port`, `uploaded`,
/// `downloaded`, `left`, `compact=1`, then `event`, `numwant` and `key`
/// when the request has them, in the order [`parse_announce`] reads in any
/// order. Extra `key=value` pairs (already escaped) follow.
pub fn write_announce_query(a: &AnnounceRequest, extra: &[(String, String)], out: &mut String) {
    use std::fmt::Write as _;
    next_param(out);
    out.push_str("info_hash=");
    percent_encode(&a.info_hash.0, out);
    out.push_str("&peer_id=");
    percent_encode(&a.peer_id.0, out);
    let _ = write!(
        out,
        "&port={}&uploaded={}&downloaded={}",
        a.port, a.uploaded, a.downloaded
    );
    if let Some(left) = a.left {
        let _ = write!(out, "&left={left}");
    }
    out.push_str("&compact=1");
    if a.event != Event::None {
        out.push_str("&event=");
        out.push_str(a.event.as_str());
    }
    if let Some(n) = a.numwant {
        let _ = write!(out, "&numwant={n}");
    }
    if let Some(k) = a.key {
        let _ = write!(out, "&key={k:08x}");
    }
    for (k, v) in extra {
        let _ = write!(out, "&{k}={v}");
    }
}

/// Writes a scrape's query onto `out`: one `info_hash` per hash.
pub fn write_scrape_query(hashes: &[InfoHash], out: &mut String) {
    for h in hashes {
        next_param(out);
        out.push_str("info_hash=");
        percent_encode(&h.0, out);
    }
}

fn number<T: std::str::FromStr>(raw: &[u8], name: &'static str) -> Result<T, QueryError> {
    // Numbers never need escaping; a client that escapes them anyway is refused
    // with the field's name rather than guessed at.
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(QueryError::InvalidNumber(name))
}

/// Parses an announce query string (the bytes after `?`). Unknown keys are ignored.
pub fn parse_announce(query: &[u8]) -> Result<HttpAnnounce, QueryError> {
    parse_announce_with(query, |_| {})
}

/// [`parse_announce`], calling `seen` with the info hash as soon as it is
/// read: a server starts loading the torrent while the rest is parsed.
#[inline]
pub fn parse_announce_with(
    query: &[u8],
    mut seen: impl FnMut(&InfoHash),
) -> Result<HttpAnnounce, QueryError> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut req = AnnounceRequest::new(InfoHash::default(), PeerId::default());
    let mut compact = true;
    let mut no_peer_id = false;
    for (k, v) in pairs(query) {
        match k {
            b"info_hash" => {
                let h = InfoHash(decode20(v).ok_or(QueryError::InvalidInfoHash)?);
                seen(&h);
                info_hash = Some(h);
            }
            b"peer_id" => peer_id = Some(decode20(v).ok_or(QueryError::InvalidPeerId)?),
            b"port" => {
                let p: u32 = number(v, "port").map_err(|_| QueryError::InvalidPort)?;
                if p == 0 || p > 65535 {
                    return Err(QueryError::InvalidPort);
                }
                port = Some(p as u16);
            }
            b"uploaded" => req.uploaded = number(v, "uploaded")?,
            b"downloaded" => req.downloaded = number(v, "downloaded")?,
            b"left" => req.left = Some(number(v, "left")?),
            b"numwant" => {
                let n: u32 = number(v, "numwant")?;
                req.numwant = (n > 0).then_some(n);
            }
            b"key" => {
                // Clients send the key as hex or as decimal; keep what fits.
                let s = std::str::from_utf8(v).map_err(|_| QueryError::InvalidNumber("key"))?;
                req.key = u32::from_str_radix(s, 16).ok().or_else(|| s.parse().ok());
            }
            b"event" => {
                req.event = match v {
                    b"started" => Event::Started,
                    b"completed" => Event::Completed,
                    b"stopped" => Event::Stopped,
                    b"paused" => Event::Paused,
                    b"" | b"empty" | b"update" => Event::None,
                    _ => return Err(QueryError::InvalidEvent),
                }
            }
            b"compact" => compact = v != b"0",
            b"no_peer_id" => no_peer_id = v == b"1",
            _ => {}
        }
    }
    req.info_hash = info_hash.ok_or(QueryError::MissingInfoHash)?;
    req.peer_id = PeerId(peer_id.ok_or(QueryError::MissingPeerId)?);
    req.port = port.ok_or(QueryError::MissingPort)?;
    Ok(HttpAnnounce {
        request: req,
        compact,
        no_peer_id,
    })
}

/// Parses a scrape query into `out` (cleared first): every `info_hash`, in
/// order, at most `max`. An empty `out` asks for a full scrape.
pub fn parse_scrape(query: &[u8], max: usize, out: &mut Vec<InfoHash>) -> Result<(), QueryError> {
    out.clear();
    for (k, v) in pairs(query) {
        if k == b"info_hash" {
            if out.len() == max {
                return Err(QueryError::TooManyInfoHashes);
            }
            out.push(InfoHash(decode20(v).ok_or(QueryError::InvalidInfoHash)?));
        }
    }
    Ok(())
}

/// A request target split at its first `?` into path and query.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &target[target.len()..]),
    }
}

/// The address a reverse proxy appended to `X-Forwarded-For`: the last
/// entry of the value (an address, optionally with a port).
pub fn forwarded_for(value: &[u8]) -> Option<std::net::IpAddr> {
    let last = value.rsplit(|&b| b == b',').next()?.trim_ascii();
    let s = std::str::from_utf8(last).ok()?;
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// How an announce reply is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyForm {
    pub interval: u32,
    /// 0 leaves `min interval` out.
    pub min_interval: u32,
    pub compact: bool,
    pub no_peer_id: bool,
}

/// Writes the bencoded announce reply. Compact: `peers` (6 bytes a peer,
/// always present) and `peers6` (18 bytes a peer, when there are any).
/// Non-compact: one `peers` list of `ip`/`peer id`/`port` dictionaries.
pub fn write_announce_reply(
    out: &mut Vec<u8>,
    form: &ReplyForm,
    complete: u32,
    incomplete: u32,
    peers: &Peers,
) {
    out.extend_from_slice(b"d8:complete");
    bencode::int(out, complete.into());
    out.extend_from_slice(b"10:incomplete");
    bencode::int(out, incomplete.into());
    out.extend_from_slice(b"8:interval");
    bencode::int(out, form.interval.into());
    if form.min_interval > 0 {
        out.extend_from_slice(b"12:min interval");
        bencode::int(out, form.min_interval.into());
    }
    out.extend_from_slice(b"5:peers");
    if form.compact {
        bencode::bytes(out, &peers.v4);
        if !peers.v6.is_empty() {
            out.extend_from_slice(b"6:peers6");
            bencode::bytes(out, &peers.v6);
        }
    } else {
        out.push(b'l');
        let mut ip = String::with_capacity(39);
        for (i, p) in peers.v4.chunks_exact(6).enumerate() {
            ip.clear();
            use std::fmt::Write;
            let _ = write!(ip, "{}", Ipv4Addr::new(p[0], p[1], p[2], p[3]));
            peer_dict(
                out,
                &ip,
                peers.ids4.get(i).filter(|_| !form.no_peer_id),
                u16::from_be_bytes([p[4], p[5]]),
            );
        }
        for (i, p) in peers.v6.chunks_exact(18).enumerate() {
            ip.clear();
            use std::fmt::Write;
            let a: [u8; 16] = p[..16].try_into().unwrap();
            let _ = write!(ip, "{}", Ipv6Addr::from(a));
            peer_dict(
                out,
                &ip,
                peers.ids6.get(i).filter(|_| !form.no_peer_id),
                u16::from_be_bytes([p[16], p[17]]),
            );
        }
        out.push(b'e');
    }
    out.push(b'e');
}

fn peer_dict(out: &mut Vec<u8>, ip: &str, id: Option<&PeerId>, port: u16) {
    out.extend_from_slice(b"d2:ip");
    bencode::bytes(out, ip.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b"7:peer id");
        bencode::bytes(out, &id.0);
    }
    out.extend_from_slice(b"4:port");
    bencode::int(out, port.into());
    out.push(b'e');
}

// ---- client side ----

/// Why a client could not use a tracker's HTTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The tracker refused: its `failure reason`.
    Failure(String),
    /// Not bencode, or not the dictionary a tracker sends.
    Invalid(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Failure(r) => write!(f, "tracker refused: {r}"),
            ReplyError::Invalid(e) => write!(f, "invalid tracker reply: {e}"),
        }
    }
}

impl std::error::Error for ReplyError {}

fn reply_dict(body: &[u8]) -> Result<bencode::Value<'_>, ReplyError> {
    let v = bencode::decode(body).map_err(|e| ReplyError::Invalid(e.to_string()))?;
    if v.as_dict().is_none() {
        return Err(ReplyError::Invalid("not a dictionary".into()));
    }
    if let Some(r) = v.get(b"failure reason") {
        let text = r
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(ReplyError::Failure(text.into_owned()));
    }
    Ok(v)
}

fn count(v: &bencode::Value<'_>, key: &[u8]) -> Option<u32> {
    v.get(key)
        .and_then(|x| x.as_int())
        .map(|n| n.clamp(0, u32::MAX as i64) as u32)
}

/// Reads an announce reply: compact `peers` (and `peers6`), or a list of
/// `{ip, port}` dictionaries; `failure reason` is an error, `warning
/// message` is kept.
pub fn parse_announce_response(body: &[u8]) -> Result<super::AnnounceResponse, ReplyError> {
    let v = reply_dict(body)?;
    let interval = count(&v, b"interval").ok_or(ReplyError::Invalid("no interval".into()))?;
    let mut peers = Vec::new();
    match v.get(b"peers") {
        Some(bencode::Value::Bytes(b)) => {
            if b.len() % 6 != 0 {
                return Err(ReplyError::Invalid(
                    "compact peers not a multiple of 6 bytes".into(),
                ));
            }
            peers.extend(super::compact_peers(b, false));
        }
        Some(bencode::Value::List(list)) => {
            for p in list {
                let ip = p
                    .get(b"ip")
                    .and_then(|i| i.as_bytes())
                    .and_then(|i| std::str::from_utf8(i).ok())
                    .and_then(|i| i.parse::<IpAddr>().ok());
                let port = p.get(b"port").and_then(|x| x.as_int());
                match (ip, port) {
                    (Some(ip), Some(port @ 1..=65535)) => {
                        peers.push(std::net::SocketAddr::new(ip, port as u16))
                    }
                    _ => return Err(ReplyError::Invalid("a peer without ip or port".into())),
                }
            }
        }
        None => {}
        Some(_) => {
            return Err(ReplyError::Invalid(
                "peers is neither bytes nor a list".into(),
            ))
        }
    }
    if let Some(b) = v.get(b"peers6").and_then(|x| x.as_bytes()) {
        if b.len() % 18 != 0 {
            return Err(ReplyError::Invalid(
                "peers6 not a multiple of 18 bytes".into(),
            ));
        }
        peers.extend(super::compact_peers(b, true));
    }
    Ok(super::AnnounceResponse {
        interval,
        min_interval: count(&v, b"min interval"),
        complete: count(&v, b"complete").unwrap_or(0),
        incomplete: count(&v, b"incomplete").unwrap_or(0),
        peers,
        warning: v
            .get(b"warning message")
            .and_then(|w| w.as_bytes())
            .map(|w| String::from_utf8_lossy(w).into_owned()),
    })
}

/// Reads a scrape reply: counts per info hash, in the reply's order.
pub fn parse_scrape_response(body: &[u8]) -> Result<Vec<(InfoHash, ScrapeStats)>, ReplyError> {
    let v = reply_dict(body)?;
    let files = v
        .get(b"files")
        .and_then(|f| f.as_dict())
        .ok_or(ReplyError::Invalid("no files dictionary".into()))?;
    files
        .iter()
        .map(|(k, f)| {
            let h: [u8; 20] = (*k)
                .try_into()
                .map_err(|_| ReplyError::Invalid("a key that is not a 20-byte hash".into()))?;
            Ok((
                InfoHash(h),
                ScrapeStats {
                    complete: count(f, b"complete").unwrap_or(0),
                    incomplete: count(f, b"incomplete").unwrap_or(0),
                    downloaded: count(f, b"downloaded").unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Writes a scrape reply. `entries` must be sorted by hash and free of
/// duplicates (bencode wants sorted keys).
pub fn write_scrape_reply(
    out: &mut Vec<u8>,
    entries: &[(InfoHash, ScrapeStats)],
    min_request_interval: u32,
) {
    out.extend_from_slice(b"d5:filesd");
    for (hash, s) in entries {
        bencode::bytes(out, &hash.0);
        out.extend_from_slice(b"d8:complete");
        bencode::int(out, s.complete.into());
        out.extend_from_slice(b"10:downloaded");
        bencode::int(out, s.downloaded.into());
        out.extend_from_slice(b"10:incomplete");
        bencode::int(out, s.incomplete.into());
        out.push(b'e');
    }
    out.extend_from_slice(b"e5:flagsd20:min_request_interval");
    bencode::int(out, min_request_interval.into());
    out.extend_from_slice(b"ee");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH_RAW: &[u8] = b"%20%25%2B+%26%3D%ff%80abcdefghijkl";

    fn hash_bytes() -> [u8; 20] {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(&[0x20, 0x25, 0x2b, b'+', 0x26, 0x3d, 0xff, 0x80]);
        h[8..].copy_from_slice(b"abcdefghijkl");
        h
    }

    #[test]
    fn decodes_awkward_bytes() {
        assert_eq!(decode20(HASH_RAW), Some(hash_bytes()));
        // lower-case escapes, raw high bytes as sent by some clients
        let mut raw = b"%ff".to_vec();
        raw.extend_from_slice(&[0x80; 19]);
        let mut want = [0x80u8; 20];
        want[0] = 0xff;
        assert_eq!(decode20(&raw), Some(want));
        assert_eq!(decode20(b"abc"), None);
        assert_eq!(decode20(b"%zzabcdefghijklmnopqrs"), None);
        assert_eq!(decode20(b"abcdefghijklmnopqrst%"), None);
        assert_eq!(decode20(b"abcdefghijklmnopqrstu"), None);
    }

    #[test]
    fn parses_a_libtorrent_announce() {
        let mut q = b"info_hash=".to_vec();
        q.extend_from_slice(HASH_RAW);
        q.extend_from_slice(
            b"&peer_id=-lt2060-%01%02abcdefghij&port=6881&uploaded=10&downloaded=20&left=0\
              &corrupt=0&key=1A2B3C4D&event=completed&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0",
        );
        let a = parse_announce(&q).unwrap();
        assert_eq!(a.request.info_hash.0, hash_bytes());
        assert_eq!(&a.request.peer_id.0[..8], b"-lt2060-");
        assert_eq!(a.request.peer_id.0[8], 1);
        assert_eq!(a.request.port, 6881);
        assert_eq!(
            (a.request.uploaded, a.request.downloaded, a.request.left),
            (10, 20, Some(0))
        );
        assert_eq!(a.request.event, Event::Completed);
        assert_eq!(a.request.numwant, Some(200));
        assert_eq!(a.request.key, Some(0x1A2B3C4D));
        assert!(a.compact && a.no_peer_id);
        assert!(a.request.is_seeder());
    }

    #[test]
    fn defaults_and_errors() {
        let base = b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb".to_vec();
        let with = |s: &str| {
            let mut q = base.clone();
            q.extend_from_slice(s.as_bytes());
            parse_announce(&q)
        };
        let a = with("&port=1").unwrap();
        assert_eq!(a.request.left, None);
        assert!(!a.request.is_seeder());
        assert_eq!(a.request.event, Event::None);
        assert_eq!(a.request.numwant, None);
        assert!(a.compact);
        assert_eq!(with("&port=1&numwant=0").unwrap().request.numwant, None);
        assert!(!with("&port=1&compact=0").unwrap().compact);
        assert_eq!(with("&port=1&event=").unwrap().request.event, Event::None);
        assert_eq!(
            with("&port=1&event=paused").unwrap().request.event,
            Event::Paused
        );
        assert_eq!(with(""), Err(QueryError::MissingPort));
        assert_eq!(with("&port=0"), Err(QueryError::InvalidPort));
        assert_eq!(with("&port=65536"), Err(QueryError::InvalidPort));
        assert_eq!(with("&port=x"), Err(QueryError::InvalidPort));
        assert_eq!(with("&port=1&event=bogus"), Err(QueryError::InvalidEvent));
        assert_eq!(
            with("&port=1&left=-1"),
            Err(QueryError::InvalidNumber("left"))
        );
        assert_eq!(
            parse_announce(b"peer_id=bbbbbbbbbbbbbbbbbbbb&port=1"),
            Err(QueryError::MissingInfoHash)
        );
        assert_eq!(
            parse_announce(b"info_hash=short&port=1"),
            Err(QueryError::InvalidInfoHash)
        );
        assert_eq!(
            parse_announce(b"info_hash=aaaaaaaaaaaaaaaaaaaa&port=1"),
            Err(QueryError::MissingPeerId)
        );
    }

    #[test]
    fn forwarded_for_takes_the_last_entry() {
        let ip = |s: &str| forwarded_for(s.as_bytes());
        assert_eq!(ip("203.0.113.9"), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(ip("1.1.1.1, 10.0.0.2 "), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(
            ip("1.1.1.1,2001:db8::7"),
            Some("2001:db8::7".parse().unwrap())
        );
        assert_eq!(
            ip("[2001:db8::7]:443"),
            Some("2001:db8::7".parse().unwrap())
        );
        assert_eq!(ip("10.0.0.2, junk"), None);
        assert_eq!(ip(""), None);
    }

    #[test]
    fn scrape_queries() {
        let mut v = Vec::new();
        parse_scrape(
            b"info_hash=aaaaaaaaaaaaaaaaaaaa&x=1&info_hash=%62bbbbbbbbbbbbbbbbbbb",
            10,
            &mut v,
        )
        .unwrap();
        assert_eq!(v, vec![InfoHash([b'a'; 20]), InfoHash([b'b'; 20])]);
        parse_scrape(b"", 10, &mut v).unwrap();
        assert!(v.is_empty());
        assert_eq!(
            parse_scrape(b"info_hash=x", 10, &mut v),
            Err(QueryError::InvalidInfoHash)
        );
        assert_eq!(
            parse_scrape(
                b"info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa",
                1,
                &mut v
            ),
            Err(QueryError::TooManyInfoHashes)
        );
    }

    #[test]
    fn announce_reply_bytes() {
        let peers = Peers {
            v4: vec![10, 0, 0, 1, 0x1a, 0xe1],
            v6: vec![0; 18],
            ids4: vec![PeerId([b'p'; 20])],
            ids6: vec![PeerId([b'q'; 20])],
        };
        let mut form = ReplyForm {
            interval: 600,
            min_interval: 300,
            compact: true,
            no_peer_id: false,
        };
        let mut out = Vec::new();
        write_announce_reply(&mut out, &form, 1, 2, &peers);
        let mut want = b"d8:completei1e10:incompletei2e8:intervali600e12:min intervali300e5:peers6:\x0a\x00\x00\x01\x1a\xe16:peers618:".to_vec();
        want.extend_from_slice(&[0; 18]);
        want.push(b'e');
        assert_eq!(out, want);

        form.compact = false;
        form.min_interval = 0;
        out.clear();
        write_announce_reply(&mut out, &form, 1, 2, &peers);
        let expect = "d8:completei1e10:incompletei2e8:intervali600e5:peersld2:ip8:10.0.0.17:peer id20:pppppppppppppppppppp4:porti6881eed2:ip2:::7:peer id20:qqqqqqqqqqqqqqqqqqqq4:porti0eeee";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expect);
        assert!(bencode::decode(&out).is_ok());

        form.no_peer_id = true;
        out.clear();
        write_announce_reply(&mut out, &form, 1, 2, &peers);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "d8:completei1e10:incompletei2e8:intervali600e5:peersld2:ip8:10.0.0.14:porti6881eed2:ip2:::4:porti0eeee"
        );
    }

    #[test]
    fn scrape_reply_bytes() {
        let mut out = Vec::new();
        let s = ScrapeStats {
            complete: 3,
            incomplete: 1,
            downloaded: 7,
        };
        write_scrape_reply(&mut out, &[(InfoHash([b'a'; 20]), s)], 300);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei3e10:downloadedi7e10:incompletei1eee5:flagsd20:min_request_intervali300eee"
        );
    }

    #[test]
    fn a_client_reads_what_the_server_writes() {
        let mut peers = Peers::default();
        peers.v4.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
        peers.v6.extend_from_slice(&[0; 15]);
        peers.v6.extend_from_slice(&[1, 0x1a, 0xe2]);
        peers.ids4.push(PeerId([1; 20]));
        peers.ids6.push(PeerId([2; 20]));
        for compact in [true, false] {
            let form = ReplyForm {
                interval: 600,
                min_interval: 300,
                compact,
                no_peer_id: false,
            };
            let mut out = Vec::new();
            write_announce_reply(&mut out, &form, 3, 4, &peers);
            let r = parse_announce_response(&out).unwrap();
            assert_eq!(
                (r.interval, r.min_interval, r.complete, r.incomplete),
                (600, Some(300), 3, 4)
            );
            let want: Vec<std::net::SocketAddr> = vec![
                "10.0.0.1:6881".parse().unwrap(),
                "[::1]:6882".parse().unwrap(),
            ];
            assert_eq!(r.peers, want, "compact {compact}");
        }
        let mut out = Vec::new();
        bencode::failure(&mut out, "go away");
        assert_eq!(
            parse_announce_response(&out),
            Err(ReplyError::Failure("go away".into()))
        );
        let r =
            parse_announce_response(b"d8:intervali60e5:peers0:15:warning message4:slowe").unwrap();
        assert_eq!(r.warning.as_deref(), Some("slow"));
        assert!(matches!(
            parse_announce_response(b"d5:peers5:abcdee"),
            Err(ReplyError::Invalid(_))
        ));
        assert!(matches!(
            parse_announce_response(b"<html>"),
            Err(ReplyError::Invalid(_))
        ));
        let s = ScrapeStats {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        let mut out = Vec::new();
        write_scrape_reply(&mut out, &[(InfoHash([5; 20]), s)], 600);
        assert_eq!(
            parse_scrape_response(&out).unwrap(),
            vec![(InfoHash([5; 20]), s)]
        );
    }

    /// `decode20` as the plain loop it replaces: the property below holds
    /// the fast one to it.
    fn decode20_plain(raw: &[u8]) -> Option<[u8; 20]> {
        let mut out = [0u8; 20];
        let (mut n, mut i) = (0, 0);
        while i < raw.len() {
            if n == 20 {
                return None;
            }
            if raw[i] == b'%' {
                let hi = crate::protocol::hex_val(*raw.get(i + 1)?)?;
                let lo = crate::protocol::hex_val(*raw.get(i + 2)?)?;
                out[n] = (hi << 4) | lo;
                i += 3;
            } else {
                out[n] = raw[i];
                i += 1;
            }
            n += 1;
        }
        (n == 20).then_some(out)
    }

    /// Bytes that make escapes likely: `%`, hex digits of both cases, and
    /// anything else.
    fn escapey() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'%'),
                proptest::sample::select(b"0123456789abcdefABCDEFgG".to_vec()),
                any::<u8>(),
            ],
            0..70,
        )
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_announce_response(&data);
            let _ = parse_scrape_response(&data);
        }

        #[test]
        fn pairs_agree_with_splitting(query in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'='), any::<u8>()], 0..80)) {
            let split: Vec<(&[u8], &[u8])> = query
                .split(|&b| b == b'&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.iter().position(|&b| b == b'=') {
                    Some(i) => (&p[..i], &p[i + 1..]),
                    None => (p, &p[p.len()..]),
                })
                .collect();
            prop_assert_eq!(pairs(&query).collect::<Vec<_>>(), split);
        }

        #[test]
        fn decode20_agrees_with_the_plain_loop(raw in escapey()) {
            prop_assert_eq!(decode20(&raw), decode20_plain(&raw));
        }

        #[test]
        fn any_20_bytes_escaped_any_way_decode_back(bytes in any::<[u8; 20]>(), escape in any::<[bool; 20]>(), upper in any::<bool>()) {
            let mut raw = Vec::new();
            for (b, e) in bytes.iter().zip(escape) {
                if e || *b == b'%' {
                    raw.extend_from_slice(if upper { format!("%{b:02X}") } else { format!("%{b:02x}") }.as_bytes());
                } else {
                    raw.push(*b);
                }
            }
            prop_assert_eq!(decode20(&raw), Some(bytes));
        }

        #[test]
        fn arbitrary_queries_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_announce(&data);
            let mut v = Vec::new();
            let _ = parse_scrape(&data, 74, &mut v);
        }

        #[test]
        fn written_announces_parse_back_the_same(
            h in any::<[u8; 20]>(),
            pid in any::<[u8; 20]>(),
            port in 1u16..,
            up in any::<u64>(),
            down in any::<u64>(),
            left in proptest::option::of(any::<u64>()),
            event in 0usize..5,
            numwant in proptest::option::of(1u32..),
            key in proptest::option::of(any::<u32>()),
        ) {
            let a = AnnounceRequest {
                info_hash: InfoHash(h),
                peer_id: PeerId(pid),
                port,
                uploaded: up,
                downloaded: down,
                left,
                event: [Event::None, Event::Started, Event::Completed, Event::Stopped, Event::Paused][event],
                numwant,
                key,
            };
            let mut url = String::from("http://t.example/announce?passkey=x");
            write_announce_query(&a, &[("supportcrypto".into(), "1".into())], &mut url);
            let (_, query) = split_target(url.strip_prefix("http://t.example").unwrap().as_bytes());
            let back = parse_announce(query).unwrap();
            prop_assert_eq!(back.request, a);
            prop_assert!(back.compact);
        }

        #[test]
        fn written_scrapes_parse_back_the_same(hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..10)) {
            let hashes: Vec<InfoHash> = hashes.into_iter().map(InfoHash).collect();
            let mut path = String::from("/scrape");
            write_scrape_query(&hashes, &mut path);
            let (_, query) = split_target(path.as_bytes());
            let mut back = Vec::new();
            parse_scrape(query, 74, &mut back).unwrap();
            prop_assert_eq!(back, hashes);
        }
    }
}
