//! The listening sockets: one per worker on a listener's address, joined with
//! `SO_REUSEPORT` so the kernel spreads new connections over them (after a plain bind
//! has checked that nothing else listens there), and the open-file limit, raised once,
//! that every connection counts against.

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::runtime::Handle;

/// Raise the soft open-file limit to the hard one, as servers commonly do: every client
/// and upstream connection is a descriptor, and the usual soft default (1024) is far below
/// `max_connections`. Returns the limit in force.
pub(super) fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::debug!(limit = n, "open-file limit");
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}

/// One listening socket per worker on `addr`, each registered with its worker's runtime
/// (so its accept loop must run there). With port 0 the first socket gets a port from
/// the kernel and the others join it.
///
/// `SO_REUSEPORT` would also let another process of the same user join the group and
/// quietly take a share of the connections (a second tango started with the same
/// file), so a socket without it is bound first: it fails, as binding always did, when
/// anything already listens on the address.
pub(super) fn bind_all(addr: SocketAddr, workers: &[Handle]) -> std::io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        let probe = socket_for(addr)?;
        probe.bind(addr)?;
    }
    let mut addr = addr;
    let mut out = Vec::with_capacity(workers.len());
    for worker in workers {
        let socket = socket_for(addr)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        // `listen` registers the socket with the runtime entered.
        let _entered = worker.enter();
        let listener = socket.listen(4096)?;
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

fn socket_for(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Workers;

    #[test]
    fn port_zero_binds_every_worker_to_one_port() {
        let w = Workers::start(3).unwrap();
        let socks = bind_all("127.0.0.1:0".parse().unwrap(), &w.handles()).unwrap();
        let ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), 3);
        assert!(
            ports[0] != 0 && ports.iter().all(|p| *p == ports[0]),
            "{ports:?}"
        );
    }

    #[test]
    fn an_address_something_listens_on_is_refused_even_with_reuseport() {
        let w = Workers::start(2).unwrap();
        let first = bind_all("127.0.0.1:0".parse().unwrap(), &w.handles()).unwrap();
        // A second group on the same port (a second tango with the same file).
        let taken = first[0].local_addr().unwrap();
        let e = bind_all(taken, &w.handles()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        // Something else listening there, without SO_REUSEPORT.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = bind_all(other.local_addr().unwrap(), &w.handles()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
