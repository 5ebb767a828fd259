//! A listener's `proxy_protocol`: a connection from a trusted proxy must begin with a
//! PROXY header (v1 or v2, parsed by `tango_core::proxy_protocol`), read within
//! `first_byte_timeout` before TLS and HTTP; the address it gives replaces the peer's
//! for the whole connection. A connection from any other address, or without a valid
//! header, is refused (closed).
//!
//! The header is read with `peek` and only its own bytes are consumed, so the socket
//! goes on to TLS or HTTP untouched: while the parser says `Incomplete` every byte seen
//! belongs to the header and is consumed, and once it is complete exactly the rest of it
//! is.

use super::idle::Slot;
use std::net::SocketAddr;
use tango_core::config::Listener;
use tango_core::proxy_protocol::{self, Parsed, MAX_HEADER};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The client's address for a connection from `peer`: `peer` itself on a listener
/// without `proxy_protocol`, else the address its PROXY header gives. `None`: refused.
pub(super) async fn client(
    stream: &mut TcpStream,
    peer: SocketAddr,
    l: &Listener,
    slot: &Slot,
) -> Option<SocketAddr> {
    let Some(pp) = &l.proxy_protocol else {
        return Some(peer);
    };
    if !pp.trusts(peer.ip()) {
        tracing::debug!(%peer, "connection refused: not a trusted PROXY protocol source");
        return None;
    }
    let read = tokio::time::timeout(l.first_byte_timeout, header(stream));
    let why = tokio::select! {
        r = read => match r {
            Ok(Ok(h)) => return Some(h.source.unwrap_or(peer)),
            Ok(Err(why)) => why,
            Err(_) => "no PROXY header within first_byte_timeout".to_string(),
        },
        _ = slot.evicted() => "closed while waiting for a PROXY header, to make room".to_string(),
    };
    tracing::debug!(%peer, "connection refused: {why}");
    None
}

/// Read one header off the socket, consuming its bytes and no others.
async fn header(stream: &mut TcpStream) -> Result<proxy_protocol::Header, String> {
    let mut taken: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        let n = stream.peek(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before a whole PROXY header".into());
        }
        let n = n.min(MAX_HEADER - taken.len());
        let mut seen = taken.clone();
        seen.extend_from_slice(&buf[..n]);
        match proxy_protocol::parse(&seen).map_err(|e| e.to_string())? {
            Parsed::Complete(h, used) => {
                let rest = used - taken.len();
                stream
                    .read_exact(&mut buf[..rest])
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(h);
            }
            Parsed::Incomplete => {
                stream
                    .read_exact(&mut buf[..n])
                    .await
                    .map_err(|e| e.to_string())?;
                taken = seen;
            }
        }
    }
}
