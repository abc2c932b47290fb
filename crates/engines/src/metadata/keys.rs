//! Typed keys of the metadata store: what a request names, as one value instead of
//! loose strings in a fixed order.

use std::fmt;

use logpool_core::routing::PoolRoute;

/// A pool named by its tenant, project and name, as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolRef {
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// The pool's name in its project.
    pub pool: String,
}

impl PoolRef {
    /// The pool `pool` of `project` of `tenant`.
    pub fn new(
        tenant: impl Into<String>,
        project: impl Into<String>,
        pool: impl Into<String>,
    ) -> PoolRef {
        PoolRef {
            tenant: tenant.into(),
            project: project.into(),
            pool: pool.into(),
        }
    }

    /// The pool a route leads to.
    pub fn of(route: &PoolRoute) -> PoolRef {
        PoolRef::new(&route.tenant, &route.project, &route.name)
    }

    /// The consumer group `group` of this pool.
    pub fn group(&self, group: impl Into<String>) -> GroupRef {
        GroupRef {
            pool: self.clone(),
            group: group.into(),
        }
    }
}

impl fmt::Display for PoolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.project, self.pool)
    }
}

/// A consumer group named by its pool and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupRef {
    /// The group's pool.
    pub pool: PoolRef,
    /// The group's name in its pool.
    pub group: String,
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pool, self.group)
    }
}
