//! `/metrics` in the Prometheus text format, written by prometheus-client.
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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

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
        // OpenMetrics, as the encoder writes it: a counter family is named without
        // `_total` and its samples with it, which the older text format reads wrongly.
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        exposition.render(),
    )
}

/// One sample of a family: its labels (values already escaped) and its value.
#[derive(Debug)]
struct Sample {
    labels: Vec<(String, String)>,
    value: SampleValue,
}

#[derive(Debug)]
enum SampleValue {
    Counter(u64),
    Gauge(i64),
    /// Per-bucket (not cumulative) counts over [`LATENCY_BUCKETS_SECS`] then +Inf.
    Histogram {
        buckets: Vec<(f64, u64)>,
        sum_secs: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: MetricType,
    samples: Vec<Sample>,
}

/// Series being rendered, grouped into families by name, and written by
/// prometheus-client's text encoder.
#[derive(Debug, Default)]
pub struct Exposition {
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    /// Adds a counter sample (`name` ends in `_total`, as the format writes it).
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: u64,
    ) {
        self.add(
            name,
            help,
            MetricType::Counter,
            labels,
            SampleValue::Counter(value),
        );
    }

    /// Adds a gauge sample.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: i64,
    ) {
        self.add(
            name,
            help,
            MetricType::Gauge,
            labels,
            SampleValue::Gauge(value),
        );
    }

    /// Adds a histogram: its buckets, sum (seconds) and count.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        histogram: &DurationHistogram,
    ) {
        let in_bounds: u64 = histogram.counts.iter().sum();
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_SECS
            .iter()
            .copied()
            .zip(histogram.counts.iter().copied())
            .collect();
        // The encoder writes `le="+Inf"` for this bound.
        buckets.push((f64::MAX, histogram.count.saturating_sub(in_bounds)));
        let value = SampleValue::Histogram {
            buckets,
            sum_secs: histogram.sum.as_secs_f64(),
            count: histogram.count,
        };
        self.add(name, help, MetricType::Histogram, labels, value);
    }

    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        labels: &[(&str, &str)],
        value: SampleValue,
    ) {
        let labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_string(), escape_label_value(value)))
            .collect();
        self.families
            .entry(name)
            .or_insert(Family {
                help,
                kind,
                samples: Vec::new(),
            })
            .samples
            .push(Sample { labels, value });
    }

    /// Renders every family in the Prometheus text format.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Rendered(self)));
        let mut text = String::new();
        // Writing into a String cannot fail. `encode` ends with the `# EOF` that
        // OpenMetrics requires.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

/// An [`Exposition`] handed to the encoder as a collector of its own.
#[derive(Debug)]
struct Rendered(Exposition);

impl Collector for Rendered {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, family) in &self.0.families {
            // The encoder appends `_total` to counter samples itself.
            let base = match family.kind {
                MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            let mut metric = encoder.encode_descriptor(base, family.help, None, family.kind)?;
            for sample in &family.samples {
                // A series without labels is written bare (`name 3`, not `name{} 3`).
                if sample.labels.is_empty() {
                    encode_value(&mut metric, &sample.value)?;
                } else {
                    encode_value(&mut metric.encode_family(&sample.labels)?, &sample.value)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_value(metric: &mut MetricEncoder<'_>, value: &SampleValue) -> std::fmt::Result {
    match value {
        SampleValue::Counter(value) => metric.encode_counter::<NoLabelSet, _, u64>(value, None),
        SampleValue::Gauge(value) => metric.encode_gauge(value),
        SampleValue::Histogram {
            buckets,
            sum_secs,
            count,
        } => metric.encode_histogram::<NoLabelSet>(*sum_secs, *count, buckets, None),
    }
}

/// The encoder writes label values as given, so they are escaped as the format
/// requires before they reach it.
fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

/// Reads the value of one sample from a rendered exposition: `name` with exactly
/// `labels`, in any order (the encoder writes `le` first). Meant for tests.
pub fn sample_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(key, value)| ((*key).to_string(), escape_label_value(value)))
        .collect();
    wanted.sort();
    text.lines().find_map(|line| {
        let (labels, value) = split_sample(line, name)?;
        (labels == wanted).then(|| value.trim().parse().ok())?
    })
}

/// Splits an exposition line of the family sample `name` into its sorted
/// (key, escaped value) labels and its value; `None` for any other line.
fn split_sample<'a>(line: &'a str, name: &str) -> Option<(Vec<(String, String)>, &'a str)> {
    let rest = line.strip_prefix(name)?;
    if let Some(value) = rest.strip_prefix(' ') {
        return Some((Vec::new(), value));
    }
    let body = rest.strip_prefix('{')?;
    let mut chars = body.char_indices();
    let mut labels = Vec::new();
    let (mut key, mut value) = (String::new(), String::new());
    let mut in_value = false;
    while let Some((at, c)) = chars.next() {
        match (in_value, c) {
            (false, '}') => {
                labels.sort();
                return Some((labels, body[at + 1..].trim_start()));
            }
            (false, ',') => {}
            (false, '=') => {
                chars.next(); // the opening quote
                in_value = true;
            }
            (false, c) => key.push(c),
            (true, '\\') => {
                value.push('\\');
                value.push(chars.next()?.1);
            }
            (true, '"') => {
                labels.push((std::mem::take(&mut key), std::mem::take(&mut value)));
                in_value = false;
            }
            (true, c) => value.push(c),
        }
    }
    None
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
            text.matches("# TYPE logpool_http_requests counter").count(),
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
        assert!(text.contains("\nlogpool_plain_total 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("service=\"control-api\""), "{text}");
    }

    #[test]
    fn test_label_values_are_escaped() {
        let awkward = "x\"y\\z\n";
        let mut out = Exposition::default();
        out.gauge("logpool_test_gauge", "A gauge.", &[("a", awkward)], 2);
        let text = out.render();
        assert!(text.contains("{a=\"x\\\"y\\\\z\\n\"} 2"), "{text}");
        assert_eq!(
            sample_value(&text, "logpool_test_gauge", &[("a", awkward)]),
            Some(2.0)
        );
        assert_eq!(
            sample_value(&text, "logpool_test_gauge", &[("a", "x")]),
            None
        );
    }

    #[test]
    fn test_slow_observations_count_only_in_the_infinite_bucket() {
        let mut histogram = DurationHistogram::default();
        histogram.observe(Duration::from_secs(60));
        assert_eq!(histogram.counts.iter().sum::<u64>(), 0);
        assert_eq!(histogram.count(), 1);
    }
}
