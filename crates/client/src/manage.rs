//! Pools, quotas, usage and pool stats.

use logpool_wire::control::{Pool, PoolList, UpdatePool};
use logpool_wire::quotas::{Limits, Usage};
use logpool_wire::stats::PoolStats;

use crate::{ClientResult, LogpoolClient};

impl LogpoolClient {
    /// One pool.
    ///
    /// # Errors
    /// Any non-2xx answer (404 when it does not exist).
    pub async fn pool(&self, project: &str, pool: &str) -> ClientResult<Pool> {
        self.get_as(&format!("/v1/projects/{project}/pools/{pool}"))
            .await
    }

    /// The pools of a project.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn pools(&self, project: &str) -> ClientResult<Vec<Pool>> {
        let list: PoolList = self
            .get_as(&format!("/v1/projects/{project}/pools"))
            .await?;
        Ok(list.pools)
    }

    /// Changes a pool; members of `patch` left out keep their values.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn update_pool(
        &self,
        project: &str,
        pool: &str,
        patch: &UpdatePool,
    ) -> ClientResult<Pool> {
        self.send_as(
            reqwest::Method::PATCH,
            &format!("/v1/projects/{project}/pools/{pool}"),
            patch,
        )
        .await
    }

    /// What a pool holds and how far each consumer is behind.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn pool_stats(&self, project: &str, pool: &str) -> ClientResult<PoolStats> {
        self.get_as(&format!("/v1/projects/{project}/pools/{pool}/stats"))
            .await
    }

    /// The limits of a tenant.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn tenant_quotas(&self, tenant: &str) -> ClientResult<Limits> {
        self.get_as(&format!("/v1/tenants/{tenant}/quotas")).await
    }

    /// Sets the limits of a tenant (operators only).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn set_tenant_quotas(&self, tenant: &str, limits: &Limits) -> ClientResult<Limits> {
        self.send_as(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{tenant}/quotas"),
            limits,
        )
        .await
    }

    /// The limits of a project.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn project_quotas(&self, project: &str) -> ClientResult<Limits> {
        self.get_as(&format!("/v1/projects/{project}/quotas")).await
    }

    /// Sets the limits of a project.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn set_project_quotas(&self, project: &str, limits: &Limits) -> ClientResult<Limits> {
        self.send_as(
            reqwest::Method::PUT,
            &format!("/v1/projects/{project}/quotas"),
            limits,
        )
        .await
    }

    /// A tenant's keys, pools and storage, per project with its quotas.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn usage(&self, tenant: &str) -> ClientResult<Usage> {
        self.get_as(&format!("/v1/tenants/{tenant}/usage")).await
    }
}
