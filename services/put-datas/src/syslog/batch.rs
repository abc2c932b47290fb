//! Received frames waiting to be stored, and storing them through the PutDatas path
//! ([`crate::protocol::store_records`]) with the delivery rule of the transport.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use logpool_api::stop::Stop;
use logpool_api::time::now_ns;
use logpool_api::{ApiError, ErrorCode};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::message::{write_record, write_unparsed, Provenance};
use super::{parse_frame, Parsed, Settings, SyslogStats};
use crate::protocol::{store_records, RecordsWriter};
use crate::{admit, PutDatasState};

/// Backoff of a TCP store the pool refuses: first and longest pause.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LONGEST_BACKOFF: Duration = Duration::from_secs(5);

/// Bytes of JSON a record adds to its frame (field names, quoting, provenance):
/// a batch is stored before its frames reach `max_body_bytes` with them.
const RECORD_OVERHEAD: usize = 256;

/// One received frame.
#[derive(Debug, Clone)]
pub struct PendingFrame {
    /// Its bytes.
    pub bytes: Bytes,
    /// It was cut at `max_message_bytes`.
    pub truncated: bool,
    /// When it arrived (RFC 3164 times take their year from it).
    pub arrival_ns: i64,
    /// The sender's IP address.
    pub peer: Arc<str>,
}

/// The frames of one connection (or the UDP socket) not yet stored.
#[derive(Debug)]
pub struct Batch {
    frames: Vec<PendingFrame>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    linger: Duration,
    first_at: Option<Instant>,
}

impl Batch {
    /// An empty batch for `settings`, within `max_body_bytes`.
    pub fn new(settings: &Settings, max_body_bytes: usize) -> Batch {
        Batch {
            frames: Vec::new(),
            bytes: 0,
            max_records: settings.batch_records,
            max_bytes: max_body_bytes / 2,
            linger: Duration::from_millis(settings.linger_ms),
            first_at: None,
        }
    }

    /// Adds a frame; true when the batch is full and should be stored now.
    pub fn push(&mut self, frame: PendingFrame) -> bool {
        self.first_at.get_or_insert_with(Instant::now);
        self.bytes += frame.bytes.len() + RECORD_OVERHEAD;
        self.frames.push(frame);
        self.frames.len() >= self.max_records || self.bytes >= self.max_bytes
    }

    /// When the batch must be stored even if not full (`None` while empty).
    pub fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|first| first + self.linger)
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Takes the frames out, leaving the batch empty.
    pub fn take(&mut self) -> Vec<PendingFrame> {
        self.bytes = 0;
        self.first_at = None;
        std::mem::take(&mut self.frames)
    }
}

/// What to do when the pool cannot take a batch yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// TCP and TLS: retry with backoff until stored (or the process stops).
    Retry,
    /// UDP: drop it and count it.
    Drop,
}

/// Stores frames into a listener's pool.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The PutDatas state.
    pub state: PutDatasState,
    /// The listener.
    pub settings: Settings,
    /// Its counters.
    pub stats: Arc<SyslogStats>,
}

impl Sink {
    /// Stores `frames`. Frames refused for their content are counted and logged;
    /// when the pool cannot take them yet, `delivery` decides. Gives up retrying
    /// only once `stop` is asked (after one last try), counting what is lost.
    pub async fn store(&self, frames: Vec<PendingFrame>, delivery: Delivery, stop: &mut Stop) {
        if frames.is_empty() {
            return;
        }
        match self.store_patiently(&frames, delivery, stop).await {
            Ok(()) => {}
            Err(error) if is_content_error(&error) => {
                // Something in the batch breaks a limit: each frame alone, so that
                // only the offending ones are refused.
                for frame in frames {
                    match self
                        .store_patiently(std::slice::from_ref(&frame), delivery, stop)
                        .await
                    {
                        Err(error) if is_content_error(&error) => {
                            SyslogStats::add(&self.stats.records_refused, 1);
                            tracing::warn!(
                                listener = %self.settings.name,
                                peer = %frame.peer,
                                error = %error.message,
                                "syslog message refused"
                            );
                        }
                        Err(error) => self.give_up(1, delivery, &error),
                        Ok(()) => {}
                    }
                }
            }
            Err(error) => self.give_up(frames.len(), delivery, &error),
        }
    }

    /// Stores `frames`, retrying while the pool cannot take them and `delivery`
    /// says so.
    async fn store_patiently(
        &self,
        frames: &[PendingFrame],
        delivery: Delivery,
        stop: &mut Stop,
    ) -> Result<(), ApiError> {
        let mut pause = FIRST_BACKOFF;
        loop {
            let error = match self.store_once(frames).await {
                Ok(()) => return Ok(()),
                Err(error) if is_content_error(&error) => return Err(error),
                Err(error) => error,
            };
            if delivery == Delivery::Drop || stop.is_stopped() {
                return Err(error);
            }
            SyslogStats::add(&self.stats.store_retries, 1);
            // Once per held batch at warn; its further retries only at debug, so
            // that many waiting connections do not flood the log.
            if pause == FIRST_BACKOFF {
                tracing::warn!(
                    listener = %self.settings.name,
                    error = %error.message,
                    "syslog batch not stored yet; the connection waits and retries"
                );
            } else {
                tracing::debug!(
                    listener = %self.settings.name,
                    error = %error.message,
                    retry_in_ms = pause.as_millis() as u64,
                    "syslog batch retried"
                );
            }
            // At the stop, one last try right away.
            stop.sleep(pause).await;
            pause = (pause * 2).min(LONGEST_BACKOFF);
        }
    }

    async fn store_once(&self, frames: &[PendingFrame]) -> Result<(), ApiError> {
        let state = &self.state;
        let settings = &self.settings;
        let target = admit(state, &settings.tenant, &settings.project, &settings.pool)?;
        let mut records = RecordsWriter::new(&state.limits);
        let mut malformed = 0usize;
        for frame in frames {
            let provenance = Provenance {
                listener: &settings.name,
                peer: &frame.peer,
                truncated: frame.truncated,
            };
            let mut record = records.record();
            match parse_frame(&frame.bytes, frame.arrival_ns) {
                Parsed::Message(message) => {
                    write_record(&mut record, &message, provenance, &state.limits);
                }
                Parsed::Unparsed { line, reason } => {
                    malformed += 1;
                    write_unparsed(&mut record, &line, &reason, provenance);
                }
            }
            record.finish()?;
        }
        let outcome = store_records(state, &target, records, None).await;
        state
            .stats
            .count(outcome.as_ref().map(|answer| answer.accepted));
        let answer = outcome?;
        SyslogStats::add(&self.stats.records_stored, answer.accepted);
        SyslogStats::add(&self.stats.messages_malformed, malformed);
        if answer.refused > 0 {
            SyslogStats::add(&self.stats.records_refused, answer.refused);
            tracing::warn!(
                listener = %settings.name,
                refused = answer.refused,
                first = ?answer.refused_records.first().map(|r| &r.reason),
                "syslog messages outside the pool's event-time window were not stored"
            );
        }
        Ok(())
    }

    fn give_up(&self, records: usize, delivery: Delivery, error: &ApiError) {
        let (counter, what) = match delivery {
            Delivery::Drop => (&self.stats.udp_dropped, "syslog UDP messages dropped"),
            Delivery::Retry => (
                &self.stats.records_lost_at_shutdown,
                "syslog messages not stored: the pool still refused them at shutdown",
            ),
        };
        SyslogStats::add(counter, records);
        tracing::error!(
            listener = %self.settings.name,
            records,
            error = %error.message,
            "{what}"
        );
    }
}

/// Stores the batches of one connection (or UDP socket) one after another, while
/// the next one fills: at most one store is in flight, so a connection holds at
/// most two batches, and batches are stored in the order they were received.
#[derive(Debug)]
pub struct Pipeline {
    sink: Sink,
    delivery: Delivery,
    stop: Stop,
    in_flight: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// A pipeline into `sink`.
    pub fn new(sink: Sink, delivery: Delivery, stop: Stop) -> Pipeline {
        Pipeline {
            sink,
            delivery,
            stop,
            in_flight: None,
        }
    }

    /// Starts storing `frames` once the previous batch is stored (waiting for it
    /// here, which is what holds a TCP sender back).
    pub async fn hand_over(&mut self, frames: Vec<PendingFrame>) {
        self.wait().await;
        if frames.is_empty() {
            return;
        }
        let (sink, delivery, mut stop) = (self.sink.clone(), self.delivery, self.stop.clone());
        self.in_flight = Some(tokio::spawn(async move {
            sink.store(frames, delivery, &mut stop).await;
        }));
    }

    /// Waits until every batch handed over is stored (or given up).
    pub async fn wait(&mut self) {
        if let Some(previous) = self.in_flight.take() {
            if previous.await.is_err() {
                tracing::error!(listener = %self.sink.settings.name, "a syslog store panicked");
            }
        }
    }
}

/// Errors no retry mends: the records themselves break a limit.
fn is_content_error(error: &ApiError) -> bool {
    matches!(
        error.code,
        ErrorCode::BadRequest | ErrorCode::PayloadTooLarge
    )
}

/// A frame received now from `peer`.
pub fn received(
    bytes: Bytes,
    truncated: bool,
    peer: &Arc<str>,
    stats: &SyslogStats,
) -> PendingFrame {
    SyslogStats::add(&stats.messages_received, 1);
    if truncated {
        SyslogStats::add(&stats.messages_truncated, 1);
    }
    PendingFrame {
        bytes,
        truncated,
        arrival_ns: now_ns(),
        peer: peer.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_engines::config::SyslogListenerConfig;

    fn settings(batch_records: usize) -> Settings {
        Arc::new(SyslogListenerConfig {
            name: "in".to_string(),
            bind: "127.0.0.1:0".parse().expect("address"),
            transport: Default::default(),
            tenant: "default".to_string(),
            project: "shop".to_string(),
            pool: "sys".to_string(),
            max_message_bytes: 1024,
            max_connections: 1,
            idle_timeout_secs: 0,
            batch_records,
            linger_ms: 200,
            cert_path: None,
            key_path: None,
            client_ca_path: None,
        })
    }

    fn frame(size: usize) -> PendingFrame {
        PendingFrame {
            bytes: Bytes::from(vec![b'x'; size]),
            truncated: false,
            arrival_ns: 0,
            peer: Arc::from("127.0.0.1"),
        }
    }

    #[tokio::test]
    async fn test_a_batch_is_full_by_count_or_bytes_and_lingers_from_its_first_frame() {
        let mut batch = Batch::new(&settings(3), 1_000_000);
        assert_eq!(batch.deadline(), None);
        assert!(!batch.push(frame(10)));
        let deadline = batch.deadline().expect("a deadline once a frame waits");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!batch.push(frame(10)));
        // The linger counts from the first frame, not the last.
        assert_eq!(batch.deadline(), Some(deadline));
        assert!(deadline <= Instant::now() + Duration::from_millis(200));
        assert!(batch.push(frame(10)), "full at batch_records");
        assert_eq!(batch.take().len(), 3);
        assert!(batch.is_empty());
        assert_eq!(batch.deadline(), None);
        // Half of max_body_bytes, with each record's overhead, fills it too.
        let mut small = Batch::new(&settings(500), 2 * (1000 + RECORD_OVERHEAD));
        assert!(small.push(frame(1000)));
    }
}
