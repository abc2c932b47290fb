//! Shard listing, cursors and record reads.
//!
//! A read returns at most `count` records from the cursor on, in shard order, and the
//! cursor right after the last one returned (`next_cursor`); reading again from it
//! goes on without a gap or a repeat, also across restarts. A cursor may stop in the
//! middle of a queue message (a batch of records): it remembers how many of that
//! message's records were read. A cursor whose data retention has removed is answered
//! 410 with the earliest valid cursor, never silently moved forward.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logpool_api::{ApiError, AppQuery, ErrorCode, Principal};
use logpool_core::batch::decode_batch;
use logpool_core::doc_id::DocIdentity;
use logpool_core::record::format_time_ns;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::queue::{Position, ReadStart};
use logpool_wire::queue as wire;
use logpool_wire::search::Hit;

use super::cursor::{CursorError, CursorPlace};
use super::{PullState, ShardRef};

/// Records returned when `count` is not given.
pub const DEFAULT_COUNT: u32 = 100;
/// Most records one read returns.
pub const MAX_COUNT: u32 = 1000;
/// Queue messages asked for per queue read; each holds at least one record.
const MESSAGES_PER_QUEUE_READ: usize = 64;
/// Queue reads per request at most, so a request over many empty or damaged
/// messages still ends quickly.
const MAX_QUEUE_READS_PER_REQUEST: usize = 32;

/// `GET .../shards`
pub(super) async fn list_shards(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<wire::ShardList>, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let key = state.cursor_key().await?;
    let mut shards = Vec::with_capacity(route.partitions.len());
    for shard in 0..route.partitions.len() as u32 {
        let shard_ref = ShardRef {
            route: route.clone(),
            shard,
        };
        let addr = shard_ref.addr()?;
        let end_position = state.queue.end_position(&addr).await?;
        let begin_position = state.queue.begin_position(&addr).await?.min(end_position);
        let scope = shard_ref.scope();
        shards.push(wire::QueueShard {
            shard,
            begin_position,
            end_position,
            begin_cursor: key.encode(&scope, CursorPlace::at(begin_position)),
            end_cursor: key.encode(&scope, CursorPlace::at(end_position)),
        });
    }
    Ok(Json(wire::ShardList { shards }))
}

/// `GET .../shards/{k}/cursor?from=begin|end|TIME`
pub(super) async fn cursor(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, shard)): Path<(String, String, String)>,
    AppQuery(params): AppQuery<wire::CursorParams>,
) -> Result<Json<wire::CursorAnswer>, ApiError> {
    let shard_ref = ShardRef::resolve(&state.routing, &principal.tenant, &project, &pool, &shard)?;
    let from = params.from.ok_or_else(|| {
        ApiError::bad_request(
            "`from` is required: `begin`, `end`, or a time (RFC 3339 or epoch milliseconds)",
        )
        .with_detail("field", "from")
    })?;
    let addr = shard_ref.addr()?;
    let position = match from.as_str() {
        "begin" => state.queue.begin_position(&addr).await?,
        "end" => state.queue.end_position(&addr).await?,
        time => {
            let time_ns =
                parse_time_expr(time, logpool_api::time::now_ns()).map_err(|message| {
                    ApiError::bad_request(format!(
                        "`from` must be `begin`, `end` or a time: {message}"
                    ))
                    .with_detail("field", "from")
                })?;
            let time_ms = time_ns.div_euclid(1_000_000);
            state.queue.position_at_time(&addr, time_ms).await?
        }
    };
    let key = state.cursor_key().await?;
    Ok(Json(wire::CursorAnswer {
        cursor: key.encode(&shard_ref.scope(), CursorPlace::at(position)),
    }))
}

/// `GET .../shards/{k}/records?cursor=C&count=N`
pub(super) async fn records(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, shard)): Path<(String, String, String)>,
    AppQuery(params): AppQuery<wire::RecordsParams>,
) -> Result<Response, ApiError> {
    let shard_ref = ShardRef::resolve(&state.routing, &principal.tenant, &project, &pool, &shard)?;
    let count = params.count.unwrap_or(DEFAULT_COUNT);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "`count` must be between 1 and {MAX_COUNT}, got {count}"
        ))
        .with_detail("field", "count")
        .with_detail("max", MAX_COUNT));
    }
    let cursor = params.cursor.ok_or_else(|| {
        ApiError::bad_request("`cursor` is required; get one from `.../cursor?from=begin`")
            .with_detail("field", "cursor")
    })?;
    let key = state.cursor_key().await?;
    let scope = shard_ref.scope();
    let start = key.decode(&scope, &cursor).map_err(cursor_error)?;
    let addr = shard_ref.addr()?;

    let read = read_records(&state, &shard_ref, start, count as usize).await?;
    let end = state.queue.end_position(&addr).await?;
    // Unless the read began exactly at the cursor, something between the cursor and
    // what was read may be missing: if retention removed it, say so (410) instead of
    // skipping it silently. The check runs only then, which keeps reads that go on
    // from `next_cursor` to one queue read.
    let began_at_cursor = read.first_position == Some(start.position);
    if !began_at_cursor && start.position < end {
        let begin = state.queue.begin_position(&addr).await?;
        if start.position < begin {
            return Ok(gone(&key.encode(&scope, CursorPlace::at(begin))));
        }
    }
    // Never behind `next_cursor`, even when messages arrived during the read.
    let end_place = if read.next.position >= end {
        read.next
    } else {
        CursorPlace::at(end)
    };
    Ok(Json(wire::QueueRecords {
        end_cursor: key.encode(&scope, end_place),
        next_cursor: key.encode(&scope, read.next),
        records: read.records,
    })
    .into_response())
}

/// What one request read.
struct RecordsRead {
    records: Vec<Hit>,
    /// Where the next read starts.
    next: CursorPlace,
    /// Position of the first message read, if any.
    first_position: Option<Position>,
}

/// Reads up to `count` records from `start`.
async fn read_records(
    state: &PullState,
    shard_ref: &ShardRef,
    start: CursorPlace,
    count: usize,
) -> Result<RecordsRead, ApiError> {
    let addr = shard_ref.addr()?;
    let mut records = Vec::new();
    let mut next = start;
    let mut first_position = None;
    'reads: for _ in 0..MAX_QUEUE_READS_PER_REQUEST {
        let remaining = count - records.len();
        if remaining == 0 {
            break;
        }
        let messages = state
            .queue
            .read(
                &addr,
                ReadStart::Position(next.position),
                remaining.min(MESSAGES_PER_QUEUE_READ),
            )
            .await?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            first_position.get_or_insert(message.position);
            let skip = if message.position == next.position {
                next.skip as usize
            } else {
                0
            };
            let decoded = match decode_batch(&message.payload) {
                Ok(decoded) => decoded,
                Err(error) => {
                    tracing::warn!(%error, shard = shard_ref.shard, position = message.position, "skipping an undecodable queue message");
                    next = CursorPlace::at(message.position.saturating_add(1));
                    continue;
                }
            };
            for (index, record) in decoded.into_iter().enumerate().skip(skip) {
                if records.len() == count {
                    next = CursorPlace {
                        position: message.position,
                        skip: u32::try_from(index).unwrap_or(u32::MAX),
                    };
                    break 'reads;
                }
                let identity = DocIdentity {
                    pool_id: shard_ref.route.pool_id,
                    partition: addr.partition,
                    position: message.position,
                    index_in_batch: u32::try_from(index).unwrap_or(u32::MAX),
                };
                records.push(Hit {
                    fields: record.fields_json(),
                    highlight: None,
                    id: identity.doc_id(),
                    shard: shard_ref.shard,
                    time: format_time_ns(record.time_ns),
                });
            }
            next = CursorPlace::at(message.position.saturating_add(1));
        }
    }
    Ok(RecordsRead {
        records,
        next,
        first_position,
    })
}

/// Maps a refused cursor to a 400 naming the field.
fn cursor_error(error: CursorError) -> ApiError {
    ApiError::bad_request(error.to_string()).with_detail("field", "cursor")
}

/// The 410 for a cursor whose data retention removed.
fn gone(earliest_cursor: &str) -> Response {
    ApiError::new(
        ErrorCode::Gone,
        "the data at `cursor` was removed by retention; go on from `earliest_cursor`",
    )
    .with_detail("field", "cursor")
    .with_detail("earliest_cursor", earliest_cursor)
    .into_response()
}
