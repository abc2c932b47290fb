//! `highlight`: the words each hit matched, marked with the request's tags (Grafana
//! sends `@HIGHLIGHT@` and `@/HIGHLIGHT@` and shows them in its logs view).
//!
//! The marks are the native highlighter's ([`Highlighter`]), so both APIs mark the
//! same words; its HTML-safe `<em>` fragments are turned back into plain text with
//! the request's tags (the text was escaped, so every `<em>` and `</em>` in a
//! fragment is a mark).

use std::collections::BTreeMap;

use logpool_core::query::highlight::Highlighter;
use serde_json::{Map, Value};

use super::error::EsError;

/// The tags a highlight is written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HighlightTags {
    /// Before a marked run.
    pub pre: String,
    /// After it.
    pub post: String,
}

/// Reads a `highlight` object: `pre_tags`/`post_tags` (the first of each; `<em>`
/// by default) are used, the fragment and field options are accepted (every
/// string field is highlighted, whole values up to 300 characters, fragments
/// around the marks beyond).
///
/// # Errors
/// A `parsing_exception` for a tag list that is not strings or a key that is not
/// a highlight option.
pub fn parse_highlight(value: &Value) -> Result<HighlightTags, EsError> {
    let object = value
        .as_object()
        .ok_or_else(|| EsError::parsing("[highlight] must be an object"))?;
    let mut tags = HighlightTags {
        pre: "<em>".to_string(),
        post: "</em>".to_string(),
    };
    for (key, value) in object {
        match key.as_str() {
            "pre_tags" => tags.pre = first_tag(key, value)?,
            "post_tags" => tags.post = first_tag(key, value)?,
            "fields"
            | "fragment_size"
            | "number_of_fragments"
            | "require_field_match"
            | "type"
            | "encoder"
            | "order"
            | "no_match_size"
            | "tags_schema" => {}
            other => return Err(EsError::unsupported(&format!("highlight.{other}"), "")),
        }
    }
    Ok(tags)
}

fn first_tag(key: &str, value: &Value) -> Result<String, EsError> {
    value
        .as_array()
        .and_then(|tags| tags.first())
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| EsError::parsing(format!("[highlight.{key}] must be a list of strings")))
}

/// The marked fragments of `fields`, by field, with `tags`.
pub fn highlight(
    highlighter: &Highlighter,
    fields: &Map<String, Value>,
    tags: &HighlightTags,
) -> BTreeMap<String, Vec<String>> {
    highlighter
        .highlight(fields)
        .into_iter()
        .map(|(field, fragments)| {
            let fragments = fragments
                .iter()
                .map(|fragment| retag(fragment, tags))
                .collect();
            (field, fragments)
        })
        .collect()
}

/// A native fragment (escaped text with `<em>` marks) as plain text with `tags`.
pub fn retag(fragment: &str, tags: &HighlightTags) -> String {
    let mut out = String::with_capacity(fragment.len());
    for (index, opened) in fragment.split("<em>").enumerate() {
        if index > 0 {
            out.push_str(&tags.pre);
        }
        for (inner, piece) in opened.split("</em>").enumerate() {
            if inner > 0 {
                out.push_str(&tags.post);
            }
            out.push_str(&unescape(piece));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_native_marks_become_the_requested_tags() {
        let tags = HighlightTags {
            pre: "@HIGHLIGHT@".into(),
            post: "@/HIGHLIGHT@".into(),
        };
        assert_eq!(
            retag(
                "Connection <em>reset by</em> peer &lt;x&gt; &amp;lt;",
                &tags
            ),
            "Connection @HIGHLIGHT@reset by@/HIGHLIGHT@ peer <x> &lt;"
        );
    }
}
