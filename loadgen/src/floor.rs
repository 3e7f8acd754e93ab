//! `floor`: a stateless UDP responder that answers every BEP 15 packet with
//! the smallest valid reply, receiving and sending in batches
//! (recvmmsg/sendmmsg). No tracker can answer faster on the same kernel path,
//! so tracker figures read as a fraction of it.

use bittorrent_tracker::mmsg::{RecvBatch, SendBatch};
use clap::Args;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

#[derive(Args, Clone, Debug)]
pub struct FloorOpts {
    /// Address to answer on
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Responder threads, each with its own SO_REUSEPORT socket
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the threads to
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Stop after this many seconds (default: run until killed)
    #[arg(long)]
    pub duration: Option<f64>,
}

const BATCH: usize = 64;

/// The smallest valid reply to `req`, written into `out`; its length (0: no reply).
pub fn reply(req: &[u8], out: &mut [u8; 1500]) -> usize {
    if req.len() < 16 {
        return 0;
    }
    let action = u32::from_be_bytes(req[8..12].try_into().unwrap());
    out[4..8].copy_from_slice(&req[12..16]); // transaction id
    match action {
        0 if req[..8] == 0x41727101980u64.to_be_bytes() => {
            out[..4].copy_from_slice(&0u32.to_be_bytes());
            out[8..16].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
            16
        }
        1 if req.len() >= 98 => {
            out[..4].copy_from_slice(&1u32.to_be_bytes());
            out[8..12].copy_from_slice(&1800u32.to_be_bytes());
            out[12..20].fill(0);
            20
        }
        2 => {
            let n = ((req.len() - 16) / 20).min(74);
            out[..4].copy_from_slice(&2u32.to_be_bytes());
            out[8..8 + 12 * n].fill(0);
            8 + 12 * n
        }
        _ => 0,
    }
}

fn serve(sock: std::net::UdpSocket, stop_at: Option<std::time::Instant>) -> std::io::Result<()> {
    // Wake up now and then to check the deadline.
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    let fd = sock.as_raw_fd();
    let mut inbox = RecvBatch::new(BATCH);
    let mut outbox = SendBatch::default();
    let mut buf = [0u8; 1500];
    loop {
        if stop_at.is_some_and(|t| std::time::Instant::now() >= t) {
            return Ok(());
        }
        // Block for the first datagram, then take what else is waiting.
        let n = inbox.recv(fd, libc::MSG_WAITFORONE);
        for i in 0..n {
            let len = reply(inbox.packet(i), &mut buf);
            if len > 0 {
                outbox.push(0, Some(inbox.source(i)), |d| {
                    d.extend_from_slice(&buf[..len])
                });
            }
        }
        // A full socket buffer drops the rest, as the kernel would.
        outbox.flush(fd, |_| {});
    }
}

pub fn run(o: &FloorOpts) -> Result<(), String> {
    let stop_at = o
        .duration
        .map(|d| std::time::Instant::now() + std::time::Duration::from_secs_f64(d));
    let mut handles = Vec::new();
    for t in 0..o.threads.max(1) {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(o.listen),
            socket2::Type::DGRAM,
            None,
        )
        .map_err(|e| e.to_string())?;
        s.set_reuse_port(true).map_err(|e| e.to_string())?;
        if o.listen.is_ipv6() {
            let _ = s.set_only_v6(true);
        }
        let _ = s.set_recv_buffer_size(8 << 20);
        s.bind(&o.listen.into())
            .map_err(|e| format!("bind {}: {e}", o.listen))?;
        let cpu = o.cpus.get(t % o.cpus.len().max(1)).copied();
        handles.push(std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                crate::pin(cpu);
            }
            serve(s.into(), stop_at)
        }));
    }
    println!("floor answering on {}", o.listen);
    for h in handles {
        h.join()
            .map_err(|_| "a floor thread panicked")?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittorrent_tracker::protocol::udp::{self, Reply};

    #[test]
    fn smallest_valid_replies() {
        let mut out = [0u8; 1500];
        let mut req = Vec::new();
        udp::write_connect_request(&mut req, 7);
        let n = reply(&req, &mut out);
        assert!(matches!(
            udp::parse_reply(&out[..n]),
            Some(Reply::Connect {
                transaction_id: 7,
                ..
            })
        ));
        req.clear();
        let a = bittorrent_tracker::protocol::AnnounceRequest {
            info_hash: Default::default(),
            peer_id: Default::default(),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: Default::default(),
            numwant: None,
            key: None,
        };
        udp::write_announce_request(&mut req, 1, 8, &a, b"");
        let n = reply(&req, &mut out);
        assert!(matches!(
            udp::parse_reply(&out[..n]),
            Some(Reply::Announce {
                transaction_id: 8,
                peers: [],
                ..
            })
        ));
        req.clear();
        udp::write_scrape_request(&mut req, 1, 9, &[Default::default(), Default::default()]);
        let n = reply(&req, &mut out);
        assert!(
            matches!(udp::parse_reply(&out[..n]), Some(Reply::Scrape { transaction_id: 9, entries }) if entries.len() == 2)
        );
        assert_eq!(reply(&[0u8; 10], &mut out), 0);
        assert_eq!(reply(&[0u8; 16], &mut out), 0, "connect without the magic");
    }
}
