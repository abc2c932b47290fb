//! Shared by the alert tests: an HTTP receiver that records every webhook call (and
//! can refuse calls, to exercise retries and failover).

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use logpool_e2e::wait_for;
use serde_json::Value;

/// One call a receiver got.
#[derive(Debug, Clone)]
pub struct Call {
    pub signature: Option<String>,
    pub body: Vec<u8>,
    pub accepted: bool,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Calls still to refuse with 503.
    pub refuse: Arc<AtomicUsize>,
    /// Refuse every call while set.
    pub down: Arc<AtomicBool>,
}

/// An HTTP receiver of webhook calls, on a port of its own.
pub struct Receiver {
    pub url: String,
    pub recorded: Recorded,
}

impl Receiver {
    pub async fn start() -> Receiver {
        async fn hook(
            State(recorded): State<Recorded>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> StatusCode {
            let refused = recorded.down.load(Ordering::SeqCst)
                || recorded
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        left.checked_sub(1)
                    })
                    .is_ok();
            recorded.calls.lock().expect("lock").push(Call {
                signature: headers
                    .get("x-logpool-signature")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_string),
                body: body.to_vec(),
                accepted: !refused,
            });
            if refused {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        }
        let recorded = Recorded::default();
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, recorded }
    }

    /// Accepted notifications of rule `rule_id`, in arrival order.
    pub fn accepted(&self, rule_id: &str) -> Vec<Call> {
        self.recorded
            .calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|call| call.accepted && call.json()["rule"]["id"] == rule_id)
            .cloned()
            .collect()
    }

    pub fn all_of(&self, rule_id: &str) -> Vec<Call> {
        self.recorded
            .calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|call| call.json()["rule"]["id"] == rule_id)
            .cloned()
            .collect()
    }

    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Receiver) -> bool,
    ) {
        let found = wait_for(timeout, || async { check(self).then_some(()) }).await;
        assert!(
            found.is_some(),
            "{what} within {timeout:?}; calls: {:?}",
            self.recorded
                .calls
                .lock()
                .expect("lock")
                .iter()
                .map(Call::json)
                .collect::<Vec<_>>()
        );
    }
}

/// A notification's `status` and whether it is a repeat.
pub fn status_of(call: &Call) -> (String, bool) {
    let body = call.json();
    (
        body["status"].as_str().unwrap_or_default().to_string(),
        body["repeat"].as_bool().unwrap_or(false),
    )
}
