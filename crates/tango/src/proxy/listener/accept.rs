//! A listener's accept loop, one per worker: it admits each connection under the
//! listener's `max_connections` (answering `503` when nothing idle can make room),
//! serves it on this worker or moves it to the emptiest (`spread`), and stops when its
//! listener is removed or hands its sockets to loops in another TLS mode, or at shutdown.

use crate::proxy::conn::{connection, Accepted, Admitted, Shared};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::Listener;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Every connection one worker accepts for one listener, until the listener stops or
/// tango shuts down. `settings` are the listener's, as the configuration in force
/// gives them; `None` stops the loop.
pub(super) async fn accept_loop(
    ctx: Arc<Shared>,
    socket: Arc<TcpListener>,
    mut settings: watch::Receiver<Option<Arc<Listener>>>,
) {
    let worker = crate::worker::id();
    let mut shutdown = ctx.shutdown.subscribe();
    let Some(mut lcfg) = settings.borrow_and_update().clone() else {
        return;
    };
    loop {
        // Biased, settings first: once a reload has handed the listener new settings
        // (or stopped this loop, its sockets gone to loops in another TLS mode), no
        // connection is accepted under the old ones.
        let (stream, peer) = tokio::select! {
            biased;
            changed = settings.changed() => {
                match changed.ok().and_then(|()| settings.borrow_and_update().clone()) {
                    Some(l) => {
                        lcfg = l;
                        continue;
                    }
                    None => break,
                }
            },
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %lcfg.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At the cap, the connection idle longest is closed to make room; only when none
        // is idle is the newcomer refused.
        let Some(slot) = ctx.conns.admit(lcfg.max_connections) else {
            tokio::spawn(refuse(stream, ctx.tls.is_some()));
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The address the client reached, for PROXY headers to backends: asked of the
        // socket only when a pool sends them (a system call other connections skip).
        let local = match ctx.rt.current().sends_proxy {
            true => stream.local_addr().unwrap_or(lcfg.listen),
            false => lcfg.listen,
        };
        let open = Admitted::new(ctx.clone(), slot);
        let placed = ctx.spread.place(worker);
        tracing::debug!(listener = %lcfg.name, worker, serves = placed.worker, %peer, "accepted");
        let to = ctx.workers[placed.worker].clone();
        let stream = match placed.worker == worker {
            true => stream,
            false => match move_to(&to, stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = %lcfg.name, error = %e, "could not move a connection to another worker");
                    // Dropping `open` gives its place back.
                    continue;
                }
            },
        };
        let a = Accepted {
            open,
            stream,
            peer,
            local,
            lcfg: lcfg.clone(),
            placed,
        };
        to.spawn(connection(a));
    }
    if ctx.shutdown.is_draining() {
        // Engine connections waiting for a request close now; busy ones after their
        // response.
        ctx.conns.wake_all();
    } else {
        // Removed by a reload: its connections drain as at shutdown (idle ones close
        // now, busy ones after their response), since nothing else would end a
        // keep-alive connection to an address no longer served, nor wake an idle one
        // when shutdown begins.
        ctx.conns.stop();
    }
    tracing::debug!(listener = %lcfg.name, worker, "accept loop stopped");
}

/// A socket this worker accepted, registered with the poller of the worker `to`
/// instead (a connection goes to the worker with the fewest, see `spread`).
fn move_to(to: &Handle, stream: TcpStream) -> std::io::Result<TcpStream> {
    // In the other worker's runtime, `from_std` registers with its poller.
    let _there = to.enter();
    stream.into_std().and_then(TcpStream::from_std)
}

/// Over the connection limit: answer at once and close, never leave the client hanging.
async fn refuse(mut stream: TcpStream, tls: bool) {
    if !tls {
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n")
            .await;
    }
    let _ = stream.shutdown().await;
}
