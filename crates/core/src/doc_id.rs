//! Document identities derived from queue positions.
//!
//! A record's identity is (pool, partition, message position, index in batch). Because
//! a redelivered message carries the same position, indexing it again replaces the
//! same documents instead of adding new ones: this is what makes at-least-once
//! delivery from the queue an exactly-once effect in the index.

/// Largest position and index in batch that [`DocIdentity::tiebreak`] holds exactly.
use crate::pool_id::PoolId;

const MAX_TIEBREAK_POSITION: u64 = 0xff_ffff_ffff;
const MAX_TIEBREAK_INDEX: u32 = 0xffff;

/// The identity of one record in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocIdentity {
    /// Pool id from the metadata store.
    pub pool_id: PoolId,
    /// Queue partition (shard) the record was produced to.
    pub partition: u32,
    /// Position of the batch message in that partition.
    pub position: u64,
    /// Index of the record inside the batch.
    pub index_in_batch: u32,
}

impl DocIdentity {
    /// Returns the document id, stable across redeliveries.
    pub fn doc_id(&self) -> String {
        // `{pool}-{partition}-{position}-{index in batch}`: the message key, then the index.
        let mut id = self.message_key();
        id.push('-');
        id.push_str(itoa::Buffer::new().format(self.index_in_batch));
        id
    }

    /// Returns a number that orders records with equal timestamps: later messages and
    /// later records in a batch sort after earlier ones. Unique within a pool as long
    /// as partitions stay below 256 and positions below 2^40.
    pub fn tiebreak(&self) -> u64 {
        (u64::from(self.partition & 0xff) << 56)
            | ((self.position & MAX_TIEBREAK_POSITION) << 16)
            | u64::from(self.index_in_batch & MAX_TIEBREAK_INDEX)
    }

    /// Returns the key of the queue message the record came from, shared by every
    /// record of that message: a redelivered message is replaced by deleting its key
    /// once, where one unique key per record would cost a term per record.
    pub fn message_key(&self) -> String {
        // Built for every indexed record: integer formatting without `format!`'s
        // machinery (1 % of the server's instructions).
        let mut digits = itoa::Buffer::new();
        let mut key = String::with_capacity(48);
        key.push_str(digits.format(self.pool_id.get()));
        key.push('-');
        key.push_str(digits.format(self.partition));
        key.push('-');
        key.push_str(digits.format(self.position));
        key
    }

    /// Whether [`DocIdentity::tiebreak`] holds the position and the index in batch
    /// exactly, so that [`DocIdentity::from_tiebreak`] gives this identity back.
    pub fn tiebreak_is_exact(&self) -> bool {
        self.position <= MAX_TIEBREAK_POSITION && self.index_in_batch <= MAX_TIEBREAK_INDEX
    }

    /// Rebuilds an identity from its pool, partition and an exact tiebreak (see
    /// [`DocIdentity::tiebreak_is_exact`]).
    pub fn from_tiebreak(pool_id: PoolId, partition: u32, tiebreak: u64) -> DocIdentity {
        DocIdentity {
            pool_id,
            partition,
            position: (tiebreak >> 16) & MAX_TIEBREAK_POSITION,
            index_in_batch: (tiebreak & u64::from(MAX_TIEBREAK_INDEX)) as u32,
        }
    }

    /// Parses a document id made by [`DocIdentity::doc_id`].
    pub fn parse(doc_id: &str) -> Option<DocIdentity> {
        let mut parts = doc_id.split('-');
        let identity = DocIdentity {
            pool_id: parts.next()?.parse().ok()?,
            partition: parts.next()?.parse().ok()?,
            position: parts.next()?.parse().ok()?,
            index_in_batch: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_doc_id_roundtrip() {
        let id = DocIdentity {
            pool_id: PoolId::new(7),
            partition: 3,
            position: 99,
            index_in_batch: 12,
        };
        assert_eq!(id.doc_id(), "7-3-99-12");
        assert_eq!(DocIdentity::parse(&id.doc_id()), Some(id));
        assert_eq!(DocIdentity::parse("7-3-99"), None);
        assert_eq!(DocIdentity::parse("7-3-99-1-2"), None);
    }

    #[test]
    fn test_identity_comes_back_from_an_exact_tiebreak() {
        let id = DocIdentity {
            pool_id: PoolId::new(7),
            partition: 300,
            position: 0xff_ffff_ffff,
            index_in_batch: 0xffff,
        };
        assert!(id.tiebreak_is_exact());
        assert_eq!(
            DocIdentity::from_tiebreak(PoolId::new(7), 300, id.tiebreak()),
            id
        );
        assert_eq!(id.message_key(), "7-300-1099511627775");
        let far = DocIdentity {
            position: 1 << 40,
            ..id
        };
        assert!(!far.tiebreak_is_exact());
        let wide = DocIdentity {
            index_in_batch: 1 << 16,
            ..id
        };
        assert!(!wide.tiebreak_is_exact());
        assert_ne!(
            DocIdentity::from_tiebreak(PoolId::new(7), 300, wide.tiebreak()),
            wide
        );
    }

    #[test]
    fn test_tiebreak_orders_by_position_then_index() {
        let a = DocIdentity {
            pool_id: PoolId::new(1),
            partition: 0,
            position: 5,
            index_in_batch: 9,
        };
        let b = DocIdentity {
            pool_id: PoolId::new(1),
            partition: 0,
            position: 6,
            index_in_batch: 0,
        };
        assert!(a.tiebreak() < b.tiebreak());
    }
}
