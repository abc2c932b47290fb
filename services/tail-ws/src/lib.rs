//! tail-ws: live tail of a pool over WebSocket.
//!
//! `GET /v1/projects/{project}/pools/{pool}/tail?query=...` upgrades to a WebSocket
//! and streams records as they enter the queue, before indexing, so the delay is
//! the queue's, not the index commit interval. The query is the same language as
//! search, evaluated in memory by the core crate's evaluator.
//!
//! Frames (text, JSON): `{"type":"records","records":[{id,time,shard,fields}]}`;
//! the server pings every 20 s so that proxies keep the connection open. Records are
//! read from the queue at the client's pace: a slow client falls behind in the queue
//! instead of growing server memory.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use logpool_api::{ApiError, AppQuery, RoutingView};
use logpool_core::batch::decode_batch;
use logpool_core::doc_id::DocIdentity;
use logpool_core::query::{eval::matches, parse_query, DefaultOperator, Query as LogQuery};
use logpool_core::record::format_time_ns;
use logpool_core::routing::{PoolRoute, DEFAULT_TENANT};
use logpool_engines::queue::{Position, Queue, ReadStart};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

/// How often the queue is polled for new messages.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often the server pings.
const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Messages read per shard per poll.
const MESSAGES_PER_READ: usize = 64;

/// What the tail handler needs.
#[derive(Debug, Clone)]
pub struct TailState {
    /// The queue to read.
    pub queue: Arc<dyn Queue>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Flips to true at shutdown so open tails close cleanly.
    pub shutdown: watch::Receiver<bool>,
}

/// Builds the tail-ws router.
pub fn router(state: TailState) -> Router {
    let router = Router::new()
        .route("/v1/projects/{project}/pools/{pool}/tail", get(tail))
        .with_state(state);
    logpool_api::layers::with_common_layers(router)
}

/// Tail parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailParams {
    /// Filter; empty means every record.
    pub query: Option<String>,
}

async fn tail(
    State(state): State<TailState>,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<TailParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let route = state.routing.pool(DEFAULT_TENANT, &project, &pool)?;
    let query = parse_query(params.query.as_deref().unwrap_or(""), DefaultOperator::And).map_err(
        |error| {
            ApiError::bad_request(format!("invalid query: {error}"))
                .with_detail("field", "query")
                .with_detail("position", error.position)
        },
    )?;
    // Start at the end of every shard now, before the upgrade completes, so nothing
    // produced after the 101 answer is missed.
    let mut positions = Vec::new();
    for shard in route.shard_addrs() {
        positions.push(state.queue.end_position(&shard).await?);
    }
    Ok(upgrade.on_upgrade(move |socket| async move {
        if let Err(error) = stream(socket, state, route, query, positions).await {
            tracing::debug!(%error, "tail ended");
        }
    }))
}

async fn stream(
    mut socket: WebSocket,
    state: TailState,
    route: PoolRoute,
    query: LogQuery,
    mut positions: Vec<Position>,
) -> Result<(), axum::Error> {
    let mut shutdown = state.shutdown.clone();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return Ok(());
            }
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => socket.send(Message::Ping(Default::default())).await?,
            _ = poll.tick() => {
                let records = read_new(&state, &route, &query, &mut positions).await;
                if !records.is_empty() {
                    let frame = json!({ "type": "records", "records": records });
                    socket.send(Message::Text(frame.to_string().into())).await?;
                }
            }
        }
    }
}

/// Reads what arrived since `positions` on every shard and keeps matching records.
async fn read_new(
    state: &TailState,
    route: &PoolRoute,
    query: &LogQuery,
    positions: &mut [Position],
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (shard_index, shard) in route.shard_addrs().into_iter().enumerate() {
        let Some(position) = positions.get_mut(shard_index) else {
            continue;
        };
        let messages = match state
            .queue
            .read(&shard, ReadStart::Position(*position), MESSAGES_PER_READ)
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "tail read failed");
                continue;
            }
        };
        for message in messages {
            *position = message.position + 1;
            let Ok(records) = decode_batch(&message.payload) else {
                continue;
            };
            for (index, record) in records.into_iter().enumerate() {
                if !matches(query, &record) {
                    continue;
                }
                let identity = DocIdentity {
                    pool_id: route.pool_id,
                    partition: shard.partition,
                    position: message.position,
                    index_in_batch: index as u32,
                };
                out.push(json!({
                    "id": identity.doc_id(),
                    "time": format_time_ns(record.time_ns),
                    "shard": shard_index,
                    "fields": record.fields_json(),
                }));
            }
        }
    }
    out
}
