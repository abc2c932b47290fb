//! `_bulk` requests: NDJSON bodies capped in size, and the reading of every item.
//!
//! A bulk answer is HTTP 200 even when items failed, so each item's status decides:
//!
//! | item status | meaning | what happens |
//! |---|---|---|
//! | 200, 201 | indexed | done |
//! | 409 | a document with this id exists: a redelivery of what is already indexed | done |
//! | 429, 5xx, 404 (index deleted meanwhile) | the cluster cannot take it now | retried with backoff |
//! | other 4xx | refused for good (mapping conflict, field limit) | [`RejectedDoc`](crate::index::RejectedDoc), dead letter |

use serde::Deserialize;
use serde_json::Value;

/// One document ready for `_bulk`: the action line and the source line.
#[derive(Debug, Clone)]
pub(crate) struct BulkLine {
    /// Position of the document in the caller's batch.
    pub(crate) doc_index: usize,
    /// The target index.
    pub(crate) index: String,
    /// `{"create":…}\n{source}\n`.
    pub(crate) ndjson: Vec<u8>,
}

impl BulkLine {
    /// Serialises one `create` with an explicit id: a second `create` of the same id
    /// answers 409 instead of writing a second copy.
    pub(crate) fn create(
        doc_index: usize,
        index: String,
        id: &str,
        source: &Value,
    ) -> Result<BulkLine, String> {
        let action = serde_json::json!({"create": {"_index": index, "_id": id}});
        let mut ndjson = serde_json::to_vec(&action).map_err(|e| e.to_string())?;
        ndjson.push(b'\n');
        serde_json::to_writer(&mut ndjson, source).map_err(|e| e.to_string())?;
        ndjson.push(b'\n');
        Ok(BulkLine {
            doc_index,
            index,
            ndjson,
        })
    }
}

/// Splits lines into request bodies of at most `max_bytes` (a line larger than that
/// goes alone). Returns, per body, the lines' positions in `lines` and the body.
pub(crate) fn chunk(lines: &[&BulkLine], max_bytes: usize) -> Vec<(Vec<usize>, Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut members = Vec::new();
    let mut body = Vec::new();
    for (position, line) in lines.iter().enumerate() {
        if !body.is_empty() && body.len() + line.ndjson.len() > max_bytes {
            chunks.push((std::mem::take(&mut members), std::mem::take(&mut body)));
        }
        members.push(position);
        body.extend_from_slice(&line.ndjson);
    }
    if !body.is_empty() {
        chunks.push((members, body));
    }
    chunks
}

/// What one item's answer means for its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemOutcome {
    /// Indexed now or before.
    Indexed,
    /// Try again later.
    Retry(String),
    /// Refused for good.
    Rejected(String),
}

#[derive(Debug, Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<serde_json::Map<String, Value>>,
}

/// Reads a bulk answer; there must be one item per line sent, in order.
pub(crate) fn parse_response(body: &[u8], expected: usize) -> Result<Vec<ItemOutcome>, String> {
    let response: BulkResponse = serde_json::from_slice(body)
        .map_err(|e| format!("bulk answer is not the expected JSON: {e}"))?;
    if response.items.len() != expected {
        return Err(format!(
            "bulk answer has {} items for {expected} documents",
            response.items.len()
        ));
    }
    Ok(response
        .items
        .iter()
        .map(|item| {
            // One key: the operation name (`create`).
            let Some(result) = item.values().next() else {
                return ItemOutcome::Retry("empty bulk item".to_string());
            };
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            classify(status, result.get("error"))
        })
        .collect())
}

/// Decides an item's fate from its status and error.
pub(crate) fn classify(status: u64, error: Option<&Value>) -> ItemOutcome {
    match status {
        200..=299 | 409 => ItemOutcome::Indexed,
        404 | 429 | 500..=599 | 0 => ItemOutcome::Retry(describe_error(status, error)),
        _ => ItemOutcome::Rejected(describe_error(status, error)),
    }
}

/// `status 400: mapper_parsing_exception: failed to parse field [...] (caused by: ...)`.
pub(crate) fn describe_error(status: u64, error: Option<&Value>) -> String {
    let Some(error) = error else {
        return format!("status {status}");
    };
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
    let reason = error.get("reason").and_then(Value::as_str).unwrap_or("");
    let mut text = format!("status {status}: {kind}: {reason}");
    if let Some(cause) = error.get("caused_by") {
        let cause_kind = cause.get("type").and_then(Value::as_str).unwrap_or("");
        let cause_reason = cause.get("reason").and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!(" (caused by {cause_kind}: {cause_reason})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_chunks_respect_the_byte_cap() {
        let lines: Vec<BulkLine> = (0..5)
            .map(|i| {
                BulkLine::create(
                    i,
                    "ix".into(),
                    &i.to_string(),
                    &json!({"m": "x".repeat(40)}),
                )
                .expect("line")
            })
            .collect();
        let refs: Vec<&BulkLine> = lines.iter().collect();
        let one = lines[0].ndjson.len();
        let chunks = chunk(&refs, one * 2 + 1);
        assert_eq!(
            chunks.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            [vec![0, 1], vec![2, 3], vec![4]]
        );
        assert!(chunks.iter().all(|(_, body)| body.len() <= one * 2 + 1));
        // A cap below one line still sends every line, one per body.
        assert_eq!(chunk(&refs, 1).len(), 5);
    }

    #[test]
    fn test_every_item_is_classified() {
        let body = json!({"errors": true, "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [_lp_l.status]",
                "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"abc\""}}}},
            {"create": {"status": 503}}
        ]});
        let outcomes = parse_response(body.to_string().as_bytes(), 5).expect("parse");
        assert_eq!(outcomes[0], ItemOutcome::Indexed);
        assert_eq!(outcomes[1], ItemOutcome::Indexed);
        assert!(matches!(outcomes[2], ItemOutcome::Retry(_)));
        assert_eq!(
            outcomes[3],
            ItemOutcome::Rejected(
                "status 400: mapper_parsing_exception: failed to parse field [_lp_l.status] \
                 (caused by illegal_argument_exception: For input string: \"abc\")"
                    .to_string()
            )
        );
        assert!(matches!(outcomes[4], ItemOutcome::Retry(_)));
        assert!(parse_response(body.to_string().as_bytes(), 4).is_err());
    }
}
