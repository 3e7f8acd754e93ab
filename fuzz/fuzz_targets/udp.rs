//! UDP packets both ways: what the tracker receives (BEP 15 requests with
//! BEP 41 options) and what the client receives (replies).
#![no_main]
use bittorrent_tracker::protocol::udp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ahead = udp::first_info_hash(data);
    match udp::parse_request(data) {
        Ok(udp::Request::Announce {
            options, announce, ..
        }) => {
            let _ = udp::url_data(options);
            assert_eq!(ahead, Some(announce.info_hash));
        }
        Ok(udp::Request::Scrape { info_hashes, .. }) => {
            assert!(info_hashes.len() <= udp::MAX_SCRAPE_HASHES);
            assert_eq!(ahead.map(|h| h.0), info_hashes.first().copied());
        }
        _ => {}
    }
    if let Some(udp::Reply::Scrape { entries, .. }) = udp::parse_reply(data) {
        for e in entries {
            let _ = udp::scrape_entry(e);
        }
    }
    let mut id = [0u8; 20];
    let n = data.len().min(20);
    id[..n].copy_from_slice(&data[..n]);
    let _ = bittorrent_tracker::protocol::clients::ClientKey::of(&bittorrent_tracker::PeerId(id)).describe();
});
