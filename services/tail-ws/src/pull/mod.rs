//! REST queue reads: a pool read as a queue, with cursors and consumer groups.
//!
//! - [`reads`]: `GET .../shards`, `GET .../shards/{k}/cursor?from=...` and
//!   `GET .../shards/{k}/records?cursor=C&count=N`. Records come straight from the
//!   queue, in shard order, shaped like tail and search hits (`id`, `time`, `shard`,
//!   `fields`).
//! - [`cursor`]: signed cursors bound to their tenant, project, pool and shard.
//! - [`groups`]: consumer groups, whose members, shard owners and checkpoints live in
//!   the metadata store so that every tail-ws process agrees on who reads what.
//!
//! See `docs/api.md` ("Queue reads" and "Consumer groups").

pub mod cursor;
pub mod groups;
pub mod reads;

use std::sync::Arc;

use axum::Router;
use logpool_api::{ApiError, Routes, RoutingView};
use logpool_core::access::Permission;
use logpool_core::routing::PoolRoute;
use logpool_engines::metadata::MetadataStore;
use logpool_engines::queue::Queue;
use tokio::sync::OnceCell;

use self::cursor::{CursorKey, CursorScope};

/// What the queue-read handlers need.
#[derive(Debug, Clone)]
pub struct PullState {
    /// The queue to read.
    pub queue: Arc<dyn Queue>,
    /// Consumer groups and the cursor key.
    pub metadata: Arc<dyn MetadataStore>,
    /// Pool routes.
    pub routing: RoutingView,
    /// The cursor key, loaded from the metadata store on first use (so a store that
    /// is down at start only fails the requests that need it).
    key: Arc<OnceCell<CursorKey>>,
}

impl PullState {
    /// Creates the state; the cursor key is loaded on first use.
    pub fn new(
        queue: Arc<dyn Queue>,
        metadata: Arc<dyn MetadataStore>,
        routing: RoutingView,
    ) -> PullState {
        PullState {
            queue,
            metadata,
            routing,
            key: Arc::new(OnceCell::new()),
        }
    }

    /// Returns the cursor key, loading it once.
    async fn cursor_key(&self) -> Result<&CursorKey, ApiError> {
        let key = self
            .key
            .get_or_try_init(|| CursorKey::load_or_create(self.metadata.as_ref()))
            .await?;
        Ok(key)
    }
}

/// The queue-read and consumer-group routes with their permissions: reading,
/// heart-beating and checkpointing are reads; creating and deleting a group changes
/// the project.
pub fn routes() -> Routes<PullState> {
    let pool = "/v1/projects/{project}/pools/{pool}";
    let read = Permission::Read;
    let manage = Permission::ManageProject;
    Routes::new()
        .get(&format!("{pool}/shards"), read, reads::list_shards)
        .get(
            &format!("{pool}/shards/{{shard}}/cursor"),
            read,
            reads::cursor,
        )
        .get(
            &format!("{pool}/shards/{{shard}}/records"),
            read,
            reads::records,
        )
        .post(&format!("{pool}/consumer-groups"), manage, groups::create)
        .get(&format!("{pool}/consumer-groups"), read, groups::list)
        .delete(
            &format!("{pool}/consumer-groups/{{group}}"),
            manage,
            groups::delete,
        )
        .post(
            &format!("{pool}/consumer-groups/{{group}}/heartbeat"),
            read,
            groups::heartbeat,
        )
        .put(
            &format!("{pool}/consumer-groups/{{group}}/checkpoints"),
            read,
            groups::save_checkpoint,
        )
        .get(
            &format!("{pool}/consumer-groups/{{group}}/checkpoints"),
            read,
            groups::list_checkpoints,
        )
}

/// Builds the queue-read router.
pub fn router(state: PullState) -> Router {
    let access = state.routing.clone();
    let router = routes().into_router(access).with_state(state);
    logpool_api::layers::with_common_layers(router)
}

/// A pool and one of its shards, resolved from the path.
struct ShardRef {
    route: PoolRoute,
    shard: u32,
}

impl ShardRef {
    /// Resolves `{project}/{pool}/{shard}`: 404 for an unknown pool, 400 for a shard
    /// that is not a number, 404 for a shard the pool does not have.
    fn resolve(
        routing: &RoutingView,
        tenant: &str,
        project: &str,
        pool: &str,
        shard: &str,
    ) -> Result<ShardRef, ApiError> {
        let route = routing.pool(tenant, project, pool)?;
        let shard = parse_shard(shard, &route)?;
        Ok(ShardRef { route, shard })
    }

    fn scope(&self) -> CursorScope<'_> {
        CursorScope {
            tenant: &self.route.tenant,
            project: &self.route.project,
            pool: &self.route.name,
            pool_id: self.route.pool_id,
            shard: self.shard,
        }
    }

    fn addr(&self) -> Result<logpool_core::routing::ShardAddr, ApiError> {
        self.route
            .shard_addr(self.shard as usize)
            .ok_or_else(|| unknown_shard(self.shard, &self.route))
    }
}

/// Parses a shard index and checks that the pool has it.
fn parse_shard(text: &str, route: &PoolRoute) -> Result<u32, ApiError> {
    let shard: u32 = text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`shard` must be a shard index (0 to {}), got `{}`",
            route.partitions.len().saturating_sub(1),
            text.escape_debug()
        ))
        .with_detail("field", "shard")
    })?;
    if shard as usize >= route.partitions.len() {
        return Err(unknown_shard(shard, route));
    }
    Ok(shard)
}

fn unknown_shard(shard: u32, route: &PoolRoute) -> ApiError {
    ApiError::not_found(format!(
        "pool `{}` has no shard {shard}; it has {} shards (0 to {})",
        route.name,
        route.partitions.len(),
        route.partitions.len().saturating_sub(1)
    ))
    .with_detail("field", "shard")
}
