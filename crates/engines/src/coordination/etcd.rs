//! etcd implementation (in progress).
