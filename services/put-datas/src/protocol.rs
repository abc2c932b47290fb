//! What the shipper protocols ([`crate::otlp`], [`crate::loki`]) share: the choice of
//! the target pool (headers first, else a name the payload carries) and the hand-over
//! of converted records to the PutDatas path ([`crate::store`]), so that they keep its
//! limits, quotas, event-time window and durability.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use logpool_api::time::now_ns;
use logpool_api::{ApiError, ErrorCode, Principal};
use logpool_core::batch::decode_batch;
use logpool_core::ingest::window::EventTimeWindow;
use logpool_core::ingest::{StructuredRecords, TIME_FIELD};
use logpool_core::limits::IngestLimits;
use logpool_core::names::validate_name;
use logpool_wire::ingest::PutAnswer;
use serde::Serialize;

use crate::body::{check_declared_length, read_body};
use crate::idempotency::{digest, RequestKey};
use crate::{admit, discard_body, ingest_error, store_encoded, PutDatasState, Target};

/// The header naming the target project.
pub const PROJECT_HEADER: &str = "x-logpool-project";
/// The header naming the target pool.
pub const POOL_HEADER: &str = "x-logpool-pool";

/// A project and pool named by a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolName {
    /// The project.
    pub project: String,
    /// The pool.
    pub pool: String,
}

impl PoolName {
    /// The pool named by `X-Logpool-Project` and `X-Logpool-Pool`, when both are
    /// sent.
    ///
    /// # Errors
    /// 400 when only one of them is sent, or one is not text.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<PoolName>, ApiError> {
        let text = |name: &'static str| -> Result<Option<String>, ApiError> {
            headers
                .get(name)
                .map(|value| {
                    value.to_str().map(|v| v.trim().to_string()).map_err(|_| {
                        ApiError::bad_request(format!("header `{name}` is not text"))
                            .with_detail("field", name)
                    })
                })
                .transpose()
        };
        match (text(PROJECT_HEADER)?, text(POOL_HEADER)?) {
            (Some(project), Some(pool)) => Ok(Some(PoolName { project, pool })),
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => Err(ApiError::bad_request(format!(
                "send both `{PROJECT_HEADER}` and `{POOL_HEADER}`, or neither"
            ))
            .with_detail("field", POOL_HEADER)),
        }
    }
}

/// The 400 of a request that names no pool.
pub fn no_pool_error(payload_names: &str) -> ApiError {
    ApiError::bad_request(format!(
        "no target pool: send the headers `X-Logpool-Project` and `X-Logpool-Pool`, or \
         {payload_names}"
    ))
    .with_detail("field", POOL_HEADER)
}

/// Finds the pool a key writes to, refusing a project the key may not see.
///
/// # Errors
/// 403 for a project outside the key's scope, 404 for an unknown pool, the storage
/// quota's error.
pub fn resolve(
    state: &PutDatasState,
    principal: &Principal,
    name: &PoolName,
) -> Result<Target, ApiError> {
    for (what, value) in [("project", &name.project), ("pool", &name.pool)] {
        validate_name(value).map_err(|reason| {
            ApiError::bad_request(format!("the target {what}'s {reason}"))
                .with_detail("field", what)
        })?;
    }
    if !principal.may_see_project(&name.project) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this key is limited to project `{}`",
                principal.project_scope.as_deref().unwrap_or_default()
            ),
        ));
    }
    admit(state, &principal.tenant, &name.project, &name.pool)
}

/// A shipper request's body, read under the PutDatas limits, with the pool its
/// headers name already admitted (so that a rate-limited or unknown pool is refused
/// before the body is parsed).
pub struct ReadRequest {
    /// The decompressed body.
    pub raw: Bytes,
    /// The pool of the headers, admitted and under its rate quota.
    pub header_target: Option<Target>,
    /// The `Idempotency-Key`, when sent.
    pub key: Option<RequestKey>,
}

/// Reads a shipper request's body as PutDatas does: declared length, rate quota of
/// the header's pool (when named), size limit and decompression.
///
/// # Errors
/// The PutDatas errors (404, 413, 415, 429, ...).
pub async fn read_request(
    state: &PutDatasState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Result<ReadRequest, ApiError> {
    let header_target = match PoolName::from_headers(headers)? {
        Some(name) => Some(resolve(state, principal, &name)?),
        None => None,
    };
    check_declared_length(headers, &state.limits)?;
    if let Some(target) = &header_target {
        if let Err(refused) = target.check_rate(state) {
            discard_body(body, &state.limits).await;
            return Err(refused);
        }
    }
    let key = RequestKey::from_headers(headers)?;
    let raw = read_body(body, headers, &state.limits).await?;
    Ok(ReadRequest {
        raw,
        header_target,
        key,
    })
}

/// The target of a request: its headers' pool, else the one its payload names
/// (admitted and rate-checked here).
///
/// # Errors
/// 400 naming how to name a pool when neither does, and [`resolve`]'s errors.
pub fn target_of(
    state: &PutDatasState,
    principal: &Principal,
    header_target: Option<Target>,
    payload_pool: Option<&PoolName>,
    payload_names: &str,
) -> Result<Target, ApiError> {
    if let Some(target) = header_target {
        return Ok(target);
    }
    let name = payload_pool.ok_or_else(|| no_pool_error(payload_names))?;
    let target = resolve(state, principal, name)?;
    target.check_rate(state)?;
    Ok(target)
}

/// Converted records, written field by field straight into the queue's batch JSON
/// ([`StructuredRecords`]): no record is built as a map, no PutDatas body is written
/// and read again, and the attributes records share are flattened once and pasted
/// into each. The fields obey PutDatas' rules; a refused field fails the request
/// where PutDatas would have read its body ([`store_records`]).
#[derive(Debug)]
pub struct RecordsWriter {
    records: StructuredRecords,
    budget: ExpansionBudget,
    /// What identifies the request for its `Idempotency-Key`: its body's digest.
    request_digest: Option<String>,
}

impl RecordsWriter {
    /// An empty set of records under `limits`' expansion budget.
    pub fn new(limits: &IngestLimits) -> RecordsWriter {
        RecordsWriter {
            records: StructuredRecords::new(limits, now_ns()),
            budget: ExpansionBudget::new(limits),
            request_digest: None,
        }
    }

    /// As [`RecordsWriter::new`], for the records of `request`: a retry of it with
    /// the same `Idempotency-Key` is recognised by its body.
    pub fn for_request(limits: &IngestLimits, request: &ReadRequest) -> RecordsWriter {
        let mut writer = RecordsWriter::new(limits);
        if request.key.is_some() {
            writer.request_digest = Some(digest(&[&request.raw, b"shipper"]));
        }
        writer
    }

    /// Starts the next record; [`RecordWriter::finish`] ends it.
    pub fn record(&mut self) -> RecordWriter<'_> {
        self.records.start_record();
        RecordWriter { out: self }
    }

    /// The records written, for a measurement of the conversion alone.
    #[cfg(test)]
    pub(crate) fn into_structured(self) -> StructuredRecords {
        self.records
    }

    /// Records written.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records as a PutDatas JSON body (`{"logs": [...]}`) of the fields they
    /// are stored with, nested names flattened (to look at them; storing does not
    /// go through this). Empty when a field was refused.
    pub fn finish(self) -> Bytes {
        let records = self
            .records
            .into_encoded(&EventTimeWindow::UNBOUNDED)
            .ok()
            .and_then(|(records, _)| records.encode_run(0..records.len()).ok())
            .and_then(|payload| decode_batch(&payload).ok())
            .unwrap_or_default();
        let logs: Vec<serde_json::Value> = records
            .into_iter()
            .map(|record| {
                let mut fields = serde_json::to_value(&record.fields).unwrap_or_default();
                fields[TIME_FIELD] = record.time_ns.into();
                fields
            })
            .collect();
        Bytes::from(serde_json::to_vec(&serde_json::json!({ "logs": logs })).unwrap_or_default())
    }
}

/// One record being written (see [`RecordsWriter::record`]).
#[derive(Debug)]
pub struct RecordWriter<'a> {
    out: &'a mut RecordsWriter,
}

impl RecordWriter<'_> {
    /// Writes `"name": value` (an object's members become `name.member` fields, as
    /// PutDatas flattens them; `null` is no field).
    pub fn field(&mut self, name: &str, value: &impl Serialize) {
        self.out.records.field(name, value);
    }

    /// Writes `"name": <json>`, `json` being serialized JSON (shared attributes).
    pub fn json_field(&mut self, name: &str, json: &str) {
        self.out.records.json_field(name, json);
    }

    /// Ends the record and counts it against the budget.
    ///
    /// # Errors
    /// 413 naming `max_records_per_request` or `max_body_bytes`.
    pub fn finish(self) -> Result<(), ApiError> {
        let bytes = self.out.records.finish_record();
        self.out.budget.take(bytes)
    }
}

/// Stores converted records through the PutDatas path; the answer's
/// `refused_records` paths are `logs[i]`, `i` counting the records written.
///
/// # Errors
/// The PutDatas errors: a field PutDatas refuses (400, 413), every record outside
/// the event-time window (400), quotas (429), a queue that cannot take the batches
/// (503).
pub async fn store_records(
    state: &PutDatasState,
    target: &Target,
    records: RecordsWriter,
    key: Option<&RequestKey>,
) -> Result<PutAnswer, ApiError> {
    let route = &target.route;
    let window = EventTimeWindow::for_pool(
        &state.limits,
        &route.event_window,
        route.retention_days,
        now_ns(),
    );
    let request_digest = records.request_digest;
    let (encoded, refusals) = records
        .records
        .into_encoded(&window)
        .map_err(ingest_error)?;
    let keyed = key.map(|key| {
        let body = request_digest.unwrap_or_else(|| {
            // Records not read from an HTTP body: what they hold identifies them.
            let everything = encoded.encode_run(0..encoded.len()).unwrap_or_default();
            digest(&[&everything, b"records"])
        });
        (key, body)
    });
    let body_bytes = encoded.json_bytes() as u64;
    store_encoded(state, target, encoded, refusals, body_bytes, keyed, None).await
}

/// How many times `max_body_bytes` the records of one shipper request may come to
/// once converted. Shipper formats share attributes between records (an OTLP
/// resource, a Loki stream's labels) that every converted record repeats, so a small
/// body could otherwise expand without bound in memory.
pub const EXPANSION_FACTOR: usize = 4;

/// Bounds what one shipper request converts to, checked record by record while
/// converting, before the records exist: the record count (`max_records_per_request`,
/// as for PutDatas) and their size ([`EXPANSION_FACTOR`] × `max_body_bytes`).
#[derive(Debug)]
pub struct ExpansionBudget {
    records: usize,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
}

impl ExpansionBudget {
    /// The budget of one request under `limits`.
    pub fn new(limits: &IngestLimits) -> ExpansionBudget {
        ExpansionBudget {
            records: 0,
            bytes: 0,
            max_records: limits.max_records_per_request,
            max_bytes: limits.max_body_bytes.saturating_mul(EXPANSION_FACTOR),
        }
    }

    /// Counts one more record of about `bytes` bytes.
    ///
    /// # Errors
    /// 413 naming `max_records_per_request` or `max_body_bytes`.
    pub fn take(&mut self, bytes: usize) -> Result<(), ApiError> {
        self.records += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.records > self.max_records {
            let max = self.max_records;
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("limit `max_records_per_request` exceeded: more than {max} records"),
            )
            .with_detail("limit", "max_records_per_request")
            .with_detail("value", max));
        }
        if self.bytes > self.max_bytes {
            let max = self.max_bytes;
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "limit `max_body_bytes` exceeded: the records, each with the attributes \
                     or labels it shares with others, come to more than {max} bytes \
                     ({EXPANSION_FACTOR} x max_body_bytes); send smaller batches"
                ),
            )
            .with_detail("limit", "max_body_bytes")
            .with_detail("value", max));
        }
        Ok(())
    }
}

/// The index of a refused record from its `logs[i]` path.
pub fn refused_index(path: &str) -> Option<usize> {
    path.strip_prefix("logs[")?.split(']').next()?.parse().ok()
}

/// Lower-case hex of `bytes` (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pool_headers_come_in_pairs() {
        let mut headers = HeaderMap::new();
        assert_eq!(PoolName::from_headers(&headers).expect("none"), None);
        headers.insert(PROJECT_HEADER, "shop".parse().expect("value"));
        let error = PoolName::from_headers(&headers).expect_err("one alone");
        assert!(
            error.message.contains("x-logpool-pool"),
            "{}",
            error.message
        );
        headers.insert(POOL_HEADER, "web".parse().expect("value"));
        assert_eq!(
            PoolName::from_headers(&headers).expect("both"),
            Some(PoolName {
                project: "shop".into(),
                pool: "web".into()
            })
        );
    }

    #[test]
    fn test_expansion_budget_counts_records_and_bytes() {
        let limits = IngestLimits {
            max_body_bytes: 100,
            max_records_per_request: 3,
            ..IngestLimits::default()
        };
        let mut budget = ExpansionBudget::new(&limits);
        budget.take(10).expect("first");
        let error = budget.take(400).expect_err("too many bytes");
        assert!(
            error.message.contains("max_body_bytes"),
            "{}",
            error.message
        );
        let mut budget = ExpansionBudget::new(&limits);
        for _ in 0..3 {
            budget.take(1).expect("within");
        }
        let error = budget.take(1).expect_err("too many records");
        assert!(
            error.message.contains("max_records_per_request"),
            "{}",
            error.message
        );
    }

    #[test]
    fn test_records_writer_writes_the_fields_putdatas_stores() {
        let mut records = RecordsWriter::new(&IngestLimits::default());
        let mut record = records.record();
        record.field("message", &"a \"quoted\" line");
        record.json_field("labels", r#"{"job":"web"}"#);
        record.field("time", &1_700_000_000_000_000_000u64);
        record.finish().expect("within");
        records.record().finish().expect("an empty record");
        assert_eq!(records.len(), 2);
        let body: serde_json::Value =
            serde_json::from_slice(&records.finish()).expect("valid JSON");
        assert_eq!(
            body["logs"][0],
            serde_json::json!({
                "message": "a \"quoted\" line",
                "labels.job": "web",
                "time": 1_700_000_000_000_000_000u64,
            })
        );
        // A record without a time is stamped when written.
        assert!(
            body["logs"][1]["time"].as_i64().is_some_and(|t| t > 0),
            "{body}"
        );
    }

    #[test]
    fn test_a_refused_field_fails_the_request_where_putdatas_reads_it() {
        let limits = IngestLimits {
            max_value_bytes: 4,
            ..IngestLimits::default()
        };
        let mut records = RecordsWriter::new(&limits);
        records.record().finish().expect("an empty record");
        let mut record = records.record();
        record.field("attributes", &serde_json::json!({"k": "too long"}));
        record.finish().expect("the budget is not the limit broken");
        let error = records
            .records
            .into_encoded(&EventTimeWindow::UNBOUNDED)
            .map_err(ingest_error)
            .expect_err("refused");
        assert_eq!(error.code, ErrorCode::PayloadTooLarge);
        assert!(
            error.message.contains("logs[1].attributes.k"),
            "{}",
            error.message
        );
    }

    #[test]
    fn test_refused_paths_and_hex() {
        assert_eq!(refused_index("logs[17]"), Some(17));
        assert_eq!(refused_index("line 3"), None);
        assert_eq!(hex(&[0x00, 0xab, 0x1f]), "00ab1f");
    }
}
