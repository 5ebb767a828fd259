//! Why a backend is out of rotation, kept for `tango status`: the reason of the last
//! failed health probe and the cause of the last outlier ejection. Written only when a
//! probe fails or a backend is ejected, read by the admin API; the request path never
//! touches it (an ejection, rare, is the one write made from it).

use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct WhyOut(Mutex<Causes>);

#[derive(Debug, Default)]
struct Causes {
    probe: Option<String>,
    ejection: Option<String>,
}

impl WhyOut {
    /// The reason the last failed health probe gave.
    pub(crate) fn probe_failed(&self, reason: &str) {
        let mut c = self.lock();
        match &mut c.probe {
            Some(s) if s == reason => {}
            slot => *slot = Some(reason.to_string()),
        }
    }

    /// What the last ejection was for.
    pub(crate) fn ejected(&self, cause: String) {
        self.lock().ejection = Some(cause);
    }

    /// The reason to show for a backend down by its health checks (`down`) or ejected:
    /// the probe's reason first, since health checks hold it out until they pass
    /// whatever the ejection does.
    pub(crate) fn reason(&self, down: bool, ejected: bool) -> Option<String> {
        let c = self.lock();
        if down {
            c.probe.clone()
        } else if ejected {
            c.ejection.clone()
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Causes> {
        // A poisoned lock only means a writer panicked between two assignments of
        // whole values: the text is still one of them.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
