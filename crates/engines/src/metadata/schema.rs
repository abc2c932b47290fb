//! The pool schema: the field types each pool learned from first values.
//!
//! A field without a hint takes the type of the first value a pool ever indexes for
//! it (see [`logpool_core::field_types`]). loghub fixes the new types of a batch here
//! before it indexes the batch; when two workers see a new field at once, the first
//! write wins and both index with the stored type. control-api carries the types to
//! every service in the routing snapshot ([`logpool_core::routing::PoolRoute::learned_types`]).

use logpool_core::pool_id::PoolId;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use async_trait::async_trait;
use logpool_core::routing::FieldType;

use super::MetadataResult;

/// A pool's learned field types, by field name.
pub type LearnedTypes = BTreeMap<String, FieldType>;

/// Learned field types, per pool.
#[async_trait]
pub trait SchemaStore: Send + Sync + Debug + 'static {
    /// Stores `new` for the fields of pool `pool_id` that have no stored type yet
    /// (a field that has one keeps it), then returns every learned type of the pool.
    async fn learn_field_types(
        &self,
        pool_id: PoolId,
        new: &LearnedTypes,
    ) -> MetadataResult<LearnedTypes>;

    /// Returns the learned types of every existing pool by pool id, for the routing
    /// snapshot.
    async fn all_learned_field_types(&self) -> MetadataResult<HashMap<PoolId, LearnedTypes>>;

    /// A number that changes whenever a type is learned (0 before the first), so a
    /// publisher can tell whether its snapshot is behind.
    async fn field_types_revision(&self) -> MetadataResult<i64>;
}
