//! Read cursors: opaque, URL-safe, tamper-evident places in one shard of one pool.
//!
//! A cursor is `base64url(version ‖ position ‖ skip ‖ tag)` without padding:
//! `position` is the queue position of a message, `skip` how many of its records were
//! already read, and `tag` the first 16 bytes of an HMAC-SHA256 over those fields and
//! the scope (tenant, project, pool name, pool id, shard index) under the server's
//! cursor key. The scope is not in the token, so a cursor presented on another pool
//! or shard, or with any byte changed, fails the check and is refused; pool ids are
//! never reused, so a cursor of a deleted pool does not work on a new one of the same
//! name. The key lives in the metadata store, so cursors stay valid across restarts
//! and across every tail-ws process.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use logpool_core::pool_id::PoolId;
use logpool_engines::metadata::{MetadataError, MetadataStore};
use logpool_engines::queue::Position;
use sha2::Sha256;

/// Name of the cursor key in the metadata store's server secrets.
const CURSOR_KEY_NAME: &str = "queue-read-cursor-key-v1";
/// Format version, the first byte of every cursor.
const CURSOR_VERSION: u8 = 1;
/// Bytes of the HMAC kept in a cursor: 128 bits make forging one hopeless.
const TAG_LEN: usize = 16;
/// Version, position, skip, tag.
const CURSOR_LEN: usize = 1 + 8 + 4 + TAG_LEN;

/// What a cursor is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorScope<'a> {
    /// Owning tenant.
    pub tenant: &'a str,
    /// Owning project.
    pub project: &'a str,
    /// Pool name.
    pub pool: &'a str,
    /// Pool id (never reused).
    pub pool_id: PoolId,
    /// Shard index in the pool.
    pub shard: u32,
}

/// A place in a shard: the message at `position`, after its first `skip` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorPlace {
    /// Queue position of the next message to read (or of the message being read).
    pub position: Position,
    /// Records of that message already read.
    pub skip: u32,
}

impl CursorPlace {
    /// The start of the message at `position`.
    pub fn at(position: Position) -> CursorPlace {
        CursorPlace { position, skip: 0 }
    }
}

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor at all (bad characters, length or version).
    #[error("`cursor` is malformed: {0}")]
    Malformed(&'static str),
    /// The tag does not match: edited, or issued for another pool or shard.
    #[error("`cursor` is not a cursor of shard {shard} of pool `{pool}`: it was edited or issued for another pool or shard")]
    WrongScope {
        /// The pool it was presented on.
        pool: String,
        /// The shard it was presented on.
        shard: u32,
    },
}

/// The server's key for signing cursors (kept as a keyed HMAC, cloned per use).
#[derive(Clone)]
pub struct CursorKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// Creates a key from raw bytes.
    ///
    /// # Errors
    /// Fails for an empty key.
    pub fn from_bytes(key: &[u8]) -> Result<CursorKey, String> {
        if key.is_empty() {
            return Err("the cursor key is empty".to_string());
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map_err(|error| format!("unusable cursor key: {error}"))?;
        Ok(CursorKey { mac })
    }

    /// Loads the shared key from the metadata store, creating a random one the first
    /// time any process asks.
    ///
    /// # Errors
    /// Fails when the store cannot be reached or holds a damaged key.
    pub async fn load_or_create(metadata: &dyn MetadataStore) -> Result<CursorKey, MetadataError> {
        let candidate: [u8; 32] = rand::random();
        let stored = metadata
            .get_or_create_secret(CURSOR_KEY_NAME, &STANDARD.encode(candidate))
            .await?;
        let key = STANDARD
            .decode(stored.as_bytes())
            .map_err(|error| MetadataError::Database(format!("damaged cursor key: {error}")))?;
        CursorKey::from_bytes(&key).map_err(MetadataError::Database)
    }

    fn tag(&self, scope: &CursorScope<'_>, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        // Lengths before strings: no two different scopes feed the same bytes.
        for part in [scope.tenant, scope.project, scope.pool] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&scope.pool_id.get().to_be_bytes());
        mac.update(&scope.shard.to_be_bytes());
        mac.update(body);
        mac
    }

    /// Encodes a place as a cursor bound to `scope`.
    pub fn encode(&self, scope: &CursorScope<'_>, place: CursorPlace) -> String {
        let mut bytes = Vec::with_capacity(CURSOR_LEN);
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&place.position.to_be_bytes());
        bytes.extend_from_slice(&place.skip.to_be_bytes());
        let tag = self.tag(scope, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor presented on `scope`.
    ///
    /// # Errors
    /// [`CursorError::Malformed`] when it is not a cursor, [`CursorError::WrongScope`]
    /// when its tag does not match this scope (edited, or another pool or shard).
    pub fn decode(
        &self,
        scope: &CursorScope<'_>,
        cursor: &str,
    ) -> Result<CursorPlace, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.as_bytes())
            .map_err(|_| CursorError::Malformed("not URL-safe base64"))?;
        if bytes.len() != CURSOR_LEN {
            return Err(CursorError::Malformed("wrong length"));
        }
        let (body, tag) = bytes.split_at(CURSOR_LEN - TAG_LEN);
        if body[0] != CURSOR_VERSION {
            return Err(CursorError::Malformed("unknown version"));
        }
        self.tag(scope, body)
            .verify_truncated_left(tag)
            .map_err(|_| CursorError::WrongScope {
                pool: scope.pool.to_string(),
                shard: scope.shard,
            })?;
        let mut position = [0u8; 8];
        position.copy_from_slice(&body[1..9]);
        let mut skip = [0u8; 4];
        skip.copy_from_slice(&body[9..13]);
        Ok(CursorPlace {
            position: u64::from_be_bytes(position),
            skip: u32::from_be_bytes(skip),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pool: &str, pool_id: PoolId, shard: u32) -> CursorScope<'_> {
        CursorScope {
            tenant: "default",
            project: "shop",
            pool,
            pool_id,
            shard,
        }
    }

    #[test]
    fn test_cursor_round_trips_and_is_url_safe() {
        let key = CursorKey::from_bytes(b"test key").expect("key");
        let place = CursorPlace {
            position: (7 << 32) | 42,
            skip: 3,
        };
        let cursor = key.encode(&scope("web", PoolId::new(1), 0), place);
        assert!(cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            key.decode(&scope("web", PoolId::new(1), 0), &cursor),
            Ok(place)
        );
    }

    #[test]
    fn test_cursor_is_refused_on_another_scope_or_key() {
        let key = CursorKey::from_bytes(b"test key").expect("key");
        let cursor = key.encode(&scope("web", PoolId::new(1), 0), CursorPlace::at(5));
        for other in [
            scope("api", PoolId::new(1), 0),
            scope("web", PoolId::new(2), 0),
            scope("web", PoolId::new(1), 1),
        ] {
            assert!(matches!(
                key.decode(&other, &cursor),
                Err(CursorError::WrongScope { .. })
            ));
        }
        let other_key = CursorKey::from_bytes(b"other key").expect("key");
        assert!(other_key
            .decode(&scope("web", PoolId::new(1), 0), &cursor)
            .is_err());
        let other_tenant = CursorScope {
            tenant: "acme",
            ..scope("web", PoolId::new(1), 0)
        };
        assert!(key.decode(&other_tenant, &cursor).is_err());
    }

    #[test]
    fn test_every_edited_byte_is_detected() {
        let key = CursorKey::from_bytes(b"test key").expect("key");
        let scope = scope("web", PoolId::new(1), 0);
        let cursor = key.encode(&scope, CursorPlace::at(5));
        let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).expect("decodes");
        for index in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[index] ^= 0x01;
            let edited = URL_SAFE_NO_PAD.encode(edited);
            assert!(key.decode(&scope, &edited).is_err(), "byte {index}");
        }
        for garbage in ["", "abc", "!!!!", &cursor[..cursor.len() - 1]] {
            assert!(matches!(
                key.decode(&scope, garbage),
                Err(CursorError::Malformed(_))
            ));
        }
    }
}
