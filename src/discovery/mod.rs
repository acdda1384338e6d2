//! discovery (work in progress).
