//! Passive outlier ejection: consecutive failures, backoff, max ejected percent.
