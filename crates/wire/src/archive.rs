//! A pool's archive: settings, the archived objects and restores.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::TimeParam;

/// The format of archived objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// One JSON object per line.
    Jsonl,
}

/// The compression of archived objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveCompression {
    /// Zstandard (`.jsonl.zst`).
    Zstd,
    /// gzip (`.jsonl.gz`).
    Gzip,
}

/// `GET|PUT .../archive/settings` answer: the stored settings, or the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchiveSettings {
    /// How objects are compressed.
    pub compression: ArchiveCompression,
    /// Whether the pool's records are archived.
    pub enabled: bool,
    /// How records are written.
    pub format: ArchiveFormat,
    /// A batch is written at the latest this long after its first record.
    pub max_delay_s: u32,
    /// Uncompressed bytes buffered per shard before a batch is written.
    pub max_object_bytes: u64,
    /// Key prefix inside the tenant's area of the object store.
    pub prefix: String,
}

/// `PUT .../archive/settings` body: members left out keep their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettingsPatch {
    /// Archive the pool's records (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `jsonl` (the only format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ArchiveFormat>,
    /// `zstd` (default) or `gzip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<ArchiveCompression>,
    /// 1,024 to 1 GiB (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_object_bytes: Option<u64>,
    /// 1 to 86,400 (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_s: Option<u32>,
    /// 1 to 256 characters of `a-z A-Z 0-9 - _ .` in `/`-separated segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Query of `GET .../archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArchiveListParams {
    /// Inclusive start (RFC 3339, epoch milliseconds, `now`, `-1h`); missing: the
    /// first archived record.
    pub from: Option<String>,
    /// Exclusive end; missing: the last archived record.
    pub to: Option<String>,
}

/// One archived object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchivedObject {
    /// Queue position of its first message.
    pub first_position: u64,
    /// Its key in the object store.
    pub key: String,
    /// Queue position of its last message.
    pub last_position: u64,
    /// Event time of its newest record, RFC 3339.
    pub max_time: String,
    /// Event time of its oldest record, RFC 3339.
    pub min_time: String,
    /// Records in it.
    pub records: u64,
    /// The queue partition its records came from.
    pub shard_partition: u32,
    /// Its size in bytes (compressed).
    pub size: u64,
}

/// `GET .../archive?from=&to=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchiveListing {
    /// The objects whose records overlap the range, by hour, then partition and
    /// position.
    pub objects: Vec<ArchivedObject>,
    /// Where the pool's objects are written now.
    pub prefix: String,
}

/// `POST .../archive/restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Inclusive start, as in the listing (also epoch milliseconds as a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// Another pool of the same project, which receives the records.
    pub into_pool: String,
}

/// A restore, as started or as its status endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Restore {
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The start of the range, RFC 3339; `null`: from the first archived record.
    pub from: Option<String>,
    /// Its id (16 lowercase hex digits), derived from the request.
    pub id: String,
    /// The pool that receives the records.
    pub into_pool: String,
    /// Objects restored so far.
    pub objects_done: u64,
    /// Objects to restore.
    pub objects_total: u64,
    /// The archived pool.
    pub pool: String,
    /// Records produced into `into_pool` so far.
    pub records_restored: u64,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// The end of the range, RFC 3339; `null`: to the last archived record.
    pub to: Option<String>,
}
