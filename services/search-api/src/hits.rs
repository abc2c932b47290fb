//! The JSON form of a hit, shared by search, streaming search and context.

use std::collections::BTreeMap;

use logpool_core::query::highlight::Highlighter;
use logpool_core::record::format_time_ns;
use logpool_engines::index::SearchHit;
use serde_json::{json, Value};

/// A hit as the API shows it; with a highlighter, `highlight` holds the marked
/// fragments of each field that matched (an empty object when none did).
pub fn hit_json(hit: &SearchHit, highlighter: Option<&Highlighter>) -> Value {
    hit_into_json(hit.clone(), highlighter)
}

/// Like [`hit_json`], moving the hit's fields into the answer instead of copying them.
pub fn hit_into_json(hit: SearchHit, highlighter: Option<&Highlighter>) -> Value {
    let highlight = highlighter.map(|highlighter| highlighter.highlight(&hit.fields));
    hit_with_highlight(hit, highlight)
}

/// Estimated heap bytes of a hit's highlight (its fragments' text and entries).
pub fn highlight_bytes(highlight: &BTreeMap<String, Vec<String>>) -> usize {
    highlight
        .iter()
        .map(|(field, fragments)| {
            64 + field.len() + fragments.iter().map(|text| 32 + text.len()).sum::<usize>()
        })
        .sum()
}

/// A hit as the API shows it, with the highlight already computed.
pub fn hit_with_highlight(
    hit: SearchHit,
    highlight: Option<BTreeMap<String, Vec<String>>>,
) -> Value {
    let highlight = highlight.map(|highlight| json!(highlight));
    let mut value = json!({
        "id": hit.id,
        "time": format_time_ns(hit.time_ns),
        "shard": hit.shard,
        "fields": Value::Object(hit.fields),
    });
    if let Some(highlight) = highlight {
        value["highlight"] = highlight;
    }
    value
}
