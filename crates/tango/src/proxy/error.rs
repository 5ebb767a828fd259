//! Proxy errors: who caused them, whether a retry may help, and the one mapping from
//! error to the status code and short body the client sees.

use http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("the request body did not arrive in time")]
    ClientTimeout,
    #[error("no route for this host and path")]
    NoRoute,
    #[error("the request lacks the value the pool hashes on")]
    MissingKey,
    #[error("no backend is available")]
    NoneEligible,
    #[error("every backend is at its connection or request limit")]
    AtCapacity,
    #[error("could not connect to the backend")]
    Connect,
    #[error("the backend closed the connection or reset it")]
    Reset,
    #[error("the backend did not answer in time")]
    Timeout,
    /// The backend answered, but its response cannot be forwarded: its head is
    /// malformed or unexpected (a `101` the request did not ask for), or its chunked
    /// body's framing broke before anything of it was sent.
    #[error("the backend's response was malformed")]
    BadResponse,
    /// A request tango does not carry where it would go (CONNECT to a backend that
    /// speaks HTTP/2): not the client's mistake, nor the backend's failure.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
}

/// CONNECT towards a backend that speaks HTTP/2, on every client path.
pub(crate) const CONNECT_TO_H2: ProxyError =
    ProxyError::NotImplemented("tango does not carry CONNECT to a backend that speaks HTTP/2");

impl ProxyError {
    pub(crate) fn blame(&self) -> Blame {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::ClientTimeout
            | ProxyError::MissingKey
            | ProxyError::NoRoute => Blame::Client,
            ProxyError::Connect
            | ProxyError::Reset
            | ProxyError::Timeout
            | ProxyError::BadResponse => Blame::Upstream,
            ProxyError::NoneEligible | ProxyError::AtCapacity | ProxyError::NotImplemented(_) => {
                Blame::Internal
            }
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::MissingKey => StatusCode::BAD_REQUEST,
            ProxyError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoneEligible | ProxyError::AtCapacity => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect | ProxyError::Reset | ProxyError::BadResponse => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The request was refused as it stands, and the connection closes after the
    /// answer: what the client sent after it cannot be trusted to be its next request
    /// (after a refused CONNECT, it may be the tunnel's first bytes).
    pub(crate) fn refuses(&self) -> bool {
        matches!(
            self,
            ProxyError::BadRequest(_) | ProxyError::NotImplemented(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_has_its_status() {
        assert_eq!(ProxyError::Connect.status(), 502);
        assert_eq!(ProxyError::Reset.status(), 502);
        assert_eq!(ProxyError::BadResponse.status(), 502);
        assert_eq!(ProxyError::BadResponse.blame(), Blame::Upstream);
        assert_eq!(ProxyError::Timeout.status(), 504);
        assert_eq!(ProxyError::NoneEligible.status(), 503);
        assert_eq!(ProxyError::BadRequest("x").status(), 400);
        assert_eq!(ProxyError::Timeout.blame(), Blame::Upstream);
        assert_eq!(ProxyError::ClientTimeout.status(), 408);
        assert_eq!(ProxyError::ClientTimeout.blame(), Blame::Client);
        assert_eq!(CONNECT_TO_H2.status(), 501);
        assert_eq!(CONNECT_TO_H2.blame(), Blame::Internal);
        assert!(CONNECT_TO_H2.refuses() && ProxyError::BadRequest("x").refuses());
        assert!(!ProxyError::MissingKey.refuses());
    }
}
