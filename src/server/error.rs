//! Why a server did not start.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why the server did not start. Each says what to do about it.
#[derive(Debug)]
pub enum StartError {
    /// The port is taken (by this tracker or another program).
    PortInUse {
        proto: &'static str,
        addr: SocketAddr,
    },
    /// Binding failed otherwise.
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        error: io::Error,
    },
    /// No io_uring executor could be made.
    Runtime(String),
    /// A worker did not come up.
    Worker(String),
    /// The configuration cannot work, or a file it names cannot be used
    /// (allow or deny list, TLS certificate or key, state file).
    Config(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::PortInUse { proto, addr } => write!(
                f,
                "cannot listen on {addr} ({proto}): the port is in use; stop what holds it or pick another with -p"
            ),
            StartError::Bind { proto, addr, error } => {
                write!(f, "cannot listen on {addr} ({proto}): {error}")
            }
            StartError::Runtime(e) => write!(
                f,
                "cannot start an io_uring executor ({e}): this needs Linux 5.8 or later with io_uring allowed \
                 (sysctl kernel.io_uring_disabled=0; containers: a seccomp profile that permits io_uring) and, \
                 before Linux 5.12, a locked-memory limit of 16 MiB or more per worker (ulimit -l, systemd \
                 LimitMEMLOCK); see tuning.md"
            ),
            StartError::Worker(e) => write!(f, "a worker failed to start: {e}"),
            StartError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}
