//! A tunnel's bytes both ways, after a `101` to an upgrade or a `2xx` to CONNECT, the
//! same on every client path: the engine's socket, and the connection (TLS HTTP/1.1)
//! or HTTP/2 stream hyper hands over. A half-close is passed on (each side's end of
//! stream shuts the other's writes, and the rest still flows back), and the tunnel is
//! over when both sides have ended or either fails.
//!
//! Shutdown ends it at once, on every path alike: a WebSocket may stay open for hours,
//! so one that waited for its peers to close would hold the drain for the whole grace
//! period. A reload leaves it alone: it keeps the backend connection it has, whatever
//! the new configuration says.

use super::shutdown::Shutdown;
use tokio::io::{AsyncRead, AsyncWrite};

/// Bytes both ways between `client` and `upstream` until the tunnel is over, or
/// shutdown begins.
pub(crate) async fn relay<C, U>(client: &mut C, upstream: &mut U, shutdown: &Shutdown)
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut stop = shutdown.subscribe();
    tokio::select! {
        r = tokio::io::copy_bidirectional(client, upstream) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "tunnel ended");
            }
        }
        // Tells at once when shutdown began before the tunnel opened.
        _ = stop.wait_for(|s| *s) => tracing::debug!("tunnel closed: shutting down"),
    }
}
