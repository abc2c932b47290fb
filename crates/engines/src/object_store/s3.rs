//! s3 implementation (in progress).
