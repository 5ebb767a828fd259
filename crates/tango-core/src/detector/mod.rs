//! The skew detector: observed traffic split against the configured intent.
