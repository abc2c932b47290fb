//! The bulk answer as JSON, written by hand straight from the request's items: it
//! has an entry of a dozen members per item (about 200 bytes), so a 1,000-item
//! request is answered with 200 kB. Building a [`BulkAnswer`] first (four strings
//! per item) and serializing it generically cost about as much as reading the
//! documents. The bytes are those serde writes for the [`BulkAnswer`] of the same
//! items; a test holds the two together.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::request::Action;
use super::Pending;
#[cfg(doc)]
use logpool_wire::es::BulkAnswer;

/// Bytes per item reserved up front (a stored item takes about 200).
const ITEM_BYTES: usize = 224;

/// One item's entry in the answer.
#[derive(Debug, Clone, Copy)]
pub struct ItemAnswer<'a> {
    /// The item's action, which keys its entry.
    pub action: Action,
    /// The id its action named, if any; else one is made up from the request's
    /// prefix and the item's position.
    pub id: Option<&'a str>,
    /// The index it named (empty when none).
    pub index: &'a str,
    /// What became of it.
    pub outcome: &'a Pending,
}

/// The answer as a `200 OK` JSON response.
pub fn response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer's JSON, as `serde_json::to_vec` writes the [`BulkAnswer`] of these
/// items; made-up ids are `id_prefix` and the item's position.
pub fn to_json(took: u64, id_prefix: &str, items: &[ItemAnswer<'_>]) -> Vec<u8> {
    let errors = items
        .iter()
        .any(|item| matches!(item.outcome, Pending::Refused(..)));
    let mut out = Vec::with_capacity(64 + items.len() * ITEM_BYTES);
    out.extend_from_slice(b"{\"took\":");
    number(&mut out, took);
    out.extend_from_slice(if errors {
        b",\"errors\":true,\"items\":["
    } else {
        b",\"errors\":false,\"items\":["
    });
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(item.action.name().as_bytes());
        out.extend_from_slice(b"\":{\"_id\":");
        match item.id {
            Some(id) => text(&mut out, id),
            None => {
                // The prefix is hex digits and a dash: nothing to escape.
                out.push(b'"');
                out.extend_from_slice(id_prefix.as_bytes());
                number(&mut out, position as u64);
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"_index\":");
        text(&mut out, item.index);
        match item.outcome {
            Pending::Queued => {
                out.extend_from_slice(b",\"_primary_term\":1,\"_seq_no\":");
                number(&mut out, position as u64);
                out.extend_from_slice(
                    b",\"_shards\":{\"failed\":0,\"successful\":1,\"total\":1},\
                      \"_type\":\"_doc\",\"_version\":1,\"result\":\"created\",\"status\":201}}",
                );
            }
            Pending::Refused(status, kind, reason) => {
                out.extend_from_slice(b",\"_type\":\"_doc\",\"error\":{\"reason\":");
                text(&mut out, reason);
                out.extend_from_slice(b",\"type\":");
                text(&mut out, kind);
                out.extend_from_slice(b"},\"status\":");
                number(&mut out, u64::from(*status));
                out.extend_from_slice(b"}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

fn number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A JSON string, as serde_json writes it: most ids and index names need no escape
/// and are copied as they are.
fn text(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
    {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    } else {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_wire::es::{BulkAnswer, BulkItem, BulkItemError, BulkItemResult, BulkShards};

    /// The entry of one item as the wire type describes it.
    fn item_result(id: &str, index: &str, position: usize, outcome: &Pending) -> BulkItemResult {
        match outcome {
            Pending::Queued => BulkItemResult {
                id: id.to_string(),
                index: index.to_string(),
                primary_term: Some(1),
                seq_no: Some(position as u64),
                shards: Some(BulkShards {
                    failed: 0,
                    successful: 1,
                    total: 1,
                }),
                doc_type: "_doc".to_string(),
                version: Some(1),
                error: None,
                result: Some("created".to_string()),
                status: 201,
            },
            Pending::Refused(status, kind, reason) => BulkItemResult {
                id: id.to_string(),
                index: index.to_string(),
                primary_term: None,
                seq_no: None,
                shards: None,
                doc_type: "_doc".to_string(),
                version: None,
                error: Some(BulkItemError {
                    reason: reason.clone(),
                    kind: kind.to_string(),
                }),
                result: None,
                status: *status,
            },
        }
    }

    fn keyed_by_action(action: Action, result: BulkItemResult) -> BulkItem {
        let mut item = BulkItem {
            create: None,
            index: None,
            update: None,
            delete: None,
        };
        match action {
            Action::Index => item.index = Some(result),
            Action::Create => item.create = Some(result),
            Action::Update => item.update = Some(result),
            Action::Delete => item.delete = Some(result),
        }
        item
    }

    /// What serde writes for the [`BulkAnswer`] of `items`.
    fn serde_answer(took: u64, id_prefix: &str, items: &[ItemAnswer<'_>]) -> Vec<u8> {
        let items: Vec<BulkItem> = items
            .iter()
            .enumerate()
            .map(|(position, item)| {
                let id = match item.id {
                    Some(id) => id.to_string(),
                    None => format!("{id_prefix}{position}"),
                };
                keyed_by_action(
                    item.action,
                    item_result(&id, item.index, position, item.outcome),
                )
            })
            .collect();
        let answer = BulkAnswer {
            took,
            errors: items.iter().any(|item| {
                [&item.create, &item.index, &item.update, &item.delete]
                    .into_iter()
                    .flatten()
                    .any(|result| result.status != 201)
            }),
            items,
        };
        serde_json::to_vec(&answer).expect("serde")
    }

    #[test]
    fn the_answer_is_what_serde_writes() {
        let queued = Pending::Queued;
        let refused = Pending::Refused(400, "mapper_parsing_exception", "bad\nline é".into());
        let refused_quote = Pending::Refused(404, "a\"b", "\u{1}".into());
        let item = |action, id, index, outcome| ItemAnswer {
            action,
            id,
            index,
            outcome,
        };
        let answers: [Vec<ItemAnswer<'_>>; 3] = [
            vec![],
            vec![
                item(Action::Create, None, "shop.web", &queued),
                item(Action::Index, Some("a\"b\\c"), "shop.web", &queued),
                item(Action::Update, Some("x"), "no \"such\" index", &refused),
                item(Action::Delete, None, "", &refused_quote),
                item(Action::Create, Some("é\t"), "shop.web", &refused),
            ],
            vec![
                item(Action::Index, None, "shop.web", &queued),
                item(Action::Create, Some("7"), "shop.web", &queued),
            ],
        ];
        for items in answers {
            let expected = serde_answer(12, "17f-", &items);
            assert_eq!(
                String::from_utf8(to_json(12, "17f-", &items)).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8")
            );
        }
    }
}
