//! One tail connection after the upgrade: sends what the pump buffered, pings, and
//! closes with a code and a reason.
//!
//! The loop is written against `Sink` and `Stream` of WebSocket messages, so any
//! transport can stand in for the socket.
//!
//! # Close codes
//! | code | when |
//! |------|------|
//! | 1001 | the server shuts down |
//! | 1008 | the client answered no ping for `pong_timeout_secs`, or did not take a frame within that time |
//! | 4404 | the pool was deleted while tailing |
//! | 4408 | `idle_timeout_secs` without a record or a client message, or `max_duration_secs` reached |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use logpool_engines::config::TailConfig;
use logpool_wire::tail::TailFrame;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::buffer::{BufferedRecord, TailBuffer, Taken};
use super::pump::{now_ms, PumpEnd};
use crate::metrics::TailStats;

/// Close code: the server is going away.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the client broke the keep-alive contract.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: the pool was deleted.
pub const CLOSE_POOL_DELETED: u16 = 4404;
/// Close code: a time limit was reached.
pub const CLOSE_TIME_LIMIT: u16 = 4408;

/// Longest wait for the close frame to go out.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client closed or went away.
    ClientGone,
    /// The server closed with this code and reason.
    Closed {
        /// The close code.
        code: u16,
        /// The reason sent with it.
        reason: String,
    },
}

/// Aborts the pump when the session ends in any way, so its readers are dropped.
struct AbortOnDrop(JoinHandle<PumpEnd>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a sent frame carried, for the tail metrics.
enum FrameSent {
    Records(usize),
    Dropped(u64),
}

/// Runs a session until the client leaves or the server closes it.
pub async fn run_session<S>(
    mut socket: S,
    buffer: Arc<TailBuffer>,
    pump: JoinHandle<PumpEnd>,
    mut shutdown: watch::Receiver<bool>,
    config: &TailConfig,
    pool_name: &str,
    stats: &TailStats,
) -> SessionEnd
where
    S: Sink<Message, Error = axum::Error> + Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut pump = AbortOnDrop(pump);
    let pong_timeout = Duration::from_secs(config.pong_timeout_secs);
    let started = Instant::now();
    let end_of_life = (config.max_duration_secs > 0)
        .then(|| started + Duration::from_secs(config.max_duration_secs));
    let idle_after =
        (config.idle_timeout_secs > 0).then(|| Duration::from_secs(config.idle_timeout_secs));
    let mut idle_deadline = idle_after.map(|idle| started + idle);
    let mut last_heard = started;
    let mut ping = tokio::time::interval_at(
        started + Duration::from_secs(config.ping_interval_secs),
        Duration::from_secs(config.ping_interval_secs),
    );
    let close = |code: u16, reason: String| SessionEnd::Closed { code, reason };
    let end = loop {
        tokio::select! {
            () = stopped(&mut shutdown) => {
                break close(CLOSE_GOING_AWAY, "server shutting down".to_string());
            }
            finished = &mut pump.0 => {
                break match finished {
                    Ok(PumpEnd::PoolDeleted) => {
                        close(CLOSE_POOL_DELETED, format!("pool `{pool_name}` was deleted"))
                    }
                    Ok(PumpEnd::QueueClosed) | Err(_) => {
                        close(CLOSE_GOING_AWAY, "server shutting down".to_string())
                    }
                };
            }
            _ = sleep_until_opt(end_of_life) => {
                break close(CLOSE_TIME_LIMIT, format!(
                    "tail reached its time limit of {} s (max_duration_secs)",
                    config.max_duration_secs
                ));
            }
            _ = sleep_until_opt(idle_deadline) => {
                break close(CLOSE_TIME_LIMIT, format!(
                    "no record and no client message for {} s (idle_timeout_secs)",
                    config.idle_timeout_secs
                ));
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > pong_timeout {
                    break close(CLOSE_POLICY, format!(
                        "no pong for {} s (pong_timeout_secs)", config.pong_timeout_secs
                    ));
                }
                if let Some(end) = send_in_time(&mut socket, Message::Ping(Default::default()), config).await {
                    break end;
                }
            }
            incoming = socket.next() => match incoming {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return SessionEnd::ClientGone,
                Some(Ok(Message::Pong(_) | Message::Ping(_))) => last_heard = Instant::now(),
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    idle_deadline = idle_after.map(|idle| last_heard + idle);
                }
            },
            _ = buffer.wait_ready() => {
                let (frame, sent) = match buffer.take(config.max_records_per_frame, config.max_frame_bytes) {
                    Taken::Empty => continue,
                    Taken::Dropped(count) => (
                        dropped_frame(count),
                        FrameSent::Dropped(count),
                    ),
                    Taken::Records(records) => {
                        idle_deadline = idle_after.map(|idle| Instant::now() + idle);
                        let sent = records.len();
                        (records_frame(&records), FrameSent::Records(sent))
                    }
                };
                // More may be waiting: come back after checking the other events.
                if buffer.has_pending() {
                    buffer.wake();
                }
                let message = Message::Text(frame.into());
                if let Some(end) = send_in_time(&mut socket, message, config).await {
                    break end;
                }
                match sent {
                    FrameSent::Records(records) => stats.records_frame_sent(records),
                    FrameSent::Dropped(count) => stats.dropped_frame_sent(count),
                }
            }
        }
    };
    if let SessionEnd::Closed { code, reason } = &end {
        let frame = CloseFrame {
            code: *code,
            reason: reason.as_str().into(),
        };
        let _ = tokio::time::timeout(CLOSE_SEND_TIMEOUT, socket.send(Message::Close(Some(frame))))
            .await;
    }
    end
}

/// The frame saying how many records were dropped here.
fn dropped_frame(count: u64) -> String {
    // Writing a tag and a number cannot fail.
    serde_json::to_string(&TailFrame::Dropped { count }).unwrap_or_default()
}

/// The text of a [`TailFrame::Records`]: the records' JSON as buffered, joined
/// without parsing them again, and how far behind the queue the newest of them is.
fn records_frame(records: &[BufferedRecord]) -> String {
    let lag_ms = records
        .last()
        .map_or(0, |record| (now_ms() - record.publish_time_ms).max(0));
    let text_bytes: usize = records.iter().map(|record| record.json.len() + 1).sum();
    let mut frame = String::with_capacity(text_bytes + 64);
    frame.push_str(r#"{"type":"records","records":["#);
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            frame.push(',');
        }
        frame.push_str(&record.json);
    }
    frame.push_str(r#"],"lag_ms":"#);
    frame.push_str(&lag_ms.to_string());
    frame.push('}');
    frame
}

/// Sends one message; returns how the session ends when the client is gone or did
/// not take the message within `pong_timeout_secs`.
async fn send_in_time<S>(
    socket: &mut S,
    message: Message,
    config: &TailConfig,
) -> Option<SessionEnd>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let limit = Duration::from_secs(config.pong_timeout_secs);
    match tokio::time::timeout(limit, socket.send(message)).await {
        Ok(Ok(())) => None,
        Ok(Err(_)) => Some(SessionEnd::ClientGone),
        Err(_) => Some(SessionEnd::Closed {
            code: CLOSE_POLICY,
            reason: format!(
                "the client took no frame for {} s (pong_timeout_secs)",
                config.pong_timeout_secs
            ),
        }),
    }
}

/// Waits until the shutdown flag is set (forever when its sender is gone while the
/// flag is false: nobody can shut down then).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_records_frame_is_the_json_of_its_records() {
        let records = vec![
            BufferedRecord {
                json: r#"{"id":"a","fields":{"message":"x\"y"}}"#.to_string(),
                publish_time_ms: now_ms(),
            },
            BufferedRecord {
                json: r#"{"id":"b","fields":{}}"#.to_string(),
                publish_time_ms: now_ms(),
            },
        ];
        let frame: serde_json::Value =
            serde_json::from_str(&records_frame(&records)).expect("valid JSON");
        assert_eq!(frame["type"], "records");
        assert_eq!(frame["records"][0]["fields"]["message"], "x\"y");
        assert_eq!(frame["records"][1]["id"], "b");
        assert!(frame["lag_ms"].as_i64().is_some_and(|lag| lag >= 0));
    }
}
