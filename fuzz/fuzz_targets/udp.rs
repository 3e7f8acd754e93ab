//! UDP packets both ways: what the tracker receives (BEP 15 requests with
//! BEP 41 options) and what the client receives (replies).
#![no_main]
use bittorrent_tracker::protocol::udp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match udp::parse_request(data) {
        Ok(udp::Request::Announce { options, .. }) => {
            let _ = udp::url_data(options);
        }
        Ok(udp::Request::Scrape { info_hashes, .. }) => {
            assert!(info_hashes.len() <= udp::MAX_SCRAPE_HASHES);
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
