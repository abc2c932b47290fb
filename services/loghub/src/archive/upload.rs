//! Writes one batch of a shard: one object per UTC hour of the records' own time,
//! each followed by its manifest, all named by the batch's position range.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use logpool_core::archive::{self, ArchiveSettings, ObjectManifest, ObjectName};
use logpool_engines::object_store::{ObjectStore, ObjectStoreError};

use super::stats::ArchiveStats;

/// One record, ready to be written: its hour, time and JSON line.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) hour_start_s: i64,
    pub(super) time_ns: i64,
    pub(super) text: String,
}

/// Where and how a batch is written.
#[derive(Debug, Clone)]
pub(super) struct Destination<'a> {
    pub(super) store: &'a dyn ObjectStore,
    pub(super) pool_prefix: &'a str,
    pub(super) settings: &'a ArchiveSettings,
    pub(super) partition: u32,
    pub(super) fault_pause: Duration,
}

/// The lines of one hour.
#[derive(Default)]
struct HourObject {
    lines: Vec<u8>,
    records: u64,
    min_time_ns: i64,
    max_time_ns: i64,
}

/// Uploads the objects of batch `first..=last`, except the hours in `skip_hours`
/// (objects that exist already). Lines keep their order within each hour, so the
/// same messages always give the same bytes.
pub(super) async fn upload_batch(
    destination: &Destination<'_>,
    first: u64,
    last: u64,
    lines: &[Line],
    skip_hours: &HashSet<i64>,
    stats: &ArchiveStats,
) -> Result<(), ObjectStoreError> {
    let mut hours: BTreeMap<i64, HourObject> = BTreeMap::new();
    for line in lines
        .iter()
        .filter(|l| !skip_hours.contains(&l.hour_start_s))
    {
        let object = hours
            .entry(line.hour_start_s)
            .or_insert_with(|| HourObject {
                min_time_ns: i64::MAX,
                max_time_ns: i64::MIN,
                ..HourObject::default()
            });
        object.lines.extend_from_slice(line.text.as_bytes());
        object.lines.push(b'\n');
        object.records += 1;
        object.min_time_ns = object.min_time_ns.min(line.time_ns);
        object.max_time_ns = object.max_time_ns.max(line.time_ns);
    }
    for (hour_start_s, object) in hours {
        let name = ObjectName {
            hour_start_s,
            partition: destination.partition,
            first,
            last,
            compression: destination.settings.compression,
        };
        let data = archive::compress(&object.lines, name.compression)
            .map_err(|e| ObjectStoreError::Io(std::io::Error::other(e.to_string())))?;
        let size = data.len() as u64;
        destination
            .store
            .put(&name.key(destination.pool_prefix), Bytes::from(data))
            .await?;
        let manifest = ObjectManifest {
            records: object.records,
            min_time_ns: object.min_time_ns,
            max_time_ns: object.max_time_ns,
            size,
        };
        let manifest = serde_json::to_vec(&manifest)
            .map_err(|e| ObjectStoreError::Io(std::io::Error::other(e.to_string())))?;
        destination
            .store
            .put(
                &name.manifest_key(destination.pool_prefix),
                Bytes::from(manifest),
            )
            .await?;
        stats.add_object(size, object.records);
        if !destination.fault_pause.is_zero() {
            tokio::time::sleep(destination.fault_pause).await;
        }
    }
    Ok(())
}
