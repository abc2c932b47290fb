//! The rule that maps an Elasticsearch index name to a pool: `{project}.{pool}`.
//!
//! Project and pool names are 2 to 63 characters of `a-z 0-9 -` (no dot), so the
//! one dot of an index name splits it unambiguously. Bulk ingest refuses an index
//! that names no existing pool per item (404), never creating one; the
//! Elasticsearch-compatible search reads the same names.

use crate::names::validate_name;

/// A project and pool named by an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolName {
    /// The project.
    pub project: String,
    /// The pool.
    pub pool: String,
}

/// Reads `{project}.{pool}`.
///
/// # Errors
/// Says what the index name should look like.
pub fn pool_of_index(index: &str) -> Result<PoolName, String> {
    let rule = "an index name must be `{project}.{pool}`, each 2 to 63 characters of \
                a-z, 0-9 and `-`";
    let (project, pool) = index
        .split_once('.')
        .ok_or_else(|| format!("index `{}` has no `.`: {rule}", index.escape_debug()))?;
    if validate_name(project).is_err() || validate_name(pool).is_err() {
        return Err(format!(
            "index `{}` is not valid: {rule}",
            index.escape_debug()
        ));
    }
    Ok(PoolName {
        project: project.to_string(),
        pool: pool.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_project_dot_pool() {
        assert_eq!(
            pool_of_index("shop.web-logs"),
            Ok(PoolName {
                project: "shop".to_string(),
                pool: "web-logs".to_string()
            })
        );
        for bad in [
            "shop",
            "shop.",
            ".web",
            "shop.web.x",
            "Shop.web",
            "filebeat-7.10.2",
        ] {
            assert!(pool_of_index(bad).is_err(), "{bad}");
        }
    }
}
