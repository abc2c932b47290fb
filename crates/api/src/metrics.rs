//! `/metrics` in the Prometheus text format.
//!
//! Each service exports its series through [`MetricSource`]s; the standalone binary
//! exports all of them at once. Sources that only have plain counters list them in
//! [`MetricSource::counters`]; labelled counters, gauges and histograms are written
//! into an [`Exposition`], which merges same-named series of several sources into
//! one family (the format allows a family's `# HELP` and `# TYPE` only once).
//!
//! [`HttpMetrics`] is the request middleware every HTTP service gets: requests by
//! route and status class, errors by status, and a latency histogram per route (for
//! search-api, the query latency of its search and histogram routes). Labels are
//! route templates (`/v1/projects/{project}/...`), never concrete paths, so their
//! number is bounded by the routes a service has.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One counter reading: name (snake_case, ending in `_total`), help text, value.
pub type CounterReading = (&'static str, &'static str, u64);

/// Something that has series to export.
pub trait MetricSource: Send + Sync + std::fmt::Debug {
    /// Reads the plain (unlabelled) counters now.
    fn counters(&self) -> Vec<CounterReading> {
        Vec::new()
    }

    /// Writes labelled counters, gauges and histograms.
    fn collect(&self, _out: &mut Exposition) {}
}

/// The name sources with only plain counters were written against.
pub use self::MetricSource as CounterSource;

/// `/metrics`: public, like every Prometheus endpoint; it carries counts per route
/// template and service, never tenant data or keys.
pub fn routes() -> crate::auth::Routes<Arc<Vec<Arc<dyn MetricSource>>>> {
    crate::auth::Routes::new().get("/metrics", logpool_core::access::Permission::Public, render)
}

/// Routes `/metrics` over the given sources.
pub fn router(sources: Vec<Arc<dyn MetricSource>>) -> Router {
    routes().into_public_router().with_state(Arc::new(sources))
}

/// Counts and times the requests of `routes` as `service` ([`HttpMetrics`]), and adds
/// `/metrics` exporting those series along with `sources`. Each service binary serves
/// this; tests scrape the same composition.
pub fn with_metrics(
    service: &'static str,
    routes: Router,
    mut sources: Vec<Arc<dyn MetricSource>>,
) -> Router {
    let http = HttpMetrics::new(service);
    let routes = http.instrument(routes);
    sources.push(http);
    routes.merge(router(sources))
}

async fn render(State(sources): State<Arc<Vec<Arc<dyn MetricSource>>>>) -> impl IntoResponse {
    let mut exposition = Exposition::default();
    for source in sources.iter() {
        for (name, help, value) in source.counters() {
            exposition.counter(name, help, &[], value);
        }
        source.collect(&mut exposition);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        exposition.render(),
    )
}

/// The kind of a metric family, as written in `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    lines: Vec<String>,
}

/// Series being rendered, grouped into families by name.
#[derive(Debug, Default)]
pub struct Exposition {
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    /// Adds a counter sample.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: u64,
    ) {
        let line = format!("{name}{} {value}", label_set(labels));
        self.family(name, help, Kind::Counter).push(line);
    }

    /// Adds a gauge sample.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: i64,
    ) {
        let line = format!("{name}{} {value}", label_set(labels));
        self.family(name, help, Kind::Gauge).push(line);
    }

    /// Adds a histogram: its cumulative buckets, sum (seconds) and count.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        histogram: &DurationHistogram,
    ) {
        let mut lines = Vec::with_capacity(histogram.counts.len() + 3);
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS_SECS.iter().zip(&histogram.counts) {
            cumulative += count;
            let le = bound.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            lines.push(format!("{name}_bucket{} {cumulative}", label_set(&with_le)));
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        lines.push(format!(
            "{name}_bucket{} {}",
            label_set(&with_le),
            histogram.count
        ));
        lines.push(format!(
            "{name}_sum{} {}",
            label_set(labels),
            histogram.sum.as_secs_f64()
        ));
        lines.push(format!(
            "{name}_count{} {}",
            label_set(labels),
            histogram.count
        ));
        self.family(name, help, Kind::Histogram).extend(lines);
    }

    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Vec<String> {
        &mut self
            .families
            .entry(name)
            .or_insert(Family {
                help,
                kind,
                lines: Vec::new(),
            })
            .lines
    }

    /// Renders every family in the text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (name, family) in &self.families {
            let _ = writeln!(text, "# HELP {name} {}", family.help);
            let _ = writeln!(text, "# TYPE {name} {}", family.kind.as_str());
            for line in &family.lines {
                let _ = writeln!(text, "{line}");
            }
        }
        text
    }
}

/// `{a="x",b="y"}`, or nothing without labels; values escaped as the format requires.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// Upper bounds of the latency histogram buckets, in seconds: from a cached lookup to
/// a search that scans months of data.
pub const LATENCY_BUCKETS_SECS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram over [`LATENCY_BUCKETS_SECS`] (not cumulative; rendering
/// accumulates).
#[derive(Debug, Clone, Default)]
pub struct DurationHistogram {
    counts: [u64; LATENCY_BUCKETS_SECS.len()],
    count: u64,
    sum: Duration,
}

impl DurationHistogram {
    /// Records one observation.
    pub fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS_SECS.iter().position(|bound| secs <= *bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum += elapsed;
    }

    /// Returns how many observations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Route label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RouteKey {
    method: &'static str,
    route: String,
}

#[derive(Debug, Default)]
struct RouteStats {
    /// Answers by status class: index 0 is 1xx, 4 is 5xx.
    by_class: [u64; 5],
    /// Answers of 400 and above, by exact status.
    errors: BTreeMap<u16, u64>,
    latency: DurationHistogram,
}

/// Request counters and latencies of one HTTP service, by route template.
#[derive(Debug)]
pub struct HttpMetrics {
    service: &'static str,
    routes: Mutex<BTreeMap<RouteKey, RouteStats>>,
}

impl HttpMetrics {
    /// Creates the metrics of `service` (its name is the `service` label).
    pub fn new(service: &'static str) -> Arc<HttpMetrics> {
        Arc::new(HttpMetrics {
            service,
            routes: Mutex::new(BTreeMap::new()),
        })
    }

    /// Wraps every route of `router` so that its requests are counted and timed.
    /// Routes merged in after this call are not counted.
    pub fn instrument(self: &Arc<Self>, router: Router) -> Router {
        // `Router::layer` runs after routing, so the matched route template is known.
        router.layer(axum::middleware::from_fn_with_state(self.clone(), track))
    }

    /// Records one answered request.
    pub fn record(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let key = RouteKey {
            method: method_label(method),
            route: route.to_string(),
        };
        // Plain numbers only: a panic elsewhere cannot leave them half-updated.
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = routes.entry(key).or_default();
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        stats.by_class[class] += 1;
        if status.as_u16() >= 400 {
            *stats.errors.entry(status.as_u16()).or_default() += 1;
        }
        stats.latency.observe(elapsed);
    }
}

impl MetricSource for HttpMetrics {
    fn collect(&self, out: &mut Exposition) {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, stats) in routes.iter() {
            let labels = [
                ("service", self.service),
                ("method", key.method),
                ("route", key.route.as_str()),
            ];
            for (class, count) in stats.by_class.iter().enumerate() {
                if *count == 0 {
                    continue;
                }
                let class_label = format!("{}xx", class + 1);
                let mut with_class = labels.to_vec();
                with_class.push(("status_class", &class_label));
                out.counter(
                    "logpool_http_requests_total",
                    "HTTP requests answered, by route and status class.",
                    &with_class,
                    *count,
                );
            }
            for (status, count) in &stats.errors {
                let status_label = status.to_string();
                let mut with_status = labels.to_vec();
                with_status.push(("status", &status_label));
                out.counter(
                    "logpool_http_errors_total",
                    "HTTP requests answered with a 4xx or 5xx status, by route and status.",
                    &with_status,
                    *count,
                );
            }
            out.histogram(
                "logpool_http_request_duration_seconds",
                "Time from receiving a request to its answer (for search and histogram routes: the query latency).",
                &labels,
                &stats.latency,
            );
        }
    }
}

/// Methods outside the usual set share one label, so odd clients cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn track(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || UNMATCHED_ROUTE.to_string(),
        |path| path.as_str().to_string(),
    );
    let response = next.run(request).await;
    metrics.record(&method, &route, response.status(), started.elapsed());
    response
}

/// Reads the value of one sample from a rendered exposition: `name` followed by
/// exactly `labels` (in the order they were written). Meant for tests.
pub fn sample_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let prefix = format!("{name}{} ", label_set(labels));
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Plain;

    impl MetricSource for Plain {
        fn counters(&self) -> Vec<CounterReading> {
            vec![("logpool_plain_total", "A plain counter.", 3)]
        }
    }

    #[test]
    fn test_same_family_from_two_sources_is_written_once() {
        let search = HttpMetrics::new("search-api");
        let control = HttpMetrics::new("control-api");
        search.record(
            &Method::GET,
            "/v1/x",
            StatusCode::OK,
            Duration::from_millis(3),
        );
        search.record(
            &Method::GET,
            "/v1/x",
            StatusCode::NOT_FOUND,
            Duration::from_secs(2),
        );
        control.record(
            &Method::POST,
            "/v1/y",
            StatusCode::CREATED,
            Duration::from_millis(1),
        );
        let mut out = Exposition::default();
        for source in [&*search as &dyn MetricSource, &*control, &Plain] {
            for (name, help, value) in source.counters() {
                out.counter(name, help, &[], value);
            }
            source.collect(&mut out);
        }
        let text = out.render();
        assert_eq!(
            text.matches("# TYPE logpool_http_requests_total counter")
                .count(),
            1,
            "{text}"
        );
        let labels = [
            ("service", "search-api"),
            ("method", "GET"),
            ("route", "/v1/x"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut all = labels.to_vec();
            all.push(extra);
            all
        };
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_requests_total",
                &with(("status_class", "2xx"))
            ),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, "logpool_http_errors_total", &with(("status", "404"))),
            Some(1.0)
        );
        // Cumulative buckets: the 3 ms request is under 5 ms, both are under 2.5 s.
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_request_duration_seconds_bucket",
                &with(("le", "0.005"))
            ),
            Some(1.0)
        );
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_request_duration_seconds_bucket",
                &with(("le", "2.5"))
            ),
            Some(2.0)
        );
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_request_duration_seconds_count",
                &labels
            ),
            Some(2.0)
        );
        assert_eq!(sample_value(&text, "logpool_plain_total", &[]), Some(3.0));
        assert!(text.contains("service=\"control-api\""), "{text}");
    }

    #[test]
    fn test_label_values_are_escaped() {
        assert_eq!(label_set(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
        assert_eq!(label_set(&[]), "");
    }

    #[test]
    fn test_slow_observations_count_only_in_the_infinite_bucket() {
        let mut histogram = DurationHistogram::default();
        histogram.observe(Duration::from_secs(60));
        assert_eq!(histogram.counts.iter().sum::<u64>(), 0);
        assert_eq!(histogram.count(), 1);
    }
}
