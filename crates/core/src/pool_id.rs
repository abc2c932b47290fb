//! The metadata store's number for a pool.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A pool's id: assigned by the metadata store when the pool is created and never
/// reused, so a pool created again under the same name never sees the old pool's
/// data. It names the pool wherever the name could change or repeat: in queue
/// messages, document ids, index and archive paths, and write tokens. It is the
/// store's number and nothing else: no arithmetic, and shown as that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PoolId(i64);

impl PoolId {
    /// The pool the metadata store numbered `id`.
    pub const fn new(id: i64) -> PoolId {
        PoolId(id)
    }

    /// The store's number, for the store's own columns and wire formats.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for PoolId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<PoolId, Self::Err> {
        text.parse().map(PoolId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_and_reads_as_the_stores_number() {
        let id = PoolId::new(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!("42".parse::<PoolId>(), Ok(id));
        assert!("4x".parse::<PoolId>().is_err());
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("42"));
    }

    #[test]
    fn keys_a_json_map_as_the_number() {
        let map = std::collections::BTreeMap::from([(PoolId::new(7), "a")]);
        let text = serde_json::to_string(&map).unwrap_or_default();
        assert_eq!(text, r#"{"7":"a"}"#);
        let back: std::collections::BTreeMap<PoolId, String> =
            serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back.get(&PoolId::new(7)).map(String::as_str), Some("a"));
    }
}
