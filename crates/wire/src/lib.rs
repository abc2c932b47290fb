//! The JSON of the logpool HTTP API as types.
//!
//! The services answer with these types and the client decodes them, so the two
//! cannot drift apart; the OpenAPI document is generated from them. The crate
//! depends on nothing of the server (no engine, no query language): a program that
//! only talks to logpool needs nothing else.
//!
//! Fields of answers are declared in the order of their names: that is the order
//! the answers had when they were built as JSON maps, so their bytes stay the same.

pub mod alerts;
pub mod archive;
pub mod control;
pub mod dashboards;
pub mod error;
pub mod es;
pub mod es_search;
pub mod export;
pub mod health;
pub mod ingest;
pub mod openapi;
pub mod patterns;
pub mod queue;
pub mod quotas;
pub mod saved;
pub mod search;
pub mod shippers;
pub mod stats;
pub mod tail;
pub mod time;

pub use error::{ErrorBody, ErrorCode, ErrorObject};
pub use time::TimeParam;
