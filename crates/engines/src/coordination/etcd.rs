//! etcd coordination (distributed mode): the routing snapshot, service membership and
//! leader leases for singleton jobs.
//!
//! # Keys
//!
//! Everything lives under one configurable prefix (default `/logpool`):
//!
//! - `{prefix}/routing`: the whole [`RoutingSnapshot`] as JSON. One key rather than a
//!   key per pool, so every service applies a change atomically and a snapshot is never
//!   seen half-written.
//! - `{prefix}/members/{service}/{id}`: one key per running service instance, its
//!   [`MemberInfo`] as JSON, attached to a lease ([`EtcdCoordinator::register_member`]);
//!   a process that dies without leaving disappears when the lease expires.
//! - `{prefix}/leaders/{job}`: the current leader of a singleton job, attached to the
//!   leader's lease ([`EtcdCoordinator::leader_lease`]).
//!
//! # Publishing
//!
//! [`Coordinator::publish`] is a read-modify-write: it reads the key, sets the version to
//! one more than the highest version it knows (the key's or the one it holds locally,
//! so a key lost with an etcd disaster can never make versions go backwards), and writes
//! it in a transaction that compares the key's mod revision. When another publisher
//! wrote in between, the transaction fails and the publish is retried on the new value,
//! so concurrent publishers never lose each other's updates and every version is
//! handed out once.
//!
//! # Watching
//!
//! The snapshot is loaded at connect time, then one background task keeps the
//! [`watch::Receiver`] current (etcd-client watches neither reconnect nor resume on
//! their own, see pitfall B9):
//!
//! - it watches the key from the last known revision + 1, so no change between the load
//!   and the watch is missed;
//! - it asks for progress notifications every few seconds and treats a watch that has
//!   said nothing for three intervals as dead (a killed etcd can leave a stream hanging
//!   without an error);
//! - after any error, end of stream, cancellation or compaction it re-lists the key
//!   (with capped exponential backoff) and watches again from the listed revision + 1;
//! - a snapshot is applied only when its version is higher than the one held, and while
//!   etcd is unreachable the LAST KNOWN snapshot stays in the channel, so the data plane
//!   keeps routing by it.
//!
//! # Leases
//!
//! Member keys and leader keys are attached to leases renewed every TTL/3 (pitfall
//! B10). A keep-alive answer with TTL 0, the end of the keep-alive stream, an error, or
//! no answer for 2/3 of the TTL all mean the lease is lost: a member re-registers under a
//! new lease, and a leader steps down at once (before etcd can expire the lease and let
//! another contender in) and campaigns again. Leadership is therefore exclusive as long
//! as clocks run at similar rates; jobs that must never overlap should still be
//! idempotent.
//!
//! # Shutdown
//!
//! Every background task stops when [`EtcdCoordinator::shutdown`] is called or the
//! coordinator is dropped; member and leader tasks also stop when their handle is
//! dropped, and then revoke their lease so the key disappears at once instead of after
//! the TTL.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use logpool_core::routing::RoutingSnapshot;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    CoordinationError, CoordinationResult, Coordinator, Leadership, MemberInfo, Membership,
};

/// How often an idle routing watch asks etcd for a progress notification.
const WATCH_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// A routing watch that has received nothing for this long is considered dead.
const WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// First and largest pause between reconnection attempts.
const MIN_RETRY_BACKOFF: Duration = Duration::from_millis(200);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// HTTP/2 pings detect a dead TCP connection under an open stream. etcd refuses pings
/// more often than every 5 s (`--grpc-keepalive-min-time`), hence 10 s.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// A publish that keeps losing the compare-and-swap race gives up after this many tries.
const MAX_PUBLISH_ATTEMPTS: u32 = 64;

/// Settings of the etcd coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdCoordinatorConfig {
    /// etcd client URLs; requests are balanced over them.
    pub endpoints: Vec<String>,
    /// Key prefix under which logpool keeps its keys; deployments sharing one etcd
    /// cluster use different prefixes.
    pub prefix: String,
    /// How long to wait for etcd to answer one request (connect, read, write) before it
    /// is reported unavailable, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Lease time-to-live of leader leases (and the default for member registrations),
    /// in seconds: how long a crashed leader or member keeps its key.
    pub lease_ttl_secs: u64,
}

impl Default for EtcdCoordinatorConfig {
    fn default() -> Self {
        EtcdCoordinatorConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            prefix: "/logpool".to_string(),
            connect_timeout_ms: 5_000,
            lease_ttl_secs: 10,
        }
    }
}

/// The etcd implementation of [`Coordinator`], plus membership and leader leases.
pub struct EtcdCoordinator {
    client: Client,
    prefix: String,
    routing_key: String,
    request_timeout: Duration,
    lease_ttl_secs: i64,
    snapshot: Arc<watch::Sender<Arc<RoutingSnapshot>>>,
    /// Dropping this sender (with the coordinator) also stops every background task.
    shutdown: watch::Sender<bool>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for EtcdCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdCoordinator")
            .field("prefix", &self.prefix)
            .field("version", &self.snapshot.borrow().version)
            .finish_non_exhaustive()
    }
}

impl EtcdCoordinator {
    /// Connects to etcd, loads the current routing snapshot and starts watching it.
    ///
    /// # Errors
    /// Returns [`CoordinationError::Unavailable`] when no endpoint is configured or etcd
    /// does not answer within `connect_timeout_ms`.
    pub async fn connect(config: EtcdCoordinatorConfig) -> CoordinationResult<EtcdCoordinator> {
        if config.endpoints.is_empty() {
            return Err(CoordinationError::Unavailable(
                "no etcd endpoints configured".to_string(),
            ));
        }
        let request_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let options = ConnectOptions::new()
            .with_connect_timeout(request_timeout)
            .with_keep_alive(HTTP2_KEEPALIVE_INTERVAL, HTTP2_KEEPALIVE_TIMEOUT);
        let endpoints = config.endpoints.join(",");
        let client = timed(
            request_timeout,
            "connect",
            Client::connect(&config.endpoints, Some(options)),
        )
        .await
        .map_err(|e| CoordinationError::Unavailable(format!("etcd at {endpoints}: {e}")))?;
        let prefix = config.prefix.trim_end_matches('/').to_string();
        let routing_key = format!("{prefix}/routing");

        // The channel is connected to the client lazily: this first read is what proves
        // etcd is there, and it gives the revision the watch starts after.
        let response = timed(
            request_timeout,
            "read the routing snapshot",
            client.kv_client().get(routing_key.as_str(), None),
        )
        .await
        .map_err(|e| CoordinationError::Unavailable(format!("etcd at {endpoints}: {e}")))?;
        let revision = response.header().map_or(0, |h| h.revision());
        let (sender, _) = watch::channel(Arc::new(RoutingSnapshot::default()));
        let snapshot = Arc::new(sender);
        if let Some(kv) = response.kvs().first() {
            apply_routing_value(&snapshot, kv.value());
        }

        let (shutdown, shutdown_receiver) = watch::channel(false);
        let watcher = tokio::spawn(run_routing_watcher(RoutingWatcher {
            client: client.clone(),
            key: routing_key.clone(),
            snapshot: snapshot.clone(),
            last_revision: revision,
            request_timeout,
            stop: Stop::new(vec![shutdown_receiver]),
        }));
        Ok(EtcdCoordinator {
            client,
            prefix,
            routing_key,
            request_timeout,
            lease_ttl_secs: i64::try_from(config.lease_ttl_secs.max(1)).unwrap_or(i64::MAX),
            snapshot,
            shutdown,
            watcher: Mutex::new(Some(watcher)),
        })
    }

    /// Stops the background tasks (routing watch, member keep-alives, leader leases;
    /// leases are revoked) and waits for the routing watch to end. Receivers keep the
    /// last snapshot. Dropping the coordinator stops them too, without waiting.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let watcher = self.watcher.lock().ok().and_then(|mut guard| guard.take());
        if let Some(watcher) = watcher {
            // The task only awaits bounded etcd calls or the stop signal; the timeout is
            // a guard, not an expected path.
            let _ = tokio::time::timeout(self.request_timeout * 2, watcher).await;
        }
    }

    /// Registers `member` under `{prefix}/members/{service}/{id}` (the value is the
    /// member as JSON), attached to a lease of `ttl_secs` seconds (0 means the
    /// configured `lease_ttl_secs`) that a background task renews every TTL/3. If the
    /// lease is lost (etcd down longer than the TTL, lease revoked), the task
    /// re-registers under a new lease as soon as etcd answers.
    ///
    /// `service` and `id` should not contain `/`.
    ///
    /// # Errors
    /// Returns [`CoordinationError::Unavailable`] when the first registration fails.
    pub async fn register_member(
        &self,
        member: &MemberInfo,
        ttl_secs: u64,
    ) -> CoordinationResult<MemberRegistration> {
        let ttl = if ttl_secs == 0 {
            self.lease_ttl_secs
        } else {
            i64::try_from(ttl_secs).unwrap_or(i64::MAX)
        };
        let key = format!("{}/{}", self.members_prefix(&member.service), member.id);
        let value = serde_json::to_string(member).map_err(|e| {
            CoordinationError::Unavailable(format!("cannot encode the member entry: {e}"))
        })?;
        let lease = grant_and_put(&self.client, &key, &value, ttl, self.request_timeout).await?;
        let (state_sender, state) = watch::channel(Some(lease.id));
        let (stop_sender, stop_receiver) = watch::channel(false);
        let task = tokio::spawn(run_member_keeper(MemberKeeper {
            client: self.client.clone(),
            key: key.clone(),
            value,
            ttl,
            lease,
            state: state_sender,
            request_timeout: self.request_timeout,
            stop: Stop::new(vec![self.shutdown.subscribe(), stop_receiver]),
        }));
        Ok(MemberRegistration {
            key,
            state,
            stop: stop_sender,
            task: Some(task),
        })
    }

    /// Lists the registered members of every service, sorted by service and id. An
    /// entry that cannot be read (written by an incompatible version) is skipped with a
    /// warning rather than hiding every other member.
    ///
    /// # Errors
    /// Returns [`CoordinationError::Unavailable`] when etcd does not answer.
    pub async fn list_all_members(&self) -> CoordinationResult<Vec<MemberInfo>> {
        let prefix = format!("{}/members/", self.prefix);
        let response = timed(
            self.request_timeout,
            "list members",
            self.client
                .kv_client()
                .get(prefix.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let mut members: Vec<MemberInfo> = response
            .kvs()
            .iter()
            .filter_map(|kv| match serde_json::from_slice::<MemberInfo>(kv.value()) {
                Ok(member) => Some(member),
                Err(error) => {
                    tracing::warn!(%error, key = %String::from_utf8_lossy(kv.key()), "skipping an unreadable member entry");
                    None
                }
            })
            .collect();
        members.sort_by(|a, b| (&a.service, &a.id).cmp(&(&b.service, &b.id)));
        Ok(members)
    }

    /// Lists the ids of the registered members of `service`, sorted.
    ///
    /// # Errors
    /// Returns [`CoordinationError::Unavailable`] when etcd does not answer.
    pub async fn list_members(&self, service: &str) -> CoordinationResult<Vec<String>> {
        let prefix = format!("{}/", self.members_prefix(service));
        let response = timed(
            self.request_timeout,
            "list members",
            self.client.kv_client().get(
                prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
        )
        .await?;
        let mut ids: Vec<String> = response
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(kv.key());
                key.strip_prefix(&prefix).map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Starts contending for the leadership of the singleton job `job` as `candidate`
    /// (a name for this process, stored as the value of `{prefix}/leaders/{job}`). The
    /// returned handle tells whether this process leads now; dropping it (or
    /// [`LeaderLease::resign`]) gives the leadership up at once.
    ///
    /// Leadership is won with a transaction that creates the leader key only if it is
    /// absent, under a lease of `lease_ttl_secs`; a contender that loses waits for the
    /// key to be deleted (watch, plus a re-check every TTL) and tries again.
    pub fn leader_lease(&self, job: &str, candidate: &str) -> LeaderLease {
        let key = format!("{}/leaders/{job}", self.prefix);
        let (leading_sender, leading) = watch::channel(false);
        let (stop_sender, stop_receiver) = watch::channel(false);
        let task = tokio::spawn(run_leader_campaign(LeaderCampaign {
            client: self.client.clone(),
            key,
            candidate: candidate.to_string(),
            ttl: self.lease_ttl_secs,
            leading: leading_sender,
            request_timeout: self.request_timeout,
            stop: Stop::new(vec![self.shutdown.subscribe(), stop_receiver]),
        }));
        LeaderLease {
            job: job.to_string(),
            leading,
            stop: stop_sender,
            task: Some(task),
        }
    }

    /// Returns the candidate that currently leads `job`, if any.
    ///
    /// # Errors
    /// Returns [`CoordinationError::Unavailable`] when etcd does not answer.
    pub async fn leader_of(&self, job: &str) -> CoordinationResult<Option<String>> {
        let key = format!("{}/leaders/{job}", self.prefix);
        let response = timed(
            self.request_timeout,
            "read a leader key",
            self.client.kv_client().get(key, None),
        )
        .await?;
        Ok(response
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    fn members_prefix(&self, service: &str) -> String {
        format!("{}/members/{service}", self.prefix)
    }
}

#[async_trait]
impl Coordinator for EtcdCoordinator {
    async fn register(&self, member: MemberInfo) -> CoordinationResult<Box<dyn Membership>> {
        Ok(Box::new(self.register_member(&member, 0).await?))
    }

    async fn members(&self) -> CoordinationResult<Vec<MemberInfo>> {
        self.list_all_members().await
    }

    fn campaign(&self, job: &str, candidate: &str) -> Box<dyn Leadership> {
        Box::new(self.leader_lease(job, candidate))
    }

    async fn publish(&self, mut snapshot: RoutingSnapshot) -> CoordinationResult<u64> {
        let mut kv = self.client.kv_client();
        for attempt in 0..MAX_PUBLISH_ATTEMPTS {
            let current = timed(
                self.request_timeout,
                "read the routing snapshot",
                kv.get(self.routing_key.as_str(), None),
            )
            .await?;
            let (stored_version, mod_revision) = match current.kvs().first() {
                Some(stored) => (stored_version(stored.value()), stored.mod_revision()),
                // A missing key has mod revision 0 in etcd comparisons.
                None => (0, 0),
            };
            let known_version = self.snapshot.borrow().version;
            let version = stored_version.max(known_version) + 1;
            snapshot.version = version;
            let body = serde_json::to_vec(&snapshot).map_err(|e| {
                CoordinationError::Unavailable(format!("cannot encode the routing snapshot: {e}"))
            })?;
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    self.routing_key.as_str(),
                    CompareOp::Equal,
                    mod_revision,
                )])
                .and_then([TxnOp::put(self.routing_key.as_str(), body, None)]);
            let written = timed(
                self.request_timeout,
                "write the routing snapshot",
                kv.txn(txn),
            )
            .await?;
            if written.succeeded() {
                // Publishers see their own change at once instead of after the watch
                // round trip; the watch will bring the same version and ignore it.
                let published = Arc::new(snapshot);
                self.snapshot.send_if_modified(|held| {
                    if published.version > held.version {
                        *held = published;
                        true
                    } else {
                        false
                    }
                });
                return Ok(version);
            }
            // Another publisher wrote in between: read its version and try again. The
            // growing pause spreads out publishers that keep colliding.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt % 8) * 5)).await;
        }
        Err(CoordinationError::Unavailable(format!(
            "the routing snapshot kept changing: gave up after {MAX_PUBLISH_ATTEMPTS} attempts"
        )))
    }

    fn watch(&self) -> watch::Receiver<Arc<RoutingSnapshot>> {
        self.snapshot.subscribe()
    }

    async fn check_health(&self) -> CoordinationResult<()> {
        timed(
            self.request_timeout,
            "status",
            self.client.maintenance_client().status(),
        )
        .await
        .map(drop)
    }
}

/// A registration under `{prefix}/members/...`, kept alive in the background until the
/// handle is dropped or [`MemberRegistration::deregister`] is called.
#[derive(Debug)]
pub struct MemberRegistration {
    key: String,
    state: watch::Receiver<Option<i64>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MemberRegistration {
    /// Returns the etcd key of this member.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Tells whether the member key is held under a live lease right now.
    pub fn is_registered(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// Returns the id of the lease the key is attached to, while registered.
    pub fn lease_id(&self) -> Option<i64> {
        *self.state.borrow()
    }

    /// Returns a receiver of the lease id: `None` while the registration is lost.
    pub fn watch(&self) -> watch::Receiver<Option<i64>> {
        self.state.clone()
    }

    /// Stops the keep-alive and revokes the lease, which deletes the key at once.
    pub async fn deregister(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

#[async_trait]
impl Membership for MemberRegistration {
    fn is_registered(&self) -> bool {
        MemberRegistration::is_registered(self)
    }

    async fn leave(self: Box<Self>) {
        self.deregister().await;
    }
}

impl Drop for MemberRegistration {
    fn drop(&mut self) {
        // The task revokes the lease on its way out.
        self.stop.send_replace(true);
    }
}

/// A process's stake in the leadership of one singleton job.
#[derive(Debug)]
pub struct LeaderLease {
    job: String,
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl LeaderLease {
    /// Returns the job this lease contends for.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Tells whether this process leads the job right now. It turns false as soon as
    /// the lease cannot be confirmed, before etcd could hand the job to someone else.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Returns a receiver that changes whenever leadership is won or lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Gives the leadership up (or stops contending) and waits until the leader key is
    /// released, so another contender can take over immediately.
    pub async fn resign(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Leadership for LeaderLease {
    fn is_leader(&self) -> bool {
        LeaderLease::is_leader(self)
    }
}

impl Drop for LeaderLease {
    fn drop(&mut self) {
        // The task revokes the lease (deleting the leader key) on its way out.
        self.stop.send_replace(true);
    }
}

/// Several stop signals (the coordinator's and a handle's); any one stops a task. A
/// dropped sender counts as a stop, so dropping a handle or the coordinator is enough.
#[derive(Clone)]
struct Stop {
    receivers: Vec<watch::Receiver<bool>>,
}

impl Stop {
    fn new(receivers: Vec<watch::Receiver<bool>>) -> Stop {
        Stop { receivers }
    }

    fn is_requested(&self) -> bool {
        self.receivers
            .iter()
            .any(|receiver| *receiver.borrow() || receiver.has_changed().is_err())
    }

    /// Resolves once a stop is requested; cancel-safe.
    async fn requested(&mut self) {
        let waits = self.receivers.iter_mut().map(|receiver| {
            Box::pin(async move {
                // An error means the sender is gone, which is a stop too.
                let _ = receiver.wait_for(|stop| *stop).await;
            })
        });
        futures::future::select_all(waits).await;
    }

    /// Sleeps for `duration`; returns true when a stop was requested meanwhile.
    async fn sleep(&mut self, duration: Duration) -> bool {
        tokio::select! {
            _ = self.requested() => true,
            _ = tokio::time::sleep(duration) => false,
        }
    }
}

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_RETRY_BACKOFF)
}

/// Runs one etcd call with a deadline, mapping failures to `Unavailable`. Unary calls
/// only: a per-request deadline on the client would also cut long-lived streams.
async fn timed<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> CoordinationResult<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(CoordinationError::Unavailable(format!(
            "etcd {what} failed: {error}"
        ))),
        Err(_) => Err(CoordinationError::Unavailable(format!(
            "etcd {what}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// Reads only the version of a stored snapshot; an unreadable value counts as 0 so a
/// publish can replace it.
fn stored_version(value: &[u8]) -> u64 {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u64,
    }
    match serde_json::from_slice::<VersionOnly>(value) {
        Ok(stored) => stored.version,
        Err(error) => {
            tracing::warn!(%error, "unreadable routing snapshot in etcd; it will be replaced");
            0
        }
    }
}

/// Applies a stored snapshot if it is newer than the one held.
fn apply_routing_value(sender: &watch::Sender<Arc<RoutingSnapshot>>, value: &[u8]) {
    let snapshot: RoutingSnapshot = match serde_json::from_slice(value) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            // Keep routing by the last good snapshot rather than by nothing.
            tracing::warn!(%error, "ignoring an unreadable routing snapshot from etcd");
            return;
        }
    };
    sender.send_if_modified(|held| {
        if snapshot.version > held.version {
            tracing::info!(version = snapshot.version, "routing snapshot updated");
            *held = Arc::new(snapshot);
            true
        } else {
            false
        }
    });
}

struct RoutingWatcher {
    client: Client,
    key: String,
    snapshot: Arc<watch::Sender<Arc<RoutingSnapshot>>>,
    /// The etcd revision the held snapshot is current as of.
    last_revision: i64,
    request_timeout: Duration,
    stop: Stop,
}

/// Why a watch stream ended.
enum WatchEnd {
    Stopped,
    Failed(String),
}

/// Keeps the routing channel current until stopped (see the module docs).
async fn run_routing_watcher(mut watcher: RoutingWatcher) {
    loop {
        match watch_routing_key(&mut watcher).await {
            WatchEnd::Stopped => return,
            WatchEnd::Failed(reason) => {
                tracing::warn!(%reason, key = %watcher.key, "routing watch lost; keeping the last snapshot and reconnecting");
            }
        }
        // Re-list before watching again: the listed revision is recent, so the next
        // watch cannot start at a compacted revision, and a change made while the watch
        // was down is applied even if its event is gone.
        let mut backoff = MIN_RETRY_BACKOFF;
        loop {
            if watcher.stop.sleep(backoff).await {
                return;
            }
            let listed = timed(
                watcher.request_timeout,
                "read the routing snapshot",
                watcher.client.kv_client().get(watcher.key.as_str(), None),
            )
            .await;
            match listed {
                Ok(response) => {
                    if let Some(kv) = response.kvs().first() {
                        apply_routing_value(&watcher.snapshot, kv.value());
                    }
                    if let Some(header) = response.header() {
                        watcher.last_revision = header.revision();
                    }
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, "etcd still unreachable");
                    backoff = next_backoff(backoff);
                }
            }
        }
    }
}

/// Watches the routing key from `last_revision + 1` until the stream fails or a stop.
async fn watch_routing_key(watcher: &mut RoutingWatcher) -> WatchEnd {
    if watcher.stop.is_requested() {
        return WatchEnd::Stopped;
    }
    let options = WatchOptions::new()
        .with_start_revision(watcher.last_revision + 1)
        .with_progress_notify();
    let stream = match timed(
        watcher.request_timeout,
        "watch the routing key",
        watcher
            .client
            .watch_client()
            .watch(watcher.key.as_str(), Some(options)),
    )
    .await
    {
        Ok(stream) => stream,
        Err(error) => return WatchEnd::Failed(error.to_string()),
    };
    let (mut requests, mut responses) = stream.split();
    let mut last_heard = Instant::now();
    let mut progress = tokio::time::interval(WATCH_PROGRESS_INTERVAL);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = watcher.stop.requested() => return WatchEnd::Stopped,
            _ = progress.tick() => {
                let silent_for = last_heard.elapsed();
                if silent_for >= WATCH_IDLE_TIMEOUT {
                    return WatchEnd::Failed(format!(
                        "no word from etcd for {} s",
                        silent_for.as_secs()
                    ));
                }
                if silent_for >= WATCH_PROGRESS_INTERVAL {
                    // A live server answers with a progress notification.
                    if let Err(error) = requests.request_progress().await {
                        return WatchEnd::Failed(error.to_string());
                    }
                }
            }
            message = responses.message() => match message {
                Ok(Some(response)) => {
                    last_heard = Instant::now();
                    if response.canceled() {
                        return WatchEnd::Failed(if response.compact_revision() > 0 {
                            format!(
                                "revision {} was compacted (oldest kept: {})",
                                watcher.last_revision + 1,
                                response.compact_revision()
                            )
                        } else {
                            format!("watch canceled: {}", response.cancel_reason())
                        });
                    }
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        watcher.last_revision = watcher.last_revision.max(kv.mod_revision());
                        match event.event_type() {
                            EventType::Put => apply_routing_value(&watcher.snapshot, kv.value()),
                            EventType::Delete => tracing::warn!(
                                key = %watcher.key,
                                "routing key deleted in etcd; keeping the last snapshot"
                            ),
                        }
                    }
                }
                Ok(None) => return WatchEnd::Failed("watch stream ended".to_string()),
                Err(error) => return WatchEnd::Failed(error.to_string()),
            },
        }
    }
}

/// A granted lease and the TTL etcd actually gave it (it may raise small TTLs).
#[derive(Debug, Clone, Copy)]
struct GrantedLease {
    id: i64,
    ttl: i64,
}

async fn grant_lease(
    client: &Client,
    ttl: i64,
    request_timeout: Duration,
) -> CoordinationResult<GrantedLease> {
    let granted = timed(
        request_timeout,
        "grant a lease",
        client.lease_client().grant(ttl, None),
    )
    .await?;
    Ok(GrantedLease {
        id: granted.id(),
        ttl: granted.ttl().max(1),
    })
}

/// Revokes a lease, deleting its keys; best effort (an unrevoked lease expires anyway).
async fn revoke_lease(client: &Client, lease_id: i64, request_timeout: Duration) {
    if let Err(error) = timed(
        request_timeout,
        "revoke a lease",
        client.lease_client().revoke(lease_id),
    )
    .await
    {
        tracing::debug!(%error, lease_id, "lease not revoked; it will expire");
    }
}

/// Grants a lease and writes `key` under it.
async fn grant_and_put(
    client: &Client,
    key: &str,
    value: &str,
    ttl: i64,
    request_timeout: Duration,
) -> CoordinationResult<GrantedLease> {
    let lease = grant_lease(client, ttl, request_timeout).await?;
    let put = timed(
        request_timeout,
        "write a member key",
        client
            .kv_client()
            .put(key, value, Some(PutOptions::new().with_lease(lease.id))),
    )
    .await;
    if let Err(error) = put {
        revoke_lease(client, lease.id, request_timeout).await;
        return Err(error);
    }
    Ok(lease)
}

/// Why a lease keep-alive ended.
enum LeaseEnd {
    Stopped,
    Lost(String),
}

/// Renews `lease` every TTL/3 until a stop (the lease is left to the caller) or until
/// the lease is lost: TTL 0, end of stream, an error, or no confirmation for 2/3 of the
/// TTL (so the holder gives up before etcd can expire the lease).
async fn keep_lease_alive(
    client: &Client,
    lease: GrantedLease,
    stop: &mut Stop,
    request_timeout: Duration,
) -> LeaseEnd {
    let opened = timed(
        request_timeout,
        "open a lease keep-alive",
        client.lease_client().keep_alive(lease.id),
    )
    .await;
    // `keep_alive` has already renewed once and rejected a lease with TTL 0.
    let (mut keeper, mut responses) = match opened {
        Ok(pair) => pair,
        Err(error) => return LeaseEnd::Lost(error.to_string()),
    };
    let ttl = Duration::from_secs(u64::try_from(lease.ttl).unwrap_or(1));
    let renew_every = (ttl / 3).max(Duration::from_millis(100));
    let lost_after = ttl * 2 / 3;
    let mut confirmed_at = Instant::now();
    let mut renew = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.requested() => return LeaseEnd::Stopped,
            _ = renew.tick() => {
                if confirmed_at.elapsed() >= lost_after {
                    return LeaseEnd::Lost(format!(
                        "no keep-alive answer for {} ms",
                        confirmed_at.elapsed().as_millis()
                    ));
                }
                if let Err(error) = keeper.keep_alive().await {
                    return LeaseEnd::Lost(error.to_string());
                }
            }
            message = responses.message() => match message {
                Ok(Some(response)) if response.ttl() > 0 => confirmed_at = Instant::now(),
                Ok(Some(_)) => return LeaseEnd::Lost("lease expired or revoked (TTL 0)".to_string()),
                Ok(None) => return LeaseEnd::Lost("keep-alive stream ended".to_string()),
                Err(error) => return LeaseEnd::Lost(error.to_string()),
            },
        }
    }
}

struct MemberKeeper {
    client: Client,
    key: String,
    value: String,
    ttl: i64,
    lease: GrantedLease,
    state: watch::Sender<Option<i64>>,
    request_timeout: Duration,
    stop: Stop,
}

/// Keeps a member key registered until stopped, re-registering after a lost lease.
async fn run_member_keeper(mut member: MemberKeeper) {
    loop {
        match keep_lease_alive(
            &member.client,
            member.lease,
            &mut member.stop,
            member.request_timeout,
        )
        .await
        {
            LeaseEnd::Stopped => {
                revoke_lease(&member.client, member.lease.id, member.request_timeout).await;
                member.state.send_replace(None);
                return;
            }
            LeaseEnd::Lost(reason) => {
                member.state.send_replace(None);
                tracing::warn!(%reason, key = %member.key, "membership lease lost; registering again");
            }
        }
        let mut backoff = MIN_RETRY_BACKOFF;
        loop {
            if member.stop.is_requested() {
                return;
            }
            match grant_and_put(
                &member.client,
                &member.key,
                &member.value,
                member.ttl,
                member.request_timeout,
            )
            .await
            {
                Ok(lease) => {
                    member.lease = lease;
                    member.state.send_replace(Some(lease.id));
                    tracing::info!(key = %member.key, "member registered again");
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot register the member yet");
                    if member.stop.sleep(backoff).await {
                        return;
                    }
                    backoff = next_backoff(backoff);
                }
            }
        }
    }
}

struct LeaderCampaign {
    client: Client,
    key: String,
    candidate: String,
    ttl: i64,
    leading: watch::Sender<bool>,
    request_timeout: Duration,
    stop: Stop,
}

/// Contends for the leader key until stopped (see [`EtcdCoordinator::leader_lease`]).
async fn run_leader_campaign(mut campaign: LeaderCampaign) {
    let mut backoff = MIN_RETRY_BACKOFF;
    loop {
        if campaign.stop.is_requested() {
            return;
        }
        let attempt = try_to_lead(&campaign).await;
        match attempt {
            Ok(Attempt::Won(lease)) => {
                backoff = MIN_RETRY_BACKOFF;
                campaign.leading.send_replace(true);
                tracing::info!(key = %campaign.key, candidate = %campaign.candidate, "leadership won");
                let end = keep_lease_alive(
                    &campaign.client,
                    lease,
                    &mut campaign.stop,
                    campaign.request_timeout,
                )
                .await;
                // Step down before anything else: from here on another contender may
                // be elected.
                campaign.leading.send_replace(false);
                match end {
                    LeaseEnd::Stopped => {
                        // Revoking deletes the key, so a waiting contender takes over
                        // now instead of after the TTL.
                        revoke_lease(&campaign.client, lease.id, campaign.request_timeout).await;
                        tracing::info!(key = %campaign.key, "leadership given up");
                        return;
                    }
                    LeaseEnd::Lost(reason) => {
                        tracing::warn!(%reason, key = %campaign.key, "leadership lost");
                    }
                }
            }
            Ok(Attempt::Lost { revision }) => {
                backoff = MIN_RETRY_BACKOFF;
                if wait_for_leader_change(&mut campaign, revision).await {
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(%error, key = %campaign.key, "cannot campaign yet");
                if campaign.stop.sleep(backoff).await {
                    return;
                }
                backoff = next_backoff(backoff);
            }
        }
    }
}

enum Attempt {
    Won(GrantedLease),
    /// Someone else leads; `revision` is the store revision the check was made at.
    Lost {
        revision: i64,
    },
}

/// Creates the leader key under a new lease if nobody holds it.
async fn try_to_lead(campaign: &LeaderCampaign) -> CoordinationResult<Attempt> {
    let lease = grant_lease(&campaign.client, campaign.ttl, campaign.request_timeout).await?;
    let txn = Txn::new()
        .when([Compare::create_revision(
            campaign.key.as_str(),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(
            campaign.key.as_str(),
            campaign.candidate.as_str(),
            Some(PutOptions::new().with_lease(lease.id)),
        )]);
    let result = timed(
        campaign.request_timeout,
        "campaign for a leader key",
        campaign.client.kv_client().txn(txn),
    )
    .await;
    match result {
        Ok(response) if response.succeeded() => Ok(Attempt::Won(lease)),
        Ok(response) => {
            revoke_lease(&campaign.client, lease.id, campaign.request_timeout).await;
            Ok(Attempt::Lost {
                revision: response.header().map_or(0, |h| h.revision()),
            })
        }
        Err(error) => {
            revoke_lease(&campaign.client, lease.id, campaign.request_timeout).await;
            Err(error)
        }
    }
}

/// Waits until the leader key is deleted after `revision` (or one TTL passes, in case
/// the watch missed it); returns true when a stop was requested.
async fn wait_for_leader_change(campaign: &mut LeaderCampaign, revision: i64) -> bool {
    let recheck_after = Duration::from_secs(u64::try_from(campaign.ttl).unwrap_or(1));
    let options = WatchOptions::new().with_start_revision(revision + 1);
    let watched = timed(
        campaign.request_timeout,
        "watch a leader key",
        campaign
            .client
            .watch_client()
            .watch(campaign.key.as_str(), Some(options)),
    )
    .await;
    let mut stream = match watched {
        Ok(stream) => stream,
        Err(_) => return campaign.stop.sleep(MIN_RETRY_BACKOFF).await,
    };
    let recheck = tokio::time::sleep(recheck_after);
    tokio::pin!(recheck);
    loop {
        tokio::select! {
            _ = campaign.stop.requested() => return true,
            _ = &mut recheck => return false,
            message = stream.message() => match message {
                Ok(Some(response)) => {
                    let deleted = response
                        .events()
                        .iter()
                        .any(|event| event.event_type() == EventType::Delete);
                    if deleted || response.canceled() {
                        return false;
                    }
                }
                // A broken watch: pause briefly so a dead etcd is not hammered.
                Ok(None) | Err(_) => return campaign.stop.sleep(MIN_RETRY_BACKOFF).await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};

    use etcd_client::DeleteOptions;

    use super::*;
    use crate::coordination::conformance::snapshot_with_pool;

    const TEST_TIMEOUT: Duration = Duration::from_secs(60);

    fn test_endpoints() -> Vec<String> {
        let endpoints = std::env::var("LOGPOOL_TEST_ETCD_ENDPOINTS").unwrap_or_else(|_| {
            panic!(
                "LOGPOOL_TEST_ETCD_ENDPOINTS must be set (e.g. http://127.0.0.1:2379) \
                 to run the etcd coordinator tests; they need a running etcd server"
            )
        });
        endpoints
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect()
    }

    fn random_hex() -> String {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        format!("{:016x}", hasher.finish())
    }

    fn test_config(endpoints: Vec<String>, prefix: &str) -> EtcdCoordinatorConfig {
        EtcdCoordinatorConfig {
            endpoints,
            prefix: prefix.to_string(),
            connect_timeout_ms: 2_000,
            lease_ttl_secs: 3,
        }
    }

    fn loghub_member(id: &str) -> MemberInfo {
        MemberInfo {
            service: "loghub".into(),
            id: id.into(),
            address: format!("{id}.example:8080"),
            version: "0.1.0".into(),
            started_at_ms: 1_700_000_000_000,
        }
    }

    /// Polls `condition` every 50 ms until it holds or `within` passes.
    async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        condition()
    }

    async fn eventually_async<F, Fut>(within: Duration, mut condition: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if condition().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        condition().await
    }

    /// Deletes every key under `prefix`.
    async fn delete_prefix(client: &Client, prefix: &str) {
        let _ = client
            .kv_client()
            .delete(prefix, Some(DeleteOptions::new().with_prefix()))
            .await;
    }

    /// Runs `test` with a fresh prefix on the test server and deletes the prefix after.
    async fn with_prefix<F, Fut>(test: F)
    where
        F: FnOnce(Vec<String>, String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let endpoints = test_endpoints();
        let prefix = format!("/logpool-test-{}", random_hex());
        tokio::time::timeout(TEST_TIMEOUT, test(endpoints.clone(), prefix.clone()))
            .await
            .expect("the test finishes in time");
        if let Ok(client) = Client::connect(&endpoints, None).await {
            delete_prefix(&client, &format!("{prefix}/")).await;
        }
    }

    /// A coordinator on a fresh prefix of the test server for one conformance
    /// scenario; the prefix is deleted afterwards.
    struct EtcdFixture {
        coordinator: Arc<EtcdCoordinator>,
        endpoints: Vec<String>,
        prefix: String,
    }

    impl crate::coordination::conformance::CoordinatorFixture for EtcdFixture {
        async fn open() -> Option<Self> {
            let endpoints: Vec<String> =
                crate::test_env::engine_address("LOGPOOL_TEST_ETCD_ENDPOINTS")?
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
            let prefix = format!("/logpool-test-{}", random_hex());
            let coordinator = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect to the test etcd");
            Some(EtcdFixture {
                coordinator: Arc::new(coordinator),
                endpoints,
                prefix,
            })
        }

        fn coordinator(&self) -> Arc<dyn Coordinator> {
            self.coordinator.clone()
        }

        async fn close(self) {
            self.coordinator.shutdown().await;
            if let Ok(client) = Client::connect(&self.endpoints, None).await {
                delete_prefix(&client, &format!("{}/", self.prefix)).await;
            }
        }
    }

    mod conformance {
        crate::coordination::conformance::coordinator_conformance_tests!(super::EtcdFixture);
    }

    #[tokio::test]
    async fn test_publish_is_seen_by_another_instance_within_seconds() {
        with_prefix(|endpoints, prefix| async move {
            let publisher = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect publisher");
            assert_eq!(publisher.watch().borrow().version, 0, "empty prefix");
            let first = publisher
                .publish(snapshot_with_pool("web"))
                .await
                .expect("publish");
            assert_eq!(first, 1);

            // A second instance loads the current snapshot at connect time.
            let reader = EtcdCoordinator::connect(test_config(endpoints, &prefix))
                .await
                .expect("connect reader");
            let mut receiver = reader.watch();
            assert_eq!(receiver.borrow_and_update().version, 1);
            assert_eq!(receiver.borrow().pools[0].name, "web");

            // ...and follows later changes through its watch.
            let second = publisher
                .publish(snapshot_with_pool("api"))
                .await
                .expect("publish");
            assert_eq!(second, 2, "versions increase");
            tokio::time::timeout(Duration::from_secs(5), receiver.changed())
                .await
                .expect("the change arrives within seconds")
                .expect("channel open");
            let seen = receiver.borrow().clone();
            assert_eq!(seen.version, 2);
            assert_eq!(seen.pools[0].name, "api");
            // The publisher sees its own change immediately.
            assert_eq!(publisher.watch().borrow().version, 2);

            reader.check_health().await.expect("healthy");
            reader.shutdown().await;
            publisher.shutdown().await;
            assert_eq!(
                reader.watch().borrow().version,
                2,
                "a stopped coordinator keeps the last snapshot"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn test_concurrent_publishes_from_two_instances_all_land() {
        with_prefix(|endpoints, prefix| async move {
            let a = Arc::new(
                EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                    .await
                    .expect("connect a"),
            );
            let b = Arc::new(
                EtcdCoordinator::connect(test_config(endpoints, &prefix))
                    .await
                    .expect("connect b"),
            );
            let publish_many = |coordinator: Arc<EtcdCoordinator>, name: &'static str| {
                tokio::spawn(async move {
                    let mut versions = Vec::new();
                    for _ in 0..10 {
                        versions.push(
                            coordinator
                                .publish(snapshot_with_pool(name))
                                .await
                                .expect("publish"),
                        );
                    }
                    versions
                })
            };
            let from_a = publish_many(a.clone(), "a");
            let from_b = publish_many(b.clone(), "b");
            let mut versions = from_a.await.expect("join a");
            versions.extend(from_b.await.expect("join b"));
            versions.sort_unstable();
            assert_eq!(
                versions,
                (1..=20).collect::<Vec<u64>>(),
                "every publish got its own version: no update was lost"
            );
            for coordinator in [&a, &b] {
                let receiver = coordinator.watch();
                assert!(
                    eventually(Duration::from_secs(5), || receiver.borrow().version == 20).await,
                    "both instances converge on the last version"
                );
            }
        })
        .await;
    }

    #[tokio::test]
    async fn test_member_registration_is_visible_and_removed_with_its_lease() {
        with_prefix(|endpoints, prefix| async move {
            let a = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect a");
            let observer = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect observer");
            let first = a
                .register_member(&loghub_member("loghub-1"), 2)
                .await
                .expect("register");
            let second = a
                .register_member(&loghub_member("loghub-2"), 0)
                .await
                .expect("register with the default TTL");
            assert!(first.is_registered());
            assert_eq!(first.key(), format!("{prefix}/members/loghub/loghub-1"));
            assert_eq!(
                observer.list_members("loghub").await.expect("list"),
                ["loghub-1", "loghub-2"]
            );
            // Every service's members, with what they said about themselves.
            let control = observer
                .register(MemberInfo {
                    service: "control-api".into(),
                    ..loghub_member("control-1")
                })
                .await
                .expect("register through the trait");
            assert_eq!(
                a.members().await.expect("members"),
                [
                    MemberInfo {
                        service: "control-api".into(),
                        ..loghub_member("control-1")
                    },
                    loghub_member("loghub-1"),
                    loghub_member("loghub-2"),
                ]
            );
            control.leave().await;
            assert_eq!(a.members().await.expect("members").len(), 2);

            // Kept alive past its TTL.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(first.is_registered());
            assert_eq!(
                observer.list_members("loghub").await.expect("list").len(),
                2
            );

            // A lease revoked behind its back is noticed and the member registers again.
            let old_lease = first.lease_id().expect("lease");
            let raw = Client::connect(&endpoints, None).await.expect("raw client");
            raw.lease_client().revoke(old_lease).await.expect("revoke");
            let state = first.watch();
            assert!(
                eventually(Duration::from_secs(10), || {
                    matches!(*state.borrow(), Some(lease) if lease != old_lease)
                })
                .await,
                "re-registered under a new lease"
            );
            assert!(
                eventually_async(Duration::from_secs(5), || async {
                    observer
                        .list_members("loghub")
                        .await
                        .map(|m| m.len() == 2)
                        .unwrap_or(false)
                })
                .await
            );

            // Deregistering removes the key at once; dropping the handle does too.
            first.deregister().await;
            assert_eq!(
                observer.list_members("loghub").await.expect("list"),
                ["loghub-2"]
            );
            drop(second);
            assert!(
                eventually_async(Duration::from_secs(5), || async {
                    observer
                        .list_members("loghub")
                        .await
                        .map(|m| m.is_empty())
                        .unwrap_or(false)
                })
                .await,
                "a dropped registration disappears"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn test_exactly_one_contender_leads_and_another_takes_over() {
        with_prefix(|endpoints, prefix| async move {
            let a = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect a");
            let b = EtcdCoordinator::connect(test_config(endpoints.clone(), &prefix))
                .await
                .expect("connect b");
            let lease_a = a.leader_lease("retention", "a");
            let lease_b = b.leader_lease("retention", "b");
            assert!(
                eventually(Duration::from_secs(5), || lease_a.is_leader()
                    || lease_b.is_leader())
                .await,
                "someone leads"
            );
            // Stays exclusive over several renewals.
            for _ in 0..20 {
                assert!(
                    !(lease_a.is_leader() && lease_b.is_leader()),
                    "two leaders at once"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let (leader, follower, follower_name) = if lease_a.is_leader() {
                (lease_a, lease_b, "b")
            } else {
                (lease_b, lease_a, "a")
            };
            assert!(leader.is_leader() && !follower.is_leader());

            // Resigning hands over within seconds, not after the TTL.
            leader.resign().await;
            assert!(
                eventually(Duration::from_secs(3), || follower.is_leader()).await,
                "the other contender takes over"
            );
            assert_eq!(
                a.leader_of("retention").await.expect("leader"),
                Some(follower_name.to_string())
            );

            // Dropping the leader's handle hands over as well.
            let c = EtcdCoordinator::connect(test_config(endpoints, &prefix))
                .await
                .expect("connect c");
            let lease_c = c.leader_lease("retention", "c");
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(!lease_c.is_leader(), "the job already has a leader");
            drop(follower);
            assert!(
                eventually(Duration::from_secs(5), || lease_c.is_leader()).await,
                "a dropped leader is replaced"
            );
            c.shutdown().await;
            assert!(
                eventually(Duration::from_secs(5), || !lease_c.is_leader()).await,
                "shutting the coordinator down gives the leadership up"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn test_unreachable_etcd_is_reported_unavailable_quickly() {
        let config = EtcdCoordinatorConfig {
            endpoints: vec!["http://127.0.0.1:1".to_string()],
            prefix: "/logpool".to_string(),
            connect_timeout_ms: 1_000,
            lease_ttl_secs: 3,
        };
        let result =
            tokio::time::timeout(Duration::from_secs(10), EtcdCoordinator::connect(config))
                .await
                .expect("connect gives up within its timeout");
        match result {
            Err(CoordinationError::Unavailable(message)) => {
                assert!(message.contains("127.0.0.1:1"), "{message}");
            }
            Ok(_) => panic!("connected to a closed port"),
        }
    }

    /// A private etcd process, so one test can stop and restart it.
    struct PrivateEtcd {
        child: tokio::process::Child,
        data_dir: tempfile::TempDir,
        client_port: u16,
        peer_port: u16,
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("free port")
    }

    impl PrivateEtcd {
        fn start(data_dir: tempfile::TempDir, client_port: u16, peer_port: u16) -> PrivateEtcd {
            let binary = std::env::var("LOGPOOL_TEST_ETCD_BIN").unwrap_or_else(|_| "etcd".into());
            let client_url = format!("http://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let child = tokio::process::Command::new(&binary)
                .arg("--name")
                .arg("private")
                .arg("--data-dir")
                .arg(data_dir.path())
                .arg("--listen-client-urls")
                .arg(&client_url)
                .arg("--advertise-client-urls")
                .arg(&client_url)
                .arg("--listen-peer-urls")
                .arg(&peer_url)
                .arg("--initial-advertise-peer-urls")
                .arg(&peer_url)
                .arg("--initial-cluster")
                .arg(format!("private={peer_url}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start `{binary}` ({e}): the etcd restart test needs the etcd \
                         binary (Debian etcd-server) on PATH or in LOGPOOL_TEST_ETCD_BIN"
                    )
                });
            PrivateEtcd {
                child,
                data_dir,
                client_port,
                peer_port,
            }
        }

        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.client_port)
        }

        async fn stop(mut self) -> (tempfile::TempDir, u16, u16) {
            let _ = self.child.kill().await;
            (self.data_dir, self.client_port, self.peer_port)
        }
    }

    async fn wait_until_up(endpoint: &str) {
        let up = eventually_async(Duration::from_secs(20), || async {
            match Client::connect([endpoint], None).await {
                Ok(client) => tokio::time::timeout(
                    Duration::from_secs(1),
                    client.maintenance_client().status(),
                )
                .await
                .is_ok_and(|status| status.is_ok()),
                Err(_) => false,
            }
        })
        .await;
        assert!(up, "private etcd at {endpoint} did not start");
    }

    #[tokio::test]
    async fn test_watch_keeps_the_last_snapshot_while_etcd_is_down_and_resumes() {
        tokio::time::timeout(Duration::from_secs(90), async {
            let etcd = PrivateEtcd::start(
                tempfile::tempdir().expect("tempdir"),
                free_port(),
                free_port(),
            );
            let endpoint = etcd.endpoint();
            wait_until_up(&endpoint).await;
            let config = test_config(vec![endpoint.clone()], "/logpool");
            let publisher = EtcdCoordinator::connect(config.clone())
                .await
                .expect("connect publisher");
            let reader = EtcdCoordinator::connect(config)
                .await
                .expect("connect reader");
            let receiver = reader.watch();
            publisher
                .publish(snapshot_with_pool("web"))
                .await
                .expect("publish");
            assert!(eventually(Duration::from_secs(5), || receiver.borrow().version == 1).await);

            let (data_dir, client_port, peer_port) = etcd.stop().await;
            assert!(matches!(
                reader.check_health().await,
                Err(CoordinationError::Unavailable(_))
            ));
            assert!(
                publisher.publish(snapshot_with_pool("api")).await.is_err(),
                "a publish without etcd fails (and says so)"
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(receiver.borrow().version, 1, "the last snapshot is kept");
            assert_eq!(receiver.borrow().pools[0].name, "web");

            let etcd = PrivateEtcd::start(data_dir, client_port, peer_port);
            wait_until_up(&endpoint).await;
            let published = eventually_async(Duration::from_secs(20), || async {
                publisher.publish(snapshot_with_pool("api")).await.is_ok()
            })
            .await;
            assert!(published, "publishing works again once etcd is back");
            assert!(
                eventually(Duration::from_secs(20), || receiver.borrow().version >= 2).await,
                "the reader's watch resumed after the restart"
            );
            assert_eq!(receiver.borrow().pools[0].name, "api");
            reader.check_health().await.expect("healthy again");
            reader.shutdown().await;
            publisher.shutdown().await;
            etcd.stop().await;
        })
        .await
        .expect("the test finishes in time");
    }
}
