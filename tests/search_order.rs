//! `order=asc|desc` on the search API: paging a few thousand records spread over
//! several daily partitions returns every record exactly once, in ascending or
//! descending time order, with records of the same time in one stable order (the
//! reverse of each other); on the embedded engine and (with the distributed engines)
//! on Elasticsearch. A cursor is only accepted with the order it was made for.

use std::time::Instant;

use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "ordered";
const POOL: &str = "app";
/// Records, two at each time, so that ties are part of every page.
const RECORDS: u64 = 3_000;
/// Seconds between two times: 1,500 times over about three and a half days, so the
/// records lie in four or five daily partitions.
const STEP_S: u64 = 200;
const PAGE: usize = 250;

/// Record `n`: the `n / 2`th time, its number in the message.
fn record(n: u64, start_s: u64) -> Value {
    json!({
        "time": start_s + (n / 2) * STEP_S,
        "message": format!("event {n}"),
        "n": n,
    })
}

/// Writes the records; returns the search range (`from`, `to`) holding all of them.
async fn setup(server: &TestServer) -> Vec<(&'static str, String)> {
    let client = &server.client;
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(PROJECT, &json!({ "name": POOL, "shards": 2 }))
        .await
        .expect("pool");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let span_s = (RECORDS / 2) * STEP_S;
    let start_s = now_s - span_s - 3600;
    let records: Vec<Value> = (0..RECORDS).map(|n| record(n, start_s)).collect();
    for chunk in records.chunks(1_000) {
        client.put_records(PROJECT, POOL, chunk).await.expect("put");
    }
    assert_eq!(
        wait_for_count(client, PROJECT, POOL, "", RECORDS).await,
        RECORDS
    );
    vec![
        ("from", (start_s * 1000).to_string()),
        ("to", ((start_s + span_s + 1) * 1000).to_string()),
    ]
}

/// One search request; the answer's status and body.
async fn search(server: &TestServer, params: &[(&str, String)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/projects/{PROJECT}/pools/{POOL}/search",
            server.url()
        ))
        .bearer_auth(logpool_e2e::ADMIN_KEY)
        .query(params)
        .send()
        .await
        .expect("search");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Every page of the range in `order`: the record numbers in the order returned,
/// and the number of pages.
async fn all_pages(
    server: &TestServer,
    range: &[(&str, String)],
    order: &str,
) -> (Vec<u64>, usize) {
    let mut numbers = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = range.to_vec();
        params.push(("order", order.to_string()));
        params.push(("limit", PAGE.to_string()));
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor.clone()));
        }
        let (status, answer) = search(server, &params).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["total"].as_u64(), Some(RECORDS), "{answer}");
        pages += 1;
        assert!(pages <= 2 * RECORDS as usize / PAGE, "paging never ends");
        let hits = answer["hits"].as_array().expect("hits");
        numbers.extend(
            hits.iter()
                .map(|hit| hit["fields"]["n"].as_u64().expect("n")),
        );
        match answer["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    (numbers, pages)
}

async fn check_orders(server: &TestServer) {
    let range = setup(server).await;
    let (ascending, pages) = all_pages(server, &range, "asc").await;
    assert!(pages >= RECORDS as usize / PAGE, "{pages} pages");
    let (descending, _) = all_pages(server, &range, "desc").await;
    for (order, numbers) in [("asc", &ascending), ("desc", &descending)] {
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted,
            (0..RECORDS).collect::<Vec<_>>(),
            "order={order}: every record exactly once"
        );
    }
    // Times (n / 2) only grow oldest first, only shrink newest first.
    assert!(
        ascending.windows(2).all(|w| w[0] / 2 <= w[1] / 2),
        "ascending time order"
    );
    assert!(
        descending.windows(2).all(|w| w[0] / 2 >= w[1] / 2),
        "descending time order"
    );
    // Ties are in one stable order: oldest first is exactly newest first reversed.
    let mut reversed = descending.clone();
    reversed.reverse();
    assert_eq!(ascending, reversed, "ties keep their order");
    // The default is newest first.
    let mut first = range.clone();
    first.push(("limit", "3".to_string()));
    let (_, default_page) = search(server, &first).await;
    let newest: Vec<u64> = default_page["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["fields"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(newest, descending[..3]);
    check_stream(server, &range, &ascending).await;
    check_cursor_order(server, &range).await;
}

/// The streaming search follows the order too: its lines' hits are the first page
/// oldest first, and its closing cursor continues it.
async fn check_stream(server: &TestServer, range: &[(&str, String)], ascending: &[u64]) {
    let mut params = range.to_vec();
    params.push(("order", "asc".to_string()));
    params.push(("limit", "7".to_string()));
    let text = reqwest::Client::new()
        .get(format!(
            "{}/v1/projects/{PROJECT}/pools/{POOL}/search/stream",
            server.url()
        ))
        .bearer_auth(logpool_e2e::ADMIN_KEY)
        .query(&params)
        .send()
        .await
        .expect("stream")
        .text()
        .await
        .expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("line"))
        .collect();
    let streamed: Vec<u64> = lines
        .iter()
        .flat_map(|line| line["hits"].as_array().cloned().unwrap_or_default())
        .map(|hit| hit["fields"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(streamed, ascending[..7]);
    let done = lines.last().expect("done line");
    let mut next = range.to_vec();
    next.push(("order", "asc".to_string()));
    next.push(("limit", "7".to_string()));
    next.push((
        "cursor",
        done["cursor"].as_str().expect("cursor").to_string(),
    ));
    let (status, page) = search(server, &next).await;
    assert_eq!(status, 200, "{page}");
    let following: Vec<u64> = page["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["fields"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(following, ascending[7..14]);
}

/// A cursor of one order used with the other is a 400 naming `cursor`; an unknown
/// order is a 400 naming `order`.
async fn check_cursor_order(server: &TestServer, range: &[(&str, String)]) {
    for (made_for, used_with) in [("desc", "asc"), ("asc", "desc"), ("asc", "")] {
        let mut params = range.to_vec();
        params.push(("order", made_for.to_string()));
        params.push(("limit", "5".to_string()));
        let (_, page) = search(server, &params).await;
        let cursor = page["cursor"].as_str().expect("cursor").to_string();
        let mut params = range.to_vec();
        if !used_with.is_empty() {
            params.push(("order", used_with.to_string()));
        }
        params.push(("cursor", cursor));
        let (status, answer) = search(server, &params).await;
        assert_eq!(
            status, 400,
            "{made_for} cursor with `{used_with}`: {answer}"
        );
        assert_eq!(answer["error"]["field"], "cursor", "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains("order"), "{message}");
    }
    let mut params = range.to_vec();
    params.push(("order", "oldest".to_string()));
    let (status, answer) = search(server, &params).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "order", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_search_pages_in_either_time_order() {
    let started = Instant::now();
    let server = TestServer::start().await.expect("server");
    check_orders(&server).await;
    println!("embedded engine: {:?}", started.elapsed());
}

/// The same on the Elasticsearch (OpenSearch API) index engine: its sort and
/// `search_after` in both directions.
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_search_pages_in_either_time_order_on_elasticsearch() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let started = Instant::now();
    let server = TestServer::start_with(|config| {
        config.index = logpool_e2e::services::elasticsearch_index(&engines, "lpso");
    })
    .await
    .expect("server");
    check_orders(&server).await;
    println!("Elasticsearch engine: {:?}", started.elapsed());
}
