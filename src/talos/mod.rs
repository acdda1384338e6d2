//! talos (work in progress).
