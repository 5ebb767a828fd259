//! The simulator: predicted traffic split of a configuration, using the real policies.
