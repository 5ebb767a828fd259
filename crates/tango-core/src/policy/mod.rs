//! Balancing policies: immutable selectors built from a pool snapshot.
