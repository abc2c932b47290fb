//! The fixed query set, each query timed over the client round trip.

use std::time::Instant;

use anyhow::Context;
use logpool_client::wire::search::{HistogramParams, SearchParams};
use serde_json::{json, Value};

use super::load::Target;
use super::stats::percentile;

/// One query of the set.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    /// Short name for the table.
    pub name: &'static str,
    /// The request body.
    pub params: Value,
    /// A histogram rather than a search.
    pub histogram: bool,
}

/// Latencies of one query.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Its name.
    pub name: &'static str,
    /// The query text.
    pub query: String,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Matching records (the search total, or the histogram's sum).
    pub matches: u64,
}

/// The set: a selective term, a phrase, a field term with a numeric range, and a
/// histogram of everything over the whole time range.
pub fn query_set(
    rare_term: &str,
    phrase: &str,
    seq_range: (u64, u64),
    time_range_ms: (i64, i64),
) -> Vec<QuerySpec> {
    let (from, to) = (time_range_ms.0.to_string(), time_range_ms.1.to_string());
    let search = |query: String| json!({ "query": query, "from": from, "to": to, "limit": 100 });
    vec![
        QuerySpec {
            name: "selective term",
            params: search(rare_term.to_string()),
            histogram: false,
        },
        QuerySpec {
            name: "phrase",
            params: search(format!("\"{phrase}\"")),
            histogram: false,
        },
        QuerySpec {
            name: "field + range",
            params: search(format!(
                "level:error AND seq:[{} TO {}]",
                seq_range.0, seq_range.1
            )),
            histogram: false,
        },
        QuerySpec {
            name: "histogram",
            params: json!({ "query": "", "from": from, "to": to }),
            histogram: true,
        },
    ]
}

/// Runs each query `runs` times after one untimed warm-up run.
///
/// # Errors
/// Fails when a query is refused.
pub async fn run(
    target: &Target,
    specs: &[QuerySpec],
    runs: usize,
) -> anyhow::Result<Vec<QueryResult>> {
    let mut results = Vec::new();
    for spec in specs {
        let mut latencies = Vec::with_capacity(runs);
        let mut matches = 0;
        for run in 0..=runs.max(1) {
            let started = Instant::now();
            let found: u64 = if spec.histogram {
                let params: HistogramParams = serde_json::from_value(spec.params.clone())?;
                let answer = target
                    .client
                    .histogram(&target.project, &target.pool, &params)
                    .await
                    .with_context(|| format!("query `{}` failed", spec.name))?;
                answer.buckets.iter().map(|bucket| bucket.count).sum()
            } else {
                let params: SearchParams = serde_json::from_value(spec.params.clone())?;
                let answer = target
                    .client
                    .search(&target.project, &target.pool, &params)
                    .await
                    .with_context(|| format!("query `{}` failed", spec.name))?;
                answer.total
            };
            if run > 0 {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            matches = found;
        }
        results.push(QueryResult {
            name: spec.name,
            query: spec.params["query"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            p50_ms: percentile(&mut latencies, 50.0),
            p99_ms: percentile(&mut latencies, 99.0),
            matches,
        });
    }
    Ok(results)
}
