//! Swarms as bytes, for the state file that carries them across restarts.
//!
//! A file is a header (magic, format version, the wall-clock second it was
//! written) and then records, one per torrent, each complete in itself, so
//! the records of several shards are simply concatenated and a restore can
//! hand each record to whichever worker owns its hash now (the worker count
//! may have changed). Big-endian throughout.
//!
//! ```text
//! header: "BTTRKST" 0x02, saved_at u64 (Unix seconds)
//! record: info_hash [20], completed u32, flags u8, n4 u32, n6 u32,
//!         n4 × (addr [6], client u64, seeder u8, age u32, [peer_id [20]]),
//!         n6 × (addr [18], client u64, seeder u8, age u32, [peer_id [20]])
//! ```
//!
//! `client` is the peer's client and version (a `ClientKey`), `age` the
//! seconds since its last announce at the time of writing. Peer ids are
//! there when bit 0 of `flags` says so (the tracker kept them). WebSocket
//! peers are not kept: their connections end with the process.

use super::peers::PeerList;
use super::torrent::{Arrival, Body, Torrent};
use super::{Shard, Want};
use crate::protocol::clients::ClientKey;
use crate::protocol::{InfoHash, PeerId, Peers};

/// The first bytes of a state file, format version 2.
pub const MAGIC: &[u8; 8] = b"BTTRKST\x02";
/// Header length: magic and `saved_at`.
pub const HEADER: usize = 16;
/// A peer's bytes after its address, without and with its peer id.
const PEER_TAIL: usize = 8 + 1 + 4;
const ID_TAIL: usize = PEER_TAIL + 20;
/// `flags`: peer ids follow each peer.
const WITH_IDS: u8 = 1;

/// Version 1, as the first releases wrote it, is still read:
/// `info_hash [20], completed u32, n4 u32, n6 u32`, then per peer
/// `addr, peer_id [20], seeder u8, age u32`.
const V1_MAGIC: &[u8; 8] = b"BTTRKST\x01";
const V1_TAIL: usize = 20 + 1 + 4;

/// Where a format version keeps things in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    v1: bool,
}

impl Format {
    /// What this tracker writes.
    pub const CURRENT: Format = Format { v1: false };

    fn head(self) -> usize {
        if self.v1 {
            32
        } else {
            33
        }
    }

    /// Where `n4` and `n6` are.
    fn counts_at(self) -> usize {
        if self.v1 {
            24
        } else {
            25
        }
    }

    /// A peer's bytes after its address, for a record head.
    fn tail(self, head: &[u8]) -> usize {
        match (self.v1, head[24] & WITH_IDS != 0) {
            (true, _) => V1_TAIL,
            (false, true) => ID_TAIL,
            (false, false) => PEER_TAIL,
        }
    }
}

/// Why a state file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not a state file of this format.
    BadHeader,
    /// A record is cut short or claims more peers than the file holds.
    Truncated { record: usize },
    /// Reading failed.
    Io(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::BadHeader => write!(f, "not a bittorrent-tracker state file (version 2)"),
            StateError::Truncated { record } => {
                write!(f, "record {record} is cut short: the file is damaged")
            }
            StateError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StateError {}

/// Writes a file header.
pub fn write_header(out: &mut Vec<u8>, saved_at: u64) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&saved_at.to_be_bytes());
}

/// Reads a file header: the wall-clock second the file was written, and the
/// records that follow.
pub fn read_header(b: &[u8]) -> Result<(u64, &[u8]), StateError> {
    read_any_header(b).map(|(_, at, body)| (at, body))
}

/// [`read_header`] for this version or version 1, with the format found.
pub fn read_any_header(b: &[u8]) -> Result<(Format, u64, &[u8]), StateError> {
    let format = match b.get(..8) {
        _ if b.len() < HEADER => return Err(StateError::BadHeader),
        Some(m) if m == MAGIC => Format::CURRENT,
        Some(m) if m == V1_MAGIC => Format { v1: true },
        _ => return Err(StateError::BadHeader),
    };
    let saved_at = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes"));
    Ok((format, saved_at, &b[HEADER..]))
}

/// One torrent as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub info_hash: InfoHash,
    pub completed: u32,
    format: Format,
    /// A peer's bytes after its address.
    tail: usize,
    /// `n4` entries of `6 + tail` bytes.
    v4: &'a [u8],
    /// `n6` entries of `18 + tail` bytes.
    v6: &'a [u8],
    /// The whole record, to pass on as it is.
    pub bytes: &'a [u8],
}

impl Record<'_> {
    /// Peers the record holds (some may be too old to restore).
    pub fn peers(&self) -> usize {
        self.v4.len() / (6 + self.tail) + self.v6.len() / (18 + self.tail)
    }

    /// Every peer: address, client, seeder or not, age, and peer id if kept.
    fn each(&self) -> impl Iterator<Item = (&[u8], ClientKey, bool, u32, Option<PeerId>)> + '_ {
        let (v1, tail) = (self.format.v1, self.tail);
        let v4 = self.v4.chunks_exact(6 + tail).map(|e| (e, 6));
        let v6 = self.v6.chunks_exact(18 + tail).map(|e| (e, 18));
        v4.chain(v6).map(move |(e, n)| {
            let (addr, t) = e.split_at(n);
            let id_at = |at: usize| PeerId(t[at..at + 20].try_into().expect("20 bytes"));
            if v1 {
                let id = id_at(0);
                (
                    addr,
                    ClientKey::of(&id),
                    t[20] & 1 == 1,
                    u32_at(t, 21),
                    Some(id),
                )
            } else {
                let client = ClientKey(u64::from_be_bytes(t[..8].try_into().expect("8 bytes")));
                let id = (tail == ID_TAIL).then(|| id_at(PEER_TAIL));
                (addr, client, t[8] & 1 == 1, u32_at(t, 9), id)
            }
        })
    }
}

/// From a record's head: the length of its IPv4 entries and of the whole
/// record, unless they overflow.
fn record_len(head: &[u8], f: Format) -> Option<(usize, usize)> {
    let tail = f.tail(head);
    let l4 = (u32_at(head, f.counts_at()) as usize).checked_mul(6 + tail)?;
    let l6 = (u32_at(head, f.counts_at() + 4) as usize).checked_mul(18 + tail)?;
    Some((l4, l4.checked_add(l6)?.checked_add(f.head())?))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The records of a file body of this version, in order; an error stops
/// the walk.
pub fn records(b: &[u8]) -> impl Iterator<Item = Result<Record<'_>, StateError>> {
    records_of(b, Format::CURRENT)
}

/// The records of a file body of format `f`.
pub fn records_of(mut b: &[u8], f: Format) -> impl Iterator<Item = Result<Record<'_>, StateError>> {
    let mut n = 0;
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        n += 1;
        let cut = Some(Err(StateError::Truncated { record: n }));
        if b.len() < f.head() {
            b = &[];
            return cut;
        }
        let Some((l4, len)) = record_len(b, f).filter(|&(_, l)| l <= b.len()) else {
            b = &[];
            return cut;
        };
        let (rec, rest) = b.split_at(len);
        b = rest;
        Some(Ok(record(rec, l4, f)))
    })
}

/// A whole record of format `f`, its IPv4 entries `l4` bytes long.
fn record(rec: &[u8], l4: usize, f: Format) -> Record<'_> {
    let head = f.head();
    Record {
        info_hash: InfoHash(rec[..20].try_into().expect("20 bytes")),
        completed: u32_at(rec, 20),
        format: f,
        tail: f.tail(rec),
        v4: &rec[head..head + l4],
        v6: &rec[head + l4..],
        bytes: rec,
    }
}

/// Reads a state file one record at a time, holding no more than the
/// largest record in memory.
pub struct Reader<R> {
    inner: R,
    /// Bytes left in the file: no record may claim more.
    left: u64,
    /// Records read so far.
    n: usize,
    format: Format,
    buf: Vec<u8>,
}

fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: std::io::Read> Reader<R> {
    /// Reads the header of a file `len` bytes long; returns the reader and
    /// the wall-clock second the file was written.
    pub fn new(mut inner: R, len: u64) -> Result<(Self, u64), StateError> {
        let mut head = [0u8; HEADER];
        let got = read_full(&mut inner, &mut head).map_err(|e| StateError::Io(e.to_string()))?;
        let (format, saved_at, _) = read_any_header(&head[..got])?;
        let reader = Reader {
            inner,
            left: len.saturating_sub(HEADER as u64),
            n: 0,
            format,
            buf: Vec::new(),
        };
        Ok((reader, saved_at))
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, StateError>> {
        self.n += 1;
        let cut = StateError::Truncated { record: self.n };
        let (f, head) = (self.format, self.format.head());
        self.buf.resize(head, 0);
        match read_full(&mut self.inner, &mut self.buf) {
            Ok(0) => return None,
            Ok(n) if n < head => return Some(Err(cut)),
            Ok(_) => {}
            Err(e) => return Some(Err(StateError::Io(e.to_string()))),
        }
        let fits = |&(_, l): &(usize, usize)| l as u64 <= self.left;
        let Some((l4, len)) = record_len(&self.buf, f).filter(fits) else {
            return Some(Err(cut));
        };
        self.left -= len as u64;
        self.buf.resize(len, 0);
        match read_full(&mut self.inner, &mut self.buf[head..]) {
            Ok(n) if n + head < len => return Some(Err(cut)),
            Ok(_) => {}
            Err(e) => return Some(Err(StateError::Io(e.to_string()))),
        }
        Some(Ok(record(&self.buf, l4, f)))
    }
}

/// Appends one peer's entry.
fn write_peer(
    out: &mut Vec<u8>,
    addr: &[u8],
    client: ClientKey,
    seeder: bool,
    age: u32,
    id: Option<&PeerId>,
) {
    out.extend_from_slice(addr);
    out.extend_from_slice(&client.0.to_be_bytes());
    out.push(seeder as u8);
    out.extend_from_slice(&age.to_be_bytes());
    if let Some(id) = id {
        out.extend_from_slice(&id.0);
    }
}

impl Shard {
    fn write_list<const N: usize>(&self, l: &PeerList<N>, ids: bool, now: u32, out: &mut Vec<u8>) {
        for (slot, (e, seeder)) in l.iter().enumerate() {
            let id = ids.then(|| l.id(slot).copied().unwrap_or_default());
            let client = self.tally.clients.key(e.client);
            let age = now.saturating_sub(e.last_seen);
            write_peer(out, &e.addr, client, seeder, age, id.as_ref());
        }
    }

    /// Appends the records of up to `max` torrents from position `from` and
    /// returns the position to go on from (`torrents()` when done). Torrents
    /// with no peers and no download are left out. Saving a slice at a time
    /// keeps requests flowing; a torrent moved between slices (by expiry)
    /// may be missed or written twice, which a restore takes in its stride.
    pub fn dump(&self, from: usize, max: usize, now: u32, out: &mut Vec<u8>) -> usize {
        let end = from.saturating_add(max).min(self.torrents.len());
        let ids = self.keep_ids;
        for i in from..end {
            let t: &Torrent = self.torrents.get(i);
            if t.is_empty() && t.completed == 0 {
                continue;
            }
            let (n4, n6) = match &t.body {
                Body::Empty => (0, 0),
                Body::One(_) => (1, 0),
                Body::Many(s) => (s.v4.peers.len(), s.v6().peers.len()),
            };
            out.extend_from_slice(&t.hash.0);
            out.extend_from_slice(&t.completed.to_be_bytes());
            out.push(if ids { WITH_IDS } else { 0 });
            out.extend_from_slice(&(n4 as u32).to_be_bytes());
            out.extend_from_slice(&(n6 as u32).to_be_bytes());
            match &t.body {
                Body::Empty => {}
                Body::One(o) => {
                    let client = self.tally.clients.key(o.client);
                    let age = now.saturating_sub(o.last_seen);
                    let id = ids.then(PeerId::default);
                    write_peer(out, &o.addr, client, o.seeder, age, id.as_ref());
                }
                Body::Many(s) => {
                    self.write_list(&s.v4.peers, ids, now, out);
                    self.write_list(&s.v6().peers, ids, now, out);
                }
            }
        }
        end.max(from)
    }

    /// Restores one record at tracker time `now`, the file being
    /// `extra_age` seconds old: peers that would have expired meanwhile are
    /// left out. Returns the peers restored.
    pub fn restore(&mut self, rec: &Record<'_>, now: u32, extra_age: u32) -> usize {
        let at = self
            .torrents
            .find_or_insert(&rec.info_hash, || Torrent::new(rec.info_hash));
        let want = Want {
            peers: 0,
            both_families: false,
            ids: false,
        };
        let mut none = Peers::default();
        let mut n = 0;
        for (addr, client, seeder, age, id) in rec.each() {
            let age = age.saturating_add(extra_age);
            if age >= self.peer_ttl {
                continue;
            }
            let a = Arrival {
                seeder,
                completed: false,
                now: now - age.min(now),
                id: self.keep_ids.then(|| id.unwrap_or_default()),
                client,
            };
            self.arrive(at, super::views::peer_addr(addr), &a, &want, &mut none);
            n += 1;
        }
        let t = self.torrents.get_mut(at);
        if rec.completed > t.completed {
            self.tally.totals.completed += (rec.completed - t.completed) as u64;
            t.completed = rec.completed;
        }
        t.last_active = now;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AnnounceRequest, Event};
    use proptest::prelude::*;

    fn announce(sh: &mut Shard, hash: u8, ip: &str, port: u16, left: u64, event: Event, now: u32) {
        let r = AnnounceRequest {
            info_hash: InfoHash([hash; 20]),
            peer_id: PeerId(*b"-qB4650-abcdefghijkl"),
            port,
            uploaded: 0,
            downloaded: 0,
            left: Some(left),
            event,
            numwant: None,
            key: None,
        };
        let want = Want {
            peers: 50,
            both_families: true,
            ids: false,
        };
        sh.announce(&r, ip.parse().unwrap(), now, &want, &mut Peers::default())
            .unwrap();
    }

    fn save(sh: &Shard, now: u32, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, 1_700_000_000);
        let mut at = 0;
        while at < sh.torrents() {
            at = sh.dump(at, chunk, now, &mut out);
        }
        out
    }

    #[test]
    fn round_trip_keeps_peers_counts_and_completed() {
        let mut sh = Shard::new(1000, 1);
        announce(&mut sh, 1, "10.0.0.1", 1000, 0, Event::Started, 100);
        announce(&mut sh, 1, "10.0.0.2", 1001, 5, Event::Started, 100);
        announce(&mut sh, 1, "10.0.0.2", 1001, 0, Event::Completed, 500);
        announce(&mut sh, 2, "2001:db8::1", 6881, 5, Event::Started, 900);
        // Torrent 3 had a download and no one left: its count is kept.
        announce(&mut sh, 3, "10.0.0.3", 1, 5, Event::Started, 900);
        announce(&mut sh, 3, "10.0.0.3", 1, 0, Event::Completed, 900);
        announce(&mut sh, 3, "10.0.0.3", 1, 0, Event::Stopped, 900);
        let file = save(&sh, 1000, 1);
        let (saved_at, body) = read_header(&file).unwrap();
        assert_eq!(saved_at, 1_700_000_000);

        let mut back = Shard::new(1000, 2);
        let now = 2000; // a new process, its own clock
        let mut restored = 0;
        for r in records(body) {
            restored += back.restore(&r.unwrap(), now, 20);
        }
        assert_eq!(restored, 3);
        assert_eq!(back.totals(), sh.totals());
        assert_eq!(
            back.clients().collect::<Vec<_>>(),
            sh.clients().collect::<Vec<_>>()
        );
        for h in 1..=3 {
            assert_eq!(
                back.scrape(&InfoHash([h; 20])),
                sh.scrape(&InfoHash([h; 20]))
            );
        }
        // The peer seen at 100 was 900 s old when saved, 920 s now: it goes
        // 80 s from now, the others later.
        assert_eq!(back.sweep(now + 79, 100), 0);
        assert_eq!(back.sweep(now + 81, 100), 1);
    }

    #[test]
    fn peers_that_expired_meanwhile_are_left_out() {
        let mut sh = Shard::new(1000, 3);
        announce(&mut sh, 1, "10.0.0.1", 1000, 0, Event::Started, 0);
        announce(&mut sh, 1, "10.0.0.2", 1000, 0, Event::Started, 900);
        let file = save(&sh, 1000, 10);
        let mut back = Shard::new(1000, 4);
        let (_, body) = read_header(&file).unwrap();
        let r = records(body).next().unwrap().unwrap();
        assert_eq!(
            back.restore(&r, 10, 50),
            1,
            "1000 + 50 s old is past the TTL"
        );
        assert_eq!(back.totals().seeders, 1);
        // Restoring the same record twice changes nothing.
        back.restore(&r, 10, 50);
        assert_eq!(back.totals().seeders, 1);
    }

    #[test]
    fn damaged_files_are_refused() {
        assert_eq!(
            read_header(b"BTTRKST\x03aaaaaaaa"),
            Err(StateError::BadHeader)
        );
        assert_eq!(read_header(b"short"), Err(StateError::BadHeader));
        let mut sh = Shard::new(1000, 5);
        announce(&mut sh, 1, "10.0.0.1", 1000, 0, Event::Started, 0);
        announce(&mut sh, 2, "10.0.0.1", 1000, 0, Event::Started, 0);
        let file = save(&sh, 10, 5);
        let (_, body) = read_header(&file).unwrap();
        let cut = &body[..body.len() - 3];
        let got: Vec<_> = records(cut).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(StateError::Truncated { record: 2 }));
    }

    #[test]
    fn the_reader_reads_what_records_reads() {
        let mut sh = Shard::new(1000, 7);
        for h in 0..20u8 {
            for p in 0..h as u16 {
                announce(&mut sh, h, "10.0.0.1", 1000 + p, 0, Event::Started, 0);
            }
            announce(&mut sh, h, "2001:db8::1", 1, 5, Event::Started, 0);
        }
        let file = save(&sh, 10, 3);
        let (mut reader, saved_at) = Reader::new(&file[..], file.len() as u64).unwrap();
        assert_eq!(saved_at, 1_700_000_000);
        let mut streamed = Vec::new();
        while let Some(r) = reader.next_record() {
            streamed.push(r.unwrap().bytes.to_vec());
        }
        let whole: Vec<Vec<u8>> = records(&file[HEADER..])
            .map(|r| r.unwrap().bytes.to_vec())
            .collect();
        assert_eq!(streamed.len(), 20);
        assert_eq!(streamed, whole);
        // Cut short: the records before the cut, then an error.
        let cut = &file[..file.len() - 5];
        let (mut reader, _) = Reader::new(cut, cut.len() as u64).unwrap();
        let mut ok = 0;
        let err = loop {
            match reader.next_record() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e,
                None => panic!("the cut is noticed"),
            }
        };
        assert_eq!((ok, err), (19, StateError::Truncated { record: 20 }));
    }

    #[test]
    fn version_1_files_are_still_read() {
        // One torrent, 3 downloads, an IPv4 seeder and an IPv6 leecher.
        let mut file = b"BTTRKST\x01".to_vec();
        file.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        file.extend_from_slice(&[7; 20]);
        for n in [3u32, 1, 1] {
            file.extend_from_slice(&n.to_be_bytes());
        }
        file.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
        file.extend_from_slice(b"-qB4650-abcdefghijkl\x01");
        file.extend_from_slice(&10u32.to_be_bytes());
        file.extend_from_slice(&[
            0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80,
        ]);
        file.extend_from_slice(b"-TR4060-abcdefghijkl\x00");
        file.extend_from_slice(&20u32.to_be_bytes());
        let (mut reader, saved_at) = Reader::new(&file[..], file.len() as u64).unwrap();
        assert_eq!(saved_at, 1_700_000_000);
        let mut sh = Shard::new(1000, 8);
        sh.keep_peer_ids(true);
        let r = reader.next_record().unwrap().unwrap();
        assert_eq!(sh.restore(&r, 100, 0), 2);
        assert!(reader.next_record().is_none());
        let s = sh.scrape(&InfoHash([7; 20]));
        assert_eq!((s.complete, s.incomplete, s.downloaded), (1, 1, 3));
        let t = sh.totals();
        assert_eq!((t.peers_v4, t.peers_v6), (1, 1));
        let mut clients: Vec<_> = sh.clients().map(|(k, n)| (k.describe().0, n)).collect();
        clients.sort();
        assert_eq!(clients, vec![("Transmission", 1), ("qBittorrent", 1)]);
        let mut info = Vec::new();
        sh.torrents_info(&mut info);
        let mut ids: Vec<_> = info[0]
            .peers
            .iter()
            .map(|p| p.peer_id.unwrap().0[1])
            .collect();
        ids.sort();
        assert_eq!(ids, vec![b'T', b'q'], "peer ids kept from the file");
    }

    #[test]
    fn peer_ids_and_clients_round_trip() {
        let mut sh = Shard::new(1000, 9);
        sh.keep_peer_ids(true);
        announce(&mut sh, 1, "10.0.0.1", 1000, 0, Event::Started, 100);
        announce(&mut sh, 1, "10.0.0.2", 1000, 5, Event::Started, 100);
        let file = save(&sh, 100, 10);
        let (_, body) = read_header(&file).unwrap();
        for keep in [true, false] {
            let mut back = Shard::new(1000, 10);
            back.keep_peer_ids(keep);
            for r in records(body) {
                back.restore(&r.unwrap(), 100, 0);
            }
            let mut info = Vec::new();
            back.torrents_info(&mut info);
            let ids: Vec<_> = info[0].peers.iter().map(|p| p.peer_id).collect();
            let want = keep.then_some(PeerId(*b"-qB4650-abcdefghijkl"));
            assert_eq!(ids, vec![want, want]);
            assert_eq!(back.clients().map(|c| c.1).sum::<u32>(), 2);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut sh = Shard::new(100, 6);
            for r in records(&b).flatten() {
                sh.restore(&r, 1000, 0);
            }
            let _ = read_header(&b);
            for magic in [MAGIC, V1_MAGIC] {
                let mut file = magic.to_vec();
                file.extend_from_slice(&[0; 8]);
                file.extend_from_slice(&b);
                let (mut reader, _) = Reader::new(&file[..], file.len() as u64).unwrap();
                while let Some(Ok(r)) = reader.next_record() {
                    sh.restore(&r, 1000, 0);
                }
            }
        }
    }
}
