//! Core domain of logpool: names, records, the queue batch codec, ingest parsing,
//! time expressions, routing snapshots and the query language.
//!
//! Nothing in this crate performs I/O, so every rule here is testable as a pure
//! function and shared by all services and engines.
//!
//! # Layout
//! - [`names`]: project and pool name rules.
//! - [`es_index`]: Elasticsearch index names (`{project}.{pool}`) to pools.
//! - [`record`]: a log record and its field values.
//! - [`ingest`]: parsing PutDatas bodies (JSON and NDJSON) under [`limits::IngestLimits`].
//! - [`batch`]: the binary format of one queue message (a compressed batch of records).
//! - [`timeexpr`]: `from`/`to` expressions (`now`, `-15m`, RFC 3339, epoch ms).
//! - [`routing`]: the versioned snapshot of projects and pools every service routes by.
//! - [`archive`]: archive settings, object names and the archived line format.
//! - [`doc_id`]: document identities derived from queue positions.
//! - [`field_types`]: a pool's declared field types applied to values (convert or overflow).
//! - [`typed_match`]: in-memory query evaluation under a pool's field types.
//! - [`memory`]: memory budgets in bytes per request and per tenant.
//! - [`query`]: the query language: parser, AST and in-memory evaluation.
//! - [`sql`]: pipe SQL (`<query> | SELECT ...`): planning and the final in-memory stage.
//! - [`patterns`]: log templates mined from a pool's lines, with stable ids.
//! - [`write_token`]: what PutDatas answers so that a read can wait for its records.

pub mod access;
pub mod archive;
pub mod batch;
pub mod doc_id;
pub mod es_index;
pub mod field_types;
pub mod ingest;
pub mod limits;
pub mod memory;
pub mod names;
pub mod patterns;
pub mod pool_id;
pub mod query;
pub mod record;
pub mod routing;
pub mod sql;
pub mod stable_hash;
pub mod timeexpr;
pub mod typed_match;
pub mod write_token;
