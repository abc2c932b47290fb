//! The JSON form of a hit, shared by search, streaming search and context.

use logpool_core::query::highlight::Highlighter;
use logpool_core::record::format_time_ns;
use logpool_engines::index::SearchHit;
use serde_json::{json, Value};

/// A hit as the API shows it; with a highlighter, `highlight` holds the marked
/// fragments of each field that matched (an empty object when none did).
pub fn hit_json(hit: &SearchHit, highlighter: Option<&Highlighter>) -> Value {
    let mut value = json!({
        "id": hit.id,
        "time": format_time_ns(hit.time_ns),
        "shard": hit.shard,
        "fields": hit.fields,
    });
    if let Some(highlighter) = highlighter {
        value["highlight"] = json!(highlighter.highlight(&hit.fields));
    }
    value
}
