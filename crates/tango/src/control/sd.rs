//! systemd's readiness protocol for `Type=notify` units (deploy/systemd/tango.service):
//! `READY=1` once every listener and the admin API are bound, `STOPPING=1` when the
//! drain begins. Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.

use sd_notify::NotifyState;

fn notify(state: NotifyState<'_>, what: &str) {
    // `notify` does nothing without NOTIFY_SOCKET.
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!(error = %e, "could not tell systemd that tango is {what}");
    }
}

/// Listeners and the admin API are up: `systemctl start` returns, dependents start.
pub(crate) fn ready() {
    notify(NotifyState::Ready, "ready");
}

/// Shutdown has begun: connections are draining.
pub(crate) fn stopping() {
    notify(NotifyState::Stopping, "stopping");
}
