//! Hostile tenants against the real `logpool` binary: operator keys stay out of a
//! tenant admin's reach and the bootstrap key cannot be locked out; an archive
//! prefix cannot put a tenant's objects into another tenant's area (while objects of
//! the earlier layout stay found); hostile path parameters get a 400 naming the
//! parameter, with no internal key or path in any answer. After each, the process
//! is alive and the data stored before is intact.

use std::path::Path;
use std::time::{Duration, Instant};

use logpool_core::archive::{self, ArchiveCompression, ObjectName};
use logpool_core::record::{FieldValue, Record};
use logpool_e2e::tenants::{Answer, RawApi};
use logpool_e2e::{free_port, start_standalone_process, wait_for, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::process::Child;

/// The binary with its data directory (removed at the end) and a client.
struct Running {
    child: Child,
    data_dir: tempfile::TempDir,
    api: RawApi,
}

impl Running {
    async fn start() -> Running {
        let data_dir = tempfile::tempdir().expect("data dir");
        let port = free_port();
        let log = data_dir.path().join("logpool.log");
        let store = data_dir.path().join("store");
        let child = start_standalone_process(&store, port, &log, &[]).await;
        Running {
            child,
            data_dir,
            api: RawApi::new(&format!("http://127.0.0.1:{port}")),
        }
    }

    fn objects_root(&self) -> std::path::PathBuf {
        self.data_dir.path().join("store").join("objects")
    }

    /// Panics unless the process still runs and answers `/healthz`.
    async fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().expect("child status").is_none(),
            "logpool exited"
        );
        let health = self
            .api
            .send(Method::GET, "/healthz", None, None, None)
            .await;
        assert_eq!(health.status, 200, "healthz: {}", health.text);
    }

    async fn send(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.api
            .send(method, path, Some(key), None, body.as_ref())
            .await
    }

    async fn as_operator_in(
        &self,
        tenant: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.api
            .as_operator(tenant, method, path, body.as_ref())
            .await
    }

    /// Puts `count` records marked `marker` into a pool (as the operator in `tenant`).
    async fn put(&self, tenant: &str, project: &str, pool: &str, marker: &str, count: usize) {
        let logs: Vec<Value> = (0..count)
            .map(|n| json!({ "message": format!("{marker} record {n}") }))
            .collect();
        let path = format!("/v1/projects/{project}/pools/{pool}/logs");
        let put = self
            .as_operator_in(tenant, Method::POST, &path, Some(json!({ "logs": logs })))
            .await;
        assert_eq!(put.status, 200, "put: {}", put.text);
    }

    /// Waits until a search for `marker` finds `expected` records.
    async fn wait_searchable(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        marker: &str,
        expected: u64,
    ) {
        let path = format!("/v1/projects/{project}/pools/{pool}/search");
        let total = wait_for(Duration::from_secs(30), || {
            let body = json!({ "query": format!("\"{marker}\""), "limit": 1 });
            let path = path.clone();
            async move {
                let answer = self
                    .as_operator_in(tenant, Method::POST, &path, Some(body))
                    .await;
                let total = answer.json()["total"].as_u64().unwrap_or(0);
                (total == expected).then_some(total)
            }
        })
        .await;
        assert_eq!(
            total,
            Some(expected),
            "{tenant}/{project}/{pool} search for {marker}"
        );
    }
}

/// Every file below `root`, as `/`-separated keys relative to it.
fn files_below(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

fn status_of(answer: &Answer, expected: u16, what: &str) {
    assert_eq!(answer.status, expected, "{what}: {}", answer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_operator_keys_are_managed_by_operators_only() {
    let started = Instant::now();
    let mut running = Running::start().await;
    let api = running.api.clone();
    api.create_project("default", "shop").await;
    api.create_pool("default", "shop", "web").await;
    running
        .put("default", "shop", "web", "before-keys", 5)
        .await;
    let (admin_id, admin_key) = api.create_key("default", "tenant_admin", None).await;
    let (operator_id, operator_key) = api.create_key("default", "operator", None).await;
    let (reader_id, _) = api.create_key("default", "reader", None).await;

    // The tenant admin of `default` sees its own keys, not the operators'.
    let listed = running
        .send(&admin_key, Method::GET, "/v1/tenants/default/keys", None)
        .await;
    status_of(&listed, 200, "tenant admin lists keys");
    let ids: Vec<String> = listed.json()["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|key| key["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        ids.contains(&admin_id) && ids.contains(&reader_id),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&operator_id) && !ids.iter().any(|id| id == "bootstrap"),
        "operator keys listed to a tenant admin: {ids:?}"
    );

    // Every way to touch an operator key is refused to it.
    for id in ["bootstrap", operator_id.as_str()] {
        let path = format!("/v1/tenants/default/keys/{id}");
        let read = running.send(&admin_key, Method::GET, &path, None).await;
        status_of(&read, 403, "tenant admin reads an operator key");
        for enabled in [false, true] {
            let patch = running
                .send(
                    &admin_key,
                    Method::PATCH,
                    &path,
                    Some(json!({ "enabled": enabled })),
                )
                .await;
            status_of(&patch, 403, "tenant admin patches an operator key");
        }
        let delete = running.send(&admin_key, Method::DELETE, &path, None).await;
        status_of(&delete, 403, "tenant admin deletes an operator key");
    }
    let create = running
        .send(
            &admin_key,
            Method::POST,
            "/v1/tenants/default/keys",
            Some(json!({ "role": "operator" })),
        )
        .await;
    status_of(&create, 403, "tenant admin creates an operator key");

    // Both operator keys still work.
    for key in [ADMIN_KEY, operator_key.as_str()] {
        let tenants = running.send(key, Method::GET, "/v1/tenants", None).await;
        status_of(&tenants, 200, "operator after the tenant admin's attempts");
    }
    // The tenant admin still manages the keys that are its to manage.
    let reader_path = format!("/v1/tenants/default/keys/{reader_id}");
    let read = running
        .send(&admin_key, Method::GET, &reader_path, None)
        .await;
    status_of(&read, 200, "tenant admin reads a reader key");
    assert_eq!(read.json()["role"], "reader", "{}", read.text);
    let disable = running
        .send(
            &admin_key,
            Method::PATCH,
            &reader_path,
            Some(json!({ "enabled": false })),
        )
        .await;
    status_of(&disable, 200, "tenant admin disables a reader key");
    let delete = running
        .send(&admin_key, Method::DELETE, &reader_path, None)
        .await;
    status_of(&delete, 204, "tenant admin deletes a reader key");

    // Nobody disables or deletes the bootstrap key, not even an operator.
    for key in [ADMIN_KEY, operator_key.as_str()] {
        let path = "/v1/tenants/default/keys/bootstrap";
        let patch = running
            .send(key, Method::PATCH, path, Some(json!({ "enabled": false })))
            .await;
        status_of(&patch, 403, "operator disables the bootstrap key");
        let delete = running.send(key, Method::DELETE, path, None).await;
        status_of(&delete, 403, "operator deletes the bootstrap key");
    }
    // Given a moment for a routing publication, the bootstrap key still works.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tenants = running
        .send(ADMIN_KEY, Method::GET, "/v1/tenants", None)
        .await;
    status_of(&tenants, 200, "the bootstrap key after every attempt");
    // An operator manages other operator keys.
    let operator_path = format!("/v1/tenants/default/keys/{operator_id}");
    let disable = running
        .send(
            ADMIN_KEY,
            Method::PATCH,
            &operator_path,
            Some(json!({ "enabled": false })),
        )
        .await;
    status_of(&disable, 200, "operator disables another operator key");
    let delete = running
        .send(ADMIN_KEY, Method::DELETE, &operator_path, None)
        .await;
    status_of(&delete, 204, "operator deletes another operator key");

    running.assert_alive().await;
    running
        .wait_searchable("default", "shop", "web", "before-keys", 5)
        .await;
    println!("operator keys test: {:?}", started.elapsed());
}

/// Writes one object of the layout used before tenant areas, as an older version
/// did, and returns its key.
fn write_legacy_object(objects_root: &Path, tenant: &str, pool: &str, marker: &str) -> String {
    let time_ns = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        - 600_000_000_000) as i64;
    let mut lines = Vec::new();
    for n in 0..4 {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "message".to_string(),
            FieldValue::Str(format!("{marker} legacy {n}")),
        );
        let record = Record {
            time_ns: time_ns + n,
            fields,
        };
        lines.extend_from_slice(archive::record_line(&record).as_bytes());
        lines.push(b'\n');
    }
    let name = ObjectName {
        hour_start_s: archive::hour_of(time_ns),
        partition: 900,
        first: 0,
        last: 0,
        compression: ArchiveCompression::Zstd,
    };
    let key = name.key(&archive::legacy_pool_prefix(
        archive::DEFAULT_PREFIX,
        tenant,
        "shop",
        pool,
    ));
    let path = objects_root.join(&key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("object dir");
    let data = archive::compress(&lines, ArchiveCompression::Zstd).expect("compress");
    std::fs::write(&path, data).expect("legacy object");
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_an_archive_prefix_never_leaves_the_owners_tenant_area() {
    let started = Instant::now();
    let mut running = Running::start().await;
    let api = running.api.clone();
    for tenant in ["alpha", "beta"] {
        api.create_tenant(tenant).await;
        api.create_project(tenant, "shop").await;
        for pool in ["web", "old", "back"] {
            api.create_pool(tenant, "shop", pool).await;
        }
    }
    let (_, alpha_admin) = api.create_key("alpha", "project_admin", None).await;
    let settings = "/v1/projects/shop/pools/web/archive/settings";

    // Prefixes that would leave the area are refused, naming the field.
    for prefix in [
        "../beta",
        "/archive/beta",
        "archive/..",
        "archive/./beta",
        "tenant=beta/archive",
        "archive//beta",
        "a\u{0}b",
    ] {
        let refused = running
            .send(
                &alpha_admin,
                Method::PUT,
                settings,
                Some(json!({ "prefix": prefix })),
            )
            .await;
        status_of(&refused, 400, &format!("prefix {prefix:?}"));
        assert_eq!(
            refused.json()["error"]["field"],
            "prefix",
            "{}",
            refused.text
        );
    }

    // beta archives with the default prefix; alpha names beta's documented layout.
    let beta_on = running
        .as_operator_in(
            "beta",
            Method::PUT,
            settings,
            Some(json!({ "enabled": true, "max_delay_s": 1 })),
        )
        .await;
    status_of(&beta_on, 200, "beta enables its archive");
    let alpha_on = running
        .send(
            &alpha_admin,
            Method::PUT,
            settings,
            Some(json!({ "enabled": true, "max_delay_s": 1, "prefix": "archive/beta/shop/web" })),
        )
        .await;
    status_of(&alpha_on, 200, "alpha's prefix naming beta's layout");
    // Routing reaches loghub within a snapshot publication.
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.put("beta", "shop", "web", "beta-archived", 6).await;
    running
        .put("alpha", "shop", "web", "alpha-archived", 7)
        .await;

    let root = running.objects_root();
    let archived = wait_for(Duration::from_secs(60), || {
        let root = root.clone();
        async move {
            let files = files_below(&root);
            let data = |area: &str| {
                files
                    .iter()
                    .any(|key| key.starts_with(area) && key.contains(".jsonl."))
            };
            (data("tenant=alpha/") && data("tenant=beta/")).then_some(files)
        }
    })
    .await
    .expect("both tenants' objects are written");
    for key in archived.iter().filter(|key| key.contains(".jsonl.")) {
        let in_alpha = key.starts_with("tenant=alpha/archive/beta/shop/web/shop/web/dt=");
        let in_beta = key.starts_with("tenant=beta/archive/shop/web/dt=");
        assert!(
            in_alpha || in_beta,
            "object outside its tenant's area: {key}"
        );
    }
    assert!(
        !archived.iter().any(|key| key.starts_with("archive/")),
        "an object in the old shared layout: {archived:?}"
    );

    // Each listing shows its own tenant's objects only, all records counted. A data
    // file can be on disk a moment before the listing counts it (the other tenant's
    // may still be in flight), so the listing is read until its count settles.
    for (tenant, key, records) in [("alpha", Some(&alpha_admin), 7), ("beta", None, 6)] {
        let path = "/v1/projects/shop/pools/web/archive";
        let deadline = Instant::now() + Duration::from_secs(30);
        let (listing, objects) = loop {
            let listing = match key {
                Some(key) => running.send(key, Method::GET, path, None).await,
                None => {
                    running
                        .as_operator_in(tenant, Method::GET, path, None)
                        .await
                }
            };
            status_of(&listing, 200, "listing");
            let objects = listing.json()["objects"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let counted: u64 = objects.iter().filter_map(|o| o["records"].as_u64()).sum();
            if counted >= records || Instant::now() >= deadline {
                break (listing, objects);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let area = format!("tenant={tenant}/");
        assert!(
            objects
                .iter()
                .all(|o| o["key"].as_str().is_some_and(|k| k.starts_with(&area))),
            "{tenant} lists another area: {}",
            listing.text
        );
        let counted: u64 = objects.iter().filter_map(|o| o["records"].as_u64()).sum();
        assert_eq!(counted, records, "{tenant}: {}", listing.text);
    }

    // An object of the earlier layout is still listed and restored, by its owner
    // only.
    let legacy_key = write_legacy_object(&root, "alpha", "old", "alpha-legacy");
    let old_listing = running
        .send(
            &alpha_admin,
            Method::GET,
            "/v1/projects/shop/pools/old/archive",
            None,
        )
        .await;
    status_of(&old_listing, 200, "legacy listing");
    assert_eq!(
        old_listing.json()["objects"][0]["key"],
        legacy_key.as_str(),
        "{}",
        old_listing.text
    );
    let beta_old = running
        .as_operator_in(
            "beta",
            Method::GET,
            "/v1/projects/shop/pools/old/archive",
            None,
        )
        .await;
    status_of(&beta_old, 200, "beta's listing of its own `old`");
    assert_eq!(beta_old.json()["objects"], json!([]), "{}", beta_old.text);
    let restore = running
        .send(
            &alpha_admin,
            Method::POST,
            "/v1/projects/shop/pools/old/archive/restore",
            Some(json!({ "into_pool": "back" })),
        )
        .await;
    assert!(
        restore.status == 202 || restore.status == 200,
        "restore: {}",
        restore.text
    );
    running
        .wait_searchable("alpha", "shop", "back", "alpha-legacy", 4)
        .await;
    running
        .wait_searchable("beta", "shop", "back", "alpha-legacy", 0)
        .await;

    running.assert_alive().await;
    running
        .wait_searchable("alpha", "shop", "web", "alpha-archived", 7)
        .await;
    running
        .wait_searchable("beta", "shop", "web", "beta-archived", 6)
        .await;
    println!("archive areas test: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_hostile_path_parameters_get_a_400_naming_them() {
    let started = Instant::now();
    let mut running = Running::start().await;
    let api = running.api.clone();
    api.create_project("default", "shop").await;
    for pool in ["web", "back"] {
        api.create_pool("default", "shop", pool).await;
    }
    running
        .put("default", "shop", "web", "before-paths", 9)
        .await;
    running
        .wait_searchable("default", "shop", "web", "before-paths", 9)
        .await;
    let enable = running
        .as_operator_in(
            "default",
            Method::PUT,
            "/v1/projects/shop/pools/web/archive/settings",
            Some(json!({ "enabled": true, "max_delay_s": 1 })),
        )
        .await;
    status_of(&enable, 200, "archive on");
    let restore = running
        .as_operator_in(
            "default",
            Method::POST,
            "/v1/projects/shop/pools/web/archive/restore",
            Some(json!({ "into_pool": "back" })),
        )
        .await;
    assert!(
        restore.status == 202 || restore.status == 200,
        "{}",
        restore.text
    );

    let pool = "/v1/projects/shop/pools/web";
    // (path, the parameter the 400 must name)
    let cases: Vec<(String, &str)> = vec![
        (format!("{pool}/archive/restore/..%2F..%2Fx"), "id"),
        (format!("{pool}/archive/restore/a..b"), "id"),
        (format!("{pool}/archive/restore/abc%00def"), "id"),
        (format!("{pool}/archive/restore/%2e%2e%2fsecret"), "id"),
        (format!("{pool}/archive/restore/{}", "f".repeat(300)), "id"),
        (format!("{pool}/records/..%2Fx/context"), "id"),
        (format!("{pool}/shards/-1/cursor?from=begin"), "shard"),
        (format!("{pool}/shards/1%00/records"), "shard"),
        (format!("{pool}/consumer-groups/x%00y/checkpoints"), "group"),
        (
            format!("{pool}/consumer-groups/..%2Fx/checkpoints"),
            "group",
        ),
        ("/v1/projects/Shop%00/pools".to_string(), "project"),
        (
            "/v1/projects/shop/pools/..%2Fweb/search".to_string(),
            "pool",
        ),
        ("/v1/projects/shop/pools/we%0Ab/stats".to_string(), "pool"),
        ("/v1/tenants/default/keys/..%2Fbootstrap".to_string(), "id"),
        ("/v1/tenants/de%00fault/keys".to_string(), "tenant"),
    ];
    let data_dir = running.data_dir.path().to_string_lossy().to_string();
    for (path, parameter) in &cases {
        let answer = running.send(ADMIN_KEY, Method::GET, path, None).await;
        status_of(&answer, 400, path);
        assert_eq!(
            answer.json()["error"]["parameter"],
            *parameter,
            "{path}: {}",
            answer.text
        );
        for internal in [
            "_restores",
            "archive/",
            "tenant=",
            "objects",
            data_dir.as_str(),
        ] {
            assert!(
                !answer.text.contains(internal),
                "{path} answers with `{internal}`: {}",
                answer.text
            );
        }
    }
    // Bodies and methods other than GET are checked the same way.
    let delete = running
        .send(
            ADMIN_KEY,
            Method::DELETE,
            &format!("{pool}/consumer-groups/a%2F..%2Fb"),
            None,
        )
        .await;
    status_of(&delete, 400, "delete a hostile group");
    let put = running
        .send(
            ADMIN_KEY,
            Method::POST,
            "/v1/projects/shop/pools/w%00b/logs",
            Some(json!({ "logs": [{ "message": "x" }] })),
        )
        .await;
    status_of(&put, 400, "put into a hostile pool name");
    // A well-formed restore id that does not exist is a 404 naming no key.
    let unknown = running
        .send(
            ADMIN_KEY,
            Method::GET,
            &format!("{pool}/archive/restore/0123456789abcdef"),
            None,
        )
        .await;
    status_of(&unknown, 404, "unknown restore id");
    assert!(!unknown.text.contains("_restores"), "{}", unknown.text);

    running.assert_alive().await;
    running
        .wait_searchable("default", "shop", "web", "before-paths", 9)
        .await;
    println!(
        "path parameters test: {} cases in {:?}",
        cases.len() + 3,
        started.elapsed()
    );
}
