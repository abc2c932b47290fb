//! Control API: projects and pools, their status codes, and what deleting a pool does.

use logpool_client::wire::control::{FieldType, Pool, UpdatePool};
use logpool_client::ClientError;
use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

fn status_of<T>(result: Result<T, ClientError>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(error) => error.status().unwrap_or(0),
    }
}

async fn request(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", server.url());
    let method = match method {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        other => panic!("unknown method {other}"),
    };
    let mut builder = server.client.request(method, url);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_project_and_pool_lifecycle() {
    let server = TestServer::start().await.expect("server");
    let s = &server;
    assert_eq!(
        request(
            s,
            "POST",
            "/v1/projects",
            Some(json!({ "name": "shop", "description": "the shop" }))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        request(s, "POST", "/v1/projects", Some(json!({ "name": "shop" })))
            .await
            .0,
        409
    );
    let projects = s.client.projects().await.expect("projects");
    assert_eq!(projects.len(), 1);
    assert_eq!(
        (projects[0].name.as_str(), projects[0].description.as_str()),
        ("shop", "the shop")
    );
    let me = s.client.whoami().await.expect("whoami");
    assert_eq!((me.role.as_str(), me.project), ("operator", None));
    for bad in ["S", "Shop", "-shop", "shop_1", "a", &"a".repeat(64)] {
        let (status, body) = request(s, "POST", "/v1/projects", Some(json!({ "name": bad }))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "name");
    }
    assert_eq!(
        request(s, "POST", "/v1/projects", Some(json!({ "nam": "x1" })))
            .await
            .0,
        400
    );
    assert_eq!(
        request(s, "GET", "/v1/projects/shop", None).await.1["description"],
        "the shop"
    );
    assert_eq!(request(s, "GET", "/v1/projects/nope", None).await.0, 404);
    let (status, body) = request(
        s,
        "PATCH",
        "/v1/projects/shop",
        Some(json!({ "description": "new" })),
    )
    .await;
    assert_eq!((status, body["description"].as_str()), (200, Some("new")));
    assert_eq!(
        request(s, "GET", "/v1/projects", None).await.1["projects"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let (status, pool) = request(s, "POST", "/v1/projects/shop/pools", Some(json!({ "name": "nginx", "shards": 2, "retention_days": 7, "field_hints": { "status": "long" } }))).await;
    assert_eq!(status, 201, "{pool}");
    let pool: Pool = serde_json::from_value(pool).expect("a pool");
    assert_eq!(pool.shards, 2);
    assert_eq!(pool.field_hints["status"], FieldType::Long);
    assert_eq!(s.client.pool("shop", "nginx").await.expect("get"), pool);
    assert_eq!(
        request(
            s,
            "POST",
            "/v1/projects/shop/pools",
            Some(json!({ "name": "web" }))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        request(
            s,
            "POST",
            "/v1/projects/shop/pools",
            Some(json!({ "name": "web" }))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        request(
            s,
            "POST",
            "/v1/projects/nope/pools",
            Some(json!({ "name": "web" }))
        )
        .await
        .0,
        404
    );
    for body in [
        json!({ "name": "x1", "shards": 0 }),
        json!({ "name": "x1", "shards": 65 }),
        json!({ "name": "x1", "retention_days": 0 }),
        json!({ "name": "X" }),
        json!({ "name": "x1", "field_hints": { "a": "blob" } }),
    ] {
        assert_eq!(
            request(s, "POST", "/v1/projects/shop/pools", Some(body.clone()))
                .await
                .0,
            400,
            "{body}"
        );
    }
    let patched = s
        .client
        .update_pool(
            "shop",
            "nginx",
            &UpdatePool {
                shards: Some(3),
                retention_days: Some(30),
                ..UpdatePool::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!((patched.shards, patched.retention_days), (3, 30));
    assert_eq!(
        request(
            s,
            "PATCH",
            "/v1/projects/shop/pools/nginx",
            Some(json!({ "shards": 1 }))
        )
        .await
        .0,
        409
    );
    assert_eq!(s.client.pools("shop").await.expect("pools").len(), 2);
    assert_eq!(
        request(s, "GET", "/v1/projects/shop/pools/nope", None)
            .await
            .0,
        404
    );
    assert_eq!(
        request(s, "DELETE", "/v1/projects/shop/pools/nope", None)
            .await
            .0,
        404
    );

    // A new pool takes data at once, on all of its shards (including grown ones).
    let records: Vec<Value> = (0..3000)
        .map(|i| json!({ "message": format!("hit {i}") }))
        .collect();
    let answer = server
        .client
        .put_records("shop", "nginx", &records)
        .await
        .expect("put");
    assert_eq!(answer.accepted, 3000);
    assert_eq!(answer.shards.len(), 3);
    assert_eq!(
        wait_for_count(&server.client, "shop", "nginx", "hit", 3000).await,
        3000
    );

    assert_eq!(request(s, "DELETE", "/v1/projects/shop", None).await.0, 204);
    assert_eq!(
        request(s, "GET", "/v1/projects/shop/pools/nginx", None)
            .await
            .0,
        404
    );
    assert_eq!(
        status_of(
            server
                .client
                .search("shop", "nginx", &Default::default())
                .await
        ),
        404
    );
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_deleting_a_pool_removes_its_data_and_leaves_others_untouched() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    client.create_project("shop").await.expect("project");
    for pool in ["web", "db"] {
        client
            .create_pool("shop", &json!({ "name": pool, "shards": 2 }))
            .await
            .expect("pool");
        let records: Vec<Value> = (0..400)
            .map(|i| json!({ "message": format!("{pool} line {i}") }))
            .collect();
        client
            .put_records("shop", pool, &records)
            .await
            .expect("put");
        assert_eq!(wait_for_count(client, "shop", pool, "line", 400).await, 400);
    }
    // Pools live under their tenant's directory (the operator key's tenant here).
    let index_dir = server.data_dir.path().join("index").join("default");
    let pool_dirs_before = std::fs::read_dir(&index_dir).expect("index dir").count();
    assert_eq!(pool_dirs_before, 2);
    let queue_files_before = count_files(&server.data_dir.path().join("queue"));

    client.delete_pool("shop", "web").await.expect("delete");
    assert_eq!(
        status_of(client.search("shop", "web", &Default::default()).await),
        404
    );
    assert_eq!(
        std::fs::read_dir(&index_dir).expect("index dir").count(),
        1,
        "the pool's index is gone"
    );
    assert!(
        count_files(&server.data_dir.path().join("queue")) < queue_files_before,
        "the pool's queue shards are gone"
    );
    assert_eq!(
        client.count("shop", "db", "line").await.expect("count"),
        400,
        "the other pool is untouched"
    );

    // The same name again is a new, empty pool.
    client
        .create_pool("shop", &json!({ "name": "web" }))
        .await
        .expect("recreate");
    assert_eq!(client.count("shop", "web", "").await.expect("count"), 0);
    client
        .put_records("shop", "web", &[json!({ "message": "fresh" })])
        .await
        .expect("put");
    assert_eq!(wait_for_count(client, "shop", "web", "", 1).await, 1);
    assert_eq!(client.count("shop", "web", "line").await.expect("count"), 0);
    server.standalone.shutdown().await.expect("shutdown");
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            if entry.path().is_dir() {
                count_files(&entry.path())
            } else {
                1
            }
        })
        .sum()
}
