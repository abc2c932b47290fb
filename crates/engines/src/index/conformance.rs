//! The conformance suite every [`LogIndex`] implementation runs: the same documents,
//! the same queries, the same expected answers. This is how the embedded and the
//! Elasticsearch engines are held to identical results.

use logpool_core::doc_id::DocIdentity;
use logpool_core::memory::RequestMemory;
use logpool_core::pool_id::PoolId;
use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::{FieldType, PoolRoute};
use logpool_core::sql::plan::{AggregateFn, GroupKey, KeyValue};

use super::{IndexDoc, LogIndex, SearchRequest, SortKey, SortOrder};

/// One day in nanoseconds.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
/// 2023-11-14T22:13:20Z.
pub(crate) const T0: i64 = 1_700_000_000_000_000_000;

/// Builds one document.
pub(crate) fn doc(
    pool_id: PoolId,
    position: u64,
    index: u32,
    time_ns: i64,
    fields: &[(&str, FieldValue)],
) -> IndexDoc {
    IndexDoc {
        identity: DocIdentity {
            pool_id,
            partition: 0,
            position,
            index_in_batch: index,
        },
        shard: 0,
        record: Record {
            time_ns,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        },
    }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Str(s.to_string())
}

/// Four documents over three days with text, numbers, a float, a bool and a nested field.
pub(crate) fn sample_docs(pool_id: PoolId) -> Vec<IndexDoc> {
    vec![
        doc(
            pool_id,
            0,
            0,
            T0,
            &[
                ("message", text("Connection reset by peer")),
                ("status", FieldValue::Long(500)),
                ("level", text("ERROR")),
            ],
        ),
        doc(
            pool_id,
            0,
            1,
            T0 + 1,
            &[
                ("message", text("GET /index.html 200")),
                ("status", FieldValue::Long(200)),
                ("level", text("info")),
            ],
        ),
        doc(
            pool_id,
            1,
            0,
            T0 + DAY_NS,
            &[
                ("message", text("disk full on /var")),
                ("latency", FieldValue::Double(250.5)),
                ("http.method", text("POST")),
            ],
        ),
        doc(
            pool_id,
            1,
            1,
            T0 + 2 * DAY_NS,
            &[
                ("message", text("user login ok")),
                ("ok", FieldValue::Bool(true)),
                ("status", FieldValue::Long(503)),
            ],
        ),
    ]
}

/// Queries over [`sample_docs`] and how many documents each must match.
pub(crate) const QUERY_CASES: &[(&str, u64)] = &[
    ("", 4),
    ("reset", 1),
    ("\"reset by peer\"", 1),
    ("\"peer by reset\"", 0),
    ("status:500", 1),
    ("status:[500 TO 599]", 2),
    ("status:>=200", 3),
    ("latency:>250", 1),
    ("latency:<250", 0),
    ("level:error", 1),
    ("error OR disk", 2),
    ("NOT status:500", 3),
    ("-level:info", 3),
    ("http.method:post", 1),
    ("_exists_:http", 1),
    ("_exists_:latency", 1),
    ("ok:true", 1),
    ("conn*", 1),
    ("d?sk", 1),
    ("(error OR login) AND status:503", 1),
    ("message:\"disk full\"", 1),
    ("500", 1),
    // A bare number finds numbers equal to it (and the words of text); numbers never
    // match a wildcard.
    ("200", 1),
    ("500.0", 1),
    ("250.5", 1),
    ("250", 0),
    ("50*", 0),
    ("true", 1),
    ("time:[2023-11-15T00:00:00Z TO *]", 2),
    ("status:{200 TO 503}", 1),
    ("NOT _exists_:status", 1),
    ("message:disk AND latency:250.5", 1),
    ("-(error OR info)", 2),
    // Wildcards on a named field match its text tokens; numbers never match one.
    ("level:err*", 1),
    ("level:e?ror", 1),
    ("message:ind*", 1),
    ("message:*ull", 1),
    ("http.method:p?st", 1),
    ("status:5*", 0),
    ("latency:25*", 0),
    ("time:2023*", 0),
    // Field groups, typed ranges and the other boolean spellings.
    ("level:(error OR info)", 2),
    ("status:(200 OR 503)", 2),
    ("status:\"503\"", 1),
    ("status:[500 TO 599] AND NOT level:error", 1),
    ("status:>=500 AND status:<600", 2),
    ("latency:[250 TO 251]", 1),
    ("latency:>=250.5", 1),
    ("latency:{250.5 TO *]", 0),
    ("time:>2023-11-15T00:00:00Z", 2),
    ("_exists_:ok", 1),
    ("ok:false", 0),
    ("error && status:500", 1),
    ("error || disk", 2),
    ("!level:info", 3),
    ("+disk -info", 1),
    // Escaping: escaped characters are literal, an escaped `*` is no wildcard.
    ("message:index.html", 1),
    ("message:\\/var", 1),
    ("index\\.html", 1),
    ("\"GET /index.html\"", 1),
    ("con\\*", 0),
];

/// Queries over [`sample_docs`] with the default operator OR, and their counts.
pub(crate) const QUERY_CASES_DEFAULT_OR: &[(&str, u64)] = &[
    ("error disk", 2),
    ("error disk AND full", 2),
    ("reset +peer", 1),
    ("login -ok", 0),
    ("level:(error info)", 2),
];

/// A search over all time.
pub(crate) fn request(query: &str) -> SearchRequest {
    request_with(query, DefaultOperator::And)
}

/// A search over all time with a chosen default operator.
pub(crate) fn request_with(query: &str, operator: DefaultOperator) -> SearchRequest {
    SearchRequest {
        query: parse_query(query, operator).expect("query"),
        from_ns: i64::MIN,
        to_ns: i64::MAX,
        limit: 100,
        after: None,
        order: SortOrder::Desc,
        memory: RequestMemory::unlimited(),
    }
}

/// The route loghub would write `docs` with: `pool` carrying the types the docs
/// teach it (in production they are fixed in the metadata store first).
pub(crate) fn learned(pool: &PoolRoute, docs: &[IndexDoc]) -> PoolRoute {
    let mut pool = pool.clone();
    let new = logpool_core::field_types::learn_types(
        &pool.field_hints,
        &pool.learned_types,
        docs.iter().map(|doc| &doc.record),
    );
    pool.learned_types.extend(new);
    pool
}

/// Writes [`sample_docs`], commits, and checks every query of [`QUERY_CASES`].
pub(crate) async fn check_query_suite(index: &dyn LogIndex, pool: &PoolRoute) {
    let docs = sample_docs(pool.pool_id);
    let pool = &learned(pool, &docs);
    let report = index.write(pool, docs, false).await.expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    index.commit().await.expect("commit");
    for (query, expected) in QUERY_CASES {
        let page = index.search(pool, &request(query)).await.expect(query);
        assert_eq!(page.total, *expected, "query {query}");
    }
    for (query, expected) in QUERY_CASES_DEFAULT_OR {
        let page = index
            .search(pool, &request_with(query, DefaultOperator::Or))
            .await
            .expect(query);
        assert_eq!(page.total, *expected, "query {query} with default OR");
    }
}

/// Checks newest-first and oldest-first order, cursor paging and time ranges over 50
/// documents (two per time, so ties are ordered by their tiebreak).
pub(crate) async fn check_paging(index: &dyn LogIndex, pool: &PoolRoute) {
    let docs: Vec<IndexDoc> = (0..50u64)
        .map(|i| {
            doc(
                pool.pool_id,
                i / 10,
                (i % 10) as u32,
                T0 + (i as i64 / 2) * 1_000,
                &[("message", text("tick"))],
            )
        })
        .collect();
    index.write(pool, docs, false).await.expect("write");
    index.commit().await.expect("commit");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut req = request("tick");
        req.limit = 7;
        req.after = after;
        let page = index.search(pool, &req).await.expect("search");
        assert_eq!(page.total, 50);
        if page.hits.is_empty() {
            break;
        }
        after = page.hits.last().map(|h| h.sort_key);
        seen.extend(page.hits);
    }
    assert_eq!(seen.len(), 50);
    let keys: Vec<SortKey> = seen.iter().map(|h| h.sort_key).collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|key| std::cmp::Reverse(*key));
    sorted.dedup();
    assert_eq!(keys, sorted, "strictly newest first, no duplicates");
    // Oldest first pages the same records in exactly the reverse order, ties too.
    let mut oldest_first = Vec::new();
    let mut after = None;
    loop {
        let mut req = request("tick");
        req.limit = 7;
        req.after = after;
        req.order = SortOrder::Asc;
        let page = index.search(pool, &req).await.expect("search");
        assert_eq!(page.total, 50);
        if page.hits.is_empty() {
            break;
        }
        after = page.hits.last().map(|h| h.sort_key);
        oldest_first.extend(page.hits.into_iter().map(|hit| hit.sort_key));
    }
    let mut reversed = keys.clone();
    reversed.reverse();
    assert_eq!(
        oldest_first, reversed,
        "strictly oldest first, no duplicates"
    );
    // A memory budget of a few hits cuts every page short, flagged, and paging on
    // from the last hit still returns every record once, in order.
    let mut budgeted = Vec::new();
    let mut after = None;
    loop {
        let mut req = request("tick");
        req.limit = 7;
        req.after = after;
        req.memory = RequestMemory::limited(500);
        let page = index.search(pool, &req).await.expect("search");
        assert_eq!(page.total, 50);
        if page.hits.is_empty() {
            break;
        }
        assert!(
            page.hits.len() < 7,
            "{} hits within 500 bytes",
            page.hits.len()
        );
        if budgeted.len() + page.hits.len() < 50 {
            assert!(page.truncated, "a page cut by its budget says so");
        }
        after = page.hits.last().map(|h| h.sort_key);
        budgeted.extend(page.hits.into_iter().map(|hit| hit.sort_key));
    }
    assert_eq!(budgeted, keys, "budgeted pages return the same records");
    let mut ranged = request("tick");
    ranged.from_ns = T0 + 5_000;
    ranged.to_ns = T0 + 10_000;
    assert_eq!(index.search(pool, &ranged).await.expect("search").total, 10);
}

/// Records of `pool` matching `query`.
async fn total(index: &dyn LogIndex, pool: &PoolRoute, query: &str) -> u64 {
    index
        .search(pool, &request(query))
        .await
        .expect("search")
        .total
}

/// Checks that replacing writes of already indexed documents never duplicate them.
pub(crate) async fn check_idempotent_rewrites(index: &dyn LogIndex, pool: &PoolRoute) {
    index
        .write(pool, sample_docs(pool.pool_id), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    index
        .write(pool, sample_docs(pool.pool_id), true)
        .await
        .expect("rewrite");
    index
        .write(pool, sample_docs(pool.pool_id), true)
        .await
        .expect("rewrite again");
    index.commit().await.expect("commit");
    assert_eq!(total(index, pool, "").await, 4);
    // Redelivering one queue message (position 1, whose records are a day apart)
    // replaces its own records only.
    let docs = sample_docs(pool.pool_id);
    index
        .write(pool, docs[2..].to_vec(), true)
        .await
        .expect("rewrite one message");
    index.commit().await.expect("commit");
    assert_eq!(total(index, pool, "").await, 4);
    // Every record is found by the id its hit carries, once.
    for doc in &docs {
        let id = doc.identity.doc_id();
        let page = index
            .search(pool, &request(&format!("_id:\"{id}\"")))
            .await
            .expect("search by id");
        assert_eq!(page.total, 1, "_id:{id}");
        assert_eq!(page.hits[0].id, id);
        assert_eq!(page.hits[0].fields, doc.record.fields_json());
    }
    let other_pool = DocIdentity {
        pool_id: PoolId::new(pool.pool_id.get() + 1),
        ..docs[0].identity
    };
    for missing in [other_pool.doc_id(), "no-such-id".to_string()] {
        let page = index
            .search(pool, &request(&format!("_id:\"{missing}\"")))
            .await
            .expect("search by id");
        assert_eq!(page.total, 0, "_id:{missing}");
    }
}

/// Checks context: neighbours in queue order (position, then index in batch) within
/// the anchor's shard only, whatever their event times and days, with a filter, and
/// the partition list used by the search planner.
pub(crate) async fn check_context(index: &dyn LogIndex, pool: &PoolRoute) {
    let mut docs = Vec::new();
    for partition in [0u32, 1] {
        for position in 0..5u64 {
            for index_in_batch in 0..4u32 {
                let n = position as i64 * 4 + i64::from(index_in_batch);
                // Event times run backwards and over three days: queue order is not time order.
                let time_ns = T0 + 2 * DAY_NS - n * (DAY_NS / 8);
                let source = if n % 2 == 0 { "web-1" } else { "web-10" };
                let mut doc = doc(
                    pool.pool_id,
                    position,
                    index_in_batch,
                    time_ns,
                    &[
                        ("message", text(&format!("line {partition} {n}"))),
                        ("source", text(source)),
                    ],
                );
                doc.identity.partition = partition;
                doc.shard = partition;
                docs.push(doc);
            }
        }
    }
    index.write(pool, docs.clone(), false).await.expect("write");
    index.commit().await.expect("commit");
    let anchor = docs[10].identity; // partition 0, position 2, index 2
    let queue_order: Vec<String> = docs
        .iter()
        .filter(|d| d.identity.partition == 0)
        .map(|d| d.identity.doc_id())
        .collect();
    let ids = |hits: &[super::SearchHit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    let request = super::ContextRequest {
        anchor,
        filter: logpool_core::query::Query::All,
        before: 4,
        after: 100,
    };
    let page = index.context(pool, &request).await.expect("context");
    assert_eq!(page.anchor.map(|h| h.id), Some(anchor.doc_id()));
    assert_eq!(ids(&page.before), queue_order[6..10].to_vec());
    assert_eq!(ids(&page.after), queue_order[11..].to_vec());
    // A filter keeps only matching neighbours (`web-1`: even n), still in queue order.
    let filtered = super::ContextRequest {
        filter: parse_query("source:\"web-1\"", DefaultOperator::And).expect("filter"),
        before: 2,
        after: 2,
        ..request
    };
    let page = index.context(pool, &filtered).await.expect("context");
    assert_eq!(
        ids(&page.before),
        [&queue_order[6], &queue_order[8]].map(String::clone)
    );
    assert_eq!(
        ids(&page.after),
        [&queue_order[12], &queue_order[14]].map(String::clone)
    );
    // An id that was never written has no anchor.
    let missing = super::ContextRequest {
        anchor: DocIdentity {
            position: 99,
            ..anchor
        },
        ..request
    };
    assert!(index
        .context(pool, &missing)
        .await
        .expect("context")
        .anchor
        .is_none());
    // The planner sees the three days that hold data, newest first.
    let partitions = index
        .time_partitions(pool, i64::MIN, i64::MAX)
        .await
        .expect("partitions");
    assert_eq!(partitions.len(), 3, "{partitions:?}");
    assert!(partitions.windows(2).all(|w| w[0].from_ns > w[1].from_ns));
    assert!(partitions.iter().all(|p| p.to_ns - p.from_ns == DAY_NS));
    let newest_only = index
        .time_partitions(pool, partitions[0].from_ns, i64::MAX)
        .await
        .expect("partitions");
    assert_eq!(newest_only, partitions[..1].to_vec());
}

/// Checks declared field types: values are converted to the declared type, and a
/// value that cannot have it is kept and found as text, never rejected.
pub(crate) async fn check_field_hints(index: &dyn LogIndex, pool: &PoolRoute) {
    let mut pool = pool.clone();
    pool.field_hints.insert("status".into(), FieldType::Long);
    pool.field_hints.insert("ratio".into(), FieldType::Double);
    pool.field_hints.insert("ok".into(), FieldType::Bool);
    pool.field_hints.insert("at".into(), FieldType::Timestamp);
    index.ensure_pool(&pool).await.expect("ensure");
    let id = pool.pool_id;
    let docs = vec![
        doc(id, 0, 0, T0, &[("status", FieldValue::Long(200))]),
        doc(id, 0, 1, T0 + 1, &[("status", text("abc"))]),
        doc(id, 0, 2, T0 + 2, &[("status", text("404"))]),
        doc(
            id,
            0,
            3,
            T0 + 3,
            &[("ratio", text("0.5")), ("ok", text("TRUE"))],
        ),
        doc(
            id,
            0,
            4,
            T0 + 4,
            &[("ratio", FieldValue::Long(2)), ("ok", text("maybe"))],
        ),
        doc(id, 0, 5, T0 + 5, &[("at", text("soon"))]),
    ];
    let report = index
        .write(&pool, docs.clone(), false)
        .await
        .expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    index.commit().await.expect("commit");
    let cases: &[(&str, u64)] = &[
        ("", 6),
        ("status:404", 1),
        ("status:[400 TO 499]", 1),
        ("status:>=200", 2),
        ("status:abc", 1),
        ("ratio:[0.4 TO 2.0]", 2),
        ("ratio:>1", 1),
        ("ok:true", 1),
        ("ok:maybe", 1),
        ("at:soon", 1),
        ("_exists_:status", 3),
    ];
    for (query, expected) in cases {
        let page = index.search(&pool, &request(query)).await.expect(query);
        assert_eq!(page.total, *expected, "query {query}");
    }
    // Hits show the record as it was sent.
    let page = index
        .search(&pool, &request("status:404"))
        .await
        .expect("search");
    assert_eq!(page.hits[0].fields["status"], serde_json::json!("404"));
    // A redelivery replaces; nothing doubles.
    index.write(&pool, docs, true).await.expect("rewrite");
    index.commit().await.expect("commit");
    assert_eq!(
        index
            .search(&pool, &request(""))
            .await
            .expect("search")
            .total,
        6
    );
}

/// Field types of [`field_type_docs`]: three declared, the rest learned.
pub(crate) fn field_type_hints() -> std::collections::BTreeMap<String, FieldType> {
    [
        ("user".to_string(), FieldType::Keyword),
        ("client".to_string(), FieldType::Ip),
        ("at".to_string(), FieldType::Timestamp),
    ]
    .into()
}

/// Records for [`check_field_types`], written in two batches: the first fixes the
/// learned types (`status` long, `ratio` double, `ok` bool), the second brings values
/// that conflict with them or convert, on another day (a new partition).
pub(crate) fn field_type_docs(pool_id: PoolId) -> (Vec<IndexDoc>, Vec<IndexDoc>) {
    let first = vec![
        doc(
            pool_id,
            0,
            0,
            T0,
            &[
                ("user", text("Alice")),
                ("client", text("10.0.0.1")),
                ("at", text("2023-11-14T22:13:20Z")),
                ("status", FieldValue::Long(200)),
                ("ratio", FieldValue::Double(0.5)),
                ("ok", FieldValue::Bool(true)),
            ],
        ),
        doc(
            pool_id,
            0,
            1,
            T0 + 1,
            &[
                ("user", text("alice")),
                ("client", text("10.0.0.200")),
                // Epoch milliseconds: 2023-11-14T22:14:20Z.
                ("at", FieldValue::Long(1_700_000_060_000)),
                ("status", FieldValue::Long(503)),
            ],
        ),
    ];
    let second = vec![
        doc(
            pool_id,
            1,
            0,
            T0 + DAY_NS,
            &[
                ("user", text("Bob Smith")),
                ("client", text("10.0.1.5")),
                ("at", text("2023-11-14T22:15:00Z")),
                ("status", text("abc")),
                ("ratio", FieldValue::Long(2)),
            ],
        ),
        doc(
            pool_id,
            1,
            1,
            T0 + DAY_NS + 1,
            &[
                ("user", text("bob")),
                ("client", text("2001:db8::1")),
                ("at", text("yesterday")),
                ("status", text("404")),
                ("ok", text("maybe")),
            ],
        ),
        doc(
            pool_id,
            1,
            2,
            T0 + DAY_NS + 2,
            &[
                ("client", text("localhost")),
                ("user", FieldValue::Long(42)),
            ],
        ),
    ];
    (first, second)
}

/// Queries over [`field_type_docs`] and the records each must find, by their index
/// in `first ++ second`, worked out by hand from the type rules.
pub(crate) const FIELD_TYPE_CASES: &[(&str, &[usize])] = &[
    // keyword: the whole value, case-sensitive; wildcards on the whole value.
    ("user:Alice", &[0]),
    ("user:alice", &[1]),
    ("user:\"Bob Smith\"", &[2]),
    ("user:Bob", &[]),
    ("user:42", &[4]),
    ("Bob", &[2, 3]),
    ("user:bob*", &[2, 3]),
    ("user:a?ice", &[0, 1]),
    ("user:[B TO a]", &[2]),
    ("user:*", &[0, 1, 2, 3, 4]),
    // ip: addresses, CIDR blocks, ranges over IPv4 and IPv6; the overflow is text.
    ("client:10.0.0.1", &[0]),
    ("client:\"10.0.0.0/24\"", &[0, 1]),
    ("client:[10.0.0.0 TO 10.0.0.255]", &[0, 1]),
    ("client:{10.0.0.1 TO 10.0.1.5]", &[1, 2]),
    ("client:>=10.0.0.200", &[1, 2, 3]),
    ("client:\"2001:db8::/32\"", &[3]),
    ("client:localhost", &[4]),
    ("client:[a TO z]", &[]),
    // timestamp: RFC 3339 or epoch bounds, compared in time; the overflow is text.
    ("at:[2023-11-14T22:13:20Z TO 2023-11-14T22:14:20Z]", &[0, 1]),
    ("at:>2023-11-14T22:14:20Z", &[2]),
    ("at:<1700000060000", &[0]),
    ("at:\"2023-11-14T22:15:00Z\"", &[2]),
    ("at:yesterday", &[3]),
    // learned from the first value: `status` stays long after "abc" arrived.
    ("status:abc", &[2]),
    ("status:>=300", &[1, 3]),
    ("status:[200 TO 404]", &[0, 3]),
    ("status:[a TO z]", &[]),
    ("ratio:>1", &[2]),
    ("ok:true", &[0]),
    ("ok:maybe", &[3]),
    ("_exists_:status", &[0, 1, 2, 3]),
];

/// Declared and learned field types: keyword, ip and timestamp queries, and a field
/// whose first value (200) fixes it as long: a later `"abc"` is kept as findable text,
/// ranges keep working, and all of it holds on a second handle (`reopened`, opened
/// after the first batch: a restart) that writes the second batch into a new day.
pub(crate) async fn check_field_types(
    index: &dyn LogIndex,
    reopen: &dyn Fn() -> Box<dyn LogIndex>,
    pool: &PoolRoute,
) {
    let mut pool = pool.clone();
    pool.field_hints = field_type_hints();
    index.ensure_pool(&pool).await.expect("ensure");
    let (first, second) = field_type_docs(pool.pool_id);
    // As loghub does: the types the first batch teaches are fixed (in the metadata
    // store) and travel with the route before the batch is written.
    pool.learned_types = logpool_core::field_types::learn_types(
        &pool.field_hints,
        &pool.learned_types,
        first.iter().map(|doc| &doc.record),
    );
    let types = pool.field_types();
    assert_eq!(types.get("status"), Some(&FieldType::Long), "{types:?}");
    assert_eq!(types.get("ratio"), Some(&FieldType::Double), "{types:?}");
    assert_eq!(types.get("user"), Some(&FieldType::Keyword), "{types:?}");
    let report = index
        .write(&pool, first.clone(), false)
        .await
        .expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    index.commit().await.expect("commit");
    // A second handle keeps no types of its own: it indexes and searches by the route.
    let reopened = reopen();
    let report = reopened
        .write(&pool, second.clone(), false)
        .await
        .expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    reopened.commit().await.expect("commit");
    let docs: Vec<IndexDoc> = first.into_iter().chain(second).collect();
    for (query, expected) in FIELD_TYPE_CASES {
        let mut expected: Vec<String> = expected
            .iter()
            .map(|i| docs[*i].identity.doc_id())
            .collect();
        expected.sort();
        // The in-memory evaluator under the same types agrees.
        let parsed = parse_query(query, DefaultOperator::And).expect(query);
        let mut evaluated: Vec<String> = docs
            .iter()
            .filter(|doc| logpool_core::typed_match::matches(&parsed, &doc.record, &types))
            .map(|doc| doc.identity.doc_id())
            .collect();
        evaluated.sort();
        assert_eq!(evaluated, expected, "in-memory query {query}");
        for (handle, engine) in [("first", index), ("reopened", reopened.as_ref())] {
            let page = engine.search(&pool, &request(query)).await.expect(query);
            let mut found: Vec<String> = page.hits.into_iter().map(|hit| hit.id).collect();
            found.sort();
            assert_eq!(found, expected, "query {query} on the {handle} handle");
        }
    }
    // Pipe SQL groups a keyword by its whole value.
    let groups = reopened
        .aggregate(
            &pool,
            &super::AggregateRequest {
                query: parse_query("_exists_:user", DefaultOperator::And).expect("query"),
                from_ns: i64::MIN,
                to_ns: i64::MAX,
                group_by: vec![GroupKey::Field("user".into())],
                aggregates: vec![AggregateFn::Count],
                max_groups: 100,
                memory: logpool_core::memory::RequestMemory::unlimited(),
            },
        )
        .await
        .expect("aggregate");
    let mut keys: Vec<String> = groups
        .iter()
        .map(|group| format!("{:?}", group.keys))
        .collect();
    keys.sort();
    let mut expected: Vec<String> = ["42", "Alice", "Bob Smith", "alice", "bob"]
        .iter()
        .map(|key| format!("{:?}", vec![KeyValue::Str(key.to_string())]))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
}

/// Loghub systems the agreement check indexes, and lines taken from each.
const LOGHUB_SAMPLE: [&str; 3] = ["Apache", "OpenSSH", "HDFS"];
const LOGHUB_LINES_PER_SYSTEM: usize = 400;

/// Records built from the Loghub samples in `tests/data`, with typed fields beside
/// the message so that every syntax form has something to match.
pub(crate) fn loghub_docs(pool_id: PoolId) -> Vec<IndexDoc> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/loghub-2k");
    let mut docs = Vec::new();
    for (system_index, system) in LOGHUB_SAMPLE.iter().enumerate() {
        let text = std::fs::read_to_string(dir.join(format!("{system}_2k.log"))).expect("loghub");
        for (line_no, line) in text.lines().take(LOGHUB_LINES_PER_SYSTEM).enumerate() {
            let n = docs.len();
            docs.push(doc(
                pool_id,
                n as u64,
                0,
                T0 + n as i64 * 60_000_000_000,
                &[
                    ("message", text_value(line)),
                    ("system", text_value(&system.to_lowercase())),
                    ("line_no", FieldValue::Long(line_no as i64)),
                    ("latency", FieldValue::Double(line_no as f64 / 7.0)),
                    ("ok", FieldValue::Bool(line_no % 3 == 0)),
                    (
                        "host",
                        text_value(&format!("web-{}", (line_no + system_index) % 5)),
                    ),
                ],
            ));
        }
    }
    docs
}

fn text_value(s: &str) -> FieldValue {
    text(s)
}

/// The most frequent alphabetic message word, the most frequent one of the records
/// without it, and the most frequent adjacent pair of alphabetic words.
fn frequent_words(docs: &[IndexDoc]) -> (String, String, String) {
    let messages: Vec<Vec<String>> = docs
        .iter()
        .filter_map(|doc| match doc.record.fields.get("message") {
            Some(FieldValue::Str(message)) => Some(logpool_core::query::tokenize(message)),
            _ => None,
        })
        .collect();
    let is_word = |t: &String| t.len() >= 4 && t.chars().all(|c| c.is_ascii_alphabetic());
    let most_frequent = |keys: Vec<Vec<String>>| -> String {
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        for mut record_keys in keys {
            record_keys.sort();
            record_keys.dedup();
            for key in record_keys {
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(key, _)| key)
            .expect("a frequent word")
    };
    let words = |tokens: &Vec<String>| tokens.iter().filter(|t| is_word(t)).cloned().collect();
    let first = most_frequent(messages.iter().map(words).collect());
    let second = most_frequent(
        messages
            .iter()
            .filter(|tokens| !tokens.contains(&first))
            .map(words)
            .collect(),
    );
    let pair = most_frequent(
        messages
            .iter()
            .map(|tokens| {
                tokens
                    .windows(2)
                    .filter(|pair| pair.iter().all(is_word))
                    .map(|pair| pair.join(" "))
                    .collect()
            })
            .collect(),
    );
    (first, second, pair)
}

/// One query of every syntax form over [`loghub_docs`].
pub(crate) fn loghub_queries(docs: &[IndexDoc]) -> Vec<String> {
    let (w1, w2, pair) = frequent_words(docs);
    let prefix = &w1[..3];
    let mut single = w2.clone();
    single.replace_range(1..2, "?");
    vec![
        w1.clone(),
        format!("\"{pair}\""),
        format!("message:{w1}"),
        format!("message:\"{pair}\""),
        format!("message:({w1} OR {w2})"),
        format!("{prefix}*"),
        format!("message:{single}"),
        format!("*{}", &w2[1..]),
        "host:web-3".to_string(),
        "host:web\\-3".to_string(),
        "host:web*".to_string(),
        "host:w?b".to_string(),
        "line_no:[100 TO 199]".to_string(),
        "line_no:{100 TO 199}".to_string(),
        "line_no:[* TO 10]".to_string(),
        "latency:>20.5".to_string(),
        "latency:<=3".to_string(),
        "latency:[10 TO *}".to_string(),
        "_exists_:latency".to_string(),
        "NOT _exists_:nothing".to_string(),
        format!("{w1} AND NOT {w2}"),
        format!("{w1} && !system:apache"),
        format!("{w1} || {w2}"),
        format!("+{w1} -{w2}"),
        format!("({w1} OR {w2}) AND ok:true"),
        "system:openssh AND line_no:<50".to_string(),
        format!("-({w1} OR {w2})"),
        format!("time:<{}", T0 / 1_000_000_000 + 600),
    ]
}

/// Every query of [`loghub_queries`] finds exactly the records the in-memory
/// evaluator (a plain scan) matches.
pub(crate) async fn check_loghub_agreement(index: &dyn LogIndex, pool: &PoolRoute) {
    let docs = loghub_docs(pool.pool_id);
    let report = index.write(pool, docs.clone(), false).await.expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    index.commit().await.expect("commit");
    for query in loghub_queries(&docs) {
        let parsed = parse_query(&query, DefaultOperator::And).expect(&query);
        let mut expected: Vec<String> = docs
            .iter()
            .filter(|doc| logpool_core::query::eval::matches(&parsed, &doc.record))
            .map(|doc| doc.identity.doc_id())
            .collect();
        assert!(!expected.is_empty(), "query {query} matches something");
        let mut search = request(&query);
        search.limit = docs.len();
        let page = index.search(pool, &search).await.expect(&query);
        let mut found: Vec<String> = page.hits.into_iter().map(|hit| hit.id).collect();
        expected.sort();
        found.sort();
        assert_eq!(page.total, expected.len() as u64, "query {query}");
        assert_eq!(found, expected, "query {query}");
    }
}

/// The start of the UTC day holding [`T0`]: day partitions start at day boundaries.
pub(crate) const PLAN_DAY0: i64 = T0 - T0.rem_euclid(DAY_NS);

/// Three records a day over five days from [`PLAN_DAY0`], at a quarter, a half and
/// three quarters of each day; every other one has `status` 500.
pub(crate) fn five_days_of_docs(pool_id: PoolId) -> Vec<IndexDoc> {
    (0..5i64)
        .flat_map(|day| {
            (1..=3i64).map(move |quarter| {
                let n = day * 3 + quarter;
                doc(
                    pool_id,
                    day as u64,
                    quarter as u32,
                    PLAN_DAY0 + day * DAY_NS + quarter * (DAY_NS / 4),
                    &[
                        ("message", text(&format!("day {day} quarter {quarter}"))),
                        (
                            "status",
                            FieldValue::Long(if n % 2 == 0 { 500 } else { 200 }),
                        ),
                    ],
                )
            })
        })
        .collect()
}

/// Searches `[from_ns, to_ns)` as the planner did before plans: the partitions are
/// listed, then each one is searched by its time range, one step per partition.
pub(crate) async fn search_step_by_step_by_range(
    index: &dyn LogIndex,
    pool: &PoolRoute,
    query: &logpool_core::query::Query,
    from_ns: i64,
    to_ns: i64,
) -> Vec<super::SearchHit> {
    let partitions = index
        .time_partitions(pool, from_ns, to_ns)
        .await
        .expect("partitions");
    let mut hits = Vec::new();
    for partition in &partitions {
        let step = SearchRequest {
            query: query.clone(),
            from_ns: partition.from_ns,
            to_ns: partition.to_ns,
            ..request("")
        };
        hits.extend(index.search(pool, &step).await.expect("step").hits);
    }
    hits
}

/// Searches `[from_ns, to_ns)` through one plan, one step per partition.
pub(crate) async fn search_step_by_step_by_plan(
    index: &dyn LogIndex,
    pool: &PoolRoute,
    query: &logpool_core::query::Query,
    from_ns: i64,
    to_ns: i64,
) -> (super::SearchPlan, Vec<super::SearchHit>) {
    let plan = index
        .plan_search(pool, query, from_ns, to_ns)
        .await
        .expect("plan");
    let mut hits = Vec::new();
    for partition in plan.partitions().chunks(1) {
        let step = index
            .search_partitions(&plan, partition, &page(100, None))
            .await
            .expect("step");
        hits.extend(step.hits);
    }
    (plan, hits)
}

/// One page of a planned search.
pub(crate) fn page(limit: usize, after: Option<SortKey>) -> super::PageRequest {
    super::PageRequest {
        limit,
        after,
        order: SortOrder::Desc,
        memory: RequestMemory::unlimited(),
    }
}

/// Checks search plans: the partitions of a range are listed newest first, the
/// plan's range and query bind every step, and scanning the partitions in groups
/// (as the search planner does) gives the page and total of one search.
pub(crate) async fn check_search_plan(index: &dyn LogIndex, pool: &PoolRoute) {
    index
        .write(pool, five_days_of_docs(pool.pool_id), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let ids = |hits: &[super::SearchHit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    let all = parse_query("", DefaultOperator::And).expect("query");

    // Every day of the range is a partition, newest first.
    let plan = index
        .plan_search(pool, &all, PLAN_DAY0, PLAN_DAY0 + 5 * DAY_NS)
        .await
        .expect("plan");
    let ranges: Vec<(i64, i64)> = plan
        .partitions()
        .iter()
        .map(|p| (p.range().from_ns, p.range().to_ns))
        .collect();
    let expected: Vec<(i64, i64)> = (0..5i64)
        .rev()
        .map(|day| (PLAN_DAY0 + day * DAY_NS, PLAN_DAY0 + (day + 1) * DAY_NS))
        .collect();
    assert_eq!(ranges, expected);

    // One partition alone: its three records, newest first.
    let second = index
        .search_partitions(&plan, &plan.partitions()[1..2], &page(100, None))
        .await
        .expect("search one partition");
    assert_eq!(second.total, 3);
    assert!(second
        .hits
        .iter()
        .all(|hit| hit.time_ns >= PLAN_DAY0 + 3 * DAY_NS && hit.time_ns < PLAN_DAY0 + 4 * DAY_NS));
    // No partition: nothing.
    let none = index
        .search_partitions(&plan, &[], &page(100, None))
        .await
        .expect("search no partition");
    assert_eq!((none.total, none.hits.len()), (0, 0));

    // A range that cuts days in half, with a query: the plan's partitions are the
    // days it overlaps, and its range and query bind every partition searched.
    let from_ns = PLAN_DAY0 + DAY_NS + DAY_NS / 2;
    let to_ns = PLAN_DAY0 + 4 * DAY_NS - DAY_NS / 8;
    for query in ["", "status:500", "quarter AND NOT status:500"] {
        let mut whole = request(query);
        whole.from_ns = from_ns;
        whole.to_ns = to_ns;
        let expected = index.search(pool, &whole).await.expect("search");
        assert!(expected.total > 0, "query {query:?} matches in the range");
        let plan = index
            .plan_search(pool, &whole.query, from_ns, to_ns)
            .await
            .expect("plan");
        assert_eq!(plan.partitions().len(), 3, "days 1 to 3");
        // Steps of two partitions, each filling what the page still needs, then
        // only counting: the planner's walk.
        let limit = 4;
        let mut hits = Vec::new();
        let mut total = 0;
        for group in plan.partitions().chunks(2) {
            let step = index
                .search_partitions(&plan, group, &page(limit - hits.len().min(limit), None))
                .await
                .expect("step");
            total += step.total;
            hits.extend(step.hits);
        }
        let mut first_page = whole.clone();
        first_page.limit = limit;
        let one_search = index.search(pool, &first_page).await.expect("search");
        assert_eq!(total, expected.total, "query {query:?}");
        assert_eq!(ids(&hits), ids(&one_search.hits), "query {query:?}");
        // A cursor carries over: every partition after the first page's last hit.
        let after = one_search.hits.last().map(|hit| hit.sort_key);
        let rest = index
            .search_partitions(&plan, plan.partitions(), &page(100, after))
            .await
            .expect("after");
        let mut next_page = whole.clone();
        next_page.after = after;
        let expected_rest = index.search(pool, &next_page).await.expect("search");
        assert_eq!(ids(&rest.hits), ids(&expected_rest.hits), "query {query:?}");
    }

    // A range without data has no partition.
    let empty = index
        .plan_search(pool, &all, PLAN_DAY0 + 10 * DAY_NS, PLAN_DAY0 + 12 * DAY_NS)
        .await
        .expect("plan");
    assert!(empty.partitions().is_empty());
    // A query the engine refuses is refused when planned, before any step.
    let refused = parse_query("time:notatime", DefaultOperator::And).expect("query");
    let error = index
        .plan_search(pool, &refused, PLAN_DAY0, PLAN_DAY0 + 5 * DAY_NS)
        .await
        .expect_err("a time that is no time");
    assert!(
        matches!(error, super::IndexError::InvalidQuery(_)),
        "{error:?}"
    );
}

#[cfg(test)]
mod tests {
    use logpool_core::query::eval::matches;

    use super::*;

    /// The in-memory evaluator (tail, alerts) answers every conformance query with the
    /// same count as the engines must: a plain scan of the records.
    #[test]
    fn test_in_memory_evaluator_agrees_with_the_suite() {
        let docs = sample_docs(PoolId::new(1));
        let cases = QUERY_CASES
            .iter()
            .map(|case| (case, DefaultOperator::And))
            .chain(
                QUERY_CASES_DEFAULT_OR
                    .iter()
                    .map(|case| (case, DefaultOperator::Or)),
            );
        for ((query, expected), operator) in cases {
            let parsed = parse_query(query, operator).expect(query);
            let count = docs
                .iter()
                .filter(|doc| matches(&parsed, &doc.record))
                .count() as u64;
            assert_eq!(count, *expected, "query {query} parsed as {parsed:?}");
        }
    }
}
