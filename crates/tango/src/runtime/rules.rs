//! A route's header edits as a snapshot keeps them, compiled once when it is built: for
//! the engine's head writers (names as text), and for hyper's header maps (names
//! parsed into `HeaderName`s, so a request parses none).

use http::HeaderName;
use tango_core::config::Route;
use tango_core::rewrite::{Edits, Rules};

/// One route's edits, both ways.
pub(crate) struct RouteRules {
    /// For the engine (`tango_core::http1::codec`'s writers).
    pub(crate) wire: Rules,
    /// The request's edits for a header map.
    pub(crate) request_map: Edits<HeaderName>,
    /// The response's edits for a header map.
    pub(crate) response_map: Edits<HeaderName>,
}

impl RouteRules {
    /// Compile `route`'s edits.
    pub(crate) fn of(route: &Route) -> RouteRules {
        let wire = Rules::compile(&route.headers);
        // Validated names are lower-case tokens: every one parses.
        let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).ok();
        RouteRules {
            request_map: wire.request.map_names(name),
            response_map: wire.response.map_names(name),
            wire,
        }
    }

    /// Whether the route edits no header.
    pub(crate) fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }
}
