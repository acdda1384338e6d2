//! Command-line definitions (work in progress).
