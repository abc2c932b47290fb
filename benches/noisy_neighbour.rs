//! Noisy-neighbour benchmark. Run with `cargo bench --bench noisy_neighbour`.
//!
//! One standalone server, two tenants. Tenant A has an ingest quota; tenant B has
//! none. Phase 1 measures B alone: ingest from 4 clients sending 1,000-record
//! batches, and searches/s (with latencies) from 2 clients over a preloaded pool.
//! Phase 2 adds A's 8 clients sending exactly at A's quota (a well-behaved
//! neighbour: what A's accepted load alone costs B). Phase 3 has A's clients offer
//! `NOISY_MULTIPLE` times its quota (default 10; 0 = as fast as answers come back;
//! the offered and accepted rates are printed). The figures to compare across
//! machines are B's ratios to phase 1, phase 3 against phase 2 (what the refused
//! excess costs), and A's accepted rate against its quota.
//!
//! B's ingest is paced (a steady offered rate, as a real tenant's shippers send)
//! unless `NOISY_B_RATE=0`, which makes B's clients send as fast as they can too;
//! then both tenants compete for the same CPU and B's throughput measures its share
//! of the machine rather than its isolation.
//!
//! Settings: `NOISY_SECONDS` (each phase, default 10), `NOISY_QUOTA` (A's records/s
//! quota, default 20,000), `NOISY_MULTIPLE`, `NOISY_B_RATE` (B's offered records/s,
//! default 20,000).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logpool_e2e::{loghub_lines, TestServer, ADMIN_KEY, LOGHUB_SYSTEMS};
use serde_json::{json, Value};

const BATCH: usize = 1_000;
const B_INGEST_CLIENTS: usize = 4;
const B_SEARCH_CLIENTS: usize = 2;
const A_CLIENTS: usize = 8;
const PRELOADED: usize = 50_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Request counters of one kind of client.
#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    refused_429: AtomicU64,
    other: AtomicU64,
}

impl Counts {
    fn record(&self, status: reqwest::StatusCode) {
        let counter = if status.is_success() {
            &self.ok
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            &self.refused_429
        } else {
            &self.other
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.refused_429.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        )
    }
}

/// Pre-serialized batches, so client-side encoding costs nothing during a phase.
fn bodies(lines: &[String], count: usize, tag: &str) -> Vec<Bytes> {
    (0..count)
        .map(|b| {
            let records: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let level = ["info", "warn", "error"][n % 3];
                    json!({ "message": lines[n % lines.len()], "n": n, "level": level, "tag": tag })
                })
                .collect();
            Bytes::from(serde_json::to_vec(&records).expect("json"))
        })
        .collect()
}

async fn admin(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

/// Creates `tenant` with a tenant_admin key and `project` with the given pools.
async fn tenant(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    project: &str,
    pools: &[&str],
) -> String {
    use reqwest::Method;
    admin(
        http,
        base,
        Method::POST,
        "/v1/tenants",
        json!({ "name": tenant }),
    )
    .await;
    let key = admin(
        http,
        base,
        Method::POST,
        &format!("/v1/tenants/{tenant}/keys"),
        json!({ "role": "tenant_admin" }),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let send = |path: String, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let created = send("/v1/projects".into(), json!({ "name": project }))
        .await
        .expect("project");
    assert!(
        created.status().is_success(),
        "project: {}",
        created.status()
    );
    for pool in pools {
        let created = send(
            format!("/v1/projects/{project}/pools"),
            json!({ "name": pool, "shards": 2 }),
        )
        .await
        .expect("pool");
        assert!(created.status().is_success(), "pool: {}", created.status());
    }
    key
}

/// How one kind of client sends: as fast as answers come back, or paced so that
/// all clients together offer `records_per_s`.
#[derive(Debug, Clone, Copy)]
enum Pace {
    Flat,
    Rate(u64),
}

/// Spawns `clients` loops POSTing `bodies` (round robin) to `url` until `stop`.
/// Each task returns its requests' latencies.
#[allow(clippy::too_many_arguments)]
fn ingest_load(
    http: &reqwest::Client,
    url: String,
    key: &str,
    bodies: &[Bytes],
    clients: usize,
    pace: Pace,
    stop: Instant,
    counts: Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<Vec<Duration>>> {
    (0..clients)
        .map(|c| {
            let (http, url, key, counts) =
                (http.clone(), url.clone(), key.to_string(), counts.clone());
            let bodies = bodies.to_vec();
            tokio::spawn(async move {
                let interval = match pace {
                    Pace::Flat => None,
                    Pace::Rate(rate) => Some(Duration::from_secs_f64(
                        (clients * BATCH) as f64 / rate.max(1) as f64,
                    )),
                };
                let started = Instant::now();
                let mut latencies = Vec::new();
                let mut i = c;
                let mut sent = 0u32;
                while Instant::now() < stop {
                    if let Some(interval) = interval {
                        // Clients are staggered so that their batches do not arrive together.
                        let offset = interval.mul_f64(c as f64 / clients as f64);
                        tokio::time::sleep_until((started + offset + interval * sent).into()).await;
                        if Instant::now() >= stop {
                            break;
                        }
                    }
                    sent += 1;
                    let body = bodies[i % bodies.len()].clone();
                    i += clients;
                    let sent_at = Instant::now();
                    match http
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.bytes().await;
                            counts.record(status);
                            latencies.push(sent_at.elapsed());
                        }
                        Err(_) => {
                            counts.other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect()
}

/// Spawns `clients` loops of searches on `url` until `stop`.
fn search_load(
    http: &reqwest::Client,
    url: String,
    key: &str,
    clients: usize,
    stop: Instant,
    counts: Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<Vec<Duration>>> {
    let queries = [
        "error",
        "level:warn AND connection",
        "failed OR denied",
        "info",
    ];
    (0..clients)
        .map(|c| {
            let (http, url, key, counts) =
                (http.clone(), url.clone(), key.to_string(), counts.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = c;
                while Instant::now() < stop {
                    let query = queries[i % queries.len()];
                    i += 1;
                    let sent_at = Instant::now();
                    match http
                        .get(&url)
                        .bearer_auth(&key)
                        .query(&[("query", query), ("from", "-1h"), ("limit", "50")])
                        .send()
                        .await
                    {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.bytes().await;
                            counts.record(status);
                            latencies.push(sent_at.elapsed());
                        }
                        Err(_) => {
                            counts.other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect()
}

/// The median and 99th percentile of `latencies`, in milliseconds.
fn percentiles(mut latencies: Vec<Duration>) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}

/// One phase's figures.
#[derive(Debug)]
struct Phase {
    b_ingest_rps: f64,
    b_search_qps: f64,
    b_errors: u64,
    b_put_ms: (f64, f64),
    b_search_ms: (f64, f64),
    a_accepted_rps: f64,
    a_offered_rps: f64,
    a_429: u64,
    a_other: u64,
}

struct Setup {
    http: reqwest::Client,
    base: String,
    a_key: String,
    b_key: String,
    a_bodies: Vec<Bytes>,
    b_bodies: Vec<Bytes>,
    b_pace: Pace,
}

async fn run_phase(setup: &Setup, seconds: u64, tenant_a: Option<Pace>) -> Phase {
    let Setup { http, base, .. } = setup;
    let started = Instant::now();
    let stop = started + Duration::from_secs(seconds);
    let (b_put, b_search, a_put) = (
        Arc::<Counts>::default(),
        Arc::<Counts>::default(),
        Arc::<Counts>::default(),
    );
    let b_ingest = ingest_load(
        http,
        format!("{base}/v1/projects/calm/pools/live/logs"),
        &setup.b_key,
        &setup.b_bodies,
        B_INGEST_CLIENTS,
        setup.b_pace,
        stop,
        b_put.clone(),
    );
    let b_searches = search_load(
        http,
        format!("{base}/v1/projects/calm/pools/static/search"),
        &setup.b_key,
        B_SEARCH_CLIENTS,
        stop,
        b_search.clone(),
    );
    let mut noise = Vec::new();
    if let Some(a_pace) = tenant_a {
        noise = ingest_load(
            http,
            format!("{base}/v1/projects/noisy/pools/app/logs"),
            &setup.a_key,
            &setup.a_bodies,
            A_CLIENTS,
            a_pace,
            stop,
            a_put.clone(),
        );
    }
    let mut put_latencies = Vec::new();
    for task in b_ingest {
        put_latencies.extend(task.await.expect("client"));
    }
    let mut search_latencies = Vec::new();
    for task in b_searches {
        search_latencies.extend(task.await.expect("client"));
    }
    for task in noise {
        task.await.expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (b_ok, b_429, b_other) = b_put.get();
    let (s_ok, s_429, s_other) = b_search.get();
    let (a_ok, a_429, a_other) = a_put.get();
    Phase {
        b_ingest_rps: (b_ok * BATCH as u64) as f64 / elapsed,
        b_search_qps: s_ok as f64 / elapsed,
        b_errors: b_429 + b_other + s_429 + s_other,
        b_put_ms: percentiles(put_latencies),
        b_search_ms: percentiles(search_latencies),
        a_accepted_rps: (a_ok * BATCH as u64) as f64 / elapsed,
        a_offered_rps: ((a_ok + a_429 + a_other) * BATCH as u64) as f64 / elapsed,
        a_429,
        a_other,
    }
}

/// Waits until the search pool has `expected` records, so both phases search the
/// same data.
async fn wait_indexed(setup: &Setup, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let answer: Value = setup
            .http
            .get(format!(
                "{}/v1/projects/calm/pools/static/search",
                setup.base
            ))
            .bearer_auth(&setup.b_key)
            .query(&[("query", "*"), ("from", "-1h"), ("limit", "1")])
            .send()
            .await
            .expect("search")
            .json()
            .await
            .unwrap_or(Value::Null);
        if answer["total"].as_u64().unwrap_or(0) >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the preloaded pool was not searchable in time");
}

#[tokio::main]
async fn main() {
    let seconds = env_u64("NOISY_SECONDS", 10);
    let quota = env_u64("NOISY_QUOTA", 20_000);
    let multiple = env_u64("NOISY_MULTIPLE", 10);
    let lines: Vec<String> = LOGHUB_SYSTEMS
        .iter()
        .flat_map(|s| loghub_lines(s))
        .collect();
    let server = TestServer::start().await.expect("server");
    let base = server.url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("http");
    let b_key = tenant(&http, &base, "tenant-b", "calm", &["live", "static"]).await;
    let a_key = tenant(&http, &base, "tenant-a", "noisy", &["app"]).await;
    admin(
        &http,
        &base,
        reqwest::Method::PUT,
        "/v1/tenants/tenant-a/quotas",
        json!({ "ingest_records_per_s": quota }),
    )
    .await;
    let setup = Setup {
        http,
        base,
        a_key,
        b_key,
        a_bodies: bodies(&lines, 4, "a"),
        b_bodies: bodies(&lines, 16, "b"),
        b_pace: match env_u64("NOISY_B_RATE", 20_000) {
            0 => Pace::Flat,
            rate => Pace::Rate(rate),
        },
    };
    for body in bodies(&lines, PRELOADED / BATCH, "static") {
        let response = setup
            .http
            .post(format!("{}/v1/projects/calm/pools/static/logs", setup.base))
            .bearer_auth(&setup.b_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("preload");
        assert!(
            response.status().is_success(),
            "preload: {}",
            response.status()
        );
    }
    wait_indexed(&setup, PRELOADED as u64).await;

    println!(
        "noisy neighbour: {seconds} s per phase, tenant A quota {quota} records/s \
         (phase 3 offers {multiple}x), tenant B ingest {:?}",
        setup.b_pace
    );
    let solo = run_phase(&setup, seconds, None).await;
    let polite = run_phase(&setup, seconds, Some(Pace::Rate(quota))).await;
    let flood = match multiple {
        0 => Pace::Flat,
        multiple => Pace::Rate(quota * multiple),
    };
    let noisy = run_phase(&setup, seconds, Some(flood)).await;
    let phases = [
        ("B alone", &solo),
        ("B, A at its quota", &polite),
        ("B, A over quota", &noisy),
    ];
    for (name, phase) in phases {
        println!(
            "  {name:<18} B ingest {:>8.0} records/s ({:.3}x solo)   B search {:>6.1} queries/s ({:.3}x solo)   \
             B put p50/p99 {:.1}/{:.1} ms   B search p50/p99 {:.1}/{:.1} ms   B errors {}",
            phase.b_ingest_rps,
            phase.b_ingest_rps / solo.b_ingest_rps,
            phase.b_search_qps,
            phase.b_search_qps / solo.b_search_qps,
            phase.b_put_ms.0,
            phase.b_put_ms.1,
            phase.b_search_ms.0,
            phase.b_search_ms.1,
            phase.b_errors
        );
    }
    for (name, phase) in &phases[1..] {
        println!(
            "  {name:<18} A offered {:.0} records/s ({:.1}x quota), accepted {:.0} records/s ({:.2}x quota), {} answered 429, {} other",
            phase.a_offered_rps,
            phase.a_offered_rps / quota as f64,
            phase.a_accepted_rps,
            phase.a_accepted_rps / quota as f64,
            phase.a_429,
            phase.a_other
        );
    }
}
