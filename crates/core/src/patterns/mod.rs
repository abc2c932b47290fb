//! Log patterns: the templates of a pool's lines, mined while they stream in.
//!
//! - [`mask`]: tokens, and which of them are variables (no per-source rules).
//! - [`miner`]: the per-pool streaming miner, its stable ids, merges and cap.
//! - [`accuracy`]: Loghub's grouping accuracy, to measure the miner.

pub mod accuracy;
pub mod mask;
pub mod miner;

pub use miner::{overflow_pattern_id, MinerConfig, Pattern, PatternId, PatternMiner};

/// The record field that carries a record's pattern id.
pub const PATTERN_FIELD: &str = "_pattern";
