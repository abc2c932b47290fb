//! elasticsearch implementation (in progress).
