//! State files: any bytes read back with the streaming reader and restored
//! into a shard.
#![no_main]
use bittorrent_tracker::swarm::state::Reader;
use bittorrent_tracker::swarm::Shard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut shard = Shard::new(1000, 1);
    if let Ok((mut reader, _)) = Reader::new(data, data.len() as u64) {
        while let Some(Ok(r)) = reader.next_record() {
            shard.restore(&r, 1 << 24, 5);
        }
    }
    // Restored counts agree with what the shard holds.
    let mut all = Vec::new();
    shard.scrape_all(&mut all);
    let peers: u64 = all.iter().map(|(_, s)| (s.complete + s.incomplete) as u64).sum();
    let t = shard.totals();
    assert_eq!(peers, (t.seeders + t.leechers) as u64);
});
