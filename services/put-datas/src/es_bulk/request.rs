//! The lines of a bulk body: each action line, with the document line that follows
//! it for `index`, `create` and `update`.
//!
//! A body whose structure is broken (an action line that is not JSON, an unknown
//! action, a missing document line) is refused whole with a 400 naming the line, as
//! Elasticsearch does; a broken *document* only fails its own item, later.

use logpool_api::{ApiError, ErrorCode};
use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// What an action line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Store the document (a new id each time).
    Index,
    /// Store the document (Elasticsearch refuses an existing id; logpool does not
    /// keep ids, so it stores it as `index` does).
    Create,
    /// Not supported: stored records are not changed.
    Update,
    /// Not supported: records are removed by retention only.
    Delete,
}

impl Action {
    fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    /// Whether a document line follows the action line.
    fn has_document(self) -> bool {
        self != Action::Delete
    }

    /// The action's name, as the answer keys its item.
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// The metadata of an action line; other members (`routing`, `pipeline`,
/// `require_alias`, ...) are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
struct ActionMeta<'a> {
    /// Borrowed from the body unless it has escapes: no copy per item.
    #[serde(rename = "_index", borrow)]
    index: Option<BorrowedText<'a>>,
    #[serde(rename = "_id")]
    id: Option<Value>,
}

/// Text borrowed from the body where it can be.
#[derive(Debug, Deserialize)]
struct BorrowedText<'a>(#[serde(borrow)] Cow<'a, str>);

/// One item of a bulk request.
#[derive(Debug)]
pub struct BulkItem<'a> {
    /// What to do.
    pub action: Action,
    /// The index the action line names, if any.
    pub index: Option<Cow<'a, str>>,
    /// The id the action line names, if any.
    pub id: Option<String>,
    /// The document line (without its newline).
    pub document: Option<&'a [u8]>,
    /// 1-based line of the document, for messages.
    pub document_line: usize,
}

/// Splits a bulk body into its items.
///
/// # Errors
/// 400 naming the line of a broken action line or a missing document line; 413 past
/// `max_items` items (`max_records_per_request`).
pub fn parse_items(body: &[u8], max_items: usize) -> Result<Vec<BulkItem<'_>>, ApiError> {
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty());
    let mut items = Vec::new();
    while let Some((line_number, line)) = lines.next() {
        if items.len() == max_items {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "limit `max_records_per_request` exceeded at line {line_number}: a bulk \
                     request may hold at most {max_items} items"
                ),
            )
            .with_detail("limit", "max_records_per_request")
            .with_detail("value", max_items));
        }
        let (action, meta) = parse_action(line, line_number)?;
        let (document, document_line) = if action.has_document() {
            let (number, document) = lines.next().ok_or_else(|| {
                malformed_line(
                    line_number,
                    &format!(
                        "the `{}` action has no document line after it",
                        action.name()
                    ),
                )
            })?;
            (Some(document), number)
        } else {
            (None, line_number)
        };
        items.push(BulkItem {
            action,
            index: meta.index.map(|text| text.0),
            id: meta.id.map(|id| match id {
                Value::String(text) => text,
                other => other.to_string(),
            }),
            document,
            document_line,
        });
    }
    if items.is_empty() {
        return Err(
            ApiError::bad_request("the bulk request holds no actions").with_detail("field", "body")
        );
    }
    Ok(items)
}

/// An action line as nearly every shipper writes it, read in one pass: the other
/// shapes (and every error) take [`parse_action`]'s general reading.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownAction<'a> {
    #[serde(borrow)]
    index: Option<ActionMeta<'a>>,
    #[serde(borrow)]
    create: Option<ActionMeta<'a>>,
    #[serde(borrow)]
    update: Option<ActionMeta<'a>>,
    #[serde(borrow)]
    delete: Option<ActionMeta<'a>>,
}

/// Reads an action line: an object with one member, the action, whose value is its
/// metadata.
fn parse_action(line: &[u8], line_number: usize) -> Result<(Action, ActionMeta<'_>), ApiError> {
    if let Ok(known) = serde_json::from_slice::<KnownAction>(line) {
        let mut actions = [
            (Action::Index, known.index),
            (Action::Create, known.create),
            (Action::Update, known.update),
            (Action::Delete, known.delete),
        ]
        .into_iter()
        .filter_map(|(action, meta)| Some((action, meta?)));
        if let (Some(only), None) = (actions.next(), actions.next()) {
            return Ok(only);
        }
    }
    let object: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_slice(line).map_err(|e| {
        malformed_line(
            line_number,
            &format!("an action line must be a JSON object: {e}"),
        )
    })?;
    let mut members = object.into_iter();
    let (Some((name, meta)), None) = (members.next(), members.next()) else {
        return Err(malformed_line(
            line_number,
            "an action line must have exactly one member, the action",
        ));
    };
    let action = Action::from_name(&name).ok_or_else(|| {
        malformed_line(
            line_number,
            &format!(
                "unknown action `{}`; expected one of index, create, update, delete",
                name.escape_debug()
            ),
        )
    })?;
    let meta: ActionMeta<'_> = serde_json::from_str(meta.get()).map_err(|e| {
        malformed_line(
            line_number,
            &format!("the `{name}` action's metadata is not valid: {e}"),
        )
    })?;
    Ok((action, meta))
}

fn malformed_line(line_number: usize, message: &str) -> ApiError {
    ApiError::bad_request(format!(
        "malformed bulk request at line {line_number}: {message}"
    ))
    .with_detail("field", "body")
    .with_detail("location", format!("line {line_number}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_take_their_document_lines_and_delete_takes_none() {
        let body = b"{\"index\":{\"_index\":\"p.q\",\"_id\":7}}\n{\"message\":\"a\"}\n\n\
            {\"delete\":{\"_index\":\"p.q\",\"_id\":\"x\"}}\n{\"create\":{}}\n{\"message\":\"b\"}";
        let items = parse_items(body, 10).expect("parsed");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].action, Action::Index);
        assert_eq!(items[0].index.as_deref(), Some("p.q"));
        assert_eq!(items[0].id.as_deref(), Some("7"));
        assert_eq!(items[0].document, Some(&b"{\"message\":\"a\"}"[..]));
        assert_eq!(items[0].document_line, 2);
        assert_eq!(items[1].action, Action::Delete);
        assert_eq!(items[1].document, None);
        assert_eq!(items[2].action, Action::Create);
        assert_eq!(items[2].document_line, 6);
    }

    #[test]
    fn broken_structure_is_refused_whole_naming_the_line() {
        let unknown = parse_items(b"{\"index\":{}}\n{}\n{\"upsert\":{}}\n{}\n", 10)
            .expect_err("unknown action");
        assert!(unknown.message.contains("line 3"), "{}", unknown.message);
        assert!(unknown.message.contains("upsert"), "{}", unknown.message);
        let broken = parse_items(b"{\"index\":\n{}\n", 10).expect_err("broken");
        assert!(broken.message.contains("line 1"), "{}", broken.message);
        let missing = parse_items(b"{\"index\":{}}\n", 10).expect_err("no document");
        assert!(
            missing.message.contains("no document line"),
            "{}",
            missing.message
        );
        let two = parse_items(b"{\"index\":{},\"create\":{}}\n{}\n", 10).expect_err("two");
        assert!(two.message.contains("exactly one"), "{}", two.message);
        let empty = parse_items(b"\n\n", 10).expect_err("empty");
        assert_eq!(empty.code, ErrorCode::BadRequest);
        let many = parse_items(b"{\"index\":{}}\n{}\n{\"index\":{}}\n{}\n", 1).expect_err("many");
        assert_eq!(many.code, ErrorCode::PayloadTooLarge);
    }
}
