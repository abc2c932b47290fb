//! `GET|POST /v1/projects/{project}/pools/{pool}/search/stream`: the search of
//! `/search` as NDJSON, one line per planner step, so a console can draw a progress
//! bar and show the first hits while older partitions are still searched.
//!
//! Lines: `{"progress": {"scanned", "total"}, "hits": [...]}` after every step (the
//! hits that step added, in the search's order), then one closing line
//! `{"done": true, "total", "cursor", "progress", "partial", "truncated"}`. An index
//! failure after the answer has started is sent as a last
//! `{"error": {"code", "message"}}` line. Mistakes in the request are ordinary 4xx
//! answers, before any line.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use logpool_api::{ApiError, AppParams};
use logpool_wire::search::{Hit, StreamDone, StreamStep};
use logpool_wire::{ErrorBody, ErrorObject};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::hits::hit_into_wire;
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
                let hits: Vec<Hit> = step_hits
                    .into_iter()
                    .map(|hit| hit_into_wire(hit, highlighter.as_ref()))
                    .collect();
                let line = StreamStep {
                    hits,
                    progress: planned.progress(),
                };
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
                // The code and message only: details may name internals of the engine.
                let line = ErrorBody {
                    error: ErrorObject {
                        code: error.code,
                        message: error.message,
                        details: Default::default(),
                    },
                };
                send(&lines, &line).await;
                return;
            }
        }
    }
    let done = StreamDone {
        cursor: next_cursor(&planned),
        done: true,
        partial: planned.partial,
        progress: planned.progress(),
        total: planned.total,
        truncated: planned.truncated,
    };
    send(&lines, &done).await;
    drop(permit);
}

/// Sends one NDJSON line; false when the client has gone.
async fn send(lines: &mpsc::Sender<Bytes>, line: &impl Serialize) -> bool {
    let mut text = match serde_json::to_vec(line) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, "a stream line could not be written");
            return false;
        }
    };
    text.push(b'\n');
    lines.send(Bytes::from(text)).await.is_ok()
}
