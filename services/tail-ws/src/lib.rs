//! tail-ws: live tail of a pool over WebSocket.
//!
//! `GET /v1/projects/{project}/pools/{pool}/tail?query=...&start=-5m` upgrades to a
//! WebSocket and streams records as they enter the queue, before indexing, so the
//! delay is the queue's, not the index commit interval. The query is the same
//! language as search, evaluated in memory by the core crate's evaluator.
//!
//! # Layout
//! - [`tail`]: the route and the checks made before the upgrade (query, start, pool,
//!   limits), with one module per job:
//!   - `params`: parses the query string into what a tail needs;
//!   - `limits`: counts open tails per tenant and per pool;
//!   - `buffer`: the bounded per-connection buffer that drops records for a slow
//!     client instead of slowing anything else;
//!   - `pump`: reads the pool's shards (one queue reader per shard, from `start` or
//!     from now) and fills the buffer;
//!   - `session`: writes frames, pings, and closes with a code and a reason.
//! - [`metrics`]: open tails and frames and records sent or dropped, for `/metrics`.
//!
//! See `docs/api.md` ("Live tail") for the frames and the close codes.

pub mod metrics;
pub mod pull;
pub mod service;
pub mod tail;

pub use tail::limits::TailRegistry;
pub use tail::{router, TailState};
