//! The watch, live, one scenario per defect found by trying it as an operator would:
//! each incident is told once, with the cause that holds up, and its post-mortem's
//! numbers are the ones the test itself counted.
//!
//! - `typo`: a weight typo shipped by reload is one incident (one WARN line, one webhook
//!   and Alertmanager alert), named, attributed, cleared by reverting, and told the same
//!   way by the API, the log, the journal, the timeline and the post-mortem.
//! - `causes`: an ejection after a weight fix is blamed on the ejection; a slow backend
//!   beside an unrelated weight change is blamed on the backend; a weight raised step by
//!   step is named as the series; a backend failing seconds after a pool-wide reload is
//!   blamed on itself, and the reload is not rolled back.
//! - `keys`: a hash pool's weight change at a low rate is the change, not the key
//!   distribution; a hot key is named with its share and backend.
//! - `killed`: a killed backend with retries: clients saw no error and the alert says
//!   so; the incident stays open while the backend is down.
//! - `delivery`: an incident open past Alertmanager's `resolve_timeout` stays firing
//!   there.
//! - `policy`: a reload to least request raises no under-share its tuning has none of;
//!   a reload to a policy that skews the split is a shift blamed on the reload.
//! - `postmortem`: the impact of a known incident window, counted by the test, from the
//!   live API and from the journal file alike, in Markdown that parses.
//! - `onset`: a backend slow from its first request is dated from when its traffic
//!   began, and the post-mortem does not call that slow traffic the pool's normal.

mod causes;
mod delivery;
mod harness;
mod keys;
mod killed;
mod onset;
mod policy;
mod postmortem;
mod rotation;
mod typo;
