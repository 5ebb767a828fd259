//! A route's header edits and redirect, applied to one request: the edits compiled once
//! per configuration into what a message loses and gains ([`Edits`], [`Rules`]), their
//! values rendered per request from a few variables ([`Vars`]), and the `Location` of a
//! redirect built from the request's URL ([`write_location`]). Pure: the data plane
//! applies them to the heads it writes (`http1::codec` for HTTP/1.1, a header map for
//! hyper's requests).
//!
//! Edits apply after tango's own fields (X-Forwarded-*, X-Request-Id, Host, Date,
//! Content-Type of tango's own answers), so a rule can replace them; framing and
//! hop-by-hop fields are never edited ([`crate::config::MANAGED_HEADERS`]), whatever the rules say, so no rule
//! can change how a message is delimited.

mod edits;
mod location;
#[cfg(test)]
mod tests;

pub use edits::{host_of, render, Apply, Edits, Rules, Side, Vars};
pub use location::{write_location, NoHost, RequestUrl};
