//! WebTorrent JSON both ways: client messages as the tracker reads them,
//! tracker messages as the client reads them; and the frames they come in,
//! read as a connection reads them, in two arrivals (the first byte says
//! where the first ends; the second byte sets the size limit).
#![no_main]
use bittorrent_tracker::protocol::ws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 2 {
        let cut = 2 + data[0] as usize % (data.len() - 1);
        let max = (data[1] as usize) << 4;
        let mut reader = ws::frame::FrameReader::default();
        let mut buf = data[2..cut].to_vec();
        'arrivals: for more in [&data[cut..], &[][..]] {
            let mut pos = 0;
            loop {
                match reader.next(&mut buf, &mut pos, max) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'arrivals,
                }
            }
            buf.drain(..pos);
            buf.extend_from_slice(more);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ws::parse(text);
        let _ = ws::parse_server_message(text);
        let _ = ws::binary20(text);
    }
});
