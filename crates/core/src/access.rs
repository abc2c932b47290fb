//! Who may do what: tenants, API keys, roles, permissions and quotas.
//!
//! The metadata store is the source of truth for keys and limits; control-api copies
//! them into the routing snapshot ([`AccessTable`]) so that every service checks a
//! request against its own copy, with no round trip, and sees a disabled key within
//! one snapshot publication. Only a salted SHA-256 of each secret leaves control-api.
//! The secrets are 256 random bits, so a fast hash is enough: there is nothing to
//! guess that a slow hash would protect.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The tenant that exists from the start; the operator key's own projects live here.
pub const DEFAULT_TENANT: &str = crate::routing::DEFAULT_TENANT;

/// The id of the operator key made from `LOGPOOL_ADMIN_KEY` (or generated) at first
/// start. Any presented key that is not in the `lpk_<id>_<secret>` form is checked
/// against this one, so an operator may choose any string as the admin key.
pub const BOOTSTRAP_KEY_ID: &str = "bootstrap";

/// Prefix of generated keys: `lpk_<id>_<secret>`.
pub const KEY_PREFIX: &str = "lpk_";

/// What a key may do. Ordered from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, on every tenant.
    Operator,
    /// Everything inside its tenant: projects, keys, project quotas, usage.
    TenantAdmin,
    /// Pools, archive and consumer groups of its project (or of every project of its
    /// tenant when the key has no project), plus ingest and read.
    ProjectAdmin,
    /// Ingest only.
    Writer,
    /// Search, SQL, tail, pull, consumer-group reads, archive listing, stats.
    Reader,
}

impl Role {
    /// Every role, for matrices and validation messages.
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::TenantAdmin,
        Role::ProjectAdmin,
        Role::Writer,
        Role::Reader,
    ];

    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::TenantAdmin => "tenant_admin",
            Role::ProjectAdmin => "project_admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Whether a key with this role may be limited to one project. Tenant-wide and
    /// cluster-wide roles cannot: their routes have no project to check.
    pub fn may_have_project_scope(self) -> bool {
        matches!(self, Role::ProjectAdmin | Role::Writer | Role::Reader)
    }

    /// Whether this role holds `permission`.
    pub fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::Public | Permission::Authenticated => true,
            Permission::Ingest => matches!(
                self,
                Role::Operator | Role::TenantAdmin | Role::ProjectAdmin | Role::Writer
            ),
            Permission::Read => matches!(
                self,
                Role::Operator | Role::TenantAdmin | Role::ProjectAdmin | Role::Reader
            ),
            Permission::ManageProject => {
                matches!(
                    self,
                    Role::Operator | Role::TenantAdmin | Role::ProjectAdmin
                )
            }
            Permission::ManageTenant => matches!(self, Role::Operator | Role::TenantAdmin),
            Permission::Operate => self == Role::Operator,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs. Every route of every service declares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// No key needed: health, readiness, metrics, the console's static assets.
    Public,
    /// Any valid key (e.g. "who am I").
    Authenticated,
    /// PutDatas.
    Ingest,
    /// Search, SQL, histogram, context, fields, tail, pull reads, consumer-group
    /// heartbeats and checkpoints, archive listing, pool stats, listing projects/pools.
    Read,
    /// Changing a project's pools, archive settings, restores and consumer groups.
    ManageProject,
    /// Creating and deleting projects, keys, project quotas, usage of one tenant.
    ManageTenant,
    /// Tenants, tenant quotas, cluster membership.
    Operate,
}

impl Permission {
    /// The permission's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Authenticated => "authenticated",
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::ManageProject => "manage_project",
            Permission::ManageTenant => "manage_tenant",
            Permission::Operate => "operate",
        }
    }
}

/// One API key as every service sees it: never the secret, only its salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Public id (the middle of `lpk_<id>_<secret>`).
    pub id: String,
    /// The tenant the key acts in.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// The only project it may touch, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Hex salt.
    pub salt: String,
    /// Hex SHA-256 of salt followed by the secret.
    pub hash: String,
    /// Disabled keys are refused.
    pub enabled: bool,
}

impl KeyEntry {
    /// An enabled entry for `secret` under `salt` (for keys made outside the
    /// metadata store, e.g. in tests of a single service).
    pub fn from_secret(
        id: &str,
        tenant: &str,
        role: Role,
        project: Option<&str>,
        salt: &str,
        secret: &str,
    ) -> KeyEntry {
        KeyEntry {
            id: id.to_string(),
            tenant: tenant.to_string(),
            role,
            project: project.map(str::to_string),
            salt: salt.to_string(),
            hash: hash_secret(salt, secret),
            enabled: true,
        }
    }
}

/// Limits of a tenant or a project. `None` means "no limit of its own".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Ingested records per second (token bucket, burst of one second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_records_per_s: Option<u64>,
    /// Ingested uncompressed bytes per second (token bucket, burst of one second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_bytes_per_s: Option<u64>,
    /// Index storage per project; writes are refused with 403 once over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// Searches running at once per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_queries: Option<u32>,
    /// Searches started per second per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries_per_s: Option<u32>,
    /// Live tails open at once per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_tails: Option<u32>,
    /// Longest time range one search may cover, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_query_range_s: Option<u64>,
    /// Alert rules per tenant, across its projects (the server's default applies
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_rules: Option<u32>,
}

impl Limits {
    /// The tighter of two limits, field by field (a project is bound by its own and
    /// its tenant's limits).
    pub fn tightest(&self, other: &Limits) -> Limits {
        fn min<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, None) => a,
                (None, b) => b,
            }
        }
        Limits {
            ingest_records_per_s: min(self.ingest_records_per_s, other.ingest_records_per_s),
            ingest_bytes_per_s: min(self.ingest_bytes_per_s, other.ingest_bytes_per_s),
            storage_bytes: min(self.storage_bytes, other.storage_bytes),
            concurrent_queries: min(self.concurrent_queries, other.concurrent_queries),
            queries_per_s: min(self.queries_per_s, other.queries_per_s),
            concurrent_tails: min(self.concurrent_tails, other.concurrent_tails),
            max_query_range_s: min(self.max_query_range_s, other.max_query_range_s),
            alert_rules: min(self.alert_rules, other.alert_rules),
        }
    }

    /// Checks that every set limit is positive.
    ///
    /// # Errors
    /// The name of the first field set to zero.
    pub fn validate(&self) -> Result<(), &'static str> {
        let zero = [
            ("ingest_records_per_s", self.ingest_records_per_s == Some(0)),
            ("ingest_bytes_per_s", self.ingest_bytes_per_s == Some(0)),
            ("storage_bytes", self.storage_bytes == Some(0)),
            ("concurrent_queries", self.concurrent_queries == Some(0)),
            ("queries_per_s", self.queries_per_s == Some(0)),
            ("concurrent_tails", self.concurrent_tails == Some(0)),
            ("max_query_range_s", self.max_query_range_s == Some(0)),
            ("alert_rules", self.alert_rules == Some(0)),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((field, _)) => Err(field),
            None => Ok(()),
        }
    }
}

/// Project names grouped by tenant.
pub type ProjectsByTenant = BTreeMap<String, BTreeSet<String>>;

/// The access part of the routing snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTable {
    /// Existing tenants.
    #[serde(default)]
    pub tenants: BTreeSet<String>,
    /// Keys by id.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyEntry>,
    /// Tenant-wide limits by tenant.
    #[serde(default)]
    pub tenant_limits: BTreeMap<String, Limits>,
    /// Project limits by tenant, then project.
    #[serde(default)]
    pub project_limits: BTreeMap<String, BTreeMap<String, Limits>>,
    /// Projects (by tenant) whose storage is over their quota: writes are refused.
    #[serde(default)]
    pub over_storage_quota: ProjectsByTenant,
}

/// Why a presented key was refused (the reason is logged, never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No key with that id.
    Unknown,
    /// The secret does not match.
    Mismatch,
    /// The key was disabled.
    Disabled,
}

impl AccessTable {
    /// The table with `entry` added (and its tenant).
    pub fn with_key(mut self, entry: KeyEntry) -> AccessTable {
        self.tenants.insert(entry.tenant.clone());
        self.keys.insert(entry.id.clone(), entry);
        self
    }

    /// Finds the key that `presented` names and checks its secret in constant time.
    ///
    /// # Errors
    /// Why the key is refused.
    pub fn verify(&self, presented: &str) -> Result<&KeyEntry, KeyRefusal> {
        let (id, secret) = split_key(presented);
        let entry = self.keys.get(id).ok_or(KeyRefusal::Unknown)?;
        if !hash_matches(&entry.salt, secret, &entry.hash) {
            return Err(KeyRefusal::Mismatch);
        }
        if !entry.enabled {
            return Err(KeyRefusal::Disabled);
        }
        Ok(entry)
    }

    /// The limits that bind `project` of `tenant` (project and tenant limits combined).
    pub fn limits_for(&self, tenant: &str, project: Option<&str>) -> Limits {
        let tenant_limits = self.tenant_limits.get(tenant).cloned().unwrap_or_default();
        match project.and_then(|project| self.project_limits.get(tenant)?.get(project)) {
            Some(project_limits) => project_limits.tightest(&tenant_limits),
            None => tenant_limits,
        }
    }

    /// Whether writes to the project are refused because its storage is over quota.
    pub fn is_over_storage_quota(&self, tenant: &str, project: &str) -> bool {
        self.over_storage_quota
            .get(tenant)
            .is_some_and(|projects| projects.contains(project))
    }
}

/// Splits a presented key into the id it names and its secret part.
pub fn split_key(presented: &str) -> (&str, &str) {
    if let Some(rest) = presented.strip_prefix(KEY_PREFIX) {
        if let Some((id, secret)) = rest.split_once('_') {
            if !id.is_empty() && id != BOOTSTRAP_KEY_ID {
                return (id, secret);
            }
        }
    }
    (BOOTSTRAP_KEY_ID, presented)
}

/// Hex SHA-256 of the salt (its hex text) followed by the secret.
pub fn hash_secret(salt_hex: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt_hex.as_bytes());
    hasher.update(secret.as_bytes());
    to_hex(&hasher.finalize())
}

/// Compares the hash of `secret` with `expected_hex` without an early exit, so the
/// time taken does not tell how many leading characters matched.
pub fn hash_matches(salt_hex: &str, secret: &str, expected_hex: &str) -> bool {
    let actual = hash_secret(salt_hex, secret);
    constant_time_eq(actual.as_bytes(), expected_hex.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Formats a generated key from its id and random secret.
pub fn format_key(id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}{id}_{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(entry: KeyEntry) -> AccessTable {
        let mut table = AccessTable::default();
        table.keys.insert(entry.id.clone(), entry);
        table
    }

    fn entry(id: &str, secret: &str, enabled: bool) -> KeyEntry {
        let salt = "00112233445566778899aabbccddeeff".to_string();
        KeyEntry {
            id: id.into(),
            tenant: "acme".into(),
            role: Role::Reader,
            project: None,
            hash: hash_secret(&salt, secret),
            salt,
            enabled,
        }
    }

    #[test]
    fn generated_keys_are_found_by_id_and_checked_by_secret() {
        let table = table_with(entry("a1b2", "s3cret", true));
        assert!(table.verify(&format_key("a1b2", "s3cret")).is_ok());
        assert_eq!(
            table.verify(&format_key("a1b2", "s3creT")),
            Err(KeyRefusal::Mismatch)
        );
        assert_eq!(
            table.verify(&format_key("zzzz", "s3cret")),
            Err(KeyRefusal::Unknown)
        );
    }

    #[test]
    fn any_other_string_is_checked_against_the_bootstrap_key() {
        let table = table_with(entry(BOOTSTRAP_KEY_ID, "chosen by the operator", true));
        assert!(table.verify("chosen by the operator").is_ok());
        assert!(table.verify("chosen by the operator ").is_err());
        // The bootstrap id cannot be named explicitly to bypass the form.
        assert_eq!(
            split_key("lpk_bootstrap_x"),
            (BOOTSTRAP_KEY_ID, "lpk_bootstrap_x")
        );
    }

    #[test]
    fn disabled_keys_are_refused_even_with_the_right_secret() {
        let table = table_with(entry("k1", "s", false));
        assert_eq!(
            table.verify(&format_key("k1", "s")),
            Err(KeyRefusal::Disabled)
        );
    }

    #[test]
    fn roles_grant_what_the_issue_says() {
        use Permission::*;
        let expected: [(Role, [bool; 5]); 5] = [
            // Ingest, Read, ManageProject, ManageTenant, Operate
            (Role::Operator, [true, true, true, true, true]),
            (Role::TenantAdmin, [true, true, true, true, false]),
            (Role::ProjectAdmin, [true, true, true, false, false]),
            (Role::Writer, [true, false, false, false, false]),
            (Role::Reader, [false, true, false, false, false]),
        ];
        for (role, grants) in expected {
            let actual =
                [Ingest, Read, ManageProject, ManageTenant, Operate].map(|p| role.grants(p));
            assert_eq!(actual, grants, "{role}");
        }
    }

    #[test]
    fn a_project_is_bound_by_the_tighter_of_its_and_its_tenants_limits() {
        let mut table = AccessTable::default();
        table.tenant_limits.insert(
            "acme".into(),
            Limits {
                ingest_records_per_s: Some(100),
                concurrent_queries: Some(4),
                ..Limits::default()
            },
        );
        table
            .project_limits
            .entry("acme".into())
            .or_default()
            .insert(
                "shop".into(),
                Limits {
                    ingest_records_per_s: Some(1000),
                    storage_bytes: Some(5),
                    ..Limits::default()
                },
            );
        let limits = table.limits_for("acme", Some("shop"));
        assert_eq!(limits.ingest_records_per_s, Some(100));
        assert_eq!(limits.storage_bytes, Some(5));
        assert_eq!(limits.concurrent_queries, Some(4));
        assert_eq!(table.limits_for("other", Some("shop")), Limits::default());
    }

    #[test]
    fn zero_limits_are_named() {
        let limits = Limits {
            queries_per_s: Some(0),
            ..Limits::default()
        };
        assert_eq!(limits.validate(), Err("queries_per_s"));
        assert_eq!(Limits::default().validate(), Ok(()));
    }
}
