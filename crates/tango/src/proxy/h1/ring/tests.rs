//! The ring against real loopback sockets: what a send returns and what the peer reads.

use super::{flusher, send, start, RING};
use std::io::{ErrorKind, IoSlice, Read};
use std::net::{TcpListener, TcpStream as StdStream};
use std::os::fd::AsRawFd;

fn submits() -> u64 {
    RING.with_borrow(|r| r.as_ref().map_or(0, |r| r.submits))
}

/// A connected pair: tango's end (tokio) and the peer's (blocking std).
async fn pair() -> (tokio::net::TcpStream, StdStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = tokio::net::TcpStream::connect(l.local_addr().unwrap())
        .await
        .unwrap();
    let (peer, _) = l.accept().unwrap();
    (ours, peer)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a runtime whose thread has a ring (each test has its own thread). Where
/// the kernel gives none (the engine then sends directly, which the e2e suite covers
/// with `TANGO_IO_URING=off`), it says so and runs nothing.
fn with_ring<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    runtime().block_on(async {
        if !start() {
            eprintln!("no io_uring on this kernel (or TANGO_IO_URING=off): ring not tested");
            return;
        }
        tokio::spawn(flusher());
        f().await;
    });
}

#[test]
fn sends_of_one_turn_go_in_one_submission_and_arrive_whole() {
    with_ring(|| async {
        let (a, mut pa) = pair().await;
        let (b, mut pb) = pair().await;
        let before = submits();
        let one = send(
            a.as_raw_fd(),
            &[IoSlice::new(b"hello, "), IoSlice::new(b"a")],
        )
        .unwrap();
        let two = send(b.as_raw_fd(), &[IoSlice::new(b"hello, b")]).unwrap();
        let (r1, r2) = tokio::join!(one, two);
        assert_eq!((r1.unwrap(), r2.unwrap()), (8, 8));
        assert_eq!(submits() - before, 1, "both sends in one submission");
        let mut got = [0u8; 8];
        pa.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello, a");
        pb.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello, b");
    });
}

#[test]
fn a_send_dropped_before_its_turn_ends_still_goes_before_the_socket_closes() {
    with_ring(|| async {
        let (a, mut pa) = pair().await;
        let queued = send(a.as_raw_fd(), &[IoSlice::new(b"last words")]).unwrap();
        drop(queued);
        drop(a);
        let mut got = Vec::new();
        pa.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"last words");
    });
}

#[test]
fn a_send_to_a_full_socket_would_block_instead_of_waiting_in_the_kernel() {
    with_ring(|| async {
        let (a, _pa) = pair().await;
        // Fill the socket (the peer reads nothing) with direct sends.
        let chunk = vec![7u8; 64 * 1024];
        let mut filled = false;
        for _ in 0..10_000 {
            match a.try_write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    filled = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(filled, "the socket never filled");
        let r = send(a.as_raw_fd(), &[IoSlice::new(b"more")]).unwrap().await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn a_send_to_a_reset_peer_fails_as_a_direct_send_would() {
    with_ring(|| async {
        let (a, pa) = pair().await;
        // The peer resets the connection (linger 0) ...
        pa.set_nonblocking(true).unwrap();
        let pa = tokio::net::TcpStream::from_std(pa).unwrap();
        pa.set_zero_linger().unwrap();
        drop(pa);
        // ... which tango's end learns once the reset has arrived.
        a.readable().await.unwrap();
        let r = send(a.as_raw_fd(), &[IoSlice::new(b"anyone?")])
            .unwrap()
            .await;
        let kind = r.unwrap_err().kind();
        assert!(
            matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "{kind:?}"
        );
    });
}
