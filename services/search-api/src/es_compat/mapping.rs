//! `GET /es/{index}/_mapping` and `_field_caps`: the pool's fields with
//! Elasticsearch types, so Grafana lists them (text fields as `text` with a
//! `.keyword` sub-field, which is how dashboards name the field to group by; both
//! names reach the same field here). Field names stay flat with their dots
//! (`host.name`), which clients read as they read nested properties.

use std::collections::BTreeMap;

use logpool_core::routing::{FieldType, PoolRoute};
use logpool_wire::es_search::{
    EsFieldCap, EsFieldCaps, EsIndexMapping, EsMapping, EsProperties, EsProperty, EsSubField,
};

use super::query::TIME_FIELD;

/// Elasticsearch's type of a field type.
fn es_type(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Text => "text",
        FieldType::Keyword => "keyword",
        FieldType::Long => "long",
        FieldType::Double => "double",
        FieldType::Bool => "boolean",
        FieldType::Ip => "ip",
        FieldType::Timestamp => "date",
    }
}

/// The fields of a pool and their Elasticsearch types (the time field first).
fn typed_fields(route: &PoolRoute) -> Vec<(String, &'static str)> {
    let mut fields = vec![(TIME_FIELD.to_string(), "date")];
    fields.extend(
        route
            .field_types()
            .into_iter()
            .filter(|(name, _)| name != TIME_FIELD)
            .map(|(name, field_type)| (name, es_type(field_type))),
    );
    fields
}

/// `{index: {"mappings": {"properties": {...}}}}` for each index.
pub fn mapping(pools: &[(String, PoolRoute)]) -> EsMapping {
    let mut answer = BTreeMap::new();
    for (index, route) in pools {
        let properties = typed_fields(route)
            .into_iter()
            .map(|(name, es_type)| {
                let fields = (es_type == "text").then(|| {
                    BTreeMap::from([(
                        "keyword".to_string(),
                        EsSubField {
                            kind: "keyword".to_string(),
                            ignore_above: 256,
                        },
                    )])
                });
                let property = EsProperty {
                    kind: es_type.to_string(),
                    fields,
                };
                (name, property)
            })
            .collect();
        answer.insert(
            index.clone(),
            EsIndexMapping {
                mappings: EsProperties { properties },
            },
        );
    }
    EsMapping(answer)
}

/// `{"indices": [...], "fields": {name: {type: {"type", "searchable", "aggregatable"}}}}`,
/// limited to the names `fields` asks for (`*`, exact names, `prefix*`).
pub fn field_caps(pools: &[(String, PoolRoute)], wanted: Option<&str>) -> EsFieldCaps {
    let patterns: Vec<&str> = wanted
        .unwrap_or("*")
        .split(',')
        .map(str::trim)
        .filter(|pattern| !pattern.is_empty())
        .collect();
    let is_wanted = |name: &str| {
        patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => *pattern == name,
            })
    };
    let mut fields: BTreeMap<String, BTreeMap<String, EsFieldCap>> = BTreeMap::new();
    let mut add = |name: String, es_type: &'static str| {
        if is_wanted(&name) {
            fields.entry(name).or_default().insert(
                es_type.to_string(),
                EsFieldCap {
                    kind: es_type.to_string(),
                    searchable: true,
                    aggregatable: es_type != "text",
                },
            );
        }
    };
    for (_, route) in pools {
        for (name, es_type) in typed_fields(route) {
            if es_type == "text" {
                add(format!("{name}.keyword"), "keyword");
            }
            add(name, es_type);
        }
    }
    EsFieldCaps {
        indices: pools.iter().map(|(index, _)| index.clone()).collect(),
        fields,
    }
}
