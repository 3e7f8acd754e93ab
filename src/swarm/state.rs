//! Swarms as bytes, for the state file that carries them across restarts.
//!
//! A file is a header (magic, format version, the wall-clock second it was
//! written) and then records, one per torrent, each complete in itself, so
//! the records of several shards are simply concatenated and a restore can
//! hand each record to whichever worker owns its hash now (the worker count
//! may have changed). Big-endian throughout.
//!
//! ```text
//! header: "BTTRKST" 0x01, saved_at u64 (Unix seconds)
//! record: info_hash [20], completed u32, n4 u32, n6 u32,
//!         n4 × (addr [6], peer_id [20], seeder u8, age u32),
//!         n6 × (addr [18], peer_id [20], seeder u8, age u32)
//! ```
//!
//! `age` is seconds since the peer's last announce at the time of writing.
//! WebSocket peers are not kept: their connections end with the process.

use super::peers::PeerMeta;
use super::{Family, Kind, Shard};
use crate::protocol::{InfoHash, PeerId};

/// The first bytes of a state file, format version 1.
pub const MAGIC: &[u8; 8] = b"BTTRKST\x01";
/// Header length: magic and `saved_at`.
pub const HEADER: usize = 16;
const RECORD_HEAD: usize = 20 + 4 + 4 + 4;
const PEER_TAIL: usize = 20 + 1 + 4;

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
            StateError::BadHeader => write!(f, "not a bittorrent-tracker state file (version 1)"),
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
    if b.len() < HEADER || &b[..8] != MAGIC {
        return Err(StateError::BadHeader);
    }
    let saved_at = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes"));
    Ok((saved_at, &b[HEADER..]))
}

/// One torrent as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub info_hash: InfoHash,
    pub completed: u32,
    /// `n4` entries of `6 + 25` bytes.
    v4: &'a [u8],
    /// `n6` entries of `18 + 25` bytes.
    v6: &'a [u8],
    /// The whole record, to pass on as it is.
    pub bytes: &'a [u8],
}

impl Record<'_> {
    /// Peers the record holds (some may be too old to restore).
    pub fn peers(&self) -> usize {
        self.v4.len() / (6 + PEER_TAIL) + self.v6.len() / (18 + PEER_TAIL)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The records of a file body, in order; an error stops the walk.
pub fn records(mut b: &[u8]) -> impl Iterator<Item = Result<Record<'_>, StateError>> {
    let mut n = 0;
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        n += 1;
        let cut = Some(Err(StateError::Truncated { record: n }));
        if b.len() < RECORD_HEAD {
            b = &[];
            return cut;
        }
        let n4 = u32_at(b, 24) as usize;
        let n6 = u32_at(b, 28) as usize;
        let l4 = n4.checked_mul(6 + PEER_TAIL);
        let l6 = n6.checked_mul(18 + PEER_TAIL);
        let len = l4
            .zip(l6)
            .and_then(|(a, c)| a.checked_add(c))
            .and_then(|l| l.checked_add(RECORD_HEAD));
        let Some(len) = len.filter(|&l| l <= b.len()) else {
            b = &[];
            return cut;
        };
        let (rec, rest) = b.split_at(len);
        b = rest;
        let l4 = l4.expect("checked above");
        Some(Ok(Record {
            info_hash: InfoHash(rec[..20].try_into().expect("20 bytes")),
            completed: u32_at(rec, 20),
            v4: &rec[RECORD_HEAD..RECORD_HEAD + l4],
            v6: &rec[RECORD_HEAD + l4..],
            bytes: rec,
        }))
    })
}

/// Reads a state file one record at a time, holding no more than the
/// largest record in memory.
pub struct Reader<R> {
    inner: R,
    /// Bytes left in the file: no record may claim more.
    left: u64,
    /// Records read so far.
    n: usize,
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
        let (saved_at, _) = read_header(&head[..got])?;
        let reader = Reader {
            inner,
            left: len.saturating_sub(HEADER as u64),
            n: 0,
            buf: Vec::new(),
        };
        Ok((reader, saved_at))
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, StateError>> {
        self.n += 1;
        let cut = StateError::Truncated { record: self.n };
        self.buf.resize(RECORD_HEAD, 0);
        match read_full(&mut self.inner, &mut self.buf) {
            Ok(0) => return None,
            Ok(n) if n < RECORD_HEAD => return Some(Err(cut)),
            Ok(_) => {}
            Err(e) => return Some(Err(StateError::Io(e.to_string()))),
        }
        let (n4, n6) = (u32_at(&self.buf, 24) as u64, u32_at(&self.buf, 28) as u64);
        let len = RECORD_HEAD as u64 + n4 * (6 + PEER_TAIL) as u64 + n6 * (18 + PEER_TAIL) as u64;
        if len > self.left {
            return Some(Err(cut));
        }
        self.left -= len;
        self.buf.resize(len as usize, 0);
        match read_full(&mut self.inner, &mut self.buf[RECORD_HEAD..]) {
            Ok(n) if n + RECORD_HEAD < len as usize => return Some(Err(cut)),
            Ok(_) => {}
            Err(e) => return Some(Err(StateError::Io(e.to_string()))),
        }
        records(&self.buf).next()
    }
}

fn write_family<const N: usize>(f: &Family<N>, now: u32, out: &mut Vec<u8>) {
    for (addr, meta, seeder) in f.peers.iter() {
        out.extend_from_slice(addr);
        out.extend_from_slice(&meta.peer_id.0);
        out.push(seeder as u8);
        out.extend_from_slice(&now.saturating_sub(meta.last_seen).to_be_bytes());
    }
}

fn restore_family<const N: usize>(
    family: &mut Family<N>,
    entries: &[u8],
    kind: Kind,
    tally: &mut super::Tally,
    now: u32,
    extra_age: u32,
    ttl: u32,
) -> usize {
    let mut n = 0;
    for e in entries.chunks_exact(N + PEER_TAIL) {
        let age = u32_at(e, N + 21).saturating_add(extra_age);
        if age >= ttl {
            continue;
        }
        let key: [u8; N] = e[..N].try_into().expect("N bytes");
        let peer_id = PeerId(e[N..N + 20].try_into().expect("20 bytes"));
        let seeder = e[N + 20] & 1 == 1;
        let meta = PeerMeta {
            peer_id,
            last_seen: now - age.min(now),
        };
        match family.upsert(key, seeder, meta).0 {
            None => tally.join(kind, seeder, &peer_id),
            Some(was) => tally.again(kind, was, seeder, &peer_id),
        }
        n += 1;
    }
    n
}

impl Shard {
    /// Appends the records of up to `max` torrents from position `from` and
    /// returns the position to go on from (`torrents()` when done). Torrents
    /// with no peers and no download are left out. Saving a slice at a time
    /// keeps requests flowing; a torrent moved between slices (by expiry)
    /// may be missed or written twice, which a restore takes in its stride.
    pub fn dump(&self, from: usize, max: usize, now: u32, out: &mut Vec<u8>) -> usize {
        let end = from.saturating_add(max).min(self.torrents.len());
        for i in from..end {
            let (hash, swarm) = self.torrents.get_index(i).expect("in range");
            let v6 = swarm.v6();
            if swarm.v4.is_empty() && v6.is_empty() && swarm.completed == 0 {
                continue;
            }
            out.extend_from_slice(&hash.0);
            out.extend_from_slice(&swarm.completed.to_be_bytes());
            out.extend_from_slice(&(swarm.v4.peers.len() as u32).to_be_bytes());
            out.extend_from_slice(&(v6.peers.len() as u32).to_be_bytes());
            write_family(&swarm.v4, now, out);
            write_family(v6, now, out);
        }
        end.max(from)
    }

    /// Restores one record at tracker time `now`, the file being
    /// `extra_age` seconds old: peers that would have expired meanwhile are
    /// left out. Returns the peers restored.
    pub fn restore(&mut self, rec: &Record<'_>, now: u32, extra_age: u32) -> usize {
        let ttl = self.peer_ttl;
        let swarm = self.torrents.entry(rec.info_hash).or_default();
        let was_active = !swarm.is_empty();
        let tally = &mut self.tally;
        let mut n = restore_family(&mut swarm.v4, rec.v4, Kind::V4, tally, now, extra_age, ttl);
        if !rec.v6.is_empty() {
            let v6 = swarm.v6.get_or_insert_with(Box::default);
            n += restore_family(v6, rec.v6, Kind::V6, tally, now, extra_age, ttl);
            swarm.trim_v6();
        }
        if rec.completed > swarm.completed {
            tally.totals.completed += (rec.completed - swarm.completed) as u64;
            swarm.completed = rec.completed;
        }
        swarm.last_active = now;
        if !was_active && !swarm.is_empty() {
            tally.totals.active_torrents += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AnnounceRequest, Event, Peers};
    use crate::swarm::Want;
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
        assert_eq!(back.clients(), sh.clients());
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
            read_header(b"BTTRKST\x02aaaaaaaa"),
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

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut sh = Shard::new(100, 6);
            for r in records(&b).flatten() {
                sh.restore(&r, 1000, 0);
            }
            let _ = read_header(&b);
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&b);
            let (mut reader, _) = Reader::new(&file[..], file.len() as u64).unwrap();
            while let Some(Ok(r)) = reader.next_record() {
                sh.restore(&r, 1000, 0);
            }
        }
    }
}
