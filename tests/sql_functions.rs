//! Pipe-SQL expressions, functions, windows and query-time extraction, checked
//! against DuckDB: the Loghub samples and three synthetic corpora (nginx access
//! lines, JSON lines, logfmt lines) go in through PutDatas and, as the same rows, into
//! DuckDB (`tests/sql_duckdb.py`, the Python package `duckdb`); every statement's
//! answer must equal DuckDB's, on the embedded index and on Elasticsearch.
//!
//! Statements whose syntax is the same in both engines are sent to DuckDB as they
//! are; the others carry their DuckDB form. Extracted fields are read in DuckDB
//! from views that apply the same regular expressions / JSON paths.

use std::io::Write;

use logpool_core::sql::eval::functions::parse_time_text;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer, LOGHUB_SYSTEMS};
use serde_json::{json, Value};

const PROJECT: &str = "sqlfn";
const BASE_SECS: i64 = 1_700_000_000;

/// The nginx pattern stage and the same pattern for DuckDB.
const WEB_PATTERN: &str =
    r#"pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <bytes> <_>""#;
const WEB_REGEX: &str = r#"^(.*?) - - \[(.*?)\] "(.*?) (.*?) (.*?)" (.*?) (.*?) (.*)$"#;

/// One table: its pool, its records and its DuckDB columns.
struct Table {
    name: &'static str,
    columns: Vec<(&'static str, &'static str)>,
    records: Vec<Value>,
}

/// A tiny deterministic generator, so the corpora are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn hub_table() -> Table {
    let mut records = Vec::new();
    for system in LOGHUB_SYSTEMS {
        for (line_no, line) in loghub_lines(system).iter().enumerate() {
            records.push(json!({
                "message": line,
                "system": system,
                "line_no": line_no,
                "len": line.chars().count(),
            }));
        }
    }
    Table {
        name: "hub",
        columns: vec![
            ("message", "VARCHAR"),
            ("system", "VARCHAR"),
            ("line_no", "BIGINT"),
            ("len", "BIGINT"),
        ],
        records,
    }
}

fn web_table() -> Table {
    let ips = [
        "10.0.0.5",
        "10.1.2.3",
        "10.1.2.77",
        "192.168.1.20",
        "192.168.1.21",
        "172.16.4.9",
        "203.0.113.7",
        "198.51.100.23",
        "198.51.100.99",
        "8.8.8.8",
    ];
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let paths = [
        "/",
        "/index.html",
        "/api/users?id=17&page=2",
        "/api/users?id=42",
        "/api/orders/1234?expand=items",
        "/api/orders/98",
        "/static/app.js",
        "/login?next=%2Fhome",
        "/search?q=rust+logs&page=3",
    ];
    let statuses = [200, 200, 200, 200, 201, 301, 304, 404, 404, 500, 503];
    let vhosts = ["shop", "api", "www"];
    let mut rng = Lcg(7);
    let records = (0..3000)
        .map(|i| {
            let ip = ips[rng.next(ips.len())];
            let method = methods[rng.next(methods.len())];
            let path = paths[rng.next(paths.len())];
            let status = statuses[rng.next(statuses.len())];
            let bytes = rng.next(50_000);
            let rt = rng.next(3_000) as f64 / 1000.0;
            let line = format!(
                "{ip} - - [14/Nov/2023:22:{:02}:{:02} +0000] \"{method} {path} HTTP/1.1\" {status} {bytes} \"-\" \"curl/8.{}\" rt={rt:.3}",
                (i / 60) % 60,
                i % 60,
                rng.next(5)
            );
            json!({ "message": line, "vhost": vhosts[rng.next(vhosts.len())] })
        })
        .collect();
    Table {
        name: "web",
        columns: vec![("message", "VARCHAR"), ("vhost", "VARCHAR")],
        records,
    }
}

fn app_table() -> Table {
    let services = ["checkout", "search", "auth", "billing"];
    let levels = ["debug", "info", "info", "info", "warn", "error"];
    let countries = ["de", "fr", "us", "jp", "br"];
    let hosts = [
        "https://api.example.com/v1/pay",
        "https://cdn.example.net:8443/img/a.png",
        "http://internal.svc/health",
    ];
    let mut rng = Lcg(11);
    let records = (0..2500)
        .map(|seq| {
            let service = services[rng.next(services.len())];
            // Keys in alphabetical order, so JSON text reads the same everywhere.
            let message = format!(
                "{{\"latency_ms\":{},\"level\":\"{}\",\"seq\":{seq},\"service\":\"{service}\",\"tags\":{},\"url\":\"{}\",\"user\":{{\"country\":\"{}\",\"id\":{}}}}}",
                rng.next(2_000),
                levels[rng.next(levels.len())],
                ["[]", "[\"a\"]", "[\"a\",\"b\"]", "[1,2,3]"][rng.next(4)],
                hosts[rng.next(hosts.len())],
                countries[rng.next(countries.len())],
                rng.next(500),
            );
            json!({ "message": message, "service": service, "seq": seq })
        })
        .collect();
    Table {
        name: "app",
        columns: vec![
            ("message", "VARCHAR"),
            ("service", "VARCHAR"),
            ("seq", "BIGINT"),
        ],
        records,
    }
}

fn kv_table() -> Table {
    let levels = ["info", "info", "warn", "error"];
    let components = ["db", "cache", "http", "queue"];
    let messages = ["request done", "cache miss", "retrying \\\"soon\\\"", "ok"];
    let mut rng = Lcg(13);
    let records = (0..2000)
        .map(|_| {
            let line = format!(
                "level={} component={} took={}ms msg=\"{}\"",
                levels[rng.next(levels.len())],
                components[rng.next(components.len())],
                rng.next(900),
                messages[rng.next(messages.len())],
            );
            json!({ "message": line })
        })
        .collect();
    Table {
        name: "kvlog",
        columns: vec![("message", "VARCHAR")],
        records,
    }
}

/// DuckDB views that extract what the stages extract.
fn duckdb_setup() -> Vec<String> {
    let web = (1..=8)
        .map(|group| {
            let name = [
                "ip", "ts", "method", "path", "proto", "status", "bytes", "rest",
            ][group - 1];
            format!("NULLIF(regexp_extract(message, '{WEB_REGEX}', {group}), '') AS {name}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        format!("CREATE VIEW webx AS SELECT *, {web}, regexp_extract(message, 'rt=([0-9.]+)', 1) AS rt FROM web"),
        "CREATE VIEW appx AS SELECT time, seq, message, json_extract_string(message, '$.level') AS level, \
         json_extract_string(message, '$.service') AS service, \
         CAST(json_extract(message, '$.latency_ms') AS BIGINT) AS latency_ms, \
         json_extract_string(message, '$.user.country') AS country, \
         json_extract_string(message, '$.url') AS url FROM app"
            .to_string(),
        "CREATE VIEW kvx AS SELECT time, message, regexp_extract(message, 'level=(\\S*)', 1) AS level, \
         regexp_extract(message, 'component=(\\S*)', 1) AS component, \
         regexp_extract(message, 'took=(\\S*)', 1) AS took, \
         regexp_extract(message, 'msg=\"((?:[^\"\\\\]|\\\\.)*)\"', 1) AS msg_raw FROM kvlog"
            .to_string(),
    ]
}

/// (pool, logpool request, DuckDB statement; empty: the SQL after the pipe).
fn statements() -> Vec<(&'static str, String, String)> {
    let same = |pool: &'static str, sql: &str| (pool, format!("* | {sql}"), String::new());
    let both =
        |pool: &'static str, ours: &str, duck: &str| (pool, ours.to_string(), duck.to_string());
    let web = |sql: &str, duck: &str| {
        (
            "web",
            format!("* | {WEB_PATTERN} | regexp \"rt=(?P<rt>[0-9.]+)\" | {sql}"),
            duck.to_string(),
        )
    };
    vec![
        // Loghub: group-bys pushed down and expressions evaluated.
        same("hub", "SELECT system, count(*) AS c FROM hub GROUP BY system ORDER BY system"),
        both("hub", "* | SELECT system, percentile(length(message), 95) AS p FROM hub GROUP BY system ORDER BY system",
            "SELECT system, quantile_cont(length(message), 0.95) FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, avg(length(message)) AS a, max(length(message)) AS m FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT lower(system) AS s, count(*) AS c FROM hub GROUP BY s ORDER BY s"),
        same("hub", "SELECT upper(substr(message, 1, 3)) AS p, count(*) AS c FROM hub GROUP BY p ORDER BY c DESC, p LIMIT 10"),
        both("hub", "* | SELECT count_if(regexp_like(message, 'error|ERROR')) AS e, count(*) AS c FROM hub",
            "SELECT count_if(regexp_matches(message, 'error|ERROR')), count(*) FROM hub"),
        same("hub", "SELECT system, count_if(length(message) > 100) AS long_lines FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT line_no % 10 AS d, count(*) AS c FROM hub GROUP BY d ORDER BY d"),
        same("hub", "SELECT CASE WHEN len < 50 THEN 'short' WHEN len < 150 THEN 'medium' ELSE 'long' END AS bucket, count(*) AS c FROM hub GROUP BY bucket ORDER BY bucket"),
        same("hub", "SELECT if(len > 100, 'long', 'short') AS k, count(*) AS c FROM hub GROUP BY k ORDER BY k"),
        same("hub", "SELECT system, sum(len) AS s, min(line_no) AS lo, max(line_no) AS hi FROM hub GROUP BY system ORDER BY s DESC, system"),
        both("hub", "* | SELECT width_bucket(len, 0, 300, 6) AS b, count(*) AS c FROM hub GROUP BY b ORDER BY b",
            "SELECT CASE WHEN len < 0 THEN 0 WHEN len >= 300 THEN 7 ELSE CAST(floor(len / 50) AS BIGINT) + 1 END AS b, count(*) FROM hub GROUP BY b ORDER BY b"),
        same("hub", "SELECT date_trunc('hour', time) AS h, count(*) AS c FROM hub GROUP BY h ORDER BY h"),
        same("hub", "SELECT date_trunc('week', time) AS w, count(*) AS c FROM hub GROUP BY w ORDER BY w"),
        same("hub", "SELECT date_trunc('month', time) AS m, system, count(*) AS c FROM hub GROUP BY m, system ORDER BY m, system"),
        both("hub", "* | SELECT date_format(time, '%Y-%m-%d %H') AS h, count(*) AS c FROM hub GROUP BY h ORDER BY h",
            "SELECT strftime(time, '%Y-%m-%d %H') AS h, count(*) FROM hub GROUP BY h ORDER BY h"),
        both("hub", "* | SELECT to_unixtime(min(time)) AS t FROM hub", "SELECT epoch(min(time)) FROM hub"),
        same("hub", "SELECT system, max_by(line_no, len * 100000 + line_no) AS l FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, min_by(message, line_no) AS first FROM hub GROUP BY system ORDER BY system"),
        both("hub", "* | SELECT count(DISTINCT system) AS n, approx_distinct(len) AS d FROM hub",
            "SELECT count(DISTINCT system), count(DISTINCT len) FROM hub"),
        both("hub", "* | SELECT system, count(*) AS c FROM hub WHERE regexp_like(message, '(?i)exception') GROUP BY system ORDER BY system",
            "SELECT system, count(*) FROM hub WHERE regexp_matches(message, '(?i)exception') GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, count(*) AS c FROM hub WHERE length(message) BETWEEN 80 AND 120 GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, count(*) AS c FROM hub WHERE line_no < 100 AND strpos(message, 'INFO') > 0 GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, count(*) AS c FROM hub GROUP BY system HAVING avg(length(message)) > 100 ORDER BY system"),
        same("hub", "SELECT system, round(avg(length(message)), 2) AS a FROM hub GROUP BY system ORDER BY a DESC"),
        both("hub", r"* | SELECT regexp_extract(message, '(\d+\.\d+\.\d+\.\d+)', 1) AS ip, count(*) AS c FROM hub WHERE system = 'OpenSSH' GROUP BY ip ORDER BY c DESC, ip NULLS FIRST LIMIT 10",
            r"SELECT NULLIF(regexp_extract(message, '(\d+\.\d+\.\d+\.\d+)', 1), '') AS ip, count(*) AS c FROM hub WHERE system = 'OpenSSH' GROUP BY ip ORDER BY c DESC, ip NULLS FIRST LIMIT 10"),
        same("hub", "SELECT split_part(message, ' ', 1) AS w, count(*) AS c FROM hub WHERE system = 'Apache' GROUP BY w ORDER BY c DESC, w LIMIT 5"),
        same("hub", "SELECT replace(lower(system), 'h', 'H') AS r, count(*) AS c FROM hub GROUP BY r ORDER BY r"),
        same("hub", "SELECT concat(system, '-', CAST(line_no % 3 AS VARCHAR)) AS k, count(*) AS c FROM hub GROUP BY k ORDER BY k"),
        same("hub", "SELECT starts_with(message, '[') AS b, ends_with(message, '.') AS e, count(*) AS c FROM hub GROUP BY b, e ORDER BY b, e"),
        same("hub", "SELECT trim(substr(message, 1, 5)) AS t, count(*) AS c FROM hub GROUP BY t ORDER BY c DESC, t LIMIT 8"),
        same("hub", "SELECT reverse(system) AS r FROM hub GROUP BY r ORDER BY r"),
        same("hub", "SELECT date_trunc('hour', time) AS h, count(*) AS c, lag(count(*)) OVER (ORDER BY date_trunc('hour', time)) AS prev FROM hub GROUP BY h ORDER BY h"),
        same("hub", "SELECT system, count(*) AS c, rank() OVER (ORDER BY avg(length(message)) DESC) AS r FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, row_number() OVER (ORDER BY system DESC) AS n FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT date_trunc('hour', time) AS h, count(*) AS c, sum(count(*)) OVER (ORDER BY date_trunc('hour', time)) AS running FROM hub GROUP BY h ORDER BY h"),
        same("hub", "SELECT system, date_trunc('day', time) AS d, count(*) AS c, lead(count(*), 1, 0) OVER (PARTITION BY system ORDER BY date_trunc('day', time)) AS next FROM hub GROUP BY system, d ORDER BY system, d"),
        same("hub", "SELECT line_no, system, length(message) AS n FROM hub WHERE line_no < 3 ORDER BY system, line_no"),
        same("hub", "SELECT system, line_no FROM hub ORDER BY length(message) DESC, system, line_no LIMIT 5"),
        both("hub", r"* | SELECT coalesce(regexp_extract(message, 'blk_(-?\d+)', 1), 'none') AS b, count(*) AS c FROM hub WHERE system = 'HDFS' GROUP BY b ORDER BY c DESC, b LIMIT 5",
            r"SELECT coalesce(NULLIF(regexp_extract(message, 'blk_(-?\d+)', 1), ''), 'none') AS b, count(*) AS c FROM hub WHERE system = 'HDFS' GROUP BY b ORDER BY c DESC, b LIMIT 5"),
        same("hub", "SELECT nullif(system, 'HDFS') AS s, count(*) AS c FROM hub GROUP BY s ORDER BY s NULLS FIRST"),
        same("hub", "SELECT floor(len / 10) AS d, count(*) AS c FROM hub GROUP BY d ORDER BY d"),
        same("hub", "SELECT TRY_CAST(split_part(message, ' ', 1) AS BIGINT) AS n, count(*) AS c FROM hub WHERE system = 'HDFS' GROUP BY n ORDER BY c DESC, n LIMIT 5"),
        same("hub", "SELECT greatest(len, 100) AS g, least(len, 50) AS l, count(*) AS c FROM hub GROUP BY g, l ORDER BY c DESC, g, l LIMIT 5"),
        same("hub", "SELECT abs(len - 100) AS a, count(*) AS c FROM hub GROUP BY a ORDER BY c DESC, a LIMIT 5"),
        same("hub", "SELECT round(ln(len), 3) AS l, round(log10(len), 3) AS t, round(pow(len, 0.5), 3) AS p FROM hub WHERE line_no = 7 ORDER BY l, t, p"),
        same("hub", "SELECT ceil(len / 7) AS c7, count(*) AS c FROM hub GROUP BY c7 ORDER BY c DESC, c7 LIMIT 5"),
        same("hub", "SELECT system, arbitrary(system) AS a FROM hub GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, count(*) AS c FROM hub WHERE lower(system) LIKE 'h%' GROUP BY system ORDER BY system"),
        same("hub", "SELECT count(*) AS c FROM hub WHERE system IN ('HDFS', 'BGL') AND len > 100"),
        same("hub", "SELECT len > 100 AS long_line, count(*) AS c FROM hub GROUP BY long_line ORDER BY long_line"),
        same("hub", "SELECT position('a' IN lower(system)) AS p, count(*) AS c FROM hub GROUP BY p ORDER BY p"),
        same("hub", "SELECT length(concat(system, message)) - length(message) AS d, count(*) AS c FROM hub GROUP BY d ORDER BY d"),
        same("hub", "SELECT system || ':' || CAST(len AS VARCHAR) AS k FROM hub WHERE line_no = 0 ORDER BY k"),
        same("hub", "SELECT date_diff('minute', min(time), max(time)) AS span FROM hub"),
        both("hub", "* | SELECT date_add('hour', 1, min(time)) AS t FROM hub", "SELECT min(time) + INTERVAL 1 HOUR FROM hub"),
        both("hub", "* | SELECT from_unixtime(to_unixtime(max(time))) AS t FROM hub", "SELECT CAST(to_timestamp(epoch(max(time))) AS TIMESTAMP) FROM hub"),
        both("hub", "* | SELECT time_bucket('30m', time) AS b, count(*) AS c FROM hub GROUP BY b ORDER BY b",
            "SELECT time_bucket(INTERVAL '30 minutes', time) AS b, count(*) FROM hub GROUP BY b ORDER BY b"),
        both("hub", "* | SELECT time_bucket('30m', time) AS b, count_if(len > 100) AS c FROM hub GROUP BY b ORDER BY b",
            "SELECT time_bucket(INTERVAL '30 minutes', time) AS b, count_if(len > 100) FROM hub GROUP BY b ORDER BY b"),
        both("hub", "system:HDFS | SELECT sum(len) / count(*) AS mean, count(*) AS c FROM hub",
            "SELECT sum(len) / count(*), count(*) FROM hub WHERE system = 'HDFS'"),
        // DuckDB spells regexp_like `regexp_matches`.
        both("hub", "* | SELECT system, count(*) AS c FROM hub WHERE NOT regexp_like(message, '[0-9]') GROUP BY system ORDER BY system",
            "SELECT system, count(*) AS c FROM hub WHERE NOT regexp_matches(message, '[0-9]') GROUP BY system ORDER BY system"),
        same("hub", "SELECT system, sum(CASE WHEN len % 2 = 0 THEN 1 ELSE 0 END) AS even FROM hub GROUP BY system ORDER BY system"),
        // nginx lines through the pattern stage.
        web("SELECT method, count(*) AS c FROM web GROUP BY method ORDER BY method",
            "SELECT method, count(*) FROM webx GROUP BY method ORDER BY method"),
        web("SELECT status, count(*) AS c FROM web GROUP BY status ORDER BY status",
            "SELECT status, count(*) FROM webx GROUP BY status ORDER BY status"),
        web("SELECT url_extract_path(path) AS p, count(*) AS c FROM web GROUP BY p ORDER BY c DESC, p LIMIT 10",
            "SELECT split_part(path, '?', 1) AS p, count(*) AS c FROM webx GROUP BY p ORDER BY c DESC, p LIMIT 10"),
        web("SELECT url_extract_parameter(path, 'id') AS id, count(*) AS c FROM web GROUP BY id ORDER BY c DESC, id NULLS FIRST LIMIT 10",
            "SELECT NULLIF(regexp_extract(path, '[?&]id=([^&]*)', 1), '') AS id, count(*) AS c FROM webx GROUP BY id ORDER BY c DESC, id NULLS FIRST LIMIT 10"),
        web("SELECT ip_prefix(ip, 24) AS net, count(*) AS c FROM web GROUP BY net ORDER BY c DESC, net LIMIT 10",
            r"SELECT regexp_replace(ip, '\.[0-9]+$', '.0') || '/24' AS net, count(*) AS c FROM webx GROUP BY net ORDER BY c DESC, net LIMIT 10"),
        web("SELECT ip_in_cidr(ip, '10.0.0.0/8') AS internal, count(*) AS c FROM web GROUP BY internal ORDER BY internal",
            "SELECT starts_with(ip, '10.') AS internal, count(*) FROM webx GROUP BY internal ORDER BY internal"),
        web("SELECT count_if(CAST(status AS BIGINT) >= 500) AS errors, count(*) AS total FROM web",
            "SELECT count_if(CAST(status AS BIGINT) >= 500), count(*) FROM webx"),
        web("SELECT method, avg(CAST(bytes AS BIGINT)) AS b, max(CAST(bytes AS BIGINT)) AS m FROM web GROUP BY method ORDER BY method",
            "SELECT method, avg(CAST(bytes AS BIGINT)), max(CAST(bytes AS BIGINT)) FROM webx GROUP BY method ORDER BY method"),
        web("SELECT path, count(*) AS c FROM web WHERE status = '404' GROUP BY path ORDER BY c DESC, path LIMIT 5",
            "SELECT path, count(*) AS c FROM webx WHERE status = '404' GROUP BY path ORDER BY c DESC, path LIMIT 5"),
        web("SELECT vhost, percentile(rt, 99) AS p99, avg(rt) AS a FROM web GROUP BY vhost ORDER BY vhost",
            "SELECT vhost, quantile_cont(CAST(rt AS DOUBLE), 0.99), avg(CAST(rt AS DOUBLE)) FROM webx GROUP BY vhost ORDER BY vhost"),
        (
            "web",
            format!("vhost:shop | {WEB_PATTERN} | SELECT status, count(*) AS c FROM web GROUP BY status ORDER BY status"),
            "SELECT status, count(*) FROM webx WHERE vhost = 'shop' GROUP BY status ORDER BY status".to_string(),
        ),
        web("SELECT date_trunc('minute', time) AS m, count(*) AS c, count_if(CAST(status AS BIGINT) >= 500) AS e FROM web GROUP BY m ORDER BY m",
            "SELECT date_trunc('minute', time) AS m, count(*), count_if(CAST(status AS BIGINT) >= 500) FROM webx GROUP BY m ORDER BY m"),
        web("SELECT date_trunc('minute', time) AS m, count(*) - lag(count(*), 1) OVER (ORDER BY date_trunc('minute', time)) AS delta FROM web GROUP BY m ORDER BY m",
            "SELECT date_trunc('minute', time) AS m, count(*) - lag(count(*), 1) OVER (ORDER BY date_trunc('minute', time)) FROM webx GROUP BY m ORDER BY m"),
        web("SELECT upper(method) || ' ' || url_extract_path(path) AS route, count(*) AS c FROM web GROUP BY route ORDER BY c DESC, route LIMIT 5",
            "SELECT upper(method) || ' ' || split_part(path, '?', 1) AS route, count(*) AS c FROM webx GROUP BY route ORDER BY c DESC, route LIMIT 5"),
        web("SELECT regexp_replace(path, '[0-9]+', 'N') AS shape, count(*) AS c FROM web GROUP BY shape ORDER BY c DESC, shape LIMIT 5",
            "SELECT regexp_replace(path, '[0-9]+', 'N', 'g') AS shape, count(*) AS c FROM webx GROUP BY shape ORDER BY c DESC, shape LIMIT 5"),
        web("SELECT ip, count(*) AS c FROM web GROUP BY ip HAVING count(*) > 290 ORDER BY c DESC, ip",
            "SELECT ip, count(*) AS c FROM webx GROUP BY ip HAVING count(*) > 290 ORDER BY c DESC, ip"),
        web("SELECT ip, method, status FROM web ORDER BY time DESC, ip LIMIT 5",
            "SELECT ip, method, status FROM webx ORDER BY time DESC, ip LIMIT 5"),
        web("SELECT method, dense_rank() OVER (ORDER BY count(*) DESC) AS r, count(*) AS c FROM web GROUP BY method ORDER BY method",
            "SELECT method, dense_rank() OVER (ORDER BY count(*) DESC), count(*) FROM webx GROUP BY method ORDER BY method"),
        web("SELECT vhost, method, count(*) AS c, row_number() OVER (PARTITION BY vhost ORDER BY count(*) DESC, method) AS n FROM web GROUP BY vhost, method ORDER BY vhost, n",
            "SELECT vhost, method, count(*) AS c, row_number() OVER (PARTITION BY vhost ORDER BY count(*) DESC, method) AS n FROM webx GROUP BY vhost, method ORDER BY vhost, n"),
        // JSON lines.
        both("app", "* | json | SELECT level, count(*) AS c FROM app GROUP BY level ORDER BY level",
            "SELECT level, count(*) FROM appx GROUP BY level ORDER BY level"),
        both("app", "* | json | SELECT service, avg(latency_ms) AS a, percentile(latency_ms, 50) AS p50 FROM app GROUP BY service ORDER BY service",
            "SELECT service, avg(latency_ms), quantile_cont(latency_ms, 0.5) FROM appx GROUP BY service ORDER BY service"),
        both("app", "* | json | SELECT user.country AS country, count(*) AS c FROM app GROUP BY country ORDER BY c DESC, country",
            "SELECT country, count(*) AS c FROM appx GROUP BY country ORDER BY c DESC, country"),
        both("app", "* | SELECT json_extract_scalar(message, '$.user.country') AS c, count(*) AS n FROM app GROUP BY c ORDER BY n DESC, c",
            "SELECT json_extract_string(message, '$.user.country') AS c, count(*) AS n FROM app GROUP BY c ORDER BY n DESC, c"),
        both("app", "* | SELECT json_array_length(json_extract(message, '$.tags')) AS n, count(*) AS c FROM app GROUP BY n ORDER BY n",
            "SELECT json_array_length(json_extract(message, '$.tags')) AS n, count(*) FROM app GROUP BY n ORDER BY n"),
        both("app", "* | SELECT seq, json_extract(message, '$.user') AS u FROM app WHERE seq < 3 ORDER BY seq",
            "SELECT seq, CAST(json_extract(message, '$.user') AS VARCHAR) FROM app WHERE seq < 3 ORDER BY seq"),
        both("app", "* | json | SELECT level, count(*) AS c FROM app WHERE latency_ms > 500 GROUP BY level ORDER BY level",
            "SELECT level, count(*) FROM appx WHERE latency_ms > 500 GROUP BY level ORDER BY level"),
        both("app", "* | json | SELECT url_extract_host(url) AS h, count(*) AS c FROM app GROUP BY h ORDER BY c DESC, h",
            "SELECT regexp_extract(url, '^[a-z]+://([^/:?#]+)', 1) AS h, count(*) AS c FROM appx GROUP BY h ORDER BY c DESC, h"),
        both("app", "* | json | SELECT service, max_by(level, latency_ms * 10000 + seq) AS worst FROM app GROUP BY service ORDER BY service",
            "SELECT service, max_by(level, latency_ms * 10000 + seq) FROM appx GROUP BY service ORDER BY service"),
        both("app", "* | json | SELECT level, count(*) AS c, round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct FROM app GROUP BY level ORDER BY level",
            "SELECT level, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 2) FROM appx GROUP BY level ORDER BY level"),
        both("app", "* | json | SELECT CASE WHEN latency_ms >= 1000 THEN 'slow' WHEN latency_ms >= 100 THEN 'ok' ELSE 'fast' END AS speed, count(*) AS c FROM app GROUP BY speed ORDER BY speed",
            "SELECT CASE WHEN latency_ms >= 1000 THEN 'slow' WHEN latency_ms >= 100 THEN 'ok' ELSE 'fast' END AS speed, count(*) FROM appx GROUP BY speed ORDER BY speed"),
        both("app", "* | json | SELECT url_extract_port(url) AS port, count(*) AS c FROM app GROUP BY port ORDER BY port NULLS FIRST",
            "SELECT TRY_CAST(NULLIF(regexp_extract(url, '^[a-z]+://[^/:]+:([0-9]+)', 1), '') AS BIGINT) AS port, count(*) FROM appx GROUP BY port ORDER BY port NULLS FIRST"),
        // logfmt lines.
        both("kvlog", "* | logfmt | SELECT level, count(*) AS c FROM kvlog GROUP BY level ORDER BY level",
            "SELECT level, count(*) FROM kvx GROUP BY level ORDER BY level"),
        both("kvlog", "* | logfmt | SELECT component, avg(CAST(replace(took, 'ms', '') AS BIGINT)) AS t FROM kvlog GROUP BY component ORDER BY component",
            "SELECT component, avg(CAST(replace(took, 'ms', '') AS BIGINT)) FROM kvx GROUP BY component ORDER BY component"),
        both("kvlog", "* | logfmt | SELECT msg, count(*) AS c FROM kvlog GROUP BY msg ORDER BY c DESC, msg",
            r#"SELECT replace(msg_raw, '\"', '"') AS msg, count(*) AS c FROM kvx GROUP BY msg ORDER BY c DESC, msg"#),
        both("kvlog", "* | kv | SELECT level, component, count(*) AS c FROM kvlog WHERE level <> 'info' GROUP BY level, component ORDER BY level, component",
            "SELECT level, component, count(*) FROM kvx WHERE level <> 'info' GROUP BY level, component ORDER BY level, component"),
    ]
}

/// The SQL after the request's first pipe, for statements written the same way.
fn duck_sql(request: &str, duck: &str) -> String {
    if !duck.is_empty() {
        return duck.to_string();
    }
    request
        .split_once("| ")
        .map(|(_, sql)| sql.to_string())
        .unwrap_or_default()
}

/// DuckDB's answers, or `None` (with a note) when DuckDB is not installed and the
/// engines are not required.
fn duckdb_answers(tables: &[Table], statements: &[String]) -> Option<Vec<Value>> {
    let dir = std::env::temp_dir().join(format!("logpool-sqlfn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut specs = Vec::new();
    for table in tables {
        let path = dir.join(format!("{}.jsonl", table.name));
        let mut file = std::fs::File::create(&path).expect("table file");
        for (i, record) in table.records.iter().enumerate() {
            let mut row = record.clone();
            row["time_us"] = json!((BASE_SECS + i as i64) * 1_000_000);
            writeln!(file, "{row}").expect("write row");
        }
        specs.push(json!({
            "name": table.name,
            "path": path,
            "columns": table.columns.iter().map(|(n, t)| (n.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
        }));
    }
    let mut all = duckdb_setup();
    let setup_count = all.len();
    all.extend(statements.iter().cloned());
    let spec = json!({ "tables": specs, "statements": all });
    let python = std::env::var("LOGPOOL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql_duckdb.py");
    let mut child = std::process::Command::new(&python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(spec.to_string().as_bytes())
        .expect("spec");
    let output = child.wait_with_output().expect("duckdb");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No module named 'duckdb'") {
            if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
                panic!("the Python package duckdb is not installed, and LOGPOOL_REQUIRE_ENGINES is set");
            }
            eprintln!("SKIPPED the DuckDB comparison: the Python package duckdb is not installed");
            return None;
        }
        panic!("DuckDB failed: {stderr}");
    }
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).expect("DuckDB JSON");
    for (statement, answer) in all.iter().zip(&answers).take(setup_count) {
        assert!(
            answer.get("error").is_none(),
            "DuckDB setup `{statement}`: {answer}"
        );
    }
    Some(answers[setup_count..].to_vec())
}

/// Whether a logpool value equals a DuckDB value: numbers within rounding, times
/// as instants.
fn same_value(ours: &Value, theirs: &Value) -> bool {
    if let Some(ns) = theirs.get("$time").and_then(Value::as_i64) {
        return ours
            .as_str()
            .and_then(parse_time_text)
            .is_some_and(|t| t == ns);
    }
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
        }
        _ => ours == theirs,
    }
}

fn same_rows(ours: &[Value], theirs: &[Value]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .all(|(a, b)| match (a.as_array(), b.as_array()) {
                (Some(a), Some(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
                }
                _ => false,
            })
}

async fn load(server: &TestServer, tables: &[Table]) {
    let client = &server.client;
    client
        .create_project(PROJECT)
        .await
        .expect("create project");
    for table in tables {
        client
            .create_pool(
                PROJECT,
                &json!({ "name": table.name, "shards": 2, "retention_days": 3650 }),
            )
            .await
            .expect("create pool");
        let records: Vec<Value> = table
            .records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let mut record = record.clone();
                record["time"] = json!(BASE_SECS + i as i64);
                record
            })
            .collect();
        for chunk in records.chunks(1000) {
            client
                .put_records(PROJECT, table.name, chunk)
                .await
                .expect("put");
        }
    }
    for table in tables {
        let total = table.records.len() as u64;
        assert_eq!(
            wait_for_count(client, PROJECT, table.name, "", total).await,
            total,
            "{}: every record is searchable",
            table.name
        );
    }
}

async fn query(http: &reqwest::Client, base: &str, pool: &str, text: &str) -> (u16, Value) {
    let response = http
        .post(format!("{base}/v1/projects/{PROJECT}/pools/{pool}/query"))
        .json(&json!({ "query": text }))
        .send()
        .await
        .expect("query request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

async fn check_against_duckdb(server: &TestServer) {
    let tables = vec![hub_table(), web_table(), app_table(), kv_table()];
    load(server, &tables).await;
    let statements = statements();
    assert!(statements.len() >= 80, "{} statements", statements.len());
    let http = logpool_e2e::admin_http();
    let base = server.url();
    let mut answers = Vec::new();
    let mut refused = Vec::new();
    for (pool, request, _) in &statements {
        let (status, body) = query(&http, &base, pool, request).await;
        if status != 200 {
            refused.push(format!("`{request}` answered {status} {body}"));
        }
        answers.push(body["rows"].as_array().cloned().unwrap_or_default());
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    let duck: Vec<String> = statements
        .iter()
        .map(|(_, request, duck)| duck_sql(request, duck))
        .collect();
    let Some(expected) = duckdb_answers(&tables, &duck) else {
        return;
    };
    let mut failures = Vec::new();
    for (((_, request, _), ours), (duck_sql, theirs)) in statements
        .iter()
        .zip(&answers)
        .zip(duck.iter().zip(&expected))
    {
        let Some(rows) = theirs.get("rows").and_then(Value::as_array) else {
            failures.push(format!("DuckDB refused `{duck_sql}`: {theirs}"));
            continue;
        };
        if !same_rows(ours, rows) {
            failures.push(format!(
                "`{request}`\n  logpool: {}\n  duckdb:  {}",
                Value::Array(ours.clone()),
                Value::Array(rows.clone())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements differ from DuckDB:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
}

async fn check_errors(server: &TestServer) {
    let http = logpool_e2e::admin_http();
    let base = server.url();
    let cases: [(&str, &str, &str); 9] = [
        (
            "* | SELECT regexp_extract(message, '(a', 1) FROM hub",
            "invalid regular expression",
            "position",
        ),
        (
            r#"* | regexp "(?P<x>[a-" | SELECT x"#,
            "invalid regular expression",
            "position",
        ),
        (
            "* | SELECT frobnicate(message) FROM hub",
            "function frobnicate is not supported",
            "position",
        ),
        (
            "* | SELECT count(*) FROM hub WHERE count(*) > 1",
            "not allowed",
            "position",
        ),
        (
            "* | SELECT lower(message, 1) FROM hub",
            "lower takes 1 arguments",
            "position",
        ),
        (
            "* | SELECT date_trunc('fortnight', time) AS d, count(*) FROM hub GROUP BY d",
            "date_trunc unit",
            "position",
        ),
        (
            "* | SELECT json_extract(message, '$.a[') FROM hub",
            "JSON path",
            "position",
        ),
        ("* | jsn | SELECT 1", "unknown stage", "position"),
        (
            "* | SELECT CAST(message AS BIGINT) AS n FROM hub LIMIT 5",
            "TRY_CAST",
            "field",
        ),
    ];
    for (text, needle, detail) in cases {
        let (status, body) = query(&http, &base, "hub", text).await;
        assert_eq!(status, 400, "`{text}` answered {body}");
        let rendered = body.to_string();
        assert!(rendered.contains(needle), "`{text}` answered {body}");
        assert!(
            rendered.contains(detail),
            "`{text}` names its {detail}: {body}"
        );
    }
    // A function over the wrong type is NULL, not an error.
    let (status, body) = query(
        &http,
        &base,
        "hub",
        "* | SELECT abs(system) AS a, json_array_length(message) AS j, ip_prefix(system, 24) AS p, substr(message, 'x') AS s FROM hub WHERE line_no = 0 AND system = 'HDFS'",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([[null, null, null, null]]));
    // A huge string is refused with its limit, not built.
    let (status, body) = query(
        &http,
        &base,
        "hub",
        "* | SELECT regexp_replace(regexp_replace(regexp_replace(message, '', message), '', message), '', message) AS x FROM hub WHERE system = 'HDFS' LIMIT 1",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("max_sql_value_bytes"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_sql_functions_equal_duckdb_on_the_embedded_index() {
    let server = TestServer::start().await.expect("server");
    check_against_duckdb(&server).await;
    check_errors(&server).await;
}

#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_sql_functions_equal_duckdb_on_elasticsearch() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let server = TestServer::start_with(|config| {
        config.index = logpool_e2e::services::elasticsearch_index(&engines, "lpsqlfn");
    })
    .await
    .expect("server");
    check_against_duckdb(&server).await;
    check_errors(&server).await;
}
