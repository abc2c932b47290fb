//! Field types that earlier versions kept in the `{prefix}-field-types` index (one
//! document per pool and field: `pool_id`, `field`, `type`), before learned types
//! moved to the metadata store. They are read once for loghub to import; then the
//! index is deleted.

use std::collections::HashMap;

use elasticsearch::http::Method;
use logpool_core::pool_id::PoolId;
use logpool_core::routing::FieldType;
use serde_json::{json, Value};

use super::ElasticsearchIndex;
use crate::index::{IndexError, IndexResult};
use crate::metadata::LearnedTypes;

/// Most pools and most fields per pool that earlier versions could hold (they capped
/// a pool's learned fields at this number).
const MAX_PER_REQUEST: usize = 10_000;

impl ElasticsearchIndex {
    fn legacy_types_index(&self) -> String {
        format!("{}-field-types", self.config.index_prefix)
    }

    /// The learned types of every pool in the legacy index; empty without the index.
    pub(super) async fn read_legacy_types(&self) -> IndexResult<HashMap<PoolId, LearnedTypes>> {
        let index = self.legacy_types_index();
        let pools_body = json!({
            "size": 0,
            "aggs": {"pools": {"terms": {"field": "pool_id", "size": MAX_PER_REQUEST}}},
        });
        let Some(answer) = self.run_search(&index, pools_body).await? else {
            return Ok(HashMap::new());
        };
        let mut pools = HashMap::new();
        for bucket in answer["aggregations"]["pools"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let pool_id = bucket["key"]
                .as_i64()
                .or_else(|| bucket["key"].as_f64().map(|key| key as i64))
                .ok_or_else(|| corrupted(&index, "a pool id that is not a number", bucket))?;
            let fields_body = json!({
                "query": {"term": {"pool_id": pool_id}},
                "size": MAX_PER_REQUEST,
                "_source": ["field", "type"],
            });
            let Some(answer) = self.run_search(&index, fields_body).await? else {
                continue;
            };
            let mut types = LearnedTypes::new();
            for hit in answer["hits"]["hits"].as_array().into_iter().flatten() {
                let source = &hit["_source"];
                let field = source["field"]
                    .as_str()
                    .ok_or_else(|| corrupted(&index, "a document without `field`", hit))?;
                let field_type: FieldType = serde_json::from_value(source["type"].clone())
                    .map_err(|_| corrupted(&index, "a document with an unknown `type`", hit))?;
                types.insert(field.to_string(), field_type);
            }
            pools.insert(PoolId::new(pool_id), types);
        }
        Ok(pools)
    }

    /// Deletes the legacy index; a missing one is fine.
    pub(super) async fn delete_legacy_types(&self) -> IndexResult<()> {
        let index = self.legacy_types_index();
        let response = self.call(Method::Delete, &index, &[], None).await?;
        if !response.is_success() && response.status != 404 {
            return Err(response.into_error(&format!("delete index `{index}`")));
        }
        Ok(())
    }
}

fn corrupted(index: &str, what: &str, found: &Value) -> IndexError {
    IndexError::Corrupted(format!("learned field types in `{index}`: {what}: {found}"))
}
