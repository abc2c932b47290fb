//! The opaque page cursor: the sort key of the last hit of a page, and the order the
//! pages go in.
//!
//! Pages continue strictly after that key, so records arriving between requests never
//! shift or repeat a page (the `search_after` model, not offsets). The order is part
//! of the cursor because "after" means the opposite in the other order: a cursor is
//! only accepted with the order it was made for.

use logpool_api::ApiError;
use logpool_engines::index::{SortKey, SortOrder};

/// The mark of an oldest-first cursor; newest-first cursors have none, so they read
/// as they always have.
const ASC_MARK: &str = "a";

/// Encodes a sort key as 32 hex characters, marked when the order is oldest first.
pub fn encode(key: SortKey, order: SortOrder) -> String {
    let mark = match order {
        SortOrder::Desc => "",
        SortOrder::Asc => ASC_MARK,
    };
    format!("{mark}{:016x}{:016x}", key.time_ns as u64, key.tiebreak)
}

/// Decodes a cursor made by [`encode`], with the order it was made for.
///
/// # Errors
/// 400 naming the `cursor` field.
pub fn decode(cursor: &str) -> Result<(SortKey, SortOrder), ApiError> {
    let invalid = || {
        ApiError::bad_request("`cursor` is not a cursor returned by this API")
            .with_detail("field", "cursor")
    };
    let (order, key) = match cursor.strip_prefix(ASC_MARK) {
        Some(key) => (SortOrder::Asc, key),
        None => (SortOrder::Desc, cursor),
    };
    if key.len() != 32 || !key.is_ascii() {
        return Err(invalid());
    }
    let time = u64::from_str_radix(&key[..16], 16).map_err(|_| invalid())?;
    let tiebreak = u64::from_str_radix(&key[16..], 16).map_err(|_| invalid())?;
    let key = SortKey {
        time_ns: time as i64,
        tiebreak,
    };
    Ok((key, order))
}

/// Decodes a cursor that must have been made for `order`.
///
/// # Errors
/// 400 naming the `cursor` field when it is malformed or was made for the other order.
pub fn decode_for(cursor: &str, order: SortOrder) -> Result<SortKey, ApiError> {
    let (key, made_for) = decode(cursor)?;
    if made_for != order {
        return Err(ApiError::bad_request(format!(
            "`cursor` continues a search with `order={}`, but this request asks for `order={}`",
            order_name(made_for),
            order_name(order)
        ))
        .with_detail("field", "cursor"));
    }
    Ok(key)
}

/// The order as the API names it.
pub fn order_name(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Desc => "desc",
        SortOrder::Asc => "asc",
    }
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
            for order in [SortOrder::Desc, SortOrder::Asc] {
                assert_eq!(decode(&encode(key, order)).expect("decode"), (key, order));
                assert_eq!(decode_for(&encode(key, order), order).expect("decode"), key);
            }
            // A cursor of one order is refused by the other, naming the field.
            let refused = decode_for(&encode(key, SortOrder::Asc), SortOrder::Desc)
                .expect_err("asc cursor used newest first");
            assert_eq!(refused.details.get("field"), Some(&"cursor".into()));
            assert!(refused.message.contains("`cursor`"), "{}", refused.message);
            assert!(decode_for(&encode(key, SortOrder::Desc), SortOrder::Asc).is_err());
        }
        assert!(decode("zz").is_err());
        assert!(decode(&"g".repeat(32)).is_err());
        assert!(decode(&format!("b{}", "0".repeat(32))).is_err());
    }
}
