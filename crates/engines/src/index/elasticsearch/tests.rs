//! Tests of the Elasticsearch index against a real server.
//!
//! They need `LOGPOOL_TEST_ES_URL` (`scripts/test-engines.sh start` exports it) and
//! panic without it: the `elasticsearch` feature being on means the server is there.
//! Every test uses its own pool ids and project name, so tests and repeated runs can
//! share one server, and every test is bounded in time.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::FieldValue;
use logpool_core::routing::FieldType;
use logpool_core::typed_match::matches;

use super::*;
use crate::index::conformance::{doc, request, sample_docs, T0};

const DAY: i64 = DAY_NS;
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

fn es_url() -> String {
    std::env::var("LOGPOOL_TEST_ES_URL").unwrap_or_else(|_| {
        panic!(
            "LOGPOOL_TEST_ES_URL is not set: the `elasticsearch` feature tests need an \
             Elasticsearch-compatible server (run `scripts/test-engines.sh start <dir>` and \
             `source <dir>/env`, or export LOGPOOL_TEST_ES_URL=http://127.0.0.1:9200)"
        )
    })
}

/// A number no other test (or earlier run against the same server) uses.
fn unique() -> PoolId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = (nanos / 1_000 + COUNTER.fetch_add(1, Ordering::Relaxed) * 7_919) % 1_000_000_000;
    PoolId::new(1_000_000_000 + mixed as i64)
}

fn config(url: String) -> ElasticsearchIndexConfig {
    ElasticsearchIndexConfig {
        url,
        number_of_replicas: 0,
        max_retries: 2,
        retry_initial_backoff_ms: 10,
        retry_max_backoff_ms: 50,
        request_timeout_ms: 10_000,
        ..ElasticsearchIndexConfig::default()
    }
}

fn open() -> ElasticsearchIndex {
    ElasticsearchIndex::connect(config(es_url())).expect("connect")
}

fn pool(pool_id: PoolId) -> PoolRoute {
    PoolRoute {
        pool_id,
        tenant: "default".into(),
        project: format!("p{pool_id}"),
        name: "web".into(),
        partitions: vec![0, 1],
        retention_days: 7,
        field_hints: BTreeMap::new(),
        event_window: Default::default(),
        learned_types: Default::default(),
    }
}

/// Pool `pool_id`'s copy of the sample documents.
fn samples(pool_id: PoolId) -> Vec<IndexDoc> {
    sample_docs(pool_id)
}

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, future)
        .await
        .expect("test took too long")
}

async fn total(index: &ElasticsearchIndex, pool: &PoolRoute, query: &str) -> u64 {
    index
        .search(pool, &request(query))
        .await
        .expect("search")
        .total
}

#[tokio::test]
async fn test_conformance_queries() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_query_suite(&open(), &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_conformance_context() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_context(&open(), &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_conformance_paging() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_paging(&open(), &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_conformance_idempotent_rewrites() {
    bounded(async {
        let pool = pool(unique());
        let index = open();
        crate::index::conformance::check_idempotent_rewrites(&index, &pool).await;
        // A new process (empty caches) writing the same documents again adds nothing.
        let again = open();
        let report = again
            .write(&pool, samples(pool.pool_id), false)
            .await
            .expect("write");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        again.commit().await.expect("commit");
        assert_eq!(total(&again, &pool, "").await, 4);
    })
    .await;
}

#[tokio::test]
async fn test_histogram_buckets() {
    bounded(async {
        let pool = pool(unique());
        let index = open();
        index
            .write(&pool, samples(pool.pool_id), false)
            .await
            .expect("write");
        index.commit().await.expect("commit");
        let histogram =
            |query: &str, from_ns: i64, to_ns: i64, interval_ns: i64| HistogramRequest {
                query: parse_query(query, DefaultOperator::And).expect("query"),
                from_ns,
                to_ns,
                interval_ns,
            };
        let buckets = index
            .histogram(&pool, &histogram("", T0 - DAY, T0 + 3 * DAY, DAY))
            .await
            .expect("histogram");
        let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 1]);
        assert!(buckets.iter().all(|b| b.time_ns % DAY == 0));
        // Over all time (the alias), with a query, and with a sub-millisecond interval.
        let buckets = index
            .histogram(&pool, &histogram("status:>=500", i64::MIN, i64::MAX, DAY))
            .await
            .expect("histogram");
        assert_eq!(
            buckets,
            [
                HistogramBucket {
                    time_ns: T0.div_euclid(DAY) * DAY,
                    count: 1
                },
                HistogramBucket {
                    time_ns: (T0 + 2 * DAY).div_euclid(DAY) * DAY,
                    count: 1
                },
            ]
        );
        let buckets = index
            .histogram(&pool, &histogram("", T0, T0 + 2, 1_000))
            .await
            .expect("histogram");
        assert_eq!(
            buckets,
            [HistogramBucket {
                time_ns: T0,
                count: 2
            }]
        );
        assert!(matches!(
            index.histogram(&pool, &histogram("", T0, T0 + 1, 0)).await,
            Err(IndexError::InvalidQuery(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn test_retention_and_drop_pool_touch_only_their_pool() {
    bounded(async {
        let index = open();
        let first = pool(unique());
        let second = pool(unique());
        index
            .write(&first, samples(first.pool_id), false)
            .await
            .expect("write");
        index
            .write(&second, samples(second.pool_id), false)
            .await
            .expect("write");
        index.commit().await.expect("commit");
        assert_eq!(
            index
                .list_pool_indices(first.pool_id)
                .await
                .expect("list")
                .len(),
            3
        );
        // Seven-day retention, evaluated 8 days and 1 hour after T0 (22:13 UTC): only the
        // day of T0 has ended more than seven days ago.
        let dropped = index
            .drop_expired(&first, T0 + 8 * DAY + 3_600_000_000_000)
            .await
            .expect("retention");
        assert_eq!(dropped, 1);
        assert_eq!(total(&index, &first, "").await, 2);
        assert_eq!(total(&index, &second, "").await, 4);
        assert_eq!(
            index
                .drop_expired(&first, T0 + 8 * DAY + 3_600_000_000_000)
                .await
                .expect("retention again"),
            0
        );
        index.drop_pool(first.pool_id).await.expect("drop");
        assert_eq!(total(&index, &first, "").await, 0);
        assert_eq!(total(&index, &second, "").await, 4);
        assert!(index
            .list_pool_indices(first.pool_id)
            .await
            .expect("list")
            .is_empty());
        let template = naming::template_name(&index.config.index_prefix, first.pool_id);
        let response = index
            .call(
                Method::Get,
                &format!("_index_template/{template}"),
                &[],
                None,
            )
            .await
            .expect("get template");
        assert_eq!(response.status, 404, "template of a dropped pool remains");
        // Dropping a pool that has nothing is fine.
        index.drop_pool(first.pool_id).await.expect("drop again");
    })
    .await;
}

#[tokio::test]
async fn test_conformance_loghub_agrees_with_the_evaluator() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_loghub_agreement(&open(), &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_conformance_field_hints() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_field_hints(&open(), &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_conformance_field_types_declared_and_learned() {
    bounded(async {
        let pool = pool(unique());
        let reopen = || -> Box<dyn LogIndex> { Box::new(open()) };
        crate::index::conformance::check_field_types(&open(), &reopen, &pool).await;
    })
    .await;
}

#[tokio::test]
async fn test_hits_carry_the_record_exactly() {
    bounded(async {
        let pool = pool(unique());
        let index = open();
        let id = pool.pool_id;
        let mut first = doc(
            id,
            3,
            7,
            T0 + 123_456_789,
            &[
                ("message", FieldValue::Str("GET /a 200".into())),
                ("latency", FieldValue::Double(12.0)),
                ("count", FieldValue::Long(12)),
                ("ok", FieldValue::Bool(false)),
                ("http", FieldValue::Str("1.1".into())),
                ("http.method", FieldValue::Str("GET".into())),
                ("weird name*?", FieldValue::Str("x".into())),
                ("@odd-name", FieldValue::Str("y".into())),
            ],
        );
        first.shard = 1;
        first.identity.partition = 5;
        // `count` is a number here and a string there: both are indexed.
        let second = doc(
            id,
            4,
            0,
            T0 + 123_456_790,
            &[("count", FieldValue::Str("n/a".into()))],
        );
        let report = index
            .write(&pool, vec![first.clone(), second], false)
            .await
            .expect("write");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        index.commit().await.expect("commit");
        let page = index.search(&pool, &request("")).await.expect("search");
        assert_eq!(page.total, 2);
        let hit = &page.hits[1];
        assert_eq!(hit.id, first.identity.doc_id());
        assert_eq!(hit.time_ns, T0 + 123_456_789);
        assert_eq!(hit.shard, 1);
        assert_eq!(
            hit.sort_key,
            SortKey {
                time_ns: T0 + 123_456_789,
                tiebreak: first.identity.tiebreak()
            }
        );
        assert_eq!(hit.fields, first.record.fields_json());
        assert_eq!(total(&index, &pool, "count:12").await, 1);
        assert_eq!(total(&index, &pool, "count:\"n/a\"").await, 1);
        assert_eq!(total(&index, &pool, "@odd-name:y").await, 1);
        // A page of one with a cursor continues exactly after it.
        let mut next = request("");
        next.limit = 1;
        next.after = Some(page.hits[0].sort_key);
        let page = index.search(&pool, &next).await.expect("search");
        assert_eq!(page.hits.len(), 1);
        assert_eq!(page.hits[0].id, first.identity.doc_id());
    })
    .await;
}

/// The index answers as the in-memory evaluator does, query by query.
#[tokio::test]
async fn test_answers_match_the_in_memory_evaluator() {
    bounded(async {
        let mut pool = pool(unique());
        pool.field_hints.insert("user".into(), FieldType::Keyword);
        pool.field_hints.insert("client".into(), FieldType::Ip);
        let index = open();
        let id = pool.pool_id;
        let text = |s: &str| FieldValue::Str(s.to_string());
        let docs = vec![
            doc(
                id,
                0,
                0,
                T0,
                &[
                    (
                        "message",
                        text("Connection-reset by peer while GET /api/v1/users"),
                    ),
                    ("level", text("ERROR")),
                    ("status", FieldValue::Long(503)),
                    ("latency", FieldValue::Double(251.5)),
                    ("ok", FieldValue::Bool(false)),
                    ("http.method", text("GET")),
                    ("tags.env", text("prod")),
                    ("host", text("web-01.example.com")),
                    ("user", text("Alice")),
                    ("client", text("10.1.2.3")),
                ],
            ),
            doc(
                id,
                0,
                1,
                T0 + 1,
                &[
                    ("message", text("user bob logged in")),
                    ("level", text("info")),
                    ("status", FieldValue::Long(200)),
                    ("latency", FieldValue::Double(12.0)),
                    ("ok", FieldValue::Bool(true)),
                    ("tags.env", text("staging")),
                    ("user", text("bob")),
                    ("client", text("192.168.0.9")),
                ],
            ),
            doc(
                id,
                1,
                0,
                T0 + 2,
                &[
                    ("message", text("status text")),
                    ("status", text("503")),
                    ("level", text("warn")),
                ],
            ),
            doc(id, 1, 1, T0 + DAY, &[("message", text("tomorrow"))]),
        ];
        let records: Vec<_> = docs.iter().map(|d| d.record.clone()).collect();
        // As loghub does: the batch's new types are fixed before it is written.
        let mut pool = pool.clone();
        pool.learned_types = logpool_core::field_types::learn_types(
            &pool.field_hints,
            &pool.learned_types,
            records.iter(),
        );
        index.write(&pool, docs, false).await.expect("write");
        index.commit().await.expect("commit");
        let queries = [
            "connection",
            "\"connection reset\"",
            "\"reset connection\"",
            "message:\"reset by peer\"",
            "message:alice",
            "web-01",
            "503",
            "\"logged in\"",
            "\"peer alice\"",
            "level:error",
            "http.method:get",
            "missing:x",
            "status:503",
            "status:503.0",
            "status:\"503\"",
            "status:abc",
            "latency:251.5",
            "ok:false",
            "ok:FALSE",
            "status:(200 OR 503) AND tags.env:prod",
            "conn*",
            "ERR*",
            "message:us?rs",
            "message:*eer",
            "host:*",
            "trace_id:*",
            "status:[500 TO 599]",
            "status:{503 TO 599]",
            "status:[* TO 503}",
            "status:[502.5 TO 503.5]",
            "latency:>250",
            "latency:<=12",
            "latency:<12",
            "level:[A TO F]",
            "level:[a TO z]",
            "ok:[false TO false]",
            "missing:[* TO *]",
            "status:[* TO *]",
            "time:[2023-11-14T00:00:00Z TO 2023-11-15T00:00:00Z]",
            "time:{2023-11-14T22:13:20Z TO *]",
            "@timestamp:<1700000000",
            "time:<=1700000000",
            "time:2023-11-14T22:13:20Z",
            "_exists_:tags",
            "_exists_:tags.env",
            "_exists_:trace_id",
            "_exists_:time",
            "-debug",
            "NOT connection",
            "error AND NOT prod",
            "NOT level:info OR status:200",
            "-status:[500 TO 599]",
            "user:Alice",
            "user:alice",
            "user:[a TO c]",
            "client:10.1.2.3",
            "client:10.0.0.0/8",
            "client:[10.0.0.0 TO 10.255.255.255]",
            "_id:*",
        ];
        // Declared and learned (`status` is long from its first value) types, which the
        // evaluator applies as the index does: `user:alice` is exact, `10.0.0.0/8` a
        // CIDR block, the text "503" of a long field the number 503.
        let types = pool.field_types();
        for query in queries {
            let parsed = parse_query(query, DefaultOperator::And).expect(query);
            let expected = records
                .iter()
                .filter(|r| matches(&parsed, r, &types))
                .count() as u64;
            let got = index.search(&pool, &request(query)).await;
            match got {
                Ok(page) => assert_eq!(page.total, expected, "query {query}"),
                Err(error) => panic!("query {query}: {error}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn test_pool_without_data_searches_empty_and_days_can_be_created_ahead() {
    bounded(async {
        let pool = pool(unique());
        let index = open();
        assert_eq!(total(&index, &pool, "").await, 0);
        let mut short = request("x");
        short.from_ns = T0;
        short.to_ns = T0 + DAY;
        assert_eq!(index.search(&pool, &short).await.expect("search").total, 0);
        let tomorrow =
            time::Date::from_calendar_date(2023, time::Month::November, 15).expect("date");
        index
            .create_index_for_day(&pool, tomorrow)
            .await
            .expect("create");
        // A second process creating it again is fine.
        open()
            .create_index_for_day(&pool, tomorrow)
            .await
            .expect("create again");
        let names = index.list_pool_indices(pool.pool_id).await.expect("list");
        assert_eq!(
            names,
            [index_name(
                &index.config.index_prefix,
                &pool,
                day_of(T0 + DAY)
            )]
        );
        // The alias exists now and still finds nothing.
        assert_eq!(total(&index, &pool, "").await, 0);
        index.drop_pool(pool.pool_id).await.expect("drop");
    })
    .await;
}

#[tokio::test]
async fn test_unreachable_cluster_is_unavailable() {
    bounded(async {
        // Nothing listens on port 1 of the loopback address.
        let index =
            ElasticsearchIndex::connect(config("http://127.0.0.1:1".into())).expect("connect");
        let pool = pool(unique());
        assert!(matches!(
            index.write(&pool, samples(pool.pool_id), false).await,
            Err(IndexError::Unavailable(_))
        ));
        assert!(matches!(
            index.search(&pool, &request("")).await,
            Err(IndexError::Unavailable(_))
        ));
        assert!(matches!(
            index.check_health().await,
            Err(IndexError::Unavailable(_))
        ));
        assert!(open().check_health().await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn test_bad_queries_and_limits() {
    bounded(async {
        let pool = pool(unique());
        let index = open();
        assert!(matches!(
            index.search(&pool, &request("time:[bogus TO *]")).await,
            Err(IndexError::InvalidQuery(_))
        ));
        let mut huge = request("");
        huge.limit = MAX_SEARCH_SIZE + 1;
        assert!(matches!(
            index.search(&pool, &huge).await,
            Err(IndexError::LimitExceeded(_))
        ));
        assert!(ElasticsearchIndex::connect(ElasticsearchIndexConfig {
            index_prefix: "Bad_Prefix".into(),
            ..ElasticsearchIndexConfig::default()
        })
        .is_err());
    })
    .await;
}

#[test]
fn test_config_roundtrips_through_toml_and_hides_the_password() {
    let config = ElasticsearchIndexConfig {
        username: Some("elastic".into()),
        password: Some("secret".into()),
        ..ElasticsearchIndexConfig::default()
    };
    let text = toml::to_string(&config).expect("serialize");
    let back: ElasticsearchIndexConfig = toml::from_str(&text).expect("deserialize");
    assert_eq!(back, config);
    assert!(!format!("{config:?}").contains("secret"));
    let defaults: ElasticsearchIndexConfig = toml::from_str("").expect("defaults");
    assert_eq!(defaults, ElasticsearchIndexConfig::default());
    assert!(toml::from_str::<ElasticsearchIndexConfig>("urll = 'x'").is_err());
}

#[test]
fn test_url_groups_stay_short() {
    let names: Vec<String> = (0..200)
        .map(|i| format!("logpool-1-default.p.web-{i:04}"))
        .collect();
    let groups = url_groups(&names);
    assert!(groups.len() > 1);
    assert!(groups.iter().all(|g| g.len() <= MAX_URL_NAMES_BYTES));
    assert_eq!(groups.join(",").split(',').count(), 200);
}

#[test]
fn test_histogram_keys_snap_to_interval_multiples() {
    let response = json!({"aggregations": {"lp_histogram": {"buckets": [
        {"key": 1.69992E12, "doc_count": 2},
        {"key": 1.7000064E12, "doc_count": 1}
    ]}}});
    let buckets = parse_histogram(&response, 1_000_000, DAY).expect("parse");
    assert_eq!(
        buckets[0],
        HistogramBucket {
            time_ns: 19_675 * DAY,
            count: 2
        }
    );
    assert_eq!(
        buckets[1],
        HistogramBucket {
            time_ns: 19_676 * DAY,
            count: 1
        }
    );
}

#[tokio::test]
async fn test_prepare_day_creates_the_index_with_the_pool_mappings_before_its_first_write() {
    bounded(async {
        let mut pool = pool(unique());
        pool.field_hints
            .insert("user".to_string(), FieldType::Keyword);
        let index = open();
        let day = time::Date::from_calendar_date(2023, time::Month::November, 15).expect("date");
        let day_start = T0 + DAY - T0.rem_euclid(DAY);
        assert_eq!(day_of(day_start), day_of_date(day));
        index.prepare_day(&pool, day).await.expect("prepare");
        // Idempotent, also from another process.
        open().prepare_day(&pool, day).await.expect("prepare again");
        let name = index_name(&index.config.index_prefix, &pool, day_of_date(day));
        assert_eq!(
            index.list_pool_indices(pool.pool_id).await.expect("list"),
            std::slice::from_ref(&name)
        );

        // Created from the pool's template: its mappings, settings and read alias.
        let created = index
            .call(Method::Get, &name, &[], None)
            .await
            .expect("get index");
        assert!(created.is_success(), "{}", created.status);
        let created = created.json().expect("json");
        let settings = &created[&name];
        let templates = settings["mappings"]["dynamic_templates"].to_string();
        assert!(templates.contains("_lp_k.*"), "{templates}");
        assert_eq!(settings["mappings"]["dynamic"], "strict");
        assert_eq!(
            settings["mappings"]["properties"][RECORD]["type"],
            "keyword"
        );
        let alias = naming::alias_name(&index.config.index_prefix, &pool);
        assert!(settings["aliases"].get(&alias).is_some(), "{settings}");

        // The day's first write lands in it, with the pool's keyword hint applied.
        let docs = vec![
            doc(
                pool.pool_id,
                0,
                0,
                day_start + 1_000,
                &[("user", FieldValue::Str("Alice".into()))],
            ),
            doc(
                pool.pool_id,
                0,
                1,
                day_start + 2_000,
                &[
                    ("user", FieldValue::Str("bob smith".into())),
                    ("message", FieldValue::Str("Disk Full on sda".into())),
                    ("host", FieldValue::Str("web-1".into())),
                ],
            ),
        ];
        let report = index.write(&pool, docs, false).await.expect("write");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        index.commit().await.expect("commit");
        assert_eq!(
            index.list_pool_indices(pool.pool_id).await.expect("list"),
            std::slice::from_ref(&name),
            "no other index was made"
        );
        assert_eq!(total(&index, &pool, "").await, 2);
        assert_eq!(total(&index, &pool, "user:Alice").await, 1);
        // Keyword, not text: a word of the value does not match.
        assert_eq!(total(&index, &pool, "user:bob").await, 0);
        let mapping = index
            .call(Method::Get, &format!("{name}/_mapping"), &[], None)
            .await
            .expect("mapping")
            .json()
            .expect("json");
        assert_eq!(
            mapping[&name]["mappings"]["properties"]["_lp_k"]["properties"]["user"]["type"],
            "keyword",
            "{mapping}"
        );
        // The raw line is full text only; other text keeps its keyword for grouping.
        let text = &mapping[&name]["mappings"]["properties"]["_lp_s"]["properties"];
        assert_eq!(text["message"]["type"], "text", "{mapping}");
        assert!(text["message"].get("fields").is_none(), "{mapping}");
        assert_eq!(
            text["host"]["fields"]["keyword"]["type"], "keyword",
            "{mapping}"
        );
        assert_eq!(total(&index, &pool, "message:full").await, 1);
        assert_eq!(total(&index, &pool, "\"disk full\"").await, 1);
        // Its ranges compare the lowercased tokens.
        assert_eq!(total(&index, &pool, "message:[Sd TO sdz]").await, 1);
        assert_eq!(total(&index, &pool, "message:[t TO z]").await, 0);
        index.drop_pool(pool.pool_id).await.expect("drop");
    })
    .await;
}

#[tokio::test]
async fn test_storage_bytes_counts_only_the_pools_own_indices() {
    bounded(async {
        let index = open();
        let first = pool(unique());
        let second = pool(unique());
        assert_eq!(index.storage_bytes(&first).await.expect("size"), 0);
        index
            .write(&first, samples(first.pool_id), false)
            .await
            .expect("write");
        index.commit().await.expect("commit");
        let stored = index.storage_bytes(&first).await.expect("size");
        assert!(stored > 0, "a pool with documents takes no bytes");
        assert_eq!(index.storage_bytes(&second).await.expect("size"), 0);
        index.drop_pool(first.pool_id).await.expect("drop");
        assert_eq!(index.storage_bytes(&first).await.expect("size"), 0);
    })
    .await;
}

#[tokio::test]
async fn test_conformance_search_plan() {
    bounded(async {
        let pool = pool(unique());
        crate::index::conformance::check_search_plan(&open(), &pool).await;
    })
    .await;
}

/// A planned search lists the pool's indices once and builds its query once for all
/// its steps (by time range, each step built the query again), and chosen indices
/// too many for a URL are searched through the alias with a filter on their names,
/// with the same answer.
#[tokio::test]
async fn test_a_planned_search_lists_and_compiles_once_for_all_its_steps() {
    use crate::index::conformance::{
        five_days_of_docs, page, search_step_by_step_by_plan, search_step_by_step_by_range,
        PLAN_DAY0,
    };
    bounded(async {
        let pool = pool(unique());
        let index = open();
        index
            .write(&pool, five_days_of_docs(pool.pool_id), false)
            .await
            .expect("write");
        index.commit().await.expect("commit");
        let query = parse_query("status:500 OR quarter", DefaultOperator::And).expect("query");
        let (from_ns, to_ns) = (PLAN_DAY0, PLAN_DAY0 + 5 * DAY);
        let work_of = |before: (u64, u64)| {
            let (listings, compilations) = index.work.counts();
            (listings - before.0, compilations - before.1)
        };

        let start = index.work.counts();
        let by_range = search_step_by_step_by_range(&index, &pool, &query, from_ns, to_ns).await;
        assert_eq!(work_of(start), (1, 5), "listings and compilations by range");

        let start = index.work.counts();
        let (plan, planned) =
            search_step_by_step_by_plan(&index, &pool, &query, from_ns, to_ns).await;
        assert_eq!(plan.partitions().len(), 5);
        assert_eq!(
            work_of(start),
            (1, 1),
            "listings and compilations of a plan"
        );
        assert_eq!(planned.len(), 15);
        assert_eq!(planned, by_range, "the same hits either way");

        // The alias with a filter on index names finds what naming them finds.
        let (query_dsl, alias) = plan.compiled().elasticsearch().expect("an ES plan");
        let newest_two: Vec<&str> = plan.partitions()[..2]
            .iter()
            .flat_map(|p| p.handle().indices().expect("indices"))
            .map(String::as_str)
            .collect();
        let (named_target, named_query) =
            plan::planned_target(&newest_two, alias, query_dsl, MAX_URL_NAMES_BYTES);
        let (alias_target, filtered_query) = plan::planned_target(&newest_two, alias, query_dsl, 0);
        assert_eq!(alias_target, alias);
        let named = index
            .search_page(&named_target, &named_query, &page(100, None))
            .await
            .expect("named");
        let filtered = index
            .search_page(&alias_target, &filtered_query, &page(100, None))
            .await
            .expect("filtered");
        assert_eq!(named.total, 6);
        assert_eq!(filtered, named);
    })
    .await;
}

/// Types an earlier version kept in its `-field-types` index are read back per pool
/// for loghub to import, and the index is gone once they are retired.
#[tokio::test]
async fn test_legacy_learned_types_are_read_then_retired() {
    bounded(async {
        // A prefix of its own: the legacy index is one per prefix.
        let prefix = format!("legacy{}", unique());
        let index = ElasticsearchIndex::connect(ElasticsearchIndexConfig {
            index_prefix: prefix.clone(),
            ..config(es_url())
        })
        .expect("connect");
        assert!(index.legacy_learned_types().await.expect("none").is_empty());
        // Written as the earlier version wrote it: its mapping, one document per field.
        let legacy = format!("{prefix}-field-types");
        let mapping = json!({"mappings": {"dynamic": "strict", "properties": {
            "pool_id": {"type": "long"},
            "field": {"type": "keyword"},
            "type": {"type": "keyword"},
        }}});
        let created = index
            .call(Method::Put, &legacy, &[], Some(Body::Json(mapping)))
            .await
            .expect("create");
        assert!(created.is_success(), "{}", created.describe());
        let (first, second) = (unique(), unique());
        let mut lines = Vec::new();
        for (pool_id, field, field_type) in [
            (first, "status", "long"),
            (first, "host", "keyword"),
            (second, "took", "double"),
        ] {
            let action = json!({"create": {"_index": legacy, "_id": format!("{pool_id}:{field}")}});
            let source = json!({"pool_id": pool_id, "field": field, "type": field_type});
            for line in [action, source] {
                serde_json::to_writer(&mut lines, &line).expect("json");
                lines.push(b'\n');
            }
        }
        let written = index
            .call(
                Method::Post,
                "_bulk",
                &[("refresh", "true")],
                Some(Body::NdJson(lines)),
            )
            .await
            .expect("bulk");
        assert!(written.is_success(), "{}", written.describe());

        let pools = index.legacy_learned_types().await.expect("read");
        assert_eq!(pools.len(), 2, "{pools:?}");
        assert_eq!(pools[&first].get("status"), Some(&FieldType::Long));
        assert_eq!(pools[&first].get("host"), Some(&FieldType::Keyword));
        assert_eq!(pools[&second].get("took"), Some(&FieldType::Double));

        index.retire_legacy_learned_types().await.expect("retire");
        assert!(index
            .legacy_learned_types()
            .await
            .expect("after")
            .is_empty());
        index
            .retire_legacy_learned_types()
            .await
            .expect("retire twice");
    })
    .await;
}
