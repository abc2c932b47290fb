//! `GET|POST /v1/projects/{project}/pools/{pool}/search/stream`: the search of
//! `/search` as NDJSON, one line per planner step, so a console can draw a progress
//! bar and show the first hits while older partitions are still searched.
//!
//! Lines: `{"progress": {"scanned", "total"}, "hits": [...]}` after every step (the
//! hits that step added, newest first), then one closing line
//! `{"done": true, "total", "cursor", "progress", "partial", "truncated"}`. An index
//! failure after the answer has started is sent as a last
//! `{"error": {"code", "message"}}` line. Mistakes in the request are ordinary 4xx
//! answers, before any line.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use logpool_api::{ApiError, AppParams};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::hits::hit_into_json;
use crate::params::SearchParams;
use crate::{next_cursor, prepare_search, PreparedSearch, SearchState};

/// Lines buffered ahead of a slow reader; the search waits beyond that.
const BUFFERED_LINES: usize = 4;

pub(crate) async fn search_stream(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<SearchParams>,
) -> Result<Response, ApiError> {
    let prepared = prepare_search(&state, &limiter, &project, &pool, params).await?;
    let (lines, receiver) = mpsc::channel::<Bytes>(BUFFERED_LINES);
    // The task ends when the search is done or the client has gone (a send fails),
    // and holds the query permit until then.
    tokio::spawn(run_steps(prepared, lines));
    let body = Body::from_stream(futures::stream::unfold(receiver, |mut receiver| async {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<Bytes, std::convert::Infallible>(line), receiver))
    }));
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn run_steps(prepared: PreparedSearch, lines: mpsc::Sender<Bytes>) {
    let PreparedSearch {
        mut planned,
        highlighter,
        permit,
    } = prepared;
    loop {
        match planned.step().await {
            Ok(Some(step_hits)) => {
                let hits: Vec<Value> = step_hits
                    .into_iter()
                    .map(|hit| hit_into_json(hit, highlighter.as_ref()))
                    .collect();
                let line = json!({"progress": planned.progress().to_json(), "hits": hits});
                if !send(&lines, &line).await {
                    return;
                }
            }
            Ok(None) => break,
            Err(error) => {
                // A mistake in the query is the caller's: logging it above debug
                // would let one reader flood the log. Engine failures are logged
                // at warn or error by the conversion below.
                tracing::debug!(%error, "streaming search stopped");
                let error = ApiError::from(error);
                let line =
                    json!({"error": {"code": error.code.as_str(), "message": error.message}});
                send(&lines, &line).await;
                return;
            }
        }
    }
    let done = json!({
        "done": true,
        "total": planned.total,
        "cursor": next_cursor(&planned),
        "progress": planned.progress().to_json(),
        "partial": planned.partial,
        "truncated": planned.truncated,
    });
    send(&lines, &done).await;
    drop(permit);
}

/// Sends one NDJSON line; false when the client has gone.
async fn send(lines: &mpsc::Sender<Bytes>, line: &Value) -> bool {
    let mut text = line.to_string();
    text.push('\n');
    lines.send(Bytes::from(text)).await.is_ok()
}
