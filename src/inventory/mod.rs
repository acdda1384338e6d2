//! inventory (work in progress).
