//! r2-bench
