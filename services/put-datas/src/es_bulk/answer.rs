//! The bulk answer as JSON, written by hand: it has an entry of a dozen members per
//! item (about 200 bytes), so a 1,000-item request is answered with 200 kB, and
//! serde's generic writer (every member name escaped, the buffer grown step by step)
//! cost about as much as reading the documents. The bytes are those serde would
//! write for [`BulkAnswer`]; a test holds the two together.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use logpool_wire::es::{BulkAnswer, BulkItemResult};

/// Bytes per item reserved up front (a stored item takes about 200).
const ITEM_BYTES: usize = 224;

/// The answer as a `200 OK` JSON response.
pub fn response(answer: &BulkAnswer) -> Response {
    let mut response = (StatusCode::OK, to_json(answer)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer's JSON, as `serde_json::to_vec` writes it.
pub fn to_json(answer: &BulkAnswer) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + answer.items.len() * ITEM_BYTES);
    out.extend_from_slice(b"{\"took\":");
    number(&mut out, answer.took);
    out.extend_from_slice(if answer.errors {
        b",\"errors\":true,\"items\":["
    } else {
        b",\"errors\":false,\"items\":["
    });
    for (position, item) in answer.items.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut first = true;
        for (action, result) in [
            ("create", &item.create),
            ("index", &item.index),
            ("update", &item.update),
            ("delete", &item.delete),
        ] {
            let Some(result) = result else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(action.as_bytes());
            out.extend_from_slice(b"\":");
            write_result(&mut out, result);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

fn write_result(out: &mut Vec<u8>, result: &BulkItemResult) {
    out.extend_from_slice(b"{\"_id\":");
    text(out, &result.id);
    out.extend_from_slice(b",\"_index\":");
    text(out, &result.index);
    if let Some(term) = result.primary_term {
        out.extend_from_slice(b",\"_primary_term\":");
        number(out, term);
    }
    if let Some(seq_no) = result.seq_no {
        out.extend_from_slice(b",\"_seq_no\":");
        number(out, seq_no);
    }
    if let Some(shards) = &result.shards {
        out.extend_from_slice(b",\"_shards\":{\"failed\":");
        number(out, u64::from(shards.failed));
        out.extend_from_slice(b",\"successful\":");
        number(out, u64::from(shards.successful));
        out.extend_from_slice(b",\"total\":");
        number(out, u64::from(shards.total));
        out.push(b'}');
    }
    out.extend_from_slice(b",\"_type\":");
    text(out, &result.doc_type);
    if let Some(version) = result.version {
        out.extend_from_slice(b",\"_version\":");
        number(out, version);
    }
    if let Some(error) = &result.error {
        out.extend_from_slice(b",\"error\":{\"reason\":");
        text(out, &error.reason);
        out.extend_from_slice(b",\"type\":");
        text(out, &error.kind);
        out.push(b'}');
    }
    if let Some(outcome) = &result.result {
        out.extend_from_slice(b",\"result\":");
        text(out, outcome);
    }
    out.extend_from_slice(b",\"status\":");
    number(out, u64::from(result.status));
    out.push(b'}');
}

fn number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn text(out: &mut Vec<u8>, value: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::super::{item_result, Pending};
    use super::*;
    use logpool_wire::es::BulkItem;

    // The items the handler itself makes (so the test follows their shape), with
    // text that needs escaping.
    fn stored(id: &str) -> BulkItemResult {
        item_result(id.to_string(), "shop.web".to_string(), 7, Pending::Queued)
    }

    fn refused() -> BulkItemResult {
        let reason = "bad\nline é".to_string();
        let refusal = Pending::Refused(400, "mapper_parsing_exception", reason);
        item_result("x".to_string(), "no \"such\" index".to_string(), 3, refusal)
    }

    #[test]
    fn the_answer_is_what_serde_writes() {
        let item = |create, index, update, delete| BulkItem {
            create,
            index,
            update,
            delete,
        };
        let answers = [
            BulkAnswer {
                took: 0,
                errors: false,
                items: vec![],
            },
            BulkAnswer {
                took: 12,
                errors: true,
                items: vec![
                    item(Some(stored("17f-0")), None, None, None),
                    item(None, Some(stored("a\"b\\c")), None, None),
                    item(None, None, Some(refused()), None),
                    item(None, None, None, Some(refused())),
                    item(Some(refused()), Some(stored("both")), None, None),
                ],
            },
        ];
        for answer in answers {
            let expected = serde_json::to_vec(&answer).expect("serde");
            assert_eq!(
                String::from_utf8(to_json(&answer)).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8")
            );
        }
    }
}
