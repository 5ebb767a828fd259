//! Health-check state: rise/fall thresholds per backend.
