//! The sockets: the port settled once without `SO_REUSEPORT` (so a port
//! another process holds is an error, not a shared port), then one set per
//! worker with it.

use super::error::StartError;
use super::logging::log;
use super::start::Sockets;
use crate::config::{LogLevel, ServerConfig};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

pub(super) fn socket(addr: SocketAddr, proto: Proto, reuse_port: bool) -> io::Result<Socket> {
    let (ty, p) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(p))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    match proto {
        Proto::Tcp => s.set_reuse_address(true)?,
        Proto::Udp => {
            // Best effort: the kernel caps these at net.core.{r,w}mem_max
            // (tuning.md), unless the tracker may go past it (root, or
            // CAP_NET_ADMIN, when it binds). The receive buffer holds what
            // comes while a worker is busy, and while an upgrade hands over.
            if !force_recv_buffer(&s, 16 << 20) {
                let _ = s.set_recv_buffer_size(16 << 20);
            }
            let _ = s.set_send_buffer_size(8 << 20);
        }
    }
    s.bind(&addr.into())?;
    if proto == Proto::Tcp {
        s.listen(4096)?;
    }
    Ok(s)
}

/// IPv4 replies up to this size go out with Don't Fragment set: the least
/// MTU of any path today (the one IPv6 demands; tunnels keep to it).
const DONT_FRAGMENT_UP_TO: usize = 1280;

/// Whether a worker's IPv4 UDP socket sends with Don't Fragment set,
/// whatever path MTU the kernel has cached (`IP_PMTUDISC_PROBE`): when no
/// reply the configuration allows can be larger than
/// [`DONT_FRAGMENT_UP_TO`]. A datagram with DF needs no identification
/// (RFC 6864), so the kernel leaves out the shared, hashed counter it
/// takes for every other one: 3% of a worker's time under UDP load. With
/// the default limits the largest reply is a 74-hash scrape, 896 bytes.
/// Otherwise the kernel's default (`IP_PMTUDISC_WANT`), also for a socket
/// a previous process set.
pub(super) fn udp4_dont_fragment(s: &impl std::os::fd::AsRawFd, cfg: &ServerConfig) {
    let largest = crate::protocol::udp::largest_reply_v4(cfg.max_numwant);
    let v: libc::c_int = if largest <= DONT_FRAGMENT_UP_TO {
        libc::IP_PMTUDISC_PROBE
    } else {
        libc::IP_PMTUDISC_WANT
    };
    set_int_option(s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v);
}

/// Sets `SO_RCVBUFFORCE` (past `net.core.rmem_max`); false when not permitted.
fn force_recv_buffer(s: &Socket, bytes: libc::c_int) -> bool {
    set_int_option(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
}

/// `setsockopt` with an int value; false when the kernel refuses it.
fn set_int_option(
    s: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> bool {
    // SAFETY: the option value is a c_int that outlives the call, and its
    // size is passed with it.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

fn is_no_ipv6(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(97 /* EAFNOSUPPORT */)
}

/// Where a worker keeps its socket of `proto` for one address family.
pub(super) fn place(s: &mut Sockets, proto: Proto, v6: bool) -> &mut Option<Socket> {
    match (proto, v6) {
        (Proto::Udp, false) => &mut s.udp4,
        (Proto::Udp, true) => &mut s.udp6,
        (Proto::Tcp, false) => &mut s.tcp4,
        (Proto::Tcp, true) => &mut s.tcp6,
    }
}

pub(super) struct Bound {
    pub port: u16,
    pub endpoints: Vec<(Proto, SocketAddr)>,
}

/// Settles the port and the endpoints: each is bound once without
/// `SO_REUSEPORT`, so that a port another process (or another copy of this
/// tracker) holds is an error instead of a silently shared port.
pub(super) fn probe(cfg: &ServerConfig) -> Result<Bound, StartError> {
    let mut ips: Vec<IpAddr> = Vec::new();
    ips.extend(cfg.listen_v4.map(IpAddr::V4));
    ips.extend(cfg.listen_v6.map(IpAddr::V6));
    let mut protos = Vec::new();
    if cfg.http || cfg.ws {
        protos.push(Proto::Tcp);
    }
    if cfg.udp {
        protos.push(Proto::Udp);
    }
    let tries = if cfg.port == 0 { 32 } else { 1 };
    'attempt: for attempt in 0..tries {
        let mut port = cfg.port;
        let mut held = Vec::new();
        let mut endpoints = Vec::new();
        for &ip in &ips {
            for &proto in &protos {
                let addr = SocketAddr::new(ip, port);
                match socket(addr, proto, false) {
                    Ok(s) => {
                        if port == 0 {
                            port = s
                                .local_addr()
                                .ok()
                                .and_then(|a| a.as_socket())
                                .map_or(0, |a| a.port());
                        }
                        held.push(s);
                        endpoints.push((proto, SocketAddr::new(ip, port)));
                    }
                    Err(e) if ip.is_ipv6() && !cfg.require_v6 && is_no_ipv6(&e) => {
                        log(
                            cfg,
                            LogLevel::Warnings,
                            format_args!("no IPv6 on this host ({e}); serving IPv4 only"),
                        );
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        if cfg.port == 0 && attempt + 1 < tries {
                            continue 'attempt;
                        }
                        return Err(StartError::PortInUse {
                            proto: proto.name(),
                            addr,
                        });
                    }
                    Err(error) => {
                        return Err(StartError::Bind {
                            proto: proto.name(),
                            addr,
                            error,
                        })
                    }
                }
            }
        }
        if endpoints.is_empty() {
            break;
        }
        drop(held);
        return Ok(Bound { port, endpoints });
    }
    Err(StartError::Worker("no endpoint could be bound".into()))
}

pub(super) fn bind_workers(bound: &Bound, workers: usize) -> Result<Vec<Sockets>, StartError> {
    (0..workers)
        .map(|_| {
            let mut s = Sockets::default();
            for &(proto, addr) in &bound.endpoints {
                let sock = socket(addr, proto, true).map_err(|error| match error.kind() {
                    io::ErrorKind::AddrInUse => StartError::PortInUse {
                        proto: proto.name(),
                        addr,
                    },
                    _ => StartError::Bind {
                        proto: proto.name(),
                        addr,
                        error,
                    },
                })?;
                *place(&mut s, proto, addr.is_ipv6()) = Some(sock);
            }
            Ok(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pmtu_discovery(s: &Socket) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on a socket we own, into an int.
        let r = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(s),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                &mut v as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v
    }

    #[test]
    fn ipv4_replies_go_out_unfragmentable_only_while_every_reply_fits() {
        let s = socket("127.0.0.1:0".parse().unwrap(), Proto::Udp, true).unwrap();
        let mut cfg = ServerConfig::default();
        udp4_dont_fragment(&s, &cfg);
        assert_eq!(pmtu_discovery(&s), libc::IP_PMTUDISC_PROBE);
        // 300 peers make a 1,820-byte reply (cut to 1,452): back to the default.
        cfg.max_numwant = 300;
        udp4_dont_fragment(&s, &cfg);
        assert_eq!(pmtu_discovery(&s), libc::IP_PMTUDISC_WANT);
    }
}
