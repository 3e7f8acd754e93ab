//! Batched datagram I/O: many packets per system call (recvmmsg, sendmmsg),
//! for the tracker's UDP front, the load generator and its floor responder.

use std::os::fd::RawFd;

/// Largest datagram handled.
pub const MTU: usize = 1500;

/// Buffers for receiving up to `n` datagrams in one call.
pub struct RecvBatch {
    bufs: Vec<[u8; MTU]>,
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    len: usize,
}

impl RecvBatch {
    pub fn new(n: usize) -> RecvBatch {
        let mut b = RecvBatch {
            bufs: vec![[0u8; MTU]; n],
            // SAFETY: sockaddr_storage is plain data; all-zero is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            iov: Vec::with_capacity(n),
            // SAFETY: mmsghdr is plain data (null pointers, zero lengths).
            msgs: vec![unsafe { std::mem::zeroed() }; n],
            len: 0,
        };
        // The heap buffers never move after this: the pointers stay good.
        for i in 0..n {
            b.iov.push(libc::iovec {
                iov_base: b.bufs[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: MTU,
            });
        }
        for i in 0..n {
            b.msgs[i].msg_hdr.msg_iov = &mut b.iov[i];
            b.msgs[i].msg_hdr.msg_iovlen = 1;
            b.msgs[i].msg_hdr.msg_name = &mut b.addrs[i] as *mut _ as *mut libc::c_void;
        }
        b
    }

    /// Receives what `recvmmsg` gives with `flags` (`MSG_DONTWAIT`,
    /// `MSG_WAITFORONE`, ...); returns how many datagrams (0 on none or error).
    pub fn recv(&mut self, fd: RawFd, flags: i32) -> usize {
        for m in &mut self.msgs {
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        }
        // SAFETY: every mmsghdr points at buffers owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                self.msgs.len() as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        self.len = n.max(0) as usize;
        self.len
    }

    /// The `i`-th datagram of the last receive.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.msgs[i].msg_len as usize]
    }

    /// The sender of the `i`-th datagram, raw (to send a reply to).
    pub fn source(&self, i: usize) -> (libc::sockaddr_storage, libc::socklen_t) {
        (self.addrs[i], self.msgs[i].msg_hdr.msg_namelen)
    }

    /// The sender of the `i`-th datagram.
    pub fn source_addr(&self, i: usize) -> Option<std::net::SocketAddr> {
        let (storage, len) = self.source(i);
        // SAFETY: the kernel filled `storage` with an address of `len` bytes.
        unsafe { socket2::SockAddr::new(storage, len) }.as_socket()
    }
}

/// Packets gathered to go out in one `sendmmsg`, each with a tag (the
/// caller's id for it) and, on unconnected sockets, its destination.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    ends: Vec<usize>,
    tags: Vec<u32>,
    dests: Vec<Option<(libc::sockaddr_storage, libc::socklen_t)>>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl SendBatch {
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds a packet written by `write` into the batch's buffer.
    pub fn push(
        &mut self,
        tag: u32,
        dest: Option<(libc::sockaddr_storage, libc::socklen_t)>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        write(&mut self.data);
        self.ends.push(self.data.len());
        self.tags.push(tag);
        self.dests.push(dest);
    }

    /// Sends every packet; calls `unsent` with the tag of each one the socket
    /// would not take (a full buffer), then empties the batch.
    pub fn flush(&mut self, fd: RawFd, mut unsent: impl FnMut(u32)) {
        let n = self.ends.len();
        self.iov.clear();
        self.msgs.clear();
        let mut start = 0;
        for i in 0..n {
            self.iov.push(libc::iovec {
                iov_base: self.data[start..].as_mut_ptr() as *mut libc::c_void,
                iov_len: self.ends[i] - start,
            });
            start = self.ends[i];
        }
        for i in 0..n {
            // SAFETY: mmsghdr is plain data; all-zero is valid.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = &mut self.iov[i];
            m.msg_hdr.msg_iovlen = 1;
            if let Some((addr, len)) = &mut self.dests[i] {
                m.msg_hdr.msg_name = addr as *mut _ as *mut libc::c_void;
                m.msg_hdr.msg_namelen = *len;
            }
            self.msgs.push(m);
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: the headers point into self.iov, self.data and self.dests, unchanged until we return.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs.as_mut_ptr().add(sent),
                    (n - sent) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
        for &tag in &self.tags[sent..] {
            unsent(tag);
        }
        self.data.clear();
        self.ends.clear();
        self.tags.clear();
        self.dests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batches_go_out_and_come_in_whole() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        let mut out = SendBatch::default();
        for i in 0..10u8 {
            out.push(i as u32, None, |d| {
                d.extend_from_slice(&vec![i; 1 + i as usize])
            });
        }
        let mut lost = Vec::new();
        out.flush(a.as_raw_fd(), |t| lost.push(t));
        assert!(lost.is_empty() && out.is_empty());
        let mut inb = RecvBatch::new(16);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = inb.recv(b.as_raw_fd(), libc::MSG_DONTWAIT);
        assert_eq!(n, 10);
        for i in 0..10 {
            assert_eq!(inb.packet(i), &vec![i as u8; 1 + i][..]);
        }
        // The sender's address comes back for a reply on an unconnected socket.
        let (addr, len) = inb.source(0);
        let mut back = SendBatch::default();
        back.push(0, Some((addr, len)), |d| d.extend_from_slice(b"pong"));
        back.flush(b.as_raw_fd(), |_| panic!("sent"));
        let mut buf = [0u8; 8];
        a.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 4);
        assert_eq!(inb.recv(b.as_raw_fd(), libc::MSG_DONTWAIT), 0);
    }
}
