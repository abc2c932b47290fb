//! mysql implementation (in progress).
