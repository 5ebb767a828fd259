//! Journal event types: config changes, health transitions, alerts.
