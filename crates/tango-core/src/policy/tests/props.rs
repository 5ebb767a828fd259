//! Long-run properties, checked over random pools with proptest (fixed seed, few cases).
