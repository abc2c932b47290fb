//! The rule that maps an Elasticsearch index name to a pool, `{project}.{pool}`:
//! shared with the Elasticsearch-compatible search, so it lives in the core crate.

pub use logpool_core::es_index::{pool_of_index, PoolName};
