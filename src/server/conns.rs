//! A worker's open TCP connections: each one's descriptor, whether it is a
//! WebSocket, and until when it may wait for its client.
//!
//! A connection waiting to read has a deadline in tracker seconds: the
//! idle timeout between requests, the request timeout once a request has
//! begun. Once a second the worker's tick shuts for reading those whose
//! deadline has passed, so the pending read ends with the end of the stream
//! and the connection closes. That replaces a timer per read in the
//! executor (a sorted map insert and remove, and a clock read, for every
//! request), whose cost grew with the number of open connections.
//!
//! A hand-over shuts them all the same way (see `handover`).

use std::cell::RefCell;
use std::os::fd::RawFd;

/// No deadline: the connection is not waiting for its client.
const NONE: u32 = u32::MAX;

struct Entry {
    fd: RawFd,
    websocket: bool,
    deadline: u32,
}

#[derive(Default)]
pub(crate) struct Conns {
    table: RefCell<slab::Slab<Entry>>,
}

impl Conns {
    /// A connection on descriptor `fd` opened; its key, to leave with.
    pub fn enter(&self, fd: RawFd) -> usize {
        self.table.borrow_mut().insert(Entry {
            fd,
            websocket: false,
            deadline: NONE,
        })
    }

    /// The connection `key` closed (its socket is closed after this).
    pub fn leave(&self, key: usize) {
        self.table.borrow_mut().try_remove(key);
    }

    /// The connection `key` became a WebSocket, which keeps its own time.
    pub fn websocket(&self, key: usize) {
        if let Some(c) = self.table.borrow_mut().get_mut(key) {
            c.websocket = true;
            c.deadline = NONE;
        }
    }

    /// The connection `key` waits for its client until tracker second `at`
    /// (`None`: it is not waiting).
    #[inline]
    pub fn wait_until(&self, key: usize, at: Option<u32>) {
        if let Some(c) = self.table.borrow_mut().get_mut(key) {
            c.deadline = at.unwrap_or(NONE);
        }
    }

    pub fn len(&self) -> usize {
        self.table.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.borrow().is_empty()
    }

    /// Shuts for reading the connections whose deadline is `now` or
    /// earlier; how many.
    pub fn shut_overdue(&self, now: u32) -> usize {
        let mut shut = 0;
        for (_, c) in self.table.borrow_mut().iter_mut() {
            if c.deadline <= now {
                shut_read(c.fd);
                c.deadline = NONE;
                shut += 1;
            }
        }
        shut
    }

    /// Shuts the open connections (only the WebSocket ones, or all) down
    /// for reading: a pending read ends with what was sent before, then
    /// the end of the stream, and the connection closes.
    pub fn shut_reads(&self, websockets_only: bool) {
        for (_, c) in self.table.borrow().iter() {
            if c.websocket || !websockets_only {
                shut_read(c.fd);
            }
        }
    }
}

fn shut_read(fd: RawFd) {
    // SAFETY: `fd` is an open connection's socket: the entry leaves the
    // table before the connection's socket is closed.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn connections_are_counted_and_marked() {
        let c = Conns::default();
        let a = c.enter(100);
        let b = c.enter(101);
        c.websocket(b);
        assert_eq!(c.len(), 2);
        assert!(c.table.borrow()[b].websocket);
        assert!(!c.table.borrow()[a].websocket);
        c.leave(a);
        c.leave(a);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn only_overdue_connections_are_shut() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap())
            .collect();
        let mut served: Vec<_> = (0..3).map(|_| l.accept().unwrap().0).collect();
        let c = Conns::default();
        let keys: Vec<usize> = served.iter().map(|s| c.enter(s.as_raw_fd())).collect();
        c.wait_until(keys[0], Some(10));
        c.wait_until(keys[1], Some(11));
        c.wait_until(keys[2], Some(10));
        c.wait_until(keys[2], None); // read what it waited for
        assert_eq!(c.shut_overdue(9), 0);
        assert_eq!(c.shut_overdue(10), 1);
        assert_eq!(c.shut_overdue(10), 0, "shut once");
        // The one shut reads the end of its stream; the others would wait.
        let mut b = [0u8; 1];
        assert_eq!(served[0].read(&mut b).unwrap(), 0);
        for s in &served[1..] {
            s.set_nonblocking(true).unwrap();
        }
        assert!(served[1].read(&mut b).is_err());
        assert!(served[2].read(&mut b).is_err());
        assert_eq!(c.shut_overdue(u32::MAX - 1), 1);
        assert_eq!(served[1].read(&mut b).unwrap(), 0);
        drop(clients);
    }
}
