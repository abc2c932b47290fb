//! Write tokens: what PutDatas answers so that a later read can wait until the
//! request's records are searchable (read-your-writes).
//!
//! A token names the queue messages a request was stored in: its pool, and for
//! each batch the partition, the message position and the record count. A message
//! is indexed (and committed) as a whole, and its records' document ids come from
//! its position ([`crate::doc_id::DocIdentity`]), so "the first record of every
//! message is in the index" is exactly "the request is searchable".
//!
//! Text form: `w1.<pool id>.<partition>-<position>-<records>[.<partition>-...]`,
//! URL-safe so that it can be sent as a query parameter as it is.

use crate::pool_id::PoolId;
use std::fmt;

use crate::doc_id::DocIdentity;

/// The longest accepted token, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

const VERSION: &str = "w1";

/// One batch of a request: the message it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenBatch {
    /// Queue partition of the message.
    pub partition: u32,
    /// Position of the message in its partition.
    pub position: u64,
    /// Records in the message.
    pub records: u32,
}

impl WrittenBatch {
    /// The identity of the message's first record in `pool_id`.
    pub fn first_record(&self, pool_id: PoolId) -> DocIdentity {
        DocIdentity {
            pool_id,
            partition: self.partition,
            position: self.position,
            index_in_batch: 0,
        }
    }
}

/// Where one PutDatas request was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteToken {
    /// The pool written to.
    pub pool_id: PoolId,
    /// Its batches, one per message.
    pub batches: Vec<WrittenBatch>,
}

/// Why a text is not a write token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteTokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("is {0} bytes long, more than the limit of {MAX_TOKEN_LEN}")]
    TooLong(usize),
    /// Not made by [`WriteToken`]'s `Display`.
    #[error("is not a write token as answered by PutDatas (`write_token`)")]
    Malformed,
}

impl fmt::Display for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VERSION}.{}", self.pool_id)?;
        for batch in &self.batches {
            write!(
                f,
                ".{}-{}-{}",
                batch.partition, batch.position, batch.records
            )?;
        }
        Ok(())
    }
}

impl WriteToken {
    /// Parses the text form.
    ///
    /// # Errors
    /// [`WriteTokenError`] for a text too long or not made by `Display`.
    pub fn parse(text: &str) -> Result<WriteToken, WriteTokenError> {
        if text.len() > MAX_TOKEN_LEN {
            return Err(WriteTokenError::TooLong(text.len()));
        }
        let mut pieces = text.split('.');
        if pieces.next() != Some(VERSION) {
            return Err(WriteTokenError::Malformed);
        }
        let pool_id = pieces
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or(WriteTokenError::Malformed)?;
        let batches = pieces
            .map(|piece| {
                let mut numbers = piece.split('-');
                let batch = WrittenBatch {
                    partition: numbers.next()?.parse().ok()?,
                    position: numbers.next()?.parse().ok()?,
                    records: numbers.next()?.parse().ok()?,
                };
                numbers.next().is_none().then_some(batch)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(WriteTokenError::Malformed)?;
        Ok(WriteToken { pool_id, batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_token_reads_back_as_written() {
        let token = WriteToken {
            pool_id: PoolId::new(42),
            batches: vec![
                WrittenBatch {
                    partition: 0,
                    position: 17,
                    records: 500,
                },
                WrittenBatch {
                    partition: 3,
                    position: u64::MAX,
                    records: 1,
                },
            ],
        };
        let text = token.to_string();
        assert_eq!(text, format!("w1.42.0-17-500.3-{}-1", u64::MAX));
        assert_eq!(WriteToken::parse(&text), Ok(token));
        let empty = WriteToken {
            pool_id: PoolId::new(1),
            batches: Vec::new(),
        };
        assert_eq!(WriteToken::parse(&empty.to_string()), Ok(empty));
    }

    #[test]
    fn test_other_texts_are_refused() {
        for text in [
            "",
            "w1",
            "w2.1.0-1-1",
            "w1.x.0-1-1",
            "w1.1.0-1",
            "w1.1.0-1-1-1",
            "w1.1.0-1-1.",
            "w1.1.-1-1-1",
        ] {
            assert_eq!(
                WriteToken::parse(text),
                Err(WriteTokenError::Malformed),
                "{text:?}"
            );
        }
        let long = format!("w1.1{}", ".0-1-1".repeat(MAX_TOKEN_LEN / 6 + 1));
        assert!(matches!(
            WriteToken::parse(&long),
            Err(WriteTokenError::TooLong(_))
        ));
    }
}
