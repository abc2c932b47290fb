//! `GET|POST /v1/projects/{project}/pools/{pool}/export`: every match of a search in
//! its range as CSV or NDJSON, newest first, streamed page by page.
//!
//! The first page is searched before the answer starts, with every match counted,
//! so mistakes are ordinary 4xx answers and the headers can say how many records
//! matched and whether the export stops at its limit (`search.max_export_records`
//! or the request's smaller `limit`): see the `X-Logpool-Export-*` headers of
//! [`logpool_wire::export`]. Later pages continue after the last record sent, each
//! a search of its own under the page and memory limits of `/search`. An index
//! failure after the answer has started ends the body early (the connection is
//! closed without the final chunk, so no client mistakes it for a whole file).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use logpool_api::{ApiError, AppParams};
use logpool_core::query::Query;
use logpool_core::record::format_time_ns;
use logpool_core::routing::PoolRoute;
use logpool_engines::index::{SearchHit, SearchRequest, SortKey};
use logpool_wire::export::{
    ExportParams, EXPORT_LIMIT_HEADER, EXPORT_MATCHES_HEADER, EXPORT_TRUNCATED_HEADER,
};
use logpool_wire::search::SearchParams;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::hits::hit_into_wire;
use crate::limiter::{QueryPermit, TenantQueries};
use crate::params::Resolve;
use crate::planner::PlannedSearch;
use crate::SearchState;

/// One piece of the body; an error aborts the answer.
type Chunk = Result<Bytes, std::io::Error>;

/// Chunks buffered ahead of a slow reader; the export waits beyond that.
const BUFFERED_CHUNKS: usize = 4;
/// Most columns an export may name.
pub const MAX_COLUMNS: usize = 100;
/// Bytes gathered into one chunk before it is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn parse(text: Option<&str>) -> Result<Format, ApiError> {
        match text.map(str::trim) {
            None | Some("") | Some("ndjson") => Ok(Format::Ndjson),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::bad_request(format!(
                "`format` must be `csv` or `ndjson`, got `{}`",
                other.escape_debug()
            ))
            .with_detail("field", "format")),
        }
    }
}

/// The columns asked for; `None` for NDJSON of whole records.
fn parse_columns(text: Option<&str>, format: Format) -> Result<Option<Vec<String>>, ApiError> {
    let named: Vec<String> = text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if named.len() > MAX_COLUMNS {
        return Err(ApiError::bad_request(format!(
            "`columns` names more than {MAX_COLUMNS} columns"
        ))
        .with_detail("field", "columns")
        .with_detail("limit", MAX_COLUMNS));
    }
    Ok(match (named.is_empty(), format) {
        (false, _) => Some(named),
        (true, Format::Csv) => Some(vec!["time".to_string(), "message".to_string()]),
        (true, Format::Ndjson) => None,
    })
}

/// What one export searches.
struct ExportSearch {
    state: SearchState,
    route: PoolRoute,
    query: Query,
    from_ns: i64,
    to_ns: i64,
    limiter: TenantQueries,
}

impl ExportSearch {
    /// One page: every match after `after`, newest first, at most `max_limit`.
    async fn page(
        &self,
        after: Option<SortKey>,
        count_all: bool,
    ) -> Result<PlannedSearch, ApiError> {
        let request = SearchRequest {
            query: self.query.clone(),
            from_ns: self.from_ns,
            to_ns: self.to_ns,
            limit: self.state.config.max_limit,
            after,
            order: logpool_engines::index::SortOrder::Desc,
            memory: self.limiter.query_memory(),
        };
        let mut planned = PlannedSearch::start(
            self.state.index.clone(),
            self.route.clone(),
            request,
            count_all,
            &self.state.config,
        )
        .await?;
        planned.run().await?;
        Ok(planned)
    }
}

pub(crate) async fn export(
    State(state): State<SearchState>,
    limiter: TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<ExportParams>,
) -> Result<Response, ApiError> {
    let format = Format::parse(params.format.as_deref())?;
    let columns = parse_columns(params.columns.as_deref(), format)?;
    let max = state.config.max_export_records;
    let limit = match params.limit {
        None => max,
        Some(limit) if (1..=max).contains(&limit) => limit,
        Some(limit) => {
            return Err(ApiError::bad_request(format!(
                "`limit` must be between 1 and {max} (search.max_export_records), got {limit}"
            ))
            .with_detail("field", "limit")
            .with_detail("limit", max))
        }
    };
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let resolved = SearchParams {
        query: params.query,
        from: params.from,
        to: params.to,
        default_operator: params.default_operator,
        ..SearchParams::default()
    }
    .resolve(&state.config)?;
    limiter.check_range(resolved.from_ns, resolved.to_ns)?;
    let permit = limiter.try_acquire()?;
    let search = ExportSearch {
        state,
        route,
        query: resolved.query,
        from_ns: resolved.from_ns,
        to_ns: resolved.to_ns,
        limiter,
    };
    let first = search.page(None, true).await?;
    let matches = first.total;
    let truncated = matches > limit as u64;
    let (chunks, receiver) = mpsc::channel::<Chunk>(BUFFERED_CHUNKS);
    let writer = RowWriter {
        format,
        columns,
        buffer: Vec::with_capacity(CHUNK_BYTES),
    };
    tokio::spawn(send_pages(search, first, limit, writer, chunks, permit));
    let body = Body::from_stream(futures::stream::unfold(receiver, |mut receiver| async {
        let chunk = receiver.recv().await?;
        Some((chunk, receiver))
    }));
    let (media, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let mut response = ([(CONTENT_TYPE, media)], body).into_response();
    let headers = response.headers_mut();
    let disposition = format!("attachment; filename=\"{project}-{pool}.{extension}\"");
    for (name, value) in [
        (CONTENT_DISPOSITION.as_str(), disposition),
        (EXPORT_MATCHES_HEADER, matches.to_string()),
        (EXPORT_LIMIT_HEADER, limit.to_string()),
        (EXPORT_TRUNCATED_HEADER, truncated.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

/// Sends the first page and then the following ones until `limit` records are out
/// or no match is left; ends when the client has gone (a send fails).
async fn send_pages(
    search: ExportSearch,
    first: PlannedSearch,
    limit: usize,
    mut writer: RowWriter,
    chunks: mpsc::Sender<Chunk>,
    permit: QueryPermit,
) {
    let _permit = permit;
    writer.header();
    let mut sent = 0usize;
    let mut page = first;
    loop {
        let hits = std::mem::take(&mut page.hits);
        let Some(last) = hits.last().map(|hit| hit.sort_key) else {
            break;
        };
        for hit in hits.into_iter().take(limit - sent) {
            writer.row(hit);
            sent += 1;
            if writer.buffer.len() >= CHUNK_BYTES && !writer.flush(&chunks).await {
                return;
            }
        }
        if sent >= limit {
            break;
        }
        page = match search.page(Some(last), false).await {
            Ok(page) => page,
            Err(error) => {
                // Dropping the sender mid-body would end it like a whole file; an
                // error chunk aborts the answer, so the client sees a broken
                // transfer instead.
                tracing::debug!(message = %error.message, "export stopped");
                if writer.flush(&chunks).await {
                    let _ = chunks.send(Err(std::io::Error::other(error.message))).await;
                }
                return;
            }
        };
    }
    writer.flush(&chunks).await;
}

/// Turns hits into the lines of one format.
struct RowWriter {
    format: Format,
    columns: Option<Vec<String>>,
    buffer: Vec<u8>,
}

impl RowWriter {
    fn header(&mut self) {
        if let (Format::Csv, Some(columns)) = (self.format, &self.columns) {
            let cells: Vec<String> = columns.iter().map(|name| csv_cell(name)).collect();
            self.buffer.extend_from_slice(cells.join(",").as_bytes());
            self.buffer.extend_from_slice(b"\r\n");
        }
    }

    fn row(&mut self, hit: SearchHit) {
        match (self.format, &self.columns) {
            (Format::Csv, Some(columns)) => {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|name| csv_cell(&text_of(&column_value(&hit, name))))
                    .collect();
                self.buffer.extend_from_slice(cells.join(",").as_bytes());
                self.buffer.extend_from_slice(b"\r\n");
            }
            (Format::Ndjson, Some(columns)) => {
                let object: serde_json::Map<String, Value> = columns
                    .iter()
                    .map(|name| (name.clone(), column_value(&hit, name)))
                    .collect();
                self.line(&Value::Object(object));
            }
            (_, None) => {
                let wire = hit_into_wire(hit, None);
                match serde_json::to_vec(&wire) {
                    Ok(text) => {
                        self.buffer.extend_from_slice(&text);
                        self.buffer.push(b'\n');
                    }
                    Err(error) => tracing::error!(%error, "an export line could not be written"),
                }
            }
        }
    }

    fn line(&mut self, value: &Value) {
        match serde_json::to_vec(value) {
            Ok(text) => {
                self.buffer.extend_from_slice(&text);
                self.buffer.push(b'\n');
            }
            Err(error) => tracing::error!(%error, "an export line could not be written"),
        }
    }

    /// Sends what is buffered; false when the client has gone.
    async fn flush(&mut self, chunks: &mpsc::Sender<Chunk>) -> bool {
        if self.buffer.is_empty() {
            return true;
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        chunks.send(Ok(chunk)).await.is_ok()
    }
}

/// A column of a hit: `time` and `id` are the record's own, any other name is a
/// field (a dotted name reaches into objects when no field has the whole name).
fn column_value(hit: &SearchHit, name: &str) -> Value {
    match name {
        "time" => Value::String(format_time_ns(hit.time_ns)),
        "id" if !hit.fields.contains_key("id") => Value::String(hit.id.clone()),
        _ => hit
            .fields
            .get(name)
            .cloned()
            .or_else(|| {
                let mut parts = name.split('.');
                let mut current = hit.fields.get(parts.next()?)?;
                for part in parts {
                    current = current.as_object()?.get(part)?;
                }
                Some(current.clone())
            })
            .unwrap_or(Value::Null),
    }
}

/// A value as CSV text: strings as they are, missing as empty, anything else JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn test_columns_default_by_format_and_are_bounded() {
        assert_eq!(
            parse_columns(None, Format::Csv).expect("ok"),
            Some(vec!["time".to_string(), "message".to_string()])
        );
        assert_eq!(parse_columns(Some(" "), Format::Ndjson).expect("ok"), None);
        assert_eq!(
            parse_columns(Some("status, path"), Format::Ndjson).expect("ok"),
            Some(vec!["status".to_string(), "path".to_string()])
        );
        let many = vec!["f"; MAX_COLUMNS + 1].join(",");
        let error = parse_columns(Some(&many), Format::Csv).expect_err("too many");
        assert_eq!(error.details["limit"], MAX_COLUMNS);
        assert!(Format::parse(Some("xml")).is_err());
    }

    #[test]
    fn test_column_values_reach_time_id_and_nested_fields() {
        let mut fields = serde_json::Map::new();
        fields.insert("message".into(), Value::from("hello"));
        fields.insert("http".into(), serde_json::json!({ "status": 503 }));
        let hit = SearchHit {
            id: "abc".into(),
            time_ns: 1_700_000_000_000_000_000,
            shard: 0,
            sort_key: SortKey {
                time_ns: 0,
                tiebreak: 0,
            },
            fields,
        };
        assert_eq!(column_value(&hit, "message"), "hello");
        assert_eq!(column_value(&hit, "http.status"), 503);
        assert_eq!(column_value(&hit, "id"), "abc");
        assert_eq!(column_value(&hit, "nope"), Value::Null);
        assert!(column_value(&hit, "time")
            .as_str()
            .is_some_and(|text| text.starts_with("2023-11-14T22:13:20")));
    }
}
