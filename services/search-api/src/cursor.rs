//! The opaque page cursor: the sort key of the last hit of a page.
//!
//! Pages continue strictly after that key, so records arriving between requests never
//! shift or repeat a page (the `search_after` model, not offsets).

use logpool_api::ApiError;
use logpool_engines::index::SortKey;

/// Encodes a sort key as 32 hex characters.
pub fn encode(key: SortKey) -> String {
    format!("{:016x}{:016x}", key.time_ns as u64, key.tiebreak)
}

/// Decodes a cursor made by [`encode`].
///
/// # Errors
/// 400 naming the `cursor` field.
pub fn decode(cursor: &str) -> Result<SortKey, ApiError> {
    let invalid = || {
        ApiError::bad_request("`cursor` is not a cursor returned by this API")
            .with_detail("field", "cursor")
    };
    if cursor.len() != 32 || !cursor.is_ascii() {
        return Err(invalid());
    }
    let time = u64::from_str_radix(&cursor[..16], 16).map_err(|_| invalid())?;
    let tiebreak = u64::from_str_radix(&cursor[16..], 16).map_err(|_| invalid())?;
    Ok(SortKey {
        time_ns: time as i64,
        tiebreak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_roundtrip_including_negative_times() {
        for key in [
            SortKey {
                time_ns: -5,
                tiebreak: 7,
            },
            SortKey {
                time_ns: i64::MAX,
                tiebreak: u64::MAX,
            },
        ] {
            assert_eq!(decode(&encode(key)).expect("decode"), key);
        }
        assert!(decode("zz").is_err());
        assert!(decode(&"g".repeat(32)).is_err());
    }
}
