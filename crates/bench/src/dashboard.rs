//! A dashboard of 12 panels, loaded as the console loads one: every panel's request
//! sent at once (4 histograms, 4 counts, 2 record tables, 2 pipe-SQL group-bys) over
//! the last 24 hours, timed from the first request until the last panel's answer.

use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::load::Target;
use super::stats::percentile;

/// How long a whole dashboard took to load.
#[derive(Debug, Clone)]
pub struct DashboardResult {
    /// Panels per load.
    pub panels: usize,
    /// Timed loads.
    pub runs: usize,
    /// Median time until every panel answered, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest load, ms.
    pub max_ms: f64,
}

/// The panels: (API path below the pool, request body).
fn panels() -> Vec<(&'static str, Value)> {
    let range = |mut body: Value| {
        body["from"] = json!("now-24h");
        body["to"] = json!("now");
        body
    };
    let mut panels = Vec::new();
    for query in ["", "level:error", "level:warn", "level:info"] {
        panels.push(("histogram", range(json!({ "query": query }))));
        panels.push(("search", range(json!({ "query": query, "limit": 1 }))));
    }
    for query in ["", "level:error"] {
        panels.push(("search", range(json!({ "query": query, "limit": 50 }))));
    }
    for sql in [
        "* | SELECT level, count(*) AS c GROUP BY level ORDER BY c DESC",
        "* | SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC LIMIT 10",
    ] {
        panels.push(("query", range(json!({ "query": sql }))));
    }
    panels
}

/// Panel requests in flight at once, under the default per-tenant query bound.
const PARALLEL_PANELS: usize = 8;

/// Loads the dashboard `runs` times after one untimed warm-up load.
///
/// # Errors
/// Fails when a panel's request is refused.
pub async fn run(target: &Target, runs: usize) -> anyhow::Result<DashboardResult> {
    let panels = panels();
    let mut took_ms = Vec::with_capacity(runs);
    for run in 0..=runs {
        let started = Instant::now();
        let mut loads = JoinSet::new();
        // A tenant runs at most 8 queries at once (`max_concurrent_queries_per_tenant`,
        // 429 beyond): the panels load in parallel up to that bound.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_PANELS));
        for (endpoint, body) in panels.clone() {
            let client = target.client.clone();
            let slots = slots.clone();
            let path = format!(
                "/v1/projects/{}/pools/{}/{endpoint}",
                target.project, target.pool
            );
            loads.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                client
                    .post(&path, &body)
                    .await
                    .with_context(|| format!("dashboard panel {endpoint} {body} failed"))
            });
        }
        while let Some(answer) = loads.join_next().await {
            answer.context("a dashboard panel's task panicked")??;
        }
        if run > 0 {
            took_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(DashboardResult {
        panels: panels.len(),
        runs,
        p50_ms: percentile(&mut took_ms, 50.0),
        p99_ms: percentile(&mut took_ms, 99.0),
        max_ms: percentile(&mut took_ms, 100.0),
    })
}
