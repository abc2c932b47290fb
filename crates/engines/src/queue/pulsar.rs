//! pulsar implementation (in progress).
