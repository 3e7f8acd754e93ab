//! BEP 15 UDP tracker packets with BEP 41 options. All integers big-endian.

use super::{AnnounceRequest, Event, InfoHash, PeerId, ScrapeStats};

/// The magic constant of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;

/// Bytes of an announce request before its BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;
/// Bytes of an announce reply before its peers.
pub const ANNOUNCE_REPLY_HEADER: usize = 20;
/// Largest UDP reply this tracker sends: fits a 1500-byte MTU with IPv6 and UDP headers.
pub const MAX_REPLY: usize = 1452;
/// Most hashes one scrape may carry (BEP 15: "about 74").
pub const MAX_SCRAPE_HASHES: usize = 74;

/// The largest reply to an IPv4 client when announces get at most
/// `max_numwant` peers: a full announce or a full scrape, whichever is
/// larger (an error is shorter than both), at most [`MAX_REPLY`].
pub fn largest_reply_v4(max_numwant: u32) -> usize {
    let announce = ANNOUNCE_REPLY_HEADER + 6 * max_numwant as usize;
    let scrape = 8 + 12 * MAX_SCRAPE_HASHES;
    announce.max(scrape).min(MAX_REPLY)
}

/// A request as the tracker receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Connect {
        transaction_id: u32,
    },
    Announce {
        connection_id: u64,
        transaction_id: u32,
        announce: AnnounceRequest,
        /// The optional `ip` field (0 when absent); ignored unless configured.
        ip: u32,
        /// Raw BEP 41 option bytes after the fixed 98.
        options: &'a [u8],
    },
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        /// At most [`MAX_SCRAPE_HASHES`]; bytes past them are ignored.
        info_hashes: &'a [[u8; 20]],
    },
}

/// What was wrong with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Too short for any packet, or a connect without the protocol magic.
    Malformed,
    UnknownAction,
    TooShort,
    InvalidEvent,
    InvalidPort,
    NoInfoHash,
}

impl ErrorKind {
    /// The text of the error packet.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed packet",
            ErrorKind::UnknownAction => "invalid action",
            ErrorKind::TooShort => "packet too short",
            ErrorKind::InvalidEvent => "invalid event",
            ErrorKind::InvalidPort => "invalid port",
            ErrorKind::NoInfoHash => "invalid info_hash",
        }
    }
}

/// A refused request. `header` holds the connection and transaction ids when
/// the packet carried them, so the tracker may answer with an error packet
/// once it has checked the connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub header: Option<(u64, u32)>,
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
#[inline]
fn arr20(b: &[u8], at: usize) -> [u8; 20] {
    b[at..at + 20].try_into().unwrap()
}

/// The info hash an announce or a scrape (its first) names, read at offset
/// 16 without parsing the rest: the same bytes the kernel steers by, for
/// looking ahead over a batch.
#[inline]
pub fn first_info_hash(b: &[u8]) -> Option<InfoHash> {
    match (b.len() >= 36).then(|| u32_at(b, 8))? {
        ACTION_ANNOUNCE | ACTION_SCRAPE => Some(InfoHash(arr20(b, 16))),
        _ => None,
    }
}

/// The port an announce gives, read without parsing the rest.
#[inline]
pub fn announce_port(b: &[u8]) -> Option<u16> {
    (b.len() >= ANNOUNCE_LEN && u32_at(b, 8) == ACTION_ANNOUNCE)
        .then(|| u16::from_be_bytes([b[96], b[97]]))
}

/// Parses one datagram sent to the tracker.
pub fn parse_request(b: &[u8]) -> Result<Request<'_>, ParseError> {
    if b.len() < 16 {
        return Err(ParseError {
            kind: ErrorKind::Malformed,
            header: None,
        });
    }
    let connection_id = u64_at(b, 0);
    let action = u32_at(b, 8);
    let transaction_id = u32_at(b, 12);
    let err = |kind| ParseError {
        kind,
        header: Some((connection_id, transaction_id)),
    };
    match action {
        ACTION_CONNECT => {
            if connection_id != PROTOCOL_ID {
                return Err(ParseError {
                    kind: ErrorKind::Malformed,
                    header: None,
                });
            }
            Ok(Request::Connect { transaction_id })
        }
        ACTION_ANNOUNCE => {
            if b.len() < ANNOUNCE_LEN {
                return Err(err(ErrorKind::TooShort));
            }
            let event = match u32_at(b, 80) {
                0 => Event::None,
                1 => Event::Completed,
                2 => Event::Started,
                3 => Event::Stopped,
                _ => return Err(err(ErrorKind::InvalidEvent)),
            };
            let port = u16::from_be_bytes([b[96], b[97]]);
            if port == 0 {
                return Err(err(ErrorKind::InvalidPort));
            }
            let num_want = u32_at(b, 92) as i32;
            let announce = AnnounceRequest {
                info_hash: InfoHash(arr20(b, 16)),
                peer_id: PeerId(arr20(b, 36)),
                downloaded: u64_at(b, 56),
                left: Some(u64_at(b, 64)),
                uploaded: u64_at(b, 72),
                event,
                key: Some(u32_at(b, 88)),
                numwant: if num_want > 0 {
                    Some(num_want as u32)
                } else {
                    None
                },
                port,
            };
            Ok(Request::Announce {
                connection_id,
                transaction_id,
                announce,
                ip: u32_at(b, 84),
                options: &b[ANNOUNCE_LEN..],
            })
        }
        ACTION_SCRAPE => {
            let (hashes, _) = b[16..].as_chunks::<20>();
            if hashes.is_empty() {
                return Err(err(ErrorKind::NoInfoHash));
            }
            Ok(Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes: &hashes[..hashes.len().min(MAX_SCRAPE_HASHES)],
            })
        }
        _ => Err(err(ErrorKind::UnknownAction)),
    }
}

/// Iterates over the BEP 41 URL-data chunks of an announce's options:
/// option 0 ends the list, 1 is a one-byte no-op, 2 is URL data with a length
/// byte, and any other type is skipped by its length byte. A truncated option
/// ends the list.
pub fn url_data_chunks(options: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = options;
    std::iter::from_fn(move || loop {
        let (&kind, tail) = rest.split_first()?;
        match kind {
            0 => {
                rest = &[];
                return None;
            }
            1 => rest = tail,
            _ => {
                let (&len, tail) = tail.split_first()?;
                let len = len as usize;
                if tail.len() < len {
                    rest = &[];
                    return None;
                }
                let (data, after) = tail.split_at(len);
                rest = after;
                if kind == 2 {
                    return Some(data);
                }
            }
        }
    })
}

/// The URL data of an announce (BEP 41), its chunks joined: the path and query
/// of the announce URL, e.g. `/announce?passkey=...`.
pub fn url_data(options: &[u8]) -> Vec<u8> {
    url_data_chunks(options).fold(Vec::new(), |mut v, c| {
        v.extend_from_slice(c);
        v
    })
}

// ---- connection ids ----

/// Stateless connection ids: `bucket (16 bits) || MAC (48 bits)`, where the
/// MAC is SipHash-2-4 under a secret key over the client's address and the
/// time bucket. Nothing is stored per client, and an id is good only for the
/// address it was issued to, for [`ConnectionIds::VALID_SECS`] at least.
#[derive(Clone)]
pub struct ConnectionIds {
    k0: u64,
    k1: u64,
}

impl ConnectionIds {
    /// Width of a time bucket, seconds.
    pub const BUCKET_SECS: u32 = 15;
    /// Buckets an id stays good after the one it was issued in.
    pub const MAX_AGE: u32 = 8;
    /// An id is accepted this long at least (and one bucket more at most).
    pub const VALID_SECS: u32 = Self::BUCKET_SECS * Self::MAX_AGE;

    pub fn new(key: [u8; 16]) -> Self {
        ConnectionIds {
            k0: u64::from_le_bytes(key[..8].try_into().unwrap()),
            k1: u64::from_le_bytes(key[8..].try_into().unwrap()),
        }
    }

    fn mac(&self, ip: std::net::IpAddr, bucket: u32) -> u64 {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_keys(self.k0, self.k1);
        let octets = match super::canonical_ip(ip) {
            std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(a) => a.octets(),
        };
        h.write(&octets);
        h.write_u32(bucket);
        h.finish() & 0xFFFF_FFFF_FFFF
    }

    /// The id for a client at `ip` at tracker time `now` (seconds).
    pub fn make(&self, ip: std::net::IpAddr, now: u32) -> u64 {
        let bucket = now / Self::BUCKET_SECS;
        ((bucket as u64 & 0xFFFF) << 48) | self.mac(ip, bucket)
    }

    /// Whether `id` was issued to `ip` no more than the validity ago.
    pub fn check(&self, id: u64, ip: std::net::IpAddr, now: u32) -> bool {
        let current = now / Self::BUCKET_SECS;
        let age = (current as u16).wrapping_sub((id >> 48) as u16) as u32;
        if age > Self::MAX_AGE || age > current {
            return false;
        }
        self.mac(ip, current - age) == id & 0xFFFF_FFFF_FFFF
    }
}

// ---- tracker replies ----

/// Writes a connect reply (16 bytes).
pub fn write_connect_reply(out: &mut Vec<u8>, transaction_id: u32, connection_id: u64) {
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// Writes the 20-byte header of an announce reply; peers follow in compact form.
pub fn write_announce_header(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
    out.extend_from_slice(&seeders.to_be_bytes());
}

/// Writes a scrape reply header; [`write_scrape_entry`] then appends each torrent.
pub fn write_scrape_header(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Appends one torrent's (seeders, completed, leechers).
pub fn write_scrape_entry(out: &mut Vec<u8>, s: &ScrapeStats) {
    out.extend_from_slice(&s.complete.to_be_bytes());
    out.extend_from_slice(&s.downloaded.to_be_bytes());
    out.extend_from_slice(&s.incomplete.to_be_bytes());
}

/// Writes an error reply.
pub fn write_error(out: &mut Vec<u8>, transaction_id: u32, message: &str) {
    out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

// ---- client side ----

/// Writes a connect request.
pub fn write_connect_request(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Writes an announce request, then BEP 41 URL data for `url_data` (split in
/// chunks of at most 255 bytes) when it is not empty.
pub fn write_announce_request(
    out: &mut Vec<u8>,
    connection_id: u64,
    transaction_id: u32,
    a: &AnnounceRequest,
    url_data: &[u8],
) {
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&a.info_hash.0);
    out.extend_from_slice(&a.peer_id.0);
    out.extend_from_slice(&a.downloaded.to_be_bytes());
    out.extend_from_slice(&a.left.unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(&a.uploaded.to_be_bytes());
    let event: u32 = match a.event {
        Event::None | Event::Paused => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    };
    out.extend_from_slice(&event.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&a.key.unwrap_or(0).to_be_bytes());
    let num_want: i32 = a.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32);
    out.extend_from_slice(&num_want.to_be_bytes());
    out.extend_from_slice(&a.port.to_be_bytes());
    for chunk in url_data.chunks(255) {
        out.push(2);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Writes a scrape request.
pub fn write_scrape_request(
    out: &mut Vec<u8>,
    connection_id: u64,
    transaction_id: u32,
    hashes: &[InfoHash],
) {
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
}

/// A reply as a client receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        /// Compact peers: 6 bytes each over IPv4, 18 over IPv6.
        peers: &'a [u8],
    },
    Scrape {
        transaction_id: u32,
        /// (seeders, completed, leechers) per hash, 12 bytes each.
        entries: &'a [[u8; 12]],
    },
    Error {
        transaction_id: u32,
        message: &'a [u8],
    },
}

/// Parses a datagram from a tracker. `None` for anything too short or of an
/// unknown action.
pub fn parse_reply(b: &[u8]) -> Option<Reply<'_>> {
    if b.len() < 8 {
        return None;
    }
    let action = u32_at(b, 0);
    let transaction_id = u32_at(b, 4);
    match action {
        ACTION_CONNECT if b.len() >= 16 => Some(Reply::Connect {
            transaction_id,
            connection_id: u64_at(b, 8),
        }),
        ACTION_ANNOUNCE if b.len() >= ANNOUNCE_REPLY_HEADER => Some(Reply::Announce {
            transaction_id,
            interval: u32_at(b, 8),
            leechers: u32_at(b, 12),
            seeders: u32_at(b, 16),
            peers: &b[ANNOUNCE_REPLY_HEADER..],
        }),
        ACTION_SCRAPE => Some(Reply::Scrape {
            transaction_id,
            entries: b[8..].as_chunks::<12>().0,
        }),
        ACTION_ERROR => Some(Reply::Error {
            transaction_id,
            message: &b[8..],
        }),
        _ => None,
    }
}

/// Decodes one 12-byte scrape entry of a reply.
pub fn scrape_entry(e: &[u8; 12]) -> ScrapeStats {
    ScrapeStats {
        complete: u32_at(e, 0),
        downloaded: u32_at(e, 4),
        incomplete: u32_at(e, 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId(*b"-qB4630-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: Some(3),
            event: Event::Started,
            numwant: Some(30),
            key: Some(0xdead_beef),
        }
    }

    #[test]
    fn announce_bytes_at_their_offsets() {
        let mut out = Vec::new();
        write_announce_request(&mut out, 0x1122_3344_5566_7788, 9, &sample(), b"");
        assert_eq!(out.len(), 98);
        assert_eq!(&out[0..8], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(&out[8..12], &[0, 0, 0, 1]);
        assert_eq!(&out[16..36], &[7; 20]);
        assert_eq!(&out[80..84], &[0, 0, 0, 2]); // started
        assert_eq!(&out[92..96], &[0, 0, 0, 30]);
        assert_eq!(&out[96..98], &6881u16.to_be_bytes());
        match parse_request(&out).unwrap() {
            Request::Announce {
                announce, options, ..
            } => {
                assert_eq!(announce, sample());
                assert!(options.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aria2_two_trailing_zero_bytes_accepted() {
        let mut out = Vec::new();
        write_announce_request(&mut out, 1, 2, &sample(), b"");
        out.extend_from_slice(&[0, 0]);
        assert!(matches!(parse_request(&out), Ok(Request::Announce { .. })));
    }

    #[test]
    fn bep41_url_data() {
        // no-op, URL data in two chunks, unknown option 7 skipped, end, junk after end.
        let opts = [
            1, 2, 3, b'/', b'a', b'n', 7, 2, 9, 9, 2, 2, b'?', b'x', 0, 2, 1, b'z',
        ];
        assert_eq!(url_data(&opts), b"/an?x");
        // Truncated length: what came before is kept.
        assert_eq!(url_data(&[2, 2, b'/', b'a', 2, 200, b'x']), b"/a");
        assert_eq!(url_data(&[]), b"");
        let mut out = Vec::new();
        let long = vec![b'q'; 300];
        write_announce_request(&mut out, 1, 2, &sample(), &long);
        match parse_request(&out).unwrap() {
            Request::Announce { options, .. } => assert_eq!(url_data(options), long),
            _ => unreachable!(),
        }
    }

    #[test]
    fn refused_packets() {
        assert_eq!(parse_request(&[0; 15]).unwrap_err().header, None);
        // Connect without the magic: silence (no header returned).
        let mut c = Vec::new();
        write_connect_request(&mut c, 5);
        c[0] ^= 1;
        assert_eq!(parse_request(&c).unwrap_err().header, None);
        // Announce cut short.
        let mut a = Vec::new();
        write_announce_request(&mut a, 77, 5, &sample(), b"");
        assert_eq!(
            parse_request(&a[..97]).unwrap_err(),
            ParseError {
                kind: ErrorKind::TooShort,
                header: Some((77, 5))
            }
        );
        let mut bad_event = a.clone();
        bad_event[83] = 9;
        assert_eq!(
            parse_request(&bad_event).unwrap_err().kind,
            ErrorKind::InvalidEvent
        );
        let mut bad_port = a.clone();
        bad_port[96] = 0;
        bad_port[97] = 0;
        assert_eq!(
            parse_request(&bad_port).unwrap_err().kind,
            ErrorKind::InvalidPort
        );
        let mut unknown = a;
        unknown[11] = 9;
        assert_eq!(
            parse_request(&unknown).unwrap_err().kind,
            ErrorKind::UnknownAction
        );
        let mut s = Vec::new();
        write_scrape_request(&mut s, 1, 2, &[]);
        assert_eq!(parse_request(&s).unwrap_err().kind, ErrorKind::NoInfoHash);
    }

    #[test]
    fn scrape_caps_hashes() {
        let hashes: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
        let mut s = Vec::new();
        write_scrape_request(&mut s, 1, 2, &hashes);
        s.push(0xff); // a stray byte is ignored
        match parse_request(&s).unwrap() {
            Request::Scrape { info_hashes, .. } => {
                assert_eq!(info_hashes.len(), MAX_SCRAPE_HASHES);
                assert_eq!(info_hashes[73], [73; 20]);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn replies_round_trip() {
        let mut out = Vec::new();
        write_connect_reply(&mut out, 3, 99);
        assert_eq!(out.len(), 16);
        assert_eq!(
            parse_reply(&out),
            Some(Reply::Connect {
                transaction_id: 3,
                connection_id: 99
            })
        );
        out.clear();
        write_announce_header(&mut out, 4, 1800, 2, 1);
        out.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
        assert_eq!(
            parse_reply(&out),
            Some(Reply::Announce {
                transaction_id: 4,
                interval: 1800,
                leechers: 2,
                seeders: 1,
                peers: &[127, 0, 0, 1, 0x1a, 0xe1]
            })
        );
        out.clear();
        write_scrape_header(&mut out, 5);
        let st = ScrapeStats {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        write_scrape_entry(&mut out, &st);
        match parse_reply(&out) {
            Some(Reply::Scrape { entries, .. }) => assert_eq!(scrape_entry(&entries[0]), st),
            other => panic!("{other:?}"),
        }
        out.clear();
        write_error(&mut out, 6, "nope");
        assert_eq!(
            parse_reply(&out),
            Some(Reply::Error {
                transaction_id: 6,
                message: b"nope"
            })
        );
    }

    #[test]
    fn connection_ids_bound_to_address_and_time() {
        let ids = ConnectionIds::new([9; 16]);
        let a: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let id = ids.make(a, 1000);
        assert!(ids.check(id, a, 1000));
        assert!(ids.check(id, a, 1000 + ConnectionIds::VALID_SECS));
        assert!(!ids.check(
            id,
            a,
            1000 + ConnectionIds::VALID_SECS + ConnectionIds::BUCKET_SECS
        ));
        assert!(!ids.check(id, a, 900), "not before it was made");
        assert!(!ids.check(id, b, 1000));
        assert!(!ids.check(id ^ 1, a, 1000));
        assert!(!ConnectionIds::new([8; 16]).check(id, a, 1000));
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(ids.check(id, mapped, 1000));
    }

    #[test]
    fn largest_ipv4_replies() {
        // The defaults: a full scrape (896 bytes) beats 82 peers (512).
        assert_eq!(largest_reply_v4(82), 896);
        assert_eq!(largest_reply_v4(200), 1220);
        assert_eq!(largest_reply_v4(10_000), MAX_REPLY);
        let mut out = Vec::new();
        write_scrape_header(&mut out, 7);
        for _ in 0..MAX_SCRAPE_HASHES {
            write_scrape_entry(&mut out, &ScrapeStats::default());
        }
        assert_eq!(out.len(), largest_reply_v4(1));
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            // The look-ahead names the hash that parsing finds.
            let ahead = first_info_hash(&data);
            match parse_request(&data) {
                Ok(Request::Announce { options, announce, .. }) => {
                    let _ = url_data(options);
                    prop_assert_eq!(ahead, Some(announce.info_hash));
                    prop_assert_eq!(announce_port(&data), Some(announce.port));
                }
                Ok(Request::Scrape { info_hashes, .. }) => {
                    prop_assert_eq!(ahead, info_hashes.first().map(|h| InfoHash(*h)));
                }
                Ok(Request::Connect { .. }) => {
                    prop_assert_eq!(ahead, None);
                    prop_assert_eq!(announce_port(&data), None);
                }
                Err(_) => {}
            }
            let _ = parse_reply(&data);
        }

        #[test]
        fn announces_with_any_header_round_trip(
            ih in any::<[u8; 20]>(), pid in any::<[u8; 20]>(), port in 1u16.., up in any::<u64>(),
            down in any::<u64>(), left in any::<u64>(), ev in 0u8..4, nw in 1u32..1000, key in any::<u32>(),
            url in proptest::collection::vec(any::<u8>(), 0..600), cid in any::<u64>(), tid in any::<u32>()
        ) {
            let a = AnnounceRequest {
                info_hash: InfoHash(ih), peer_id: PeerId(pid), port, uploaded: up, downloaded: down,
                left: Some(left), event: [Event::None, Event::Completed, Event::Started, Event::Stopped][ev as usize],
                numwant: Some(nw), key: Some(key),
            };
            let mut out = Vec::new();
            write_announce_request(&mut out, cid, tid, &a, &url);
            match parse_request(&out).unwrap() {
                Request::Announce { connection_id, transaction_id, announce, options, .. } => {
                    prop_assert_eq!(connection_id, cid);
                    prop_assert_eq!(transaction_id, tid);
                    prop_assert_eq!(announce, a);
                    prop_assert_eq!(url_data(options), url);
                }
                _ => prop_assert!(false),
            }
        }
    }
}
