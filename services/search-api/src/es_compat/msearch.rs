//! `_msearch`: NDJSON pairs of a header line (`{"index": ...}`, other keys such as
//! `search_type` or `ignore_unavailable` change nothing for one pool) and a search
//! body line. Each search is answered on its own, in order, with its `status`: one
//! failing search does not fail the others, as in Elasticsearch.

use std::time::Instant;

use logpool_api::Principal;
use logpool_wire::es_search::{EsMsearchAnswer, EsMsearchItem, EsSearchAnswer};
use serde_json::Value;

use super::error::EsError;
use super::pool_to_search;
use super::request::SearchUrlParams;
use super::search::search_pool;
use crate::limiter::TenantQueries;
use crate::SearchState;

/// Searches one `_msearch` request may hold.
pub const MAX_SEARCHES: usize = 100;

/// Runs every search of an `_msearch` body.
///
/// # Errors
/// A 400 for the whole request when a line is not JSON, a header has no body, or
/// there are more than [`MAX_SEARCHES`] searches; each search's own errors are in
/// its `responses` entry.
pub async fn msearch(
    state: &SearchState,
    limiter: &TenantQueries,
    principal: &Principal,
    path_index: Option<&str>,
    body: &[u8],
) -> Result<EsMsearchAnswer, EsError> {
    let started = Instant::now();
    let pairs = parse_pairs(body)?;
    let url = SearchUrlParams::default();
    let mut responses = Vec::with_capacity(pairs.len());
    for (header, search) in pairs {
        let index = header
            .get("index")
            .and_then(|index| match index {
                Value::String(text) => Some(text.clone()),
                Value::Array(names) => Some(
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            })
            .or_else(|| path_index.map(str::to_string))
            .unwrap_or_default();
        let answer = match pool_to_search(state, principal, &index) {
            Ok((index, route)) => search_pool(state, limiter, &index, route, &search, &url).await,
            Err(error) => Err(error),
        };
        responses.push(match answer {
            Ok(answer) => EsMsearchItem::Answer(EsSearchAnswer {
                status: Some(200),
                ..answer
            }),
            Err(error) => EsMsearchItem::Error(error.body()),
        });
    }
    Ok(EsMsearchAnswer {
        took: started.elapsed().as_millis() as u64,
        responses,
    })
}

/// The header/body pairs of the body.
fn parse_pairs(body: &[u8]) -> Result<Vec<(Value, Value)>, EsError> {
    let mut lines = Vec::new();
    for (number, line) in body.split(|byte| *byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line).map_err(|error| {
            EsError::parsing(format!(
                "line {} of the _msearch body is not JSON: {error}",
                number + 1
            ))
        })?;
        if !value.is_object() {
            return Err(EsError::parsing(format!(
                "line {} of the _msearch body must be a JSON object",
                number + 1
            )));
        }
        lines.push(value);
    }
    if lines.len() % 2 != 0 {
        return Err(EsError::parsing(
            "the _msearch body must hold header and body lines in pairs; the last header has no body",
        ));
    }
    if lines.len() / 2 > MAX_SEARCHES {
        return Err(EsError::illegal(format!(
            "an _msearch may hold at most {MAX_SEARCHES} searches, got {}",
            lines.len() / 2
        )));
    }
    let mut pairs = Vec::with_capacity(lines.len() / 2);
    let mut values = lines.into_iter();
    while let (Some(header), Some(search)) = (values.next(), values.next()) {
        pairs.push((header, search));
    }
    Ok(pairs)
}
