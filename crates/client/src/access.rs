//! Tenants, API keys, projects, the caller's own key and the cluster's members.

use logpool_wire::control::{
    ApiKey, CreateKey, CreateTenant, KeyList, Member, MemberList, Project, ProjectList, Tenant,
    TenantList, UpdateKey, Whoami,
};
use serde::de::IgnoredAny;

use crate::{ClientResult, LogpoolClient};

impl LogpoolClient {
    /// The key this client sends: its tenant, role and project scope.
    ///
    /// # Errors
    /// Any non-2xx answer (401 for a key that is not accepted).
    pub async fn whoami(&self) -> ClientResult<Whoami> {
        self.get_as("/v1/whoami").await
    }

    /// Every tenant (operators only).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn tenants(&self) -> ClientResult<Vec<Tenant>> {
        let list: TenantList = self.get_as("/v1/tenants").await?;
        Ok(list.tenants)
    }

    /// Creates a tenant (operators only).
    ///
    /// # Errors
    /// Any non-2xx answer (409 when it exists).
    pub async fn create_tenant(&self, name: &str) -> ClientResult<Tenant> {
        let body = CreateTenant {
            name: name.to_string(),
        };
        self.send_as(reqwest::Method::POST, "/v1/tenants", &body)
            .await
    }

    /// Creates an API key of `tenant`; the answer's `key` is the only time its
    /// secret is shown.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn create_key(&self, tenant: &str, key: &CreateKey) -> ClientResult<ApiKey> {
        self.send_as(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/keys"),
            key,
        )
        .await
    }

    /// The keys of `tenant` the caller may see (never their secrets).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn keys(&self, tenant: &str) -> ClientResult<Vec<ApiKey>> {
        let list: KeyList = self.get_as(&format!("/v1/tenants/{tenant}/keys")).await?;
        Ok(list.keys)
    }

    /// Enables or disables a key; a disabled key gets 401 everywhere.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn set_key_enabled(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> ClientResult<ApiKey> {
        self.send_as(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/{tenant}/keys/{id}"),
            &UpdateKey { enabled },
        )
        .await
    }

    /// Deletes a key.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn delete_key(&self, tenant: &str, id: &str) -> ClientResult<()> {
        let response = self
            .request(
                reqwest::Method::DELETE,
                self.url(&format!("/v1/tenants/{tenant}/keys/{id}")),
            )
            .send()
            .await?;
        Self::answer::<IgnoredAny>(response).await.map(drop)
    }

    /// The projects the key may see.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn projects(&self) -> ClientResult<Vec<Project>> {
        let list: ProjectList = self.get_as("/v1/projects").await?;
        Ok(list.projects)
    }

    /// The service processes running now.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn cluster_members(&self) -> ClientResult<Vec<Member>> {
        let list: MemberList = self.get_as("/v1/cluster/members").await?;
        Ok(list.members)
    }
}
