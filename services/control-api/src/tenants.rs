//! `/v1/tenants` and `/v1/tenants/{tenant}/keys`: tenants (operator only) and API
//! keys (tenant admins of their own tenant, operators of any).
//!
//! Operator keys are managed by operators only: a tenant admin of `default` (where
//! operator keys live) neither sees them in the list nor reads, creates, enables,
//! disables or deletes them (403). The bootstrap key cannot be disabled or deleted
//! through the API by anyone, so the operator can never be locked out; it is
//! replaced by restarting with another `LOGPOOL_ADMIN_KEY`.
//!
//! A new key's secret is answered once and never stored: only a salted SHA-256 is.
//! The secret is 256 random bits from the operating system's generator.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::{
    format_key, hash_secret, to_hex, Permission, Role, BOOTSTRAP_KEY_ID, DEFAULT_TENANT,
};
use logpool_engines::metadata::{ApiKey, MetadataStore, NewApiKey, Tenant};
use logpool_wire::control::{self as wire, Whoami};

use crate::projects::check_description;
use crate::{check_name, format_ms, ControlState};

pub(crate) fn routes() -> Routes<ControlState> {
    let keys = "/v1/tenants/{tenant}/keys";
    let key = "/v1/tenants/{tenant}/keys/{id}";
    Routes::new()
        .get("/v1/tenants", Permission::Operate, list_tenants)
        .post("/v1/tenants", Permission::Operate, create_tenant)
        .get("/v1/tenants/{tenant}", Permission::ManageTenant, get_tenant)
        .get(keys, Permission::ManageTenant, list_keys)
        .post(keys, Permission::ManageTenant, create_key)
        .get(key, Permission::ManageTenant, get_key)
        .patch(key, Permission::ManageTenant, update_key)
        .delete(key, Permission::ManageTenant, delete_key)
        .get("/v1/whoami", Permission::Authenticated, whoami)
}

fn tenant_of(tenant: &Tenant) -> wire::Tenant {
    wire::Tenant {
        created_at: format_ms(tenant.created_at_ms),
        name: tenant.name.clone(),
    }
}

fn key_of(key: &ApiKey) -> wire::ApiKey {
    wire::ApiKey {
        created_at: format_ms(key.created_at_ms),
        description: key.description.clone(),
        enabled: key.enabled,
        id: key.id.clone(),
        key: None,
        project: key.project.clone(),
        role: key.role.as_str().to_string(),
        tenant: key.tenant.clone(),
    }
}

async fn create_tenant(
    State(state): State<ControlState>,
    AppJson(body): AppJson<wire::CreateTenant>,
) -> Result<(StatusCode, Json<wire::Tenant>), ApiError> {
    check_name("name", &body.name)?;
    let _guard = state.change_lock.lock().await;
    let tenant = state.metadata.create_tenant(&body.name).await?;
    state.publish_routing().await?;
    Ok((StatusCode::CREATED, Json(tenant_of(&tenant))))
}

async fn list_tenants(
    State(state): State<ControlState>,
) -> Result<Json<wire::TenantList>, ApiError> {
    let tenants = state.metadata.list_tenants().await?;
    Ok(Json(wire::TenantList {
        tenants: tenants.iter().map(tenant_of).collect(),
    }))
}

async fn get_tenant(
    State(state): State<ControlState>,
    principal: Principal,
) -> Result<Json<wire::Tenant>, ApiError> {
    let tenant = state.metadata.get_tenant(&principal.tenant).await?;
    Ok(Json(tenant_of(&tenant)))
}

async fn whoami(principal: Principal) -> Json<Whoami> {
    Json(Whoami {
        key_id: principal.key_id,
        project: principal.project_scope,
        role: principal.role.as_str().to_string(),
        tenant: principal.tenant,
    })
}

async fn list_keys(
    State(state): State<ControlState>,
    principal: Principal,
) -> Result<Json<wire::KeyList>, ApiError> {
    state.metadata.get_tenant(&principal.tenant).await?;
    let keys = state.metadata.list_keys(&principal.tenant).await?;
    let visible = keys
        .iter()
        .filter(|key| may_manage(&principal, key))
        .map(key_of)
        .collect();
    Ok(Json(wire::KeyList { keys: visible }))
}

/// Whether `principal` may see and change `key`: operator keys belong to operators.
fn may_manage(principal: &Principal, key: &ApiKey) -> bool {
    key.role != Role::Operator || principal.role == Role::Operator
}

/// The key `id` of the principal's tenant, if the principal may manage it.
async fn managed_key(
    state: &ControlState,
    principal: &Principal,
    id: &str,
) -> Result<ApiKey, ApiError> {
    let key = state.metadata.get_key(&principal.tenant, id).await?;
    if !may_manage(principal, &key) {
        return Err(ApiError::forbidden(
            "operator keys can only be read or changed by an operator",
        )
        .with_detail("parameter", "id")
        .with_detail("role", principal.role.as_str()));
    }
    Ok(key)
}

/// Refuses to disable or delete the bootstrap key: it is the way back in for the
/// operator, whoever asks.
fn keep_bootstrap_usable(principal: &Principal, id: &str, action: &str) -> Result<(), ApiError> {
    if principal.tenant == DEFAULT_TENANT && id == BOOTSTRAP_KEY_ID {
        return Err(ApiError::forbidden(format!(
            "the bootstrap operator key cannot be {action} through the API; restart with another `LOGPOOL_ADMIN_KEY` to replace it"
        ))
        .with_detail("parameter", "id"));
    }
    Ok(())
}

async fn get_key(
    State(state): State<ControlState>,
    principal: Principal,
    Path((_tenant, id)): Path<(String, String)>,
) -> Result<Json<wire::ApiKey>, ApiError> {
    let key = managed_key(&state, &principal, &id).await?;
    Ok(Json(key_of(&key)))
}

async fn create_key(
    State(state): State<ControlState>,
    principal: Principal,
    AppJson(body): AppJson<wire::CreateKey>,
) -> Result<(StatusCode, Json<wire::ApiKey>), ApiError> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`role` must be one of {}, got `{}`",
            Role::ALL.map(Role::as_str).join(", "),
            body.role
        ))
        .with_detail("field", "role")
    })?;
    if role == Role::Operator
        && (principal.role != Role::Operator || principal.tenant != DEFAULT_TENANT)
    {
        return Err(ApiError::forbidden(
            "operator keys can only be created by an operator, in the `default` tenant",
        )
        .with_detail("field", "role"));
    }
    if let Some(project) = &body.project {
        if !role.may_have_project_scope() {
            return Err(ApiError::bad_request(format!(
                "a `{role}` key cannot be limited to a project; only project_admin, writer and reader keys can"
            ))
            .with_detail("field", "project"));
        }
        check_name("project", project)?;
        state
            .metadata
            .get_project(&principal.tenant, project)
            .await?;
    }
    check_description(&body.description)?;
    let _guard = state.change_lock.lock().await;
    let (new_key, secret) = generate_key(&principal.tenant, role, body.project, body.description);
    let stored = state.metadata.create_key(new_key).await?;
    state.publish_routing().await?;
    let mut answer = key_of(&stored);
    answer.key = Some(format_key(&stored.id, &secret));
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn update_key(
    State(state): State<ControlState>,
    principal: Principal,
    Path((_tenant, id)): Path<(String, String)>,
    AppJson(body): AppJson<wire::UpdateKey>,
) -> Result<Json<wire::ApiKey>, ApiError> {
    if !body.enabled {
        keep_bootstrap_usable(&principal, &id, "disabled")?;
    }
    let _guard = state.change_lock.lock().await;
    managed_key(&state, &principal, &id).await?;
    let key = state
        .metadata
        .set_key_enabled(&principal.tenant, &id, body.enabled)
        .await?;
    state.publish_routing().await?;
    Ok(Json(key_of(&key)))
}

async fn delete_key(
    State(state): State<ControlState>,
    principal: Principal,
    Path((_tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    keep_bootstrap_usable(&principal, &id, "deleted")?;
    let _guard = state.change_lock.lock().await;
    managed_key(&state, &principal, &id).await?;
    state.metadata.delete_key(&principal.tenant, &id).await?;
    state.publish_routing().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Random hex of `bytes` bytes from the operating system.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::fill(buffer.as_mut_slice());
    to_hex(&buffer)
}

/// A new key: what to store, and the secret to show once.
fn generate_key(
    tenant: &str,
    role: Role,
    project: Option<String>,
    description: String,
) -> (NewApiKey, String) {
    let secret = random_hex(32);
    let salt = random_hex(16);
    let key = NewApiKey {
        id: random_hex(8),
        tenant: tenant.to_string(),
        role,
        project,
        description,
        hash: hash_secret(&salt, &secret),
        salt,
    };
    (key, secret)
}

/// Makes sure an operator key exists. With `admin_key` set (from
/// `LOGPOOL_ADMIN_KEY`), that key becomes the bootstrap operator key (replacing an
/// earlier one). Without it, a key is generated on first start only and returned so
/// that the caller prints it once.
///
/// # Errors
/// Fails when the metadata store fails.
pub async fn bootstrap_operator_key(
    metadata: &dyn MetadataStore,
    admin_key: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(admin_key) = admin_key {
        let salt = random_hex(16);
        metadata
            .save_bootstrap_key(&salt, &hash_secret(&salt, admin_key))
            .await?;
        return Ok(None);
    }
    match metadata.get_key(DEFAULT_TENANT, BOOTSTRAP_KEY_ID).await {
        Ok(_) => Ok(None),
        Err(logpool_engines::metadata::MetadataError::NotFound { .. }) => {
            let secret = format!("lpa_{}", random_hex(32));
            let salt = random_hex(16);
            metadata
                .save_bootstrap_key(&salt, &hash_secret(&salt, &secret))
                .await?;
            Ok(Some(secret))
        }
        Err(error) => Err(error.into()),
    }
}

/// [`bootstrap_operator_key`] at start-up, printing a generated key once (on the
/// first start only; `LOGPOOL_ADMIN_KEY` chooses it instead).
///
/// # Errors
/// Fails when the metadata store fails.
pub async fn announce_operator_key(
    metadata: &dyn MetadataStore,
    admin_key: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(generated) = bootstrap_operator_key(metadata, admin_key)
        .await
        .map_err(|e| anyhow::anyhow!("failed to store the operator key: {}", e.message))?
    {
        println!("logpool: generated operator key (shown once, keep it): {generated}");
    }
    Ok(())
}
