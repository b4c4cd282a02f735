//! Loopback ports for servers the tests cannot hand a socket to (Dovecot)
//! and for addresses that must refuse connections. A port picked by
//! binding port 0 and closing the socket can be taken by another test
//! before it is used; a [`ReservedPort`] keeps it bound, not listening,
//! for as long as it lives, so no other bind to port 0 gets it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A loopback TCP port bound, and not listening, while this value lives:
/// connecting to it is refused, and a server that binds it with
/// `SO_REUSEADDR` (as Dovecot does) may still listen on it.
pub struct ReservedPort {
    _socket: OwnedFd,
    pub port: u16,
}

impl ReservedPort {
    pub fn new() -> ReservedPort {
        // SAFETY: plain socket calls on a descriptor owned here; the
        // address structures are fully initialised before use.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let one: libc::c_int = 1;
            let rc = libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "SO_REUSEADDR: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                len,
            );
            assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut bound_len = len;
            let rc = libc::getsockname(
                socket.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut bound_len,
            );
            assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
            ReservedPort {
                _socket: socket,
                port: u16::from_be(bound.sin_port),
            }
        }
    }
}

#[test]
fn a_reserved_port_refuses_connections() {
    let reserved = ReservedPort::new();
    let refused = std::net::TcpStream::connect(("127.0.0.1", reserved.port));
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}
