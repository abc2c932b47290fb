//! Names of a pool's Elasticsearch objects, and the encoding of record field names.
//!
//! Every name starts with `{index_prefix}-{pool_id}-`. The pool id comes first because
//! tenant, project and pool names may contain `-`: with only names, `logpool-a-b-c-*`
//! could be tenant `a`, project `b`, pool `c-…` or tenant `a`, project `b-c`, and the
//! template pattern of pool `web` would also match the indices of pool `web-2`. A
//! decimal id ended by `-` is never a prefix of another id, so `logpool-7-*` matches
//! exactly pool 7's indices, and a pool created again under the same name (a new id)
//! never sees the old pool's data. The readable part `{tenant}.{project}.{pool}` follows
//! for operators; `.` cannot occur inside those names.
//!
//! - daily index: `logpool-7-default.shop.web-2023.11.14` (UTC day of the event time)
//! - read alias:  `logpool-7-default.shop.web`
//! - template:    `logpool-7`, pattern `logpool-7-*`

use logpool_core::pool_id::PoolId;
use logpool_core::routing::PoolRoute;

/// One day in nanoseconds.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;

/// Longest readable part kept per name component; the id already makes names unique.
const MAX_COMPONENT_CHARS: usize = 63;

/// Returns whether `prefix` can start index names: lowercase letters, digits and `-`,
/// starting with a letter or digit (Elasticsearch refuses names starting `-`, `_`, `+`).
pub(crate) fn is_valid_index_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `{prefix}-{pool_id}-`: what every index and alias name of the pool starts with.
pub(crate) fn pool_name_prefix(prefix: &str, pool_id: PoolId) -> String {
    format!("{prefix}-{pool_id}-")
}

/// The pattern matching every daily index of a pool.
pub(crate) fn pool_index_pattern(prefix: &str, pool_id: PoolId) -> String {
    format!("{}*", pool_name_prefix(prefix, pool_id))
}

/// The name of the pool's index template.
pub(crate) fn template_name(prefix: &str, pool_id: PoolId) -> String {
    format!("{prefix}-{pool_id}")
}

/// The pool's read alias, carried by every daily index.
pub(crate) fn alias_name(prefix: &str, pool: &PoolRoute) -> String {
    format!(
        "{}{}.{}.{}",
        pool_name_prefix(prefix, pool.pool_id),
        readable(&pool.tenant),
        readable(&pool.project),
        readable(&pool.name)
    )
}

/// The pool's index for `day` (days since the Unix epoch, UTC).
pub(crate) fn index_name(prefix: &str, pool: &PoolRoute, day: i64) -> String {
    format!("{}-{}", alias_name(prefix, pool), day_suffix(day))
}

/// The day (since the epoch, UTC) of an index name of pool `pool_id`, or `None` when the
/// name is not one of that pool's daily indices.
pub(crate) fn parse_index_day(prefix: &str, pool_id: PoolId, name: &str) -> Option<i64> {
    let rest = name.strip_prefix(&pool_name_prefix(prefix, pool_id))?;
    let (_, suffix) = rest.rsplit_once('-')?;
    parse_day_suffix(suffix)
}

/// The UTC day (since the epoch) holding `time_ns`.
pub(crate) fn day_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(DAY_NS)
}

/// Converts a calendar date to days since the epoch.
pub(crate) fn day_of_date(date: time::Date) -> i64 {
    date.midnight()
        .assume_utc()
        .unix_timestamp()
        .div_euclid(86_400)
}

/// `yyyy.mm.dd`, the suffix Elasticsearch users know from `logstash-*` indices.
fn day_suffix(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(86_400))
        .map(|t| format!("{:04}.{:02}.{:02}", t.year(), u8::from(t.month()), t.day()))
        // Outside the time crate's range (year ±9999) no event time can fall; keep the
        // name unique anyway.
        .unwrap_or_else(|_| format!("d{day}"))
}

fn parse_day_suffix(suffix: &str) -> Option<i64> {
    if let Some(raw) = suffix.strip_prefix('d') {
        return raw.parse().ok();
    }
    let mut parts = suffix.splitn(3, '.');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(day_of_date(date))
}

/// Lowercase `[a-z0-9-]`, other characters as `-`: tenant names are not validated like
/// project and pool names, and index names must be lowercase without `.` inside a part.
fn readable(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(MAX_COMPONENT_CHARS)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "x".to_string()
    } else {
        cleaned
    }
}

/// Encodes a record field name as one Elasticsearch field name.
///
/// Record fields are flat (`http.method` is one name), but Elasticsearch reads `.` as
/// object nesting, so `http` and `http.method` in one pool would be a mapping conflict
/// (a text field cannot also be an object). Every character other than letters,
/// digits, `_`, `-` and `@` is written as `%XX` per UTF-8 byte (`%` included, so the
/// encoding is reversible and two names never collide); `*` and `?` can then never be
/// read as field-name wildcards either.
pub(crate) fn encode_field_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_alphanumeric() || c == '_' || c == '-' || c == '@' {
            encoded.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(pool_id: PoolId, tenant: &str, project: &str, name: &str) -> PoolRoute {
        PoolRoute {
            pool_id,
            tenant: tenant.into(),
            project: project.into(),
            name: name.into(),
            partitions: vec![0],
            retention_days: 7,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
            learned_types: Default::default(),
        }
    }

    #[test]
    fn test_index_names_are_unambiguous_and_parse_back() {
        let web = route(PoolId::new(7), "default", "shop", "web");
        let day = day_of(1_700_000_000_000_000_000);
        let name = index_name("logpool", &web, day);
        assert_eq!(name, "logpool-7-default.shop.web-2023.11.14");
        assert_eq!(alias_name("logpool", &web), "logpool-7-default.shop.web");
        assert_eq!(parse_index_day("logpool", PoolId::new(7), &name), Some(day));
        // Pool 77's indices are not pool 7's, whatever their names.
        let other = index_name(
            "logpool",
            &route(PoolId::new(77), "default", "shop", "web"),
            day,
        );
        assert_eq!(parse_index_day("logpool", PoolId::new(7), &other), None);
        assert_eq!(
            parse_index_day("logpool", PoolId::new(7), "logpool-7-default.shop.web"),
            None
        );
        // Names with `-` stay apart: tenant `a`, project `b-c` vs tenant `a-b`, project `c`.
        assert_ne!(
            alias_name("logpool", &route(PoolId::new(1), "a", "b-c", "dd")),
            alias_name("logpool", &route(PoolId::new(1), "a-b", "c", "dd"))
        );
        assert_eq!(
            alias_name("logpool", &route(PoolId::new(1), "Tenant_X", "p1", "web")),
            "logpool-1-tenant-x.p1.web"
        );
    }

    #[test]
    fn test_day_suffix_roundtrip_before_and_after_epoch() {
        for day in [-1, 0, 1, 19_675, 100_000] {
            assert_eq!(parse_day_suffix(&day_suffix(day)), Some(day), "day {day}");
        }
        assert_eq!(day_of(-1), -1);
        assert_eq!(
            day_of_date(
                time::Date::from_calendar_date(2023, time::Month::November, 14).expect("date")
            ),
            19_675
        );
    }

    #[test]
    fn test_encode_field_name() {
        assert_eq!(encode_field_name("status"), "status");
        assert_eq!(encode_field_name("http.method"), "http%2Emethod");
        assert_eq!(encode_field_name("a%2E"), "a%252E");
        assert_eq!(encode_field_name("tags.@env x*"), "tags%2E@env%20x%2A");
        assert_eq!(encode_field_name("héllo"), "héllo");
        assert_ne!(encode_field_name("a.b"), encode_field_name("a%2Eb"));
    }

    #[test]
    fn test_index_prefix_validation() {
        assert!(is_valid_index_prefix("logpool"));
        assert!(is_valid_index_prefix("lp-test-1"));
        for bad in ["", "-lp", "_lp", "LogPool", "lp.x", "lp*"] {
            assert!(!is_valid_index_prefix(bad), "{bad}");
        }
    }
}
