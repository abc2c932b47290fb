//! The wire form of a hit, shared by search, streaming search and context.

use std::collections::BTreeMap;

use logpool_core::query::highlight::Highlighter;
use logpool_core::record::format_time_ns;
use logpool_engines::index::SearchHit;
use logpool_wire::search::Hit;

/// A hit as the API shows it; with a highlighter, `highlight` holds the marked
/// fragments of each field that matched (an empty object when none did).
pub fn hit_of(hit: &SearchHit, highlighter: Option<&Highlighter>) -> Hit {
    hit_into_wire(hit.clone(), highlighter)
}

/// Like [`hit_of`], moving the hit's fields into the answer instead of copying them.
pub fn hit_into_wire(hit: SearchHit, highlighter: Option<&Highlighter>) -> Hit {
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
pub fn hit_with_highlight(hit: SearchHit, highlight: Option<BTreeMap<String, Vec<String>>>) -> Hit {
    Hit {
        fields: hit.fields,
        highlight,
        id: hit.id,
        shard: hit.shard,
        time: format_time_ns(hit.time_ns),
    }
}
