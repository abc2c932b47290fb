//! What the shipper protocols ([`crate::otlp`], [`crate::loki`]) share: the choice of
//! the target pool (headers first, else a name the payload carries) and the hand-over
//! of converted records to the PutDatas path ([`crate::store`]), so that they keep its
//! limits, quotas, event-time window and durability.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use logpool_api::{ApiError, ErrorCode, Principal};
use logpool_core::limits::IngestLimits;
use logpool_core::names::validate_name;
use logpool_wire::ingest::PutAnswer;
use serde::Serialize;

use crate::body::{check_declared_length, read_body, BodyFormat};
use crate::idempotency::RequestKey;
use crate::{admit, discard_body, store, PutDatasState, Target};

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

/// Converted records, written straight into the JSON of a PutDatas body
/// (`{"logs": [...]}`) one by one: no record is built as a map, and the attributes
/// records share are serialized once and pasted into each.
#[derive(Debug)]
pub struct RecordsWriter {
    body: Vec<u8>,
    count: usize,
    budget: ExpansionBudget,
}

impl RecordsWriter {
    /// An empty body under `limits`' expansion budget.
    pub fn new(limits: &IngestLimits) -> RecordsWriter {
        RecordsWriter {
            body: b"{\"logs\":[".to_vec(),
            count: 0,
            budget: ExpansionBudget::new(limits),
        }
    }

    /// Starts the next record; [`RecordWriter::finish`] ends it.
    pub fn record(&mut self) -> RecordWriter<'_> {
        if self.count > 0 {
            self.body.push(b',');
        }
        let start = self.body.len();
        self.body.push(b'{');
        RecordWriter {
            out: self,
            start,
            empty: true,
        }
    }

    /// Records written.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished PutDatas JSON body.
    pub fn finish(mut self) -> Bytes {
        self.body.extend_from_slice(b"]}");
        Bytes::from(self.body)
    }
}

/// One record being written (see [`RecordsWriter::record`]).
#[derive(Debug)]
pub struct RecordWriter<'a> {
    out: &'a mut RecordsWriter,
    start: usize,
    empty: bool,
}

impl RecordWriter<'_> {
    /// Writes `"name": value`.
    pub fn field(&mut self, name: &str, value: &impl Serialize) {
        self.name(name);
        let mark = self.out.body.len();
        // Writing into a Vec fails only for a value JSON cannot hold; it is left
        // out as `null`, which PutDatas skips.
        if serde_json::to_writer(&mut self.out.body, value).is_err() {
            self.out.body.truncate(mark);
            self.out.body.extend_from_slice(b"null");
        }
    }

    /// Writes `"name": <json>`, `json` being serialized JSON (shared attributes).
    pub fn json_field(&mut self, name: &str, json: &str) {
        self.name(name);
        self.out.body.extend_from_slice(json.as_bytes());
    }

    fn name(&mut self, name: &str) {
        if !self.empty {
            self.out.body.push(b',');
        }
        self.empty = false;
        // A `&str` always serializes.
        let _ = serde_json::to_writer(&mut self.out.body, name);
        self.out.body.push(b':');
    }

    /// Ends the record and counts it against the budget.
    ///
    /// # Errors
    /// 413 naming `max_records_per_request` or `max_body_bytes`.
    pub fn finish(self) -> Result<(), ApiError> {
        self.out.body.push(b'}');
        self.out.count += 1;
        let bytes = self.out.body.len() - self.start;
        self.out.budget.take(bytes)
    }
}

/// Stores converted records through the PutDatas path; the answer's
/// `refused_records` paths are `logs[i]`, `i` counting the records written.
///
/// # Errors
/// The PutDatas errors: limits (413), every record outside the event-time window
/// (400), quotas (429), a queue that cannot take the batches (503).
pub async fn store_records(
    state: &PutDatasState,
    target: &Target,
    records: RecordsWriter,
    key: Option<&RequestKey>,
) -> Result<PutAnswer, ApiError> {
    store(state, target, records.finish(), BodyFormat::Json, key, None).await
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
    fn test_records_writer_writes_a_putdatas_body() {
        let mut records = RecordsWriter::new(&IngestLimits::default());
        let mut record = records.record();
        record.field("message", &"a \"quoted\" line");
        record.json_field("labels", r#"{"job":"web"}"#);
        record.finish().expect("within");
        records.record().finish().expect("an empty record");
        assert_eq!(records.len(), 2);
        let body: serde_json::Value =
            serde_json::from_slice(&records.finish()).expect("valid JSON");
        assert_eq!(
            body,
            serde_json::json!({"logs": [
                {"message": "a \"quoted\" line", "labels": {"job": "web"}},
                {},
            ]})
        );
    }

    #[test]
    fn test_refused_paths_and_hex() {
        assert_eq!(refused_index("logs[17]"), Some(17));
        assert_eq!(refused_index("line 3"), None);
        assert_eq!(hex(&[0x00, 0xab, 0x1f]), "00ab1f");
    }
}
