//! The field types pools learned from first values, kept in the cluster.
//!
//! One small index, `{prefix}-field-types`, holds a document per pool and field,
//! with `_id` = `{pool_id}:{field}` (a digest of long names). A new type is written with a bulk `create`
//! before the documents that need it, so the first writer wins even when several
//! index workers see a new field at once: a 409 means another worker fixed the type
//! first, and the types are read back before the documents are built. Every process
//! then indexes and searches with the same types, across restarts and daily indices.
//!
//! Searches read the types through a cache refreshed every [`SEARCH_CACHE_TTL`];
//! a field learned meanwhile is searched as an untyped field until then (every
//! typed path that can hold the value is asked, so it is still found).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use logpool_core::field_types::{effective_types, learn_types};
use logpool_core::record::Record;
use logpool_core::routing::{FieldType, PoolRoute};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{lock, Body, ElasticsearchIndex};
use crate::index::{IndexError, IndexResult};

/// How long a search trusts the learned types it read.
pub(crate) const SEARCH_CACHE_TTL: Duration = Duration::from_secs(2);

/// Field names up to this many bytes are part of their type document's id as is.
const MAX_PLAIN_ID_FIELD_BYTES: usize = 256;

/// More fields than this in one pool is refused by the cluster's field limit long
/// before; it bounds the read-back.
const MAX_LEARNED_FIELDS: usize = 10_000;

/// A pool's learned types and when they were read.
type ReadTypes = (Instant, BTreeMap<String, FieldType>);

/// Learned types read from the cluster, per pool.
#[derive(Debug, Default)]
pub(crate) struct LearnedTypes {
    pools: std::sync::Mutex<std::collections::HashMap<i64, ReadTypes>>,
}

impl ElasticsearchIndex {
    fn types_index(&self) -> String {
        format!("{}-field-types", self.config.index_prefix)
    }

    /// The pool with its effective types (learned, overlaid by hints) as its hints:
    /// what searches compile with.
    pub(super) async fn typed_pool(&self, pool: &PoolRoute) -> IndexResult<PoolRoute> {
        let cached = lock(&self.learned_types.pools)
            .get(&pool.pool_id)
            .filter(|(read_at, _)| read_at.elapsed() < SEARCH_CACHE_TTL)
            .map(|(_, types)| types.clone());
        let learned = match cached {
            Some(types) => types,
            None => self.read_learned(pool.pool_id).await?,
        };
        Ok(with_types(pool, &learned))
    }

    /// Fixes the types of fields `records` show for the first time, then returns the
    /// pool with its effective types as its hints: what documents are built with.
    pub(super) async fn learn_types_of<'a>(
        &self,
        pool: &PoolRoute,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> IndexResult<PoolRoute> {
        // A type once learned never changes, so a cached one of any age is right; a
        // field missing from the cache is learned (or found taken) below.
        let cached = lock(&self.learned_types.pools)
            .get(&pool.pool_id)
            .map(|(_, types)| types.clone());
        let known = match cached {
            Some(types) => types,
            None => self.read_learned(pool.pool_id).await?,
        };
        let new = learn_types(&pool.field_hints, &known, records);
        if new.is_empty() {
            return Ok(with_types(pool, &known));
        }
        self.ensure_types_index().await?;
        let index = self.types_index();
        let mut lines = Vec::new();
        for (field, field_type) in &new {
            let action =
                json!({"create": {"_index": index, "_id": type_doc_id(pool.pool_id, field)}});
            let source = json!({"pool_id": pool.pool_id, "field": field, "type": field_type});
            for line in [action, source] {
                serde_json::to_writer(&mut lines, &line).map_err(|e| {
                    IndexError::Internal(format!("field type cannot be serialized: {e}"))
                })?;
                lines.push(b'\n');
            }
        }
        let response = self
            .call(
                Method::Post,
                "_bulk",
                &[("refresh", "true")],
                Some(Body::NdJson(lines)),
            )
            .await?;
        if !response.is_success() {
            return Err(response.into_error("write learned field types"));
        }
        let answer = response.json()?;
        for item in answer["items"].as_array().into_iter().flatten() {
            let status = item["create"]["status"].as_u64().unwrap_or(0);
            // 409: another worker fixed this field's type first; it is read back below.
            if !(200..300).contains(&status) && status != 409 {
                return Err(IndexError::Unavailable(format!(
                    "learned field type not written (status {status}): {}",
                    item["create"]["error"]
                )));
            }
        }
        let learned = self.read_learned(pool.pool_id).await?;
        if let Some(missing) = new.keys().find(|field| !learned.contains_key(*field)) {
            return Err(IndexError::Unavailable(format!(
                "learned type of field `{missing}` not readable yet"
            )));
        }
        Ok(with_types(pool, &learned))
    }

    /// Forgets the learned types of a dropped pool.
    pub(super) async fn drop_learned_types(&self, pool_id: i64) -> IndexResult<()> {
        lock(&self.learned_types.pools).remove(&pool_id);
        let response = self
            .call(
                Method::Post,
                &format!("{}/_delete_by_query", self.types_index()),
                &[("refresh", "true"), ("ignore_unavailable", "true")],
                Some(Body::Json(json!({"query": {"term": {"pool_id": pool_id}}}))),
            )
            .await?;
        if !response.is_success() && response.status != 404 {
            return Err(response.into_error("delete learned field types"));
        }
        Ok(())
    }

    async fn ensure_types_index(&self) -> IndexResult<()> {
        let index = self.types_index();
        if lock(&self.created_indices).contains(&index) {
            return Ok(());
        }
        let body = json!({
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": self.config.number_of_replicas,
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "pool_id": {"type": "long"},
                    "field": {"type": "keyword"},
                    "type": {"type": "keyword"},
                }
            }
        });
        let response = self
            .call(Method::Put, &index, &[], Some(Body::Json(body)))
            .await?;
        let exists = response.status == 400 && response.error().0.contains("already_exists");
        if !response.is_success() && !exists {
            return Err(response.into_error(&format!("create index `{index}`")));
        }
        lock(&self.created_indices).insert(index);
        Ok(())
    }

    async fn read_learned(&self, pool_id: i64) -> IndexResult<BTreeMap<String, FieldType>> {
        let body = json!({
            "query": {"term": {"pool_id": pool_id}},
            "size": MAX_LEARNED_FIELDS,
            "_source": ["field", "type"],
        });
        let types = match self.run_search(&self.types_index(), body).await? {
            None => BTreeMap::new(),
            Some(answer) => parse_learned(&answer)?,
        };
        lock(&self.learned_types.pools).insert(pool_id, (Instant::now(), types.clone()));
        Ok(types)
    }
}

/// The id of a pool's field type: readable when short, a digest of the name when it
/// could pass the cluster's 512-byte id limit.
fn type_doc_id(pool_id: i64, field: &str) -> String {
    if field.len() <= MAX_PLAIN_ID_FIELD_BYTES {
        return format!("{pool_id}:{field}");
    }
    let digest = Sha256::digest(field.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{pool_id}:sha256:{hex}")
}

fn parse_learned(answer: &Value) -> IndexResult<BTreeMap<String, FieldType>> {
    let mut types = BTreeMap::new();
    for hit in answer["hits"]["hits"].as_array().into_iter().flatten() {
        let source = &hit["_source"];
        let field = source["field"]
            .as_str()
            .ok_or_else(|| IndexError::Corrupted(format!("learned field type {hit}")))?;
        let field_type: FieldType = serde_json::from_value(source["type"].clone())
            .map_err(|e| IndexError::Corrupted(format!("learned field type {hit}: {e}")))?;
        types.insert(field.to_string(), field_type);
    }
    Ok(types)
}

fn with_types(pool: &PoolRoute, learned: &BTreeMap<String, FieldType>) -> PoolRoute {
    PoolRoute {
        field_hints: effective_types(&pool.field_hints, learned),
        ..pool.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_type_ids_stay_under_the_id_limit() {
        assert_eq!(type_doc_id(7, "status"), "7:status");
        let long = "é".repeat(200);
        let id = type_doc_id(7, &long);
        assert!(id.starts_with("7:sha256:") && id.len() < 100, "{id}");
        assert_eq!(id, type_doc_id(7, &long), "stable");
    }

    #[test]
    fn test_learned_types_are_read_from_hits() {
        let answer = json!({"hits": {"hits": [
            {"_source": {"field": "status", "type": "long"}},
            {"_source": {"field": "user", "type": "keyword"}}
        ]}});
        let types = parse_learned(&answer).expect("types");
        assert_eq!(types["status"], FieldType::Long);
        assert_eq!(types["user"], FieldType::Keyword);
        assert!(parse_learned(
            &json!({"hits": {"hits": [{"_source": {"field": "x", "type": "nope"}}]}})
        )
        .is_err());
    }
}
