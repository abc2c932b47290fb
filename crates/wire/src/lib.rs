//! The JSON of the logpool HTTP API as types.
//!
//! The services answer with these types and the client decodes them, so the two
//! cannot drift apart. The crate depends on nothing of the server (no engine, no
//! query language): a program that only talks to logpool needs nothing else.

pub mod time;

pub use time::TimeParam;
