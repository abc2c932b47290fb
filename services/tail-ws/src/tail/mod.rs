//! The tail route: checks made before the upgrade, then one session per connection.
//!
//! Everything that can be refused is refused before the upgrade, with the usual JSON
//! error: a bad `query` or `start` (400), an unknown pool (404), too many tails for
//! the tenant or the pool (429). A client that offers the `logpool.tail.v1`
//! subprotocol gets these refusals after the upgrade instead ([`refusal`]), because
//! browsers hide the answer to a refused upgrade. After the upgrade the connection ends with a close
//! code and a reason ([`session`]).

pub mod buffer;
pub mod limits;
pub mod params;
pub mod pump;
pub mod refusal;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use logpool_api::ws_key::{self, TAIL_PROTOCOL};
use logpool_api::{ApiError, AppQuery, Principal, Routes, RoutingView};
use logpool_core::access::Permission;
use logpool_core::memory::TenantBudgets;
use logpool_engines::config::TailConfig;
use logpool_engines::queue::Queue;
use tokio::sync::watch;

use self::buffer::TailBuffer;
use self::limits::{TailLimitError, TailRegistry};
use self::params::TailParams;
use self::pump::{Pump, ShardSource};
use self::session::{run_session, SessionEnd};

/// How long a client refused by a limit should wait before trying again.
const LIMIT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What the tail handler needs.
#[derive(Debug, Clone)]
pub struct TailState {
    /// The queue to read.
    pub queue: Arc<dyn Queue>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Flips to true at shutdown so open tails close cleanly.
    pub shutdown: watch::Receiver<bool>,
    /// Limits and timings.
    pub config: Arc<TailConfig>,
    /// Open tails, for the concurrency limits.
    pub registry: Arc<TailRegistry>,
    /// Counters for `/metrics`.
    pub stats: Arc<crate::metrics::TailStats>,
    /// Bytes of buffered records per tenant (`buffer_bytes_per_tenant`).
    pub buffer_budgets: Arc<TenantBudgets>,
}

impl TailState {
    /// Creates the state with an empty registry sized by `config`.
    pub fn new(
        queue: Arc<dyn Queue>,
        routing: RoutingView,
        shutdown: watch::Receiver<bool>,
        config: TailConfig,
    ) -> TailState {
        let registry = Arc::new(TailRegistry::new(
            config.max_tails_per_tenant,
            config.max_tails_per_pool,
        ));
        TailState {
            queue,
            routing,
            shutdown,
            buffer_budgets: Arc::new(TenantBudgets::new(config.buffer_bytes_per_tenant)),
            config: Arc::new(config),
            registry,
            stats: Arc::default(),
        }
    }
}

/// The live-tail route with its permission. Browsers cannot set headers on a
/// WebSocket, so the key may also come as a subprotocol entry
/// ([`logpool_api::ws_key`]) or, for clients written before that, as `?token=`.
pub fn routes() -> Routes<TailState> {
    Routes::new().get_with_query_token(
        "/v1/projects/{project}/pools/{pool}/tail",
        Permission::Read,
        tail,
    )
}

/// Builds the tail-ws router.
pub fn router(state: TailState) -> Router {
    let access = state.routing.clone();
    let router = routes().into_router(access).with_state(state);
    logpool_api::layers::with_common_layers(router)
}

/// What a tail holds once every check passed: its place among the open tails, its
/// buffer and the pump that fills it.
struct OpenedTail {
    route: logpool_core::routing::PoolRoute,
    permit: limits::TailPermit,
    buffer: Arc<TailBuffer>,
    pump: Pump,
}

/// Makes every check of a tail request and opens its readers.
async fn open(
    state: &TailState,
    principal: &Principal,
    project: &str,
    pool: &str,
    params: TailParams,
) -> Result<OpenedTail, ApiError> {
    let route = state.routing.pool(&principal.tenant, project, pool)?;
    let request = params.check(logpool_api::time::now_ns(), state.config.max_backfill_secs)?;
    let tail_quota = state
        .routing
        .snapshot()
        .access
        .limits_for(&route.tenant, None)
        .concurrent_tails;
    let permit = state
        .registry
        .try_open_within(&route.tenant, route.pool_id, tail_quota)
        .map_err(|error| {
            let limit = match error {
                TailLimitError::TooManyForTenant { max } => ("max_tails_per_tenant", max),
                TailLimitError::TooManyForPool { max } => ("max_tails_per_pool", max),
            };
            ApiError::new(
                logpool_api::ErrorCode::TooManyRequests,
                format!("too many live tails: {error}"),
            )
            .with_detail("limit", limit.0)
            .with_detail("max", limit.1)
            .with_retry_after(LIMIT_RETRY_AFTER)
        })?;
    // The readers open before the 101 answer: with no `start`, every record produced
    // after the client saw the upgrade succeed is delivered.
    let mut sources = Vec::with_capacity(route.partitions.len());
    for (shard_index, shard) in route.shard_addrs().into_iter().enumerate() {
        let reader = state.queue.open_reader(&shard, request.start).await?;
        sources.push(ShardSource::new(shard_index, shard.partition, reader));
    }
    let memory = state
        .buffer_budgets
        .request(&route.tenant, state.config.buffer_bytes);
    let buffer = Arc::new(TailBuffer::new(state.config.buffer_records, memory));
    let pump = Pump {
        route: route.clone(),
        query: request.query,
        sources,
        buffer: Arc::clone(&buffer),
        routing: state.routing.receiver(),
        poll_interval: Duration::from_millis(state.config.poll_interval_ms),
    };
    Ok(OpenedTail {
        route,
        permit,
        buffer,
        pump,
    })
}

async fn tail(
    State(state): State<TailState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<TailParams>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.protocols([TAIL_PROTOCOL]);
    let opened = match open(&state, &principal, &project, &pool, params).await {
        Ok(opened) => opened,
        // A browser sees nothing of an HTTP answer to an upgrade (only "1006"), so a
        // client that speaks the tail subprotocol gets the refusal in-band.
        Err(error) if ws_key::offers(&headers, TAIL_PROTOCOL) => {
            return Ok(refusal::in_band(upgrade, error));
        }
        Err(error) => return Err(error),
    };
    let OpenedTail {
        route,
        permit,
        buffer,
        pump,
    } = opened;
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _permit = permit;
        let _counted_open = state.stats.open_tail();
        let pump = tokio::spawn(pump.run());
        let end = run_session(
            socket,
            buffer,
            pump,
            state.shutdown.clone(),
            &state.config,
            &route.name,
            &state.stats,
        )
        .await;
        match end {
            SessionEnd::ClientGone => {
                tracing::debug!(pool = %route.name, "tail closed by the client")
            }
            SessionEnd::Closed { code, reason } => {
                tracing::debug!(pool = %route.name, code, %reason, "tail closed by the server");
            }
        }
    }))
}
