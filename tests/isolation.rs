//! Tenant isolation (issue 7): keys of tenant acme try to reach tenant globex's data
//! through every door a request has — project and pool names in paths (names that
//! exist only in globex, and names that exist in both), queue cursors, record ids
//! for context lookups, SQL `FROM`, the live tail, archive listings and restores,
//! consumer groups, key ids, and queries or headers that name internal fields. Every
//! refusal must be a 400, 403 or 404, and no answer may carry a single one of
//! globex's marker strings.

use std::time::Duration;

use futures::StreamExt;
use logpool_e2e::tenants::{
    seed_pool, unique_marker, wait_until_searchable, Answer, RawApi, SeededPool, TENANT_HEADER,
};
use logpool_e2e::{wait_for, TestServer, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Everything acme's callers were answered, for the final grep.
struct Seen {
    answers: Vec<(String, Answer)>,
    forbidden_markers: Vec<String>,
}

impl Seen {
    fn record(&mut self, what: String, answer: &Answer) {
        self.answers.push((what, answer.clone()));
    }

    /// Fails when any answer so far contains one of globex's markers.
    fn assert_no_foreign_data(&self) {
        for (what, answer) in &self.answers {
            for marker in &self.forbidden_markers {
                assert!(
                    !answer.text.contains(marker.as_str()),
                    "{what} answered globex's `{marker}`: {}",
                    answer.text
                );
            }
        }
    }
}

struct Fixture {
    server: TestServer,
    api: RawApi,
    acme: SeededPool,
    globex: SeededPool,
    globex_vault: SeededPool,
    acme_reader: String,
    acme_admin: String,
    globex_reader: String,
    /// The marker of globex records written while its archive was on.
    globex_archived_marker: String,
}

/// Same project and pool names in both tenants (`shop`/`web`), plus a project only
/// globex has (`vault`). globex's `shop/web` archives its records.
async fn fixture() -> Fixture {
    let server = TestServer::start().await.expect("server");
    let api = RawApi::new(&server.url());
    api.create_tenant("acme").await;
    api.create_tenant("globex").await;
    let mut acme = seed_pool(&api, "acme", "shop", "web", false).await;
    let mut globex = seed_pool(&api, "globex", "shop", "web", false).await;
    let mut globex_vault = seed_pool(&api, "globex", "vault", "web", false).await;
    for seeded in [&mut acme, &mut globex, &mut globex_vault] {
        wait_until_searchable(&api, seeded).await;
    }
    let archive = api
        .as_operator(
            "globex",
            Method::PUT,
            "/v1/projects/shop/pools/web/archive/settings",
            Some(&json!({ "enabled": true, "max_delay_s": 1 })),
        )
        .await;
    assert_eq!(archive.status, 200, "archive settings: {}", archive.text);
    let globex_archived_marker = unique_marker("globex", "archived");
    // The settings reach loghub with the routing snapshot; keep writing until an
    // object shows up in globex's listing.
    let archived = wait_for(Duration::from_secs(30), || {
        let (api, marker) = (api.clone(), globex_archived_marker.clone());
        async move {
            let put = api
                .as_operator(
                    "globex",
                    Method::POST,
                    "/v1/projects/shop/pools/web/logs",
                    Some(&json!({ "logs": [{ "message": format!("{marker} archived") }] })),
                )
                .await;
            assert_eq!(put.status, 200, "put: {}", put.text);
            let listing = api
                .as_operator(
                    "globex",
                    Method::GET,
                    "/v1/projects/shop/pools/web/archive",
                    None,
                )
                .await;
            let objects = listing.json()["objects"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (!objects.is_empty()).then_some(())
        }
    })
    .await;
    assert!(archived.is_some(), "globex's archive stayed empty");
    let acme_reader = api.create_key("acme", "reader", None).await.1;
    let acme_admin = api.create_key("acme", "tenant_admin", None).await.1;
    let globex_reader = api.create_key("globex", "reader", None).await.1;
    Fixture {
        server,
        api,
        acme,
        globex,
        globex_vault,
        acme_reader,
        acme_admin,
        globex_reader,
        globex_archived_marker,
    }
}

impl Fixture {
    fn seen(&self) -> Seen {
        Seen {
            answers: Vec::new(),
            forbidden_markers: vec![
                self.globex.marker.clone(),
                self.globex_vault.marker.clone(),
                self.globex_archived_marker.clone(),
            ],
        }
    }

    async fn as_acme(
        &self,
        seen: &mut Seen,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let answer = self
            .api
            .send(method.clone(), path, Some(key), None, body.as_ref())
            .await;
        seen.record(format!("{method} {path}"), &answer);
        answer
    }

    async fn as_globex(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.api
            .send(method, path, Some(&self.globex_reader), None, body.as_ref())
            .await
    }
}

fn assert_status(answer: &Answer, allowed: &[u16], what: &str) {
    assert!(
        allowed.contains(&answer.status),
        "{what}: expected one of {allowed:?}, got {}: {}",
        answer.status,
        answer.text
    );
}

/// The read routes of a pool with a body where one is needed.
fn pool_reads(
    project: &str,
    pool: &str,
    seeded: &SeededPool,
) -> Vec<(Method, String, Option<Value>)> {
    let base = format!("/v1/projects/{project}/pools/{pool}");
    let group = &seeded.group;
    vec![
        (Method::GET, format!("/v1/projects/{project}"), None),
        (Method::GET, format!("/v1/projects/{project}/pools"), None),
        (Method::GET, format!("/v1/projects/{project}/quotas"), None),
        (Method::GET, base.clone(), None),
        (Method::GET, format!("{base}/stats"), None),
        (Method::GET, format!("{base}/search"), None),
        (Method::POST, format!("{base}/search"), Some(json!({}))),
        (Method::GET, format!("{base}/search/stream"), None),
        (Method::GET, format!("{base}/histogram"), None),
        (Method::GET, format!("{base}/fields"), None),
        (
            Method::POST,
            format!("{base}/query"),
            Some(json!({ "query": "* | SELECT message" })),
        ),
        (
            Method::GET,
            format!("{base}/records/{}/context", seeded.record_id),
            None,
        ),
        (Method::GET, format!("{base}/shards"), None),
        (
            Method::GET,
            format!("{base}/shards/0/cursor?from=begin"),
            None,
        ),
        (
            Method::GET,
            format!("{base}/shards/0/records?cursor={}", seeded.cursor),
            None,
        ),
        (Method::GET, format!("{base}/archive/settings"), None),
        (Method::GET, format!("{base}/archive"), None),
        (
            Method::GET,
            format!("{base}/archive/restore/{}", seeded.restore_id),
            None,
        ),
        (Method::GET, format!("{base}/consumer-groups"), None),
        (
            Method::POST,
            format!("{base}/consumer-groups/{group}/heartbeat"),
            Some(json!({ "consumer": "intruder" })),
        ),
        (
            Method::GET,
            format!("{base}/consumer-groups/{group}/checkpoints"),
            None,
        ),
        (
            Method::PUT,
            format!("{base}/consumer-groups/{group}/checkpoints"),
            Some(json!({ "shard": 0, "cursor": seeded.cursor })),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_reader_of_acme_never_gets_a_byte_of_globex() {
    let f = fixture().await;
    let mut seen = f.seen();
    let reader = f.acme_reader.clone();

    // 1. A project only globex has: every read is a 404 in acme, with globex's ids.
    for (method, path, body) in pool_reads("vault", "web", &f.globex_vault) {
        let answer = f
            .as_acme(&mut seen, &reader, method.clone(), &path, body)
            .await;
        assert_status(&answer, &[404], &format!("{method} {path}"));
    }
    // The tail, with the key as `?token=` as a browser sends it.
    let tail = open_tail(
        &f.server.url(),
        &format!("/v1/projects/vault/pools/web/tail?token={reader}"),
    )
    .await;
    assert!(matches!(tail, Err((404, _))), "tail of vault: {tail:?}");

    // A pool only globex has, in a project name both tenants have.
    f.api.create_pool("globex", "shop", "ledger").await;
    for (method, path, body) in pool_reads("shop", "ledger", &f.globex) {
        if !path.contains("/pools/ledger") {
            continue;
        }
        let answer = f
            .as_acme(&mut seen, &reader, method.clone(), &path, body)
            .await;
        assert_status(&answer, &[404], &format!("{method} {path}"));
    }
    let tail = open_tail(
        &f.server.url(),
        &format!("/v1/projects/shop/pools/ledger/tail?token={reader}"),
    )
    .await;
    assert!(matches!(tail, Err((404, _))), "tail of ledger: {tail:?}");

    // A key limited to a project lists only that project of its own tenant.
    f.api.create_project("acme", "bank").await;
    let (_, scoped) = f.api.create_key("acme", "reader", Some("shop")).await;
    let projects = f
        .as_acme(&mut seen, &scoped, Method::GET, "/v1/projects", None)
        .await;
    assert_status(&projects, &[200], "projects of a scoped reader");
    let names: Vec<String> = projects.json()["projects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|project| project["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["shop"], "{}", projects.text);

    // 2. Names that exist in both tenants resolve to acme's own pool; globex's ids
    //    (record, cursor, restore) are refused there, never resolved in globex.
    for (method, path, body) in pool_reads("shop", "web", &f.globex) {
        let answer = f
            .as_acme(&mut seen, &reader, method.clone(), &path, body)
            .await;
        let what = format!("{method} {path} with globex's ids");
        if path.contains("/records/") || path.contains("/restore/") {
            assert_status(&answer, &[404], &what);
        } else if path.contains("cursor=") || method == Method::PUT {
            assert_status(&answer, &[400], &what);
            assert_eq!(answer.json()["error"]["field"], "cursor", "{what}");
        } else {
            assert_status(&answer, &[200], &what);
        }
    }
    // The same routes with acme's own ids answer acme's records.
    for (method, path, body) in pool_reads("shop", "web", &f.acme) {
        let answer = f
            .as_acme(&mut seen, &reader, method.clone(), &path, body)
            .await;
        assert_status(&answer, &[200], &format!("{method} {path} with acme's ids"));
        if path.contains("/search") || path.contains("/records") || path.contains("/query") {
            assert!(
                answer.text.contains(&f.acme.marker),
                "{method} {path} lacks acme's records: {}",
                answer.text
            );
        }
    }

    // 3. A cursor globex read on from its own pool of the same name.
    let globex_records = f
        .as_globex(
            Method::GET,
            &format!(
                "/v1/projects/shop/pools/web/shards/0/records?cursor={}&count=1",
                f.globex.cursor
            ),
            None,
        )
        .await;
    assert_status(&globex_records, &[200], "globex reads its own shard");
    let globex_next = globex_records.json()["next_cursor"]
        .as_str()
        .expect("next_cursor")
        .to_string();
    for cursor in [&globex_next, &f.globex.cursor, &f.globex_vault.cursor] {
        let path = format!("/v1/projects/shop/pools/web/shards/0/records?cursor={cursor}");
        let answer = f
            .as_acme(&mut seen, &reader, Method::GET, &path, None)
            .await;
        assert_status(&answer, &[400], "globex's cursor on acme's pool");
        assert_eq!(answer.json()["error"]["field"], "cursor");
    }

    // 4. SQL that names globex's pool or storage names.
    for from in [
        "globex.shop.web",
        "\"globex\".\"shop\".\"web\"",
        "globex",
        "shop.web",
        "vault",
        "logpool_globex_shop_web",
        "\"logpool-globex-shop-web\"",
        "\"globex/shop/web\"",
        "web, globex.shop.web",
        "web JOIN globex.shop.web ON true",
        "(SELECT * FROM globex.shop.web) AS t",
    ] {
        let query = format!("* | SELECT message FROM {from}");
        let answer = f
            .as_acme(
                &mut seen,
                &reader,
                Method::POST,
                "/v1/projects/shop/pools/web/query",
                Some(json!({ "query": query })),
            )
            .await;
        assert_status(&answer, &[400], &query);
    }
    let own_from = f
        .as_acme(
            &mut seen,
            &reader,
            Method::POST,
            "/v1/projects/shop/pools/web/query",
            Some(json!({ "query": "* | SELECT message FROM web" })),
        )
        .await;
    assert_status(&own_from, &[200], "FROM naming acme's own pool");
    assert!(own_from.text.contains(&f.acme.marker));

    // 5. Queries, bodies and headers that name internal fields cannot widen scope.
    let globex_pool_id = f.globex.record_id.split('-').next().unwrap_or_default();
    for query in [
        "tenant:globex".to_string(),
        "_tenant:globex".to_string(),
        "_index:*".to_string(),
        "_index:globex*".to_string(),
        format!("pool_id:{globex_pool_id}"),
        format!("_pool_id:{globex_pool_id}"),
        "owner:globex".to_string(),
        format!("\"{}\"", f.globex.marker),
        "project:vault".to_string(),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/v1/projects/shop/pools/web/search",
                json!({ "query": query }),
            ),
            (
                Method::POST,
                "/v1/projects/shop/pools/web/fields",
                json!({ "query": query }),
            ),
            (
                Method::POST,
                "/v1/projects/shop/pools/web/query",
                json!({ "query": format!("{query} | SELECT message, owner") }),
            ),
        ] {
            let answer = f
                .as_acme(&mut seen, &reader, method, path, Some(body))
                .await;
            assert_status(&answer, &[200, 400], &format!("{path} query {query}"));
            if path.ends_with("/search") && answer.status == 200 {
                let hits = answer.json()["hits"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert!(
                    hits.iter().all(|hit| hit["fields"]["owner"] == "acme"),
                    "{query}: {}",
                    answer.text
                );
            }
        }
    }
    for body in [
        json!({ "query": "*", "tenant": "globex" }),
        json!({ "query": "*", "project": "vault" }),
        json!({ "query": "*", "index": "globex" }),
    ] {
        let answer = f
            .as_acme(
                &mut seen,
                &reader,
                Method::POST,
                "/v1/projects/shop/pools/web/search",
                Some(body.clone()),
            )
            .await;
        // Unknown fields are refused or ignored; they never choose the tenant.
        assert_status(&answer, &[200, 400], &format!("search body {body}"));
        let hits = answer.json()["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(hits.iter().all(|hit| hit["fields"]["owner"] == "acme"));
    }
    // A non-operator's tenant header is not a way into another tenant.
    let with_header = f
        .api
        .send(
            Method::GET,
            "/v1/projects/vault/pools/web/search",
            Some(&reader),
            Some("globex"),
            None,
        )
        .await;
    seen.record("search with the tenant header".to_string(), &with_header);
    assert_status(&with_header, &[403, 404], "tenant header from a reader");
    let own_with_header = f
        .api
        .send(
            Method::GET,
            "/v1/projects/shop/pools/web/search",
            Some(&reader),
            Some("globex"),
            None,
        )
        .await;
    seen.record(
        "own search with the tenant header".to_string(),
        &own_with_header,
    );
    assert!(
        own_with_header.status == 403 || own_with_header.text.contains(&f.acme.marker),
        "own search with globex's tenant header: {}",
        own_with_header.text
    );

    // 6. Archive: acme's listing of its `shop/web` never lists globex's objects.
    let listing = f
        .as_acme(
            &mut seen,
            &reader,
            Method::GET,
            "/v1/projects/shop/pools/web/archive",
            None,
        )
        .await;
    assert_status(&listing, &[200], "acme's archive listing");
    let globex_listing = f
        .as_globex(Method::GET, "/v1/projects/shop/pools/web/archive", None)
        .await;
    let globex_keys: Vec<String> = globex_listing.json()["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|object| object["key"].as_str().map(str::to_string))
        .collect();
    assert!(!globex_keys.is_empty(), "globex lists its archive objects");
    for key in &globex_keys {
        assert!(
            !listing.text.contains(key.as_str()),
            "acme's listing shows {key}"
        );
    }
    // acme's archive prefix names globex's layout: the prefix is relative to acme's
    // own area of the store, so acme's objects stay there, globex's listing never
    // counts them, and acme's own listing still only sees acme's objects.
    let acme_project_admin = f.api.create_key("acme", "project_admin", None).await.1;
    let settings = "/v1/projects/shop/pools/web/archive/settings";
    let climbing = f
        .as_acme(
            &mut seen,
            &acme_project_admin,
            Method::PUT,
            settings,
            Some(json!({ "prefix": "archive/../globex" })),
        )
        .await;
    assert_status(&climbing, &[400], "a prefix with `..`");
    let pointed = f
        .as_acme(
            &mut seen,
            &acme_project_admin,
            Method::PUT,
            settings,
            Some(json!({ "enabled": true, "max_delay_s": 1, "prefix": "archive/globex/shop/web" })),
        )
        .await;
    assert_status(&pointed, &[200], "acme's prefix inside globex's");
    let acme_archived = wait_for(Duration::from_secs(30), || {
        let (api, key, marker) = (
            f.api.clone(),
            acme_project_admin.clone(),
            f.acme.marker.clone(),
        );
        async move {
            let logs = json!({ "logs": [{ "message": format!("{marker} archived") }] });
            let put = api
                .send(
                    Method::POST,
                    "/v1/projects/shop/pools/web/logs",
                    Some(&key),
                    None,
                    Some(&logs),
                )
                .await;
            assert_eq!(put.status, 200, "put: {}", put.text);
            let listing = api
                .send(
                    Method::GET,
                    "/v1/projects/shop/pools/web/archive",
                    Some(&key),
                    None,
                    None,
                )
                .await;
            let objects = listing.json()["objects"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (!objects.is_empty()).then_some(listing)
        }
    })
    .await
    .expect("acme's archive gets objects");
    seen.record(
        "acme's listing under globex's prefix".to_string(),
        &acme_archived,
    );
    // The objects are in acme's area, whatever the prefix says.
    assert_eq!(
        acme_archived.json()["prefix"],
        "tenant=acme/archive/globex/shop/web/shop/web/",
        "{}",
        acme_archived.text
    );
    for key in &globex_keys {
        assert!(
            !acme_archived.text.contains(key.as_str()),
            "acme lists {key}"
        );
    }
    let globex_after = f
        .as_globex(Method::GET, "/v1/projects/shop/pools/web/archive", None)
        .await;
    assert_status(&globex_after, &[200], "globex's listing");
    assert!(
        !globex_after.text.contains("/acme/"),
        "acme's objects entered globex's listing: {}",
        globex_after.text
    );

    // Restoring into acme names only acme's pools; globex's restore id is unknown.
    let restore = f
        .as_acme(
            &mut seen,
            &f.acme_admin,
            Method::GET,
            &format!(
                "/v1/projects/shop/pools/web/archive/restore/{}",
                f.globex.restore_id
            ),
            None,
        )
        .await;
    assert_status(&restore, &[404], "globex's restore id in acme");

    // 7. Consumer groups: globex's own group is invisible and unusable in acme.
    let globex_group = "globex-billing";
    f.api
        .create_group("globex", "shop", "web", globex_group)
        .await;
    let save = f
        .as_globex(
            Method::PUT,
            &format!(
                "/v1/projects/shop/pools/web/consumer-groups/{}/checkpoints",
                f.globex.group
            ),
            Some(json!({ "shard": 0, "cursor": globex_next })),
        )
        .await;
    assert_status(&save, &[200], "globex saves a checkpoint");
    let groups = f
        .as_acme(
            &mut seen,
            &reader,
            Method::GET,
            "/v1/projects/shop/pools/web/consumer-groups",
            None,
        )
        .await;
    assert_status(&groups, &[200], "acme's groups");
    assert!(!groups.text.contains(globex_group), "{}", groups.text);
    let base = format!("/v1/projects/shop/pools/web/consumer-groups/{globex_group}");
    for (method, path, body) in [
        (
            Method::POST,
            format!("{base}/heartbeat"),
            Some(json!({ "consumer": "intruder" })),
        ),
        (Method::GET, format!("{base}/checkpoints"), None),
        (
            Method::PUT,
            format!("{base}/checkpoints"),
            Some(json!({ "shard": 0, "cursor": f.acme.cursor })),
        ),
    ] {
        let answer = f
            .as_acme(&mut seen, &reader, method.clone(), &path, body)
            .await;
        assert_status(&answer, &[404], &format!("{method} {path}"));
    }
    let own_checkpoints = f
        .as_acme(
            &mut seen,
            &reader,
            Method::GET,
            &format!(
                "/v1/projects/shop/pools/web/consumer-groups/{}/checkpoints",
                f.acme.group
            ),
            None,
        )
        .await;
    assert_status(&own_checkpoints, &[200], "acme's checkpoints");
    assert!(!own_checkpoints.text.contains(&globex_next));

    // 8. Tenant paths and key ids of globex, even for acme's tenant admin.
    let (globex_key_id, _) = f.api.create_key("globex", "reader", None).await;
    for (method, path, body) in [
        (Method::GET, "/v1/tenants/globex".to_string(), None),
        (Method::GET, "/v1/tenants/globex/keys".to_string(), None),
        (Method::GET, "/v1/tenants/globex/quotas".to_string(), None),
        (Method::GET, "/v1/tenants/globex/usage".to_string(), None),
        (
            Method::PATCH,
            format!("/v1/tenants/globex/keys/{globex_key_id}"),
            Some(json!({ "enabled": false })),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/globex/keys/{globex_key_id}"),
            None,
        ),
    ] {
        let answer = f
            .as_acme(&mut seen, &f.acme_admin, method.clone(), &path, body)
            .await;
        assert_status(&answer, &[403], &format!("{method} {path} as acme's admin"));
    }
    for (method, body) in [
        (Method::PATCH, Some(json!({ "enabled": false }))),
        (Method::DELETE, None),
    ] {
        let path = format!("/v1/tenants/acme/keys/{globex_key_id}");
        let answer = f
            .as_acme(&mut seen, &f.acme_admin, method.clone(), &path, body)
            .await;
        assert_status(
            &answer,
            &[404],
            &format!("{method} globex's key id under acme"),
        );
    }
    // Nor the operator's own key, which lives in `default`.
    for (method, body) in [
        (Method::PATCH, Some(json!({ "enabled": false }))),
        (Method::DELETE, None),
    ] {
        let path = "/v1/tenants/acme/keys/bootstrap";
        let answer = f
            .as_acme(&mut seen, &f.acme_admin, method.clone(), path, body.clone())
            .await;
        assert_status(&answer, &[404], &format!("{method} {path}"));
        let path = "/v1/tenants/default/keys/bootstrap";
        let answer = f
            .as_acme(&mut seen, &f.acme_admin, method.clone(), path, body)
            .await;
        assert_status(&answer, &[403], &format!("{method} {path}"));
    }
    let keys = f
        .as_acme(
            &mut seen,
            &f.acme_admin,
            Method::GET,
            "/v1/tenants/acme/keys",
            None,
        )
        .await;
    assert!(!keys.text.contains(&globex_key_id), "{}", keys.text);
    let still = f
        .api
        .send(
            Method::GET,
            "/v1/whoami",
            Some(&f.globex_reader),
            None,
            None,
        )
        .await;
    assert_status(&still, &[200], "globex's keys still work");

    // A body that names another tenant is refused or ignored: what it creates
    // belongs to the key's tenant.
    for (path, body) in [
        (
            "/v1/projects",
            json!({ "name": "sneaky", "tenant": "globex" }),
        ),
        (
            "/v1/tenants/acme/keys",
            json!({ "role": "reader", "tenant": "globex" }),
        ),
        (
            "/v1/projects/shop/pools",
            json!({ "name": "sneaky", "tenant": "globex", "project": "vault" }),
        ),
    ] {
        let answer = f
            .as_acme(&mut seen, &f.acme_admin, Method::POST, path, Some(body))
            .await;
        assert_status(&answer, &[201, 400], &format!("POST {path} naming globex"));
        assert!(!answer.text.contains("globex"), "{}", answer.text);
    }
    let globex_projects = f
        .api
        .as_operator("globex", Method::GET, "/v1/projects", None)
        .await;
    assert!(!globex_projects.text.contains("sneaky"));
    let globex_pools = f
        .api
        .as_operator("globex", Method::GET, "/v1/projects/vault/pools", None)
        .await;
    assert!(!globex_pools.text.contains("sneaky"));

    // 9. The live tail of acme's `shop/web` (key as `?token=`) while both tenants write.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "{}/v1/projects/shop/pools/web/tail?token={reader}",
        f.server.url().replacen("http://", "ws://", 1)
    ))
    .await
    .expect("acme's tail opens");
    let acme_live = unique_marker("acme", "live");
    let globex_live = unique_marker("globex", "live");
    seen.forbidden_markers.push(globex_live.clone());
    let mut frames = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !frames.contains(&acme_live) && tokio::time::Instant::now() < deadline {
        for (tenant, marker) in [("globex", &globex_live), ("acme", &acme_live)] {
            let put = f
                .api
                .as_operator(
                    tenant,
                    Method::POST,
                    "/v1/projects/shop/pools/web/logs",
                    Some(&json!({ "logs": [{ "message": format!("{marker} live") }] })),
                )
                .await;
            assert_status(&put, &[200], "live write");
        }
        let read_until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(read_until, socket.next()).await {
            if let Message::Text(text) = frame {
                frames.push_str(text.as_str());
            }
        }
    }
    let _ = socket.close(None).await;
    seen.record(
        "the tail".to_string(),
        &Answer {
            status: 101,
            text: frames.clone(),
        },
    );
    assert!(
        frames.contains(&acme_live),
        "acme's tail shows acme's records"
    );

    seen.assert_no_foreign_data();
    println!(
        "{} answers to acme checked for globex's data",
        seen.answers.len()
    );
}

/// Opens a tail; answers the refusal's status and body.
async fn open_tail(base_url: &str, path: &str) -> Result<(), (u16, String)> {
    let url = format!("{}{path}", base_url.replacen("http://", "ws://", 1));
    match tokio_tungstenite::connect_async(url).await {
        Ok((mut socket, _)) => {
            let _ = socket.close(None).await;
            Ok(())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default(),
        )),
        Err(error) => panic!("tail handshake failed: {error}"),
    }
}

/// The operator may read globex with its header; the matrix covers that. Here it
/// only checks that the tenant header of an operator names an existing tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_the_operator_tenant_header_must_name_an_existing_tenant() {
    let server = TestServer::start().await.expect("server");
    let api = RawApi::new(&server.url());
    let answer = api
        .send(
            Method::GET,
            "/v1/projects",
            Some(ADMIN_KEY),
            Some("no-such-tenant"),
            None,
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(answer.json()["error"]["header"], TENANT_HEADER);
}
