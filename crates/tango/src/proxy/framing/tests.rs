//! The guard as hyper sees it: an AsyncRead over an in-memory pipe. What the framer
//! judges is tested in tango-core (`http1`); here, the reading, the wait for a protocol
//! switch verdict and the header timeout.

use super::*;
use tango_core::http1::POISON;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn pair() -> (DuplexStream, FramingGuard<DuplexStream>, Arc<SwitchVerdict>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let verdict = Arc::new(SwitchVerdict::default());
    let g = FramingGuard::new(server, 64 * 1024, Duration::from_secs(5), verdict.clone());
    (client, g, verdict)
}

/// Read from the guard until `n` bytes have come, or it ends.
async fn read_n(g: &mut FramingGuard<DuplexStream>, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    while out.len() < n {
        let got = g.read(&mut buf).await.unwrap();
        if got == 0 {
            break;
        }
        out.extend_from_slice(&buf[..got]);
    }
    out
}

/// True when a read is still waiting after every other task had its turn.
async fn read_waits(g: &mut FramingGuard<DuplexStream>) -> bool {
    let mut buf = [0u8; 16];
    tokio::select! {
        biased;
        _ = g.read(&mut buf) => false,
        _ = tokio::task::yield_now() => true,
    }
}

#[tokio::test]
async fn well_framed_bytes_read_unchanged_through_small_and_direct_reads() {
    let (mut client, mut g, _) = pair();
    let mut input = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 40_000));
    input.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    let sent = input.clone();
    let writer = tokio::spawn(async move {
        for piece in sent.chunks(1000) {
            client.write_all(piece).await.unwrap();
        }
        client
    });
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while out.len() < input.len() {
        let got = g.read(&mut buf).await.unwrap();
        assert!(got > 0, "ended early at {}", out.len());
        out.extend_from_slice(&buf[..got]);
    }
    assert_eq!(out, input);
    drop(writer.await.unwrap());
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
const SMUGGLED: &[u8] =
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

#[tokio::test]
async fn after_an_upgrade_request_reading_waits_for_the_verdict() {
    let (mut client, mut g, verdict) = pair();
    client
        .write_all(&[UPGRADE, SMUGGLED].concat())
        .await
        .unwrap();
    assert_eq!(read_n(&mut g, UPGRADE.len()).await, UPGRADE);
    assert!(read_waits(&mut g).await, "nothing passes before the answer");
    // Not switched (a 200): the next request is judged, and refused.
    verdict.decide(false);
    assert_eq!(read_n(&mut g, usize::MAX).await, POISON);
}

#[tokio::test]
async fn a_101_lets_the_tunnel_through() {
    let (mut client, mut g, verdict) = pair();
    let frames = b"\x81\x85abcdefgh";
    client.write_all(&[UPGRADE, frames].concat()).await.unwrap();
    assert_eq!(read_n(&mut g, UPGRADE.len()).await, UPGRADE);
    let decider = tokio::spawn(async move {
        tokio::task::yield_now().await;
        verdict.decide(true);
    });
    // The read parked on the verdict is woken by it.
    assert_eq!(read_n(&mut g, frames.len()).await, frames);
    decider.await.unwrap();
    client.write_all(SMUGGLED).await.unwrap();
    assert_eq!(read_n(&mut g, SMUGGLED.len()).await, SMUGGLED);
}

#[tokio::test]
async fn a_head_not_complete_in_time_ends_the_connection() {
    let (mut client, server) = tokio::io::duplex(1024);
    let verdict = Arc::new(SwitchVerdict::default());
    let mut g = FramingGuard::new(server, 1024, Duration::from_millis(100), verdict);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    // The client keeps the connection open; only the header timeout can end the read.
    let read = tokio::time::timeout(Duration::from_secs(10), g.read(&mut buf)).await;
    assert_eq!(read.expect("the header timeout ends the read").unwrap(), 0);
    drop(client);
}

#[tokio::test]
async fn a_client_that_closes_mid_head_hands_hyper_nothing_of_it() {
    let (mut client, mut g, _) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /half HTTP/1.1\r\n")
        .await
        .unwrap();
    drop(client);
    assert_eq!(
        read_n(&mut g, usize::MAX).await,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    );
}
