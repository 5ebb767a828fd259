//! The command line beyond `tango run`: `tango check`, the offline predictions
//! (`simulate`, `diff`), the commands that talk to a running instance or read its
//! journal (`status`, `reload`, `timeline`, `postmortem`), the demo, completions and man
//! pages, and the text tables they print.
//!
//! It may use the control plane and the data plane; neither uses it.

pub(crate) mod check;
pub(crate) mod ctl;
pub(crate) mod demo;
pub(crate) mod manual;
pub(crate) mod predict;
pub(crate) mod table;
