//! The body tango sends back to clients (what it sends upstream is `upstream::UpBody`).
//!
//! Bodies stream frame by frame; nothing is buffered whole. The response body also
//! carries the upstream connection (returned to its pool once the body ends) and the
//! in-flight guard (released when the client has the whole response or goes away).

use crate::runtime::InFlight;
use crate::upstream::Pooled;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The body of a response sent to a client.
pub(crate) enum ProxyBody {
    Upstream {
        body: Incoming,
        conn: Option<Pooled>,
        _guard: Option<InFlight>,
    },
    Full(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn text(s: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(s.into()))
    }

    pub(crate) fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream { body, conn, _guard } => {
                let r = Pin::new(&mut *body).poll_frame(cx);
                // The whole response was read (hyper may not poll again once the body
                // says it has ended): the connection can serve another request.
                let ended = match &r {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    _ => false,
                };
                if ended {
                    if let Some(c) = conn.take() {
                        c.release();
                    }
                }
                r
            }
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}
