//! output (work in progress).
