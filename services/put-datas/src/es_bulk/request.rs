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
#[derive(Debug, Default, PartialEq, Deserialize)]
struct ActionMeta<'a> {
    /// Borrowed from the body unless it has escapes: no copy per item.
    #[serde(rename = "_index", borrow)]
    index: Option<BorrowedText<'a>>,
    #[serde(rename = "_id")]
    id: Option<Value>,
}

/// Text borrowed from the body where it can be.
#[derive(Debug, PartialEq, Deserialize)]
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
    match plain_action(line) {
        Some(plain) => Ok(plain),
        None => serde_action(line, line_number),
    }
}

/// [`parse_action`] by serde: any JSON, and the errors.
fn serde_action(line: &[u8], line_number: usize) -> Result<(Action, ActionMeta<'_>), ApiError> {
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

/// An action line as shippers write it, read by hand: `{"<action>":{...}}` whose
/// metadata members are plain strings (no escapes), `null`, booleans or integers.
/// `None` for anything else (escapes, nested values, a repeated member, bad syntax),
/// which serde then reads (or refuses) as before; what this accepts, serde reads the
/// same way. A shipper sends one per document, so serde's generic reading of every
/// one of them cost about as much as reading the document.
fn plain_action(line: &[u8]) -> Option<(Action, ActionMeta<'_>)> {
    let mut cursor = Cursor { line, at: 0 };
    cursor.expect(b'{')?;
    let action = Action::from_name(cursor.string()?)?;
    cursor.expect(b':')?;
    cursor.expect(b'{')?;
    // Each member once at most (serde refuses a `duplicate field`): `Some` once met.
    let mut index: Option<Option<BorrowedText<'_>>> = None;
    let mut id: Option<Option<Value>> = None;
    if !cursor.take(b'}') {
        loop {
            let key = cursor.string()?;
            cursor.expect(b':')?;
            let value = cursor.plain_value()?;
            match key {
                "_index" if index.is_none() => {
                    index = Some(match value {
                        PlainValue::Null => None,
                        PlainValue::Text(text) => Some(BorrowedText(Cow::Borrowed(text))),
                        // Not a string: serde's reading refuses it.
                        PlainValue::Other(_) => return None,
                    });
                }
                "_id" if id.is_none() => {
                    id = Some(match value {
                        PlainValue::Null => None,
                        PlainValue::Text(text) => Some(Value::String(text.to_string())),
                        PlainValue::Other(text) => Some(serde_json::from_str(text).ok()?),
                    });
                }
                "_index" | "_id" => return None,
                _ => {}
            }
            if cursor.take(b'}') {
                break;
            }
            cursor.expect(b',')?;
        }
    }
    cursor.expect(b'}')?;
    cursor.skip_space();
    let meta = ActionMeta {
        index: index.flatten(),
        id: id.flatten(),
    };
    (cursor.at == line.len()).then_some((action, meta))
}

/// A plain JSON value: a string without escapes, `null`, or the text of a boolean or
/// an integer.
enum PlainValue<'a> {
    Null,
    Text(&'a str),
    Other(&'a str),
}

/// A position in an action line.
struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.line.get(self.at) {
            self.at += 1;
        }
    }

    /// Skips whitespace and takes `byte` if it comes next.
    fn take(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.line.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.take(byte).then_some(())
    }

    /// A string without escapes or control characters, as UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let length = self.line[start..]
            .iter()
            .position(|b| *b == b'"' || *b == b'\\' || *b < 0x20)?;
        self.at = start + length;
        // Right after the text: a raw tab or newline there is not JSON.
        if self.line.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        std::str::from_utf8(&self.line[start..start + length]).ok()
    }

    fn plain_value(&mut self) -> Option<PlainValue<'a>> {
        self.skip_space();
        match self.line.get(self.at)? {
            b'"' => self.string().map(PlainValue::Text),
            b'n' => self.word(b"null").map(|_| PlainValue::Null),
            b't' => self.word(b"true").map(PlainValue::Other),
            b'f' => self.word(b"false").map(PlainValue::Other),
            b'-' | b'0'..=b'9' => self.integer().map(PlainValue::Other),
            _ => None,
        }
    }

    fn word(&mut self, word: &'static [u8]) -> Option<&'a str> {
        let end = self.at + word.len();
        (self.line.get(self.at..end)? == word).then(|| {
            self.at = end;
            // An ASCII word taken from the line as it is.
            std::str::from_utf8(word).unwrap_or_default()
        })
    }

    /// An integer as JSON writes one (no leading zeros, no fraction or exponent).
    fn integer(&mut self) -> Option<&'a str> {
        let start = self.at;
        let digits_start = start + usize::from(self.line[start] == b'-');
        let digits = self.line[digits_start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let leading_zero = digits > 1 && self.line[digits_start] == b'0';
        if digits == 0 || leading_zero {
            return None;
        }
        self.at = digits_start + digits;
        if let Some(b'.' | b'e' | b'E') = self.line.get(self.at) {
            return None;
        }
        std::str::from_utf8(&self.line[start..self.at]).ok()
    }
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
        let raw_tab = parse_items(b"{\"index\":{\"_index\":\"a\tb\"}}\n{}\n", 10);
        assert!(raw_tab.is_err(), "a raw tab in a string is not JSON");
        assert!(two.message.contains("exactly one"), "{}", two.message);
        let empty = parse_items(b"\n\n", 10).expect_err("empty");
        assert_eq!(empty.code, ErrorCode::BadRequest);
        let many = parse_items(b"{\"index\":{}}\n{}\n{\"index\":{}}\n{}\n", 1).expect_err("many");
        assert_eq!(many.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn the_plain_reading_is_serdes() {
        let lines = [
            r#"{"create":{"_index":"shop.web"}}"#,
            r#"{"index":{}}"#,
            r#" { "index" : { "_index" : "a.b" , "_id" : "x y" } } "#,
            r#"{"index":{"_id":null,"_index":"logstash","routing":null,"pipeline":"p"}}"#,
            r#"{"create":{"_index":"fluent-bit","_type":"_doc","require_alias":false}}"#,
            r#"{"index":{"_id":7,"_index":"é.ü"}}"#,
            r#"{"index":{"_id":-12,"version":3}}"#,
            r#"{"index":{"_id":18446744073709551616}}"#,
            r#"{"index":{"_id":true}}"#,
            r#"{"delete":{"_index":"p.q","_id":"x"}}"#,
            r#"{"update":{"_index":null}}"#,
        ];
        for line in lines {
            let plain = plain_action(line.as_bytes());
            let by_serde = serde_action(line.as_bytes(), 1).expect("serde reads it");
            assert_eq!(plain, Some(by_serde), "{line}");
        }
        // Left to serde: what it reads another way, and what it refuses.
        let others = [
            r#"{"index":{"_index":"a"b"}}"#,
            r#"{"index":{"_index":"x","_index":"y"}}"#,
            r#"{"index":{"_id":"1","_id":"2"}}"#,
            r#"{"index":{"_index":3}}"#,
            r#"{"index":{"_id":1.5}}"#,
            r#"{"index":{"_id":01}}"#,
            r#"{"index":{"routing":{"a":1}}}"#,
            r#"{"index":{},"index":{}}"#,
            r#"{"index":{}} x"#,
            r#"{"index":{"a":1,}}"#,
            r#"{"upsert":{}}"#,
            "{\"index\":{\"_index\":\"a\tb\"}}",
            r#"{"index":{"_index":"x"}"#,
        ];
        for line in others {
            assert_eq!(plain_action(line.as_bytes()), None, "{line}");
        }
    }
}
