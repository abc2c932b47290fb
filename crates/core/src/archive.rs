//! The archive format: per-pool archive settings, object names and object contents.
//!
//! This is the public contract of docs/archive-format.md. An archived object holds
//! the records of one shard's queue position range that fall into one UTC hour of
//! their own time, one JSON object per line, compressed:
//!
//! ```text
//! tenant={tenant}/{prefix}/{project}/{pool}/dt=YYYY-MM-DD/hour=HH/{partition}-{first}-{last}.jsonl.zst
//! ```
//!
//! Every tenant's objects live in its own area, `tenant={tenant}/`, whatever the
//! pool's prefix: the prefix is relative inside that area, so no setting lets one
//! tenant write into another's layout. Objects written before tenant areas existed
//! (`{prefix}/{tenant}/{project}/{pool}/...`) are still read: see
//! [`legacy_pool_prefix`].
//!
//! `{partition}` is the queue partition of the shard (never reused within a project,
//! so a re-created pool never collides with old objects), `{first}` and `{last}` the
//! queue positions of the first and last message of the batch. Every object written
//! for one batch carries the batch's range, so the same range always yields the same
//! set of names and a retry overwrites instead of adding copies.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::record::{format_time_ns, FieldValue, Record};

/// Default of [`ArchiveSettings::max_object_bytes`]: 64 MiB of uncompressed lines.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest accepted `max_object_bytes`.
pub const MIN_MAX_OBJECT_BYTES: u64 = 1024;
/// Largest accepted `max_object_bytes` (1 GiB: one object is buffered in memory).
pub const MAX_MAX_OBJECT_BYTES: u64 = 1024 * 1024 * 1024;
/// Default of [`ArchiveSettings::max_delay_s`].
pub const DEFAULT_MAX_DELAY_S: u32 = 300;
/// Largest accepted `max_delay_s` (one day).
pub const MAX_MAX_DELAY_S: u32 = 86_400;
/// Default of [`ArchiveSettings::prefix`].
pub const DEFAULT_PREFIX: &str = "archive";
/// Longest accepted prefix.
pub const MAX_PREFIX_CHARS: usize = 256;

/// Line format of archived objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
}

/// Compression of archived objects.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveCompression {
    /// Zstandard (`.jsonl.zst`).
    #[default]
    Zstd,
    /// gzip (`.jsonl.gz`).
    Gzip,
}

impl ArchiveCompression {
    /// The file name extension, after the position range.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveCompression::Zstd => "jsonl.zst",
            ArchiveCompression::Gzip => "jsonl.gz",
        }
    }
}

/// Archive settings of one pool (stored in metadata, carried in the routing snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchiveSettings {
    /// Whether the pool's records are archived.
    pub enabled: bool,
    /// Line format.
    pub format: ArchiveFormat,
    /// Compression.
    pub compression: ArchiveCompression,
    /// A shard's buffer is written once its uncompressed lines reach this size.
    pub max_object_bytes: u64,
    /// A shard's buffer is written at the latest this long after its first record.
    pub max_delay_s: u32,
    /// Key prefix inside the tenant's area of the object store (`/`-separated, no
    /// leading or trailing `/`, no `.`, `..` or empty segment): see [`pool_prefix`].
    pub prefix: String,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            enabled: false,
            format: ArchiveFormat::Jsonl,
            compression: ArchiveCompression::Zstd,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_delay_s: DEFAULT_MAX_DELAY_S,
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }
}

/// Why settings were refused: the field and a message that names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong, with the limit.
    pub message: String,
}

impl ArchiveSettings {
    /// Checks every field against its limits.
    ///
    /// # Errors
    /// Names the first field that is out of its limits.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(MIN_MAX_OBJECT_BYTES..=MAX_MAX_OBJECT_BYTES).contains(&self.max_object_bytes) {
            return Err(SettingsError {
                field: "max_object_bytes",
                message: format!(
                    "`max_object_bytes` must be between {MIN_MAX_OBJECT_BYTES} and {MAX_MAX_OBJECT_BYTES}, got {}",
                    self.max_object_bytes
                ),
            });
        }
        if !(1..=MAX_MAX_DELAY_S).contains(&self.max_delay_s) {
            return Err(SettingsError {
                field: "max_delay_s",
                message: format!(
                    "`max_delay_s` must be between 1 and {MAX_MAX_DELAY_S}, got {}",
                    self.max_delay_s
                ),
            });
        }
        validate_prefix(&self.prefix)
    }
}

fn validate_prefix(prefix: &str) -> Result<(), SettingsError> {
    let refuse = |why: &str| {
        Err(SettingsError {
            field: "prefix",
            message: format!("`prefix` {why} (1 to {MAX_PREFIX_CHARS} characters of a-z A-Z 0-9 - _ . and inner /), got `{prefix}`"),
        })
    };
    if prefix.is_empty() || prefix.chars().count() > MAX_PREFIX_CHARS {
        return refuse("has the wrong length");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    if !prefix.chars().all(allowed) {
        return refuse("has a character that is not allowed");
    }
    // Reserved segments keep restore state and the pool paths apart from data.
    if prefix.split('/').any(|segment| {
        segment.is_empty() || segment == "." || segment == ".." || segment.starts_with('_')
    }) {
        return refuse("has an empty, dot or `_`-prefixed segment");
    }
    Ok(())
}

/// The area of the object store that holds every object of one tenant (ends with
/// `/`). The `=` cannot appear in a prefix, so no pool prefix and no key of the
/// legacy layout ever starts with another tenant's area.
pub fn tenant_area(tenant: &str) -> String {
    format!("tenant={tenant}/")
}

/// The key prefix under which all objects of one pool live (ends with `/`): the
/// pool's `prefix` inside its tenant's area.
pub fn pool_prefix(prefix: &str, tenant: &str, project: &str, pool: &str) -> String {
    format!("{}{prefix}/{project}/{pool}/", tenant_area(tenant))
}

/// Where objects of a pool were written before tenant areas existed (ends with
/// `/`). Read only: listing, restore and the archive worker's history look here as
/// well as under [`pool_prefix`], so older archives stay found. It can only hold
/// objects written for this tenant: every legacy key has the writing tenant as its
/// third segment from the end, and a prefix has no `=`, so this never reaches into a
/// tenant area.
pub fn legacy_pool_prefix(prefix: &str, tenant: &str, project: &str, pool: &str) -> String {
    format!("{prefix}/{tenant}/{project}/{pool}/")
}

/// Where a restore keeps its progress: a `_restores` folder (ignored by Hive-style
/// readers, and never a prefix segment) in the tenant's area under the pool prefix.
pub fn restore_state_key(prefix: &str, tenant: &str, project: &str, id: &str) -> String {
    format!(
        "{}{prefix}/_restores/{project}/{id}.json",
        tenant_area(tenant)
    )
}

/// Where a restore kept its progress before tenant areas existed (read only).
pub fn legacy_restore_state_key(prefix: &str, tenant: &str, project: &str, id: &str) -> String {
    format!("{prefix}/_restores/{tenant}/{project}/{id}.json")
}

/// Start of the UTC hour that contains `time_ns`, in seconds since the epoch.
pub fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(1_000_000_000).div_euclid(3600) * 3600
}

/// `dt=YYYY-MM-DD/hour=HH` of an hour start.
pub fn hour_partition(hour_start_s: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(hour_start_s) {
        Ok(t) => format!(
            "dt={:04}-{:02}-{:02}/hour={:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        ),
        // Outside the calendar's range: still unique and deterministic.
        Err(_) => format!("dt=epoch{hour_start_s}/hour=00"),
    }
}

/// The identity of one archived object, as encoded in its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    /// Start of the UTC hour of its records, seconds since the epoch.
    pub hour_start_s: i64,
    /// Queue partition of the shard.
    pub partition: u32,
    /// Queue position of the batch's first message.
    pub first: u64,
    /// Queue position of the batch's last message.
    pub last: u64,
    /// Its compression.
    pub compression: ArchiveCompression,
}

impl ObjectName {
    /// The full key under a pool prefix ([`pool_prefix`]).
    pub fn key(&self, pool_prefix: &str) -> String {
        format!(
            "{pool_prefix}{}/{}-{}-{}.{}",
            hour_partition(self.hour_start_s),
            self.partition,
            self.first,
            self.last,
            self.compression.extension()
        )
    }

    /// The key of the object's manifest.
    pub fn manifest_key(&self, pool_prefix: &str) -> String {
        format!(
            "{pool_prefix}{}/{}-{}-{}.manifest.json",
            hour_partition(self.hour_start_s),
            self.partition,
            self.first,
            self.last
        )
    }

    /// Parses a data object key below a pool prefix; `None` for anything else
    /// (manifests included).
    pub fn parse(key_below_pool: &str) -> Option<ObjectName> {
        let mut parts = key_below_pool.split('/');
        let dt = parts.next()?.strip_prefix("dt=")?;
        let hour = parts.next()?.strip_prefix("hour=")?;
        let file = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let (stem, compression) = if let Some(stem) = file.strip_suffix(".jsonl.zst") {
            (stem, ArchiveCompression::Zstd)
        } else if let Some(stem) = file.strip_suffix(".jsonl.gz") {
            (stem, ArchiveCompression::Gzip)
        } else {
            return None;
        };
        let mut numbers = stem.split('-');
        let partition = numbers.next()?.parse().ok()?;
        let first = numbers.next()?.parse().ok()?;
        let last = numbers.next()?.parse().ok()?;
        if numbers.next().is_some() {
            return None;
        }
        let hour_start_s = parse_hour(dt, hour)?;
        Some(ObjectName {
            hour_start_s,
            partition,
            first,
            last,
            compression,
        })
    }
}

fn parse_hour(dt: &str, hour: &str) -> Option<i64> {
    let mut ymd = dt.split('-');
    let year: i32 = ymd.next()?.parse().ok()?;
    let month: u8 = ymd.next()?.parse().ok()?;
    let day: u8 = ymd.next()?.parse().ok()?;
    let hour: u8 = hour.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let at = date.with_hms(hour, 0, 0).ok()?.assume_utc();
    Some(at.unix_timestamp())
}

/// What an object holds, kept next to it as `{...}.manifest.json` for listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// Records in the object.
    pub records: u64,
    /// Earliest record time, ns since the epoch.
    pub min_time_ns: i64,
    /// Latest record time, ns since the epoch.
    pub max_time_ns: i64,
    /// Compressed size in bytes.
    pub size: u64,
}

/// Errors of reading archived objects.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveCodecError {
    /// Compression or decompression failed.
    #[error("archive compression error: {0}")]
    Compression(#[from] std::io::Error),
    /// A line is not a record.
    #[error("archived line {line} is not a record: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// One record as a JSON line: `time` (RFC 3339) and every field.
pub fn record_line(record: &Record) -> String {
    let mut object = serde_json::Map::new();
    object.insert(
        "time".to_string(),
        serde_json::Value::String(format_time_ns(record.time_ns)),
    );
    for (name, value) in &record.fields {
        if name != "time" {
            object.insert(name.clone(), value.to_json());
        }
    }
    serde_json::Value::Object(object).to_string()
}

/// Compresses the lines of an object.
///
/// # Errors
/// Fails only when the compressor fails.
pub fn compress(
    lines: &[u8],
    compression: ArchiveCompression,
) -> Result<Vec<u8>, ArchiveCodecError> {
    match compression {
        ArchiveCompression::Zstd => Ok(zstd::encode_all(lines, 3)?),
        ArchiveCompression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(lines)?;
            Ok(encoder.finish()?)
        }
    }
}

/// Decompresses an object into its lines.
///
/// # Errors
/// Fails when the data is not valid for `compression`.
pub fn decompress(
    data: &[u8],
    compression: ArchiveCompression,
) -> Result<Vec<u8>, ArchiveCodecError> {
    match compression {
        ArchiveCompression::Zstd => Ok(zstd::decode_all(data)?),
        ArchiveCompression::Gzip => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
            Ok(out)
        }
    }
}

/// Parses the lines of a decompressed object back into records.
///
/// # Errors
/// Names the first line that is not a record.
pub fn parse_lines(lines: &[u8]) -> Result<Vec<Record>, ArchiveCodecError> {
    let text = std::str::from_utf8(lines).map_err(|e| ArchiveCodecError::BadLine {
        line: 0,
        reason: e.to_string(),
    })?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let bad = |reason: String| ArchiveCodecError::BadLine {
            line: index + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let serde_json::Value::Object(object) = value else {
            return Err(bad("not a JSON object".to_string()));
        };
        let mut time_ns = None;
        let mut fields = BTreeMap::new();
        for (name, value) in object {
            if name == "time" {
                let text = value
                    .as_str()
                    .ok_or_else(|| bad("`time` is not text".into()))?;
                let parsed = time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| bad(format!("`time`: {e}")))?;
                time_ns = Some(parsed.unix_timestamp_nanos() as i64);
                continue;
            }
            let field = match value {
                serde_json::Value::Bool(b) => FieldValue::Bool(b),
                serde_json::Value::String(s) => FieldValue::Str(s),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => FieldValue::Long(i),
                    None => FieldValue::Double(n.as_f64().unwrap_or(f64::NAN)),
                },
                // A NaN or infinite double is written as null; it is not brought back.
                serde_json::Value::Null => continue,
                other => FieldValue::Str(other.to_string()),
            };
            fields.insert(name, field);
        }
        let time_ns = time_ns.ok_or_else(|| bad("no `time`".to_string()))?;
        records.push(Record { time_ns, fields });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_object_names_round_trip_and_sort_by_hour() {
        let name = ObjectName {
            hour_start_s: hour_of(1_700_000_000_123_000_000),
            partition: 7,
            first: 10,
            last: 42,
            compression: ArchiveCompression::Zstd,
        };
        let prefix = pool_prefix("archive", "default", "shop", "web");
        let key = name.key(&prefix);
        assert_eq!(
            key,
            "tenant=default/archive/shop/web/dt=2023-11-14/hour=22/7-10-42.jsonl.zst"
        );
        let below = key.strip_prefix(&prefix).unwrap();
        assert_eq!(ObjectName::parse(below), Some(name.clone()));
        assert_eq!(
            name.manifest_key(&prefix),
            "tenant=default/archive/shop/web/dt=2023-11-14/hour=22/7-10-42.manifest.json"
        );
        assert_eq!(
            ObjectName::parse("dt=2023-11-14/hour=22/7-10-42.manifest.json"),
            None
        );
        assert_eq!(
            ObjectName::parse("dt=2023-11-14/hour=22/x-10-42.jsonl.gz"),
            None
        );
    }

    #[test]
    fn test_hours_before_the_epoch_floor_down() {
        assert_eq!(hour_of(-1), -3600);
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(3_599_999_999_999), 0);
    }

    #[test]
    fn test_lines_round_trip_through_both_compressions() {
        let mut fields = BTreeMap::new();
        fields.insert("message".to_string(), FieldValue::Str("hé \"x\"\n".into()));
        fields.insert("status".to_string(), FieldValue::Long(500));
        fields.insert("latency".to_string(), FieldValue::Double(2.0));
        fields.insert("ok".to_string(), FieldValue::Bool(true));
        let record = Record {
            time_ns: 1_700_000_000_123_456_789,
            fields,
        };
        let mut lines = record_line(&record).into_bytes();
        lines.push(b'\n');
        for compression in [ArchiveCompression::Zstd, ArchiveCompression::Gzip] {
            let data = compress(&lines, compression).unwrap();
            let back = parse_lines(&decompress(&data, compression).unwrap()).unwrap();
            assert_eq!(back, vec![record.clone()]);
        }
    }

    #[test]
    fn test_settings_name_the_field_over_its_limit() {
        let mut settings = ArchiveSettings {
            max_object_bytes: 10,
            ..ArchiveSettings::default()
        };
        assert_eq!(settings.validate().unwrap_err().field, "max_object_bytes");
        settings.max_object_bytes = DEFAULT_MAX_OBJECT_BYTES;
        settings.max_delay_s = 0;
        assert_eq!(settings.validate().unwrap_err().field, "max_delay_s");
        settings.max_delay_s = 5;
        for prefix in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "..",
            "a/..",
            "./a",
            "a b",
            "a\0b",
            "_x",
            "a/_restores",
            "tenant=beta",
        ] {
            settings.prefix = prefix.to_string();
            assert_eq!(settings.validate().unwrap_err().field, "prefix", "{prefix}");
        }
        settings.prefix = "logs/archive.v1".to_string();
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn test_every_pool_prefix_stays_in_its_tenants_area() {
        // A prefix naming another tenant's documented layout stays inside the
        // writer's own area.
        let hostile = pool_prefix("archive/beta/shop/web", "alpha", "shop", "web");
        assert_eq!(hostile, "tenant=alpha/archive/beta/shop/web/shop/web/");
        for prefix in ["archive", "tenant=beta", "a/b/c", "x"] {
            let settings = ArchiveSettings {
                prefix: prefix.to_string(),
                ..ArchiveSettings::default()
            };
            if settings.validate().is_err() {
                continue;
            }
            assert!(pool_prefix(prefix, "alpha", "p", "q").starts_with(&tenant_area("alpha")));
            assert!(restore_state_key(prefix, "alpha", "p", "0123").starts_with("tenant=alpha/"));
            // The legacy layout never reaches into any tenant area.
            assert!(!legacy_pool_prefix(prefix, "alpha", "p", "q").starts_with("tenant="));
        }
        assert_eq!(
            legacy_pool_prefix("archive", "default", "shop", "web"),
            "archive/default/shop/web/"
        );
    }
}
