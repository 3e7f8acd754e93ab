//! Steering UDP datagrams to the worker that owns their info hash, in the
//! kernel: a classic BPF program on the `SO_REUSEPORT` group picks the
//! socket by the hash at payload offset 16, so an announce (or a scrape,
//! by its first hash) lands on its owner's socket and never crosses cores.
//! What has no hash (connect, anything shorter) is left to the kernel's
//! usual spread by address and port.
//!
//! The program returns a socket's position in the group, which is the order
//! the sockets were bound in: workers bind theirs in worker order, so
//! position = worker. When the program cannot be attached, or the group
//! holds other sockets too, nothing breaks: a worker still forwards what it
//! does not own.

use std::io;
use std::os::fd::AsRawFd;

// Classic BPF opcodes (linux/filter.h; a stable ABI).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_W_LEN: u16 = 0x80; // BPF_LD | BPF_W | BPF_LEN
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const MOD_K: u16 = 0x94; // BPF_ALU | BPF_MOD | BPF_K
const RET_A: u16 = 0x16; // BPF_RET | BPF_A
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The program for `workers` sockets. It sees the UDP payload: the action
/// is the word at 8 and an info hash starts at 16; a word loads big-endian,
/// as `InfoHash::owner` reads it.
fn program(workers: u32) -> [libc::sock_filter; 9] {
    [
        op(LD_W_LEN, 0, 0, 0),     // 0: A = payload length
        op(JGE_K, 0, 6, 36),       // 1: room for a hash? on to 2, else 8
        op(LD_W_ABS, 0, 0, 8),     // 2: A = action
        op(JEQ_K, 1, 0, 1),        // 3: announce: 5, else 4
        op(JEQ_K, 0, 3, 2),        // 4: scrape: 5, else 8
        op(LD_W_ABS, 0, 0, 16),    // 5: A = the hash's first four bytes
        op(MOD_K, 0, 0, workers),  // 6: A = owner
        op(RET_A, 0, 0, 0),        // 7: that worker's socket
        op(RET_K, 0, 0, u32::MAX), // 8: out of range: the kernel's own choice
    ]
}

/// Attaches the steering program to the reuseport group of `sock` (one
/// socket of the group is enough), for `workers` sockets bound in worker
/// order.
pub(crate) fn attach(sock: &impl AsRawFd, workers: usize) -> io::Result<()> {
    let mut code = program(workers.max(1) as u32);
    let prog = libc::sock_fprog {
        len: code.len() as u16,
        filter: code.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `code`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &prog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::InfoHash;
    use socket2::{Domain, Socket, Type};
    use std::net::{SocketAddr, UdpSocket};
    use std::time::Duration;

    fn group(addr: &str, n: usize) -> Vec<UdpSocket> {
        let mut addr: SocketAddr = addr.parse().unwrap();
        let mut socks = Vec::new();
        for _ in 0..n {
            let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None).unwrap();
            s.set_reuse_port(true).unwrap();
            s.bind(&addr.into()).unwrap();
            addr = s.local_addr().unwrap().as_socket().unwrap();
            let s: UdpSocket = s.into();
            s.set_nonblocking(true).unwrap();
            socks.push(s);
        }
        socks
    }

    /// Which sockets of the group got the datagram just sent (waiting for
    /// it to arrive), and any other one.
    fn landed(socks: &[UdpSocket]) -> Vec<usize> {
        let mut buf = [0u8; 1500];
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while got.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
            for (i, s) in socks.iter().enumerate() {
                while s.recv(&mut buf).is_ok() {
                    got.push(i);
                }
            }
        }
        got
    }

    #[test]
    fn announces_and_scrapes_land_on_their_owner_and_connects_anywhere() {
        for (addr, workers) in [("127.0.0.1:0", 2), ("127.0.0.1:0", 3), ("[::1]:0", 3)] {
            let Ok(probe) = UdpSocket::bind(addr) else {
                continue; // no IPv6 on this host
            };
            drop(probe);
            let socks = group(addr, workers);
            attach(&socks[0], workers).unwrap();
            let to = socks[0].local_addr().unwrap();
            let client = UdpSocket::bind(if to.is_ipv6() {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            })
            .unwrap();
            for tag in 0u8..24 {
                let mut hash = [tag.wrapping_mul(37); 20];
                hash[3] = tag;
                let owner = InfoHash(hash).owner(workers);
                // An announce (98 bytes), then a scrape of that hash and another.
                let mut announce = vec![0u8; 98];
                announce[8..12].copy_from_slice(&1u32.to_be_bytes());
                announce[16..36].copy_from_slice(&hash);
                let mut scrape = vec![0u8; 56];
                scrape[8..12].copy_from_slice(&2u32.to_be_bytes());
                scrape[16..36].copy_from_slice(&hash);
                scrape[36..56].copy_from_slice(&[0xff; 20]);
                for packet in [&announce, &scrape] {
                    client.send_to(packet, to).unwrap();
                    assert_eq!(landed(&socks), vec![owner], "tag {tag}, {workers} workers");
                }
            }
            // A connect (16 bytes) and a runt land somewhere, never lost.
            let mut connect = [0u8; 16];
            connect[..8].copy_from_slice(&0x41727101980u64.to_be_bytes());
            for packet in [&connect[..], &connect[..3]] {
                client.send_to(packet, to).unwrap();
                assert_eq!(landed(&socks).len(), 1);
            }
        }
    }
}
