//! The node assembly: one process running one or more services on one listener.
//!
//! Every service crate describes itself as a [`Service`]: its name, the engines it
//! needs ([`EngineNeeds`]) and a start function that, given a [`ServiceContext`],
//! returns a [`ServiceHandle`] with its routes, metrics, readiness, background tasks
//! and jobs. [`Node::start`] builds only the engines its services need, starts them
//! in the given order (control-api first, so the routing snapshot is published
//! before the others serve), registers each as a cluster member and serves all
//! routes plus `/healthz`, `/readyz` and `/metrics`. `logpool standalone` is a node
//! of every service; each service binary is a node of one ([`run_service_binary`]).
//!
//! # Shutdown order
//! [`Node::shutdown`] stops in the order that loses nothing:
//! 1. HTTP stops accepting; in-flight requests (PutDatas) finish and are answered,
//!    open tails are closed (their services watch [`ServiceContext::closing`]).
//! 2. Background work stops ([`ServiceContext::stopping`]): loghub commits and acks
//!    what it has written, the archive worker leaves unuploaded records unacked,
//!    jobs end.
//! 3. The index commits and the queue flushes (for the services that write them).
//! 4. The member entries leave.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use logpool_engines::config::Config;
use logpool_engines::coordination::Membership;
use logpool_engines::{EngineNeeds, EngineSet};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::health::Readiness;
use crate::jobs::Jobs;
use crate::metrics::{HttpMetrics, MetricSource};
use crate::stop::{Stop, StopSender};
use crate::RoutingView;

/// Longest wait for in-flight HTTP requests at shutdown: a client that never
/// finishes its request cannot hold the index commit forever.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

type StartFuture = Pin<Box<dyn Future<Output = anyhow::Result<ServiceHandle>> + Send>>;
type StartFn = Box<dyn FnOnce(ServiceContext) -> StartFuture + Send>;

/// A service as a node runs it.
pub struct Service {
    name: &'static str,
    needs: EngineNeeds,
    start: StartFn,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Service `name` (its member and metrics name), which uses the engines `needs`
    /// names and starts with `start`.
    pub fn new<F, Fut>(name: &'static str, needs: EngineNeeds, start: F) -> Service
    where
        F: FnOnce(ServiceContext) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<ServiceHandle>> + Send + 'static,
    {
        Service {
            name,
            needs,
            start: Box::new(move |context| Box::pin(start(context))),
        }
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The engines it uses.
    pub fn needs(&self) -> EngineNeeds {
        self.needs
    }
}

/// What a service is started with.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// The process configuration.
    pub config: Arc<Config>,
    /// The engines the process built (at least those the service needs).
    pub engines: EngineSet,
    /// Asked when HTTP stops: long-lived connections (tails) close then.
    pub closing: Stop,
    /// Asked once HTTP has drained: background tasks and jobs stop then.
    pub stopping: Stop,
    /// This process's name in leadership campaigns, unique among processes.
    pub candidate: String,
}

impl ServiceContext {
    /// A live view of the routing snapshot.
    pub fn routing(&self) -> RoutingView {
        RoutingView::new(self.engines.coordinator.watch())
    }

    /// An empty set of jobs that campaign as this process and stop with the
    /// background work.
    pub fn jobs(&self) -> Jobs {
        Jobs::new(
            self.engines.coordinator.clone(),
            self.candidate.clone(),
            self.stopping.clone(),
        )
    }
}

/// A started service: what the node serves and stops for it.
#[derive(Debug)]
pub struct ServiceHandle {
    routes: Option<Router>,
    metrics: Vec<Arc<dyn MetricSource>>,
    readiness: Readiness,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    jobs: Option<Jobs>,
    commits_index: bool,
    flushes_queue: bool,
}

impl ServiceHandle {
    /// A service that is ready when `readiness` says so.
    pub fn new(readiness: Readiness) -> ServiceHandle {
        ServiceHandle {
            routes: None,
            metrics: Vec::new(),
            readiness,
            tasks: Vec::new(),
            jobs: None,
            commits_index: false,
            flushes_queue: false,
        }
    }

    /// Its HTTP routes (their requests are counted under the service's name).
    pub fn with_routes(mut self, routes: Router) -> ServiceHandle {
        self.routes = Some(routes);
        self
    }

    /// A source of its `/metrics`.
    pub fn with_metrics(mut self, source: Arc<dyn MetricSource>) -> ServiceHandle {
        self.metrics.push(source);
        self
    }

    /// A background task that ends at [`ServiceContext::stopping`].
    pub fn with_task(
        mut self,
        name: &'static str,
        task: JoinHandle<anyhow::Result<()>>,
    ) -> ServiceHandle {
        self.tasks.push((name, task));
        self
    }

    /// Its jobs.
    pub fn with_jobs(mut self, jobs: Jobs) -> ServiceHandle {
        self.jobs = Some(jobs);
        self
    }

    /// It writes the index: the index commits after its tasks stopped.
    pub fn commits_index_at_stop(mut self) -> ServiceHandle {
        self.commits_index = true;
        self
    }

    /// It produces to the queue: the queue flushes after its tasks stopped.
    pub fn flushes_queue_at_stop(mut self) -> ServiceHandle {
        self.flushes_queue = true;
        self
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    /// The engines it built.
    pub engines: EngineSet,
    close_http: StopSender,
    stop_background: StopSender,
    http: JoinHandle<anyhow::Result<()>>,
    services: Vec<(&'static str, ServiceHandle)>,
    members: Vec<Box<dyn Membership>>,
}

impl Node {
    /// Builds the engines `services` need and starts them, in order, on `listener`.
    ///
    /// # Errors
    /// Fails when the TLS certificate or key cannot be used, an engine cannot open, a
    /// service cannot start or a member cannot register.
    pub async fn start(
        config: Config,
        services: Vec<Service>,
        listener: TcpListener,
    ) -> anyhow::Result<Node> {
        // Before the engines open: a bad certificate or key fails the start at once.
        let tls = crate::tls::acceptor(&config.tls)?;
        let needs = services
            .iter()
            .fold(EngineNeeds::default(), |all, s| all.union(s.needs));
        let engines = EngineSet::build(&config, needs).await?;
        let addr = listener.local_addr().context("listener has no address")?;
        let (close_http, closing) = StopSender::new();
        let (stop_background, stopping) = StopSender::new();
        let context = ServiceContext {
            config: Arc::new(config),
            engines: engines.clone(),
            closing,
            stopping,
            candidate: candidate_name(addr),
        };
        let mut started = Vec::with_capacity(services.len());
        for service in services {
            match (service.start)(context.clone()).await {
                Ok(handle) => started.push((service.name, handle)),
                Err(error) => {
                    // What the services started before it stops with it.
                    stop_background.stop();
                    return Err(error.context(format!("failed to start {}", service.name)));
                }
            }
        }
        let config = &context.config;
        let mut members = Vec::with_capacity(started.len());
        for (name, _) in &started {
            let advertised = config.advertise_address.as_deref();
            match crate::members::register(engines.coordinator.as_ref(), name, advertised, addr)
                .await
            {
                Ok(member) => members.push(member),
                Err(error) => {
                    stop_background.stop();
                    return Err(error);
                }
            }
        }
        let app = app(&mut started);
        let http = tokio::spawn({
            let http = config.http.clone();
            let drained = close_http.subscribe().into_stopped();
            async move { crate::server::serve(listener, app, tls, &http, drained).await }
        });
        Ok(Node {
            addr,
            engines,
            close_http,
            stop_background,
            http,
            services: started,
            members,
        })
    }

    /// Stops everything in the order that loses nothing (see the module docs).
    ///
    /// # Errors
    /// Reports the first component that failed to stop cleanly.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.close_http.stop();
        let http_result = match tokio::time::timeout(HTTP_DRAIN_TIMEOUT, self.http).await {
            Ok(joined) => joined.context("HTTP task panicked")?,
            Err(_) => Err(anyhow::anyhow!(
                "HTTP connections did not drain within {HTTP_DRAIN_TIMEOUT:?}"
            )),
        };
        self.stop_background.stop();
        // A job or task that failed is reported, but the index still commits and the
        // queue still flushes: what the others wrote is not lost to it.
        let mut task_result = Ok(());
        let (mut commit_index, mut flush_queue) = (false, false);
        for (service, handle) in self.services {
            commit_index |= handle.commits_index;
            flush_queue |= handle.flushes_queue;
            if let Some(jobs) = handle.jobs {
                let joined = jobs.join().await.context(service);
                if task_result.is_ok() {
                    task_result = joined;
                }
            }
            for (name, task) in handle.tasks {
                let ended = match task.await {
                    Ok(ended) => ended.with_context(|| format!("the {service} {name} task")),
                    Err(_) => Err(anyhow::anyhow!("the {service} {name} task panicked")),
                };
                if task_result.is_ok() {
                    task_result = ended;
                }
            }
        }
        if let (true, Some(index)) = (commit_index, &self.engines.index) {
            index
                .shutdown()
                .await
                .context("failed to commit the index")?;
        }
        if let (true, Some(queue)) = (flush_queue, &self.engines.queue) {
            queue
                .shutdown()
                .await
                .context("failed to flush the queue")?;
        }
        for member in self.members {
            member.leave().await;
        }
        http_result?;
        task_result
    }
}

/// One app of every service's routes (each counted under its service's name), with
/// `/healthz`, `/readyz` over what they all need and `/metrics` of them all.
fn app(services: &mut [(&'static str, ServiceHandle)]) -> Router {
    let mut app = Router::new();
    let mut readiness = Readiness::default();
    let mut sources: Vec<Arc<dyn MetricSource>> = Vec::new();
    let mut http_sources: Vec<Arc<dyn MetricSource>> = Vec::new();
    for (name, handle) in services.iter_mut() {
        readiness = readiness.union(handle.readiness.clone());
        sources.append(&mut handle.metrics);
        if let Some(routes) = handle.routes.take() {
            let http = HttpMetrics::new(name);
            app = app.merge(http.instrument(routes));
            http_sources.push(http);
        }
    }
    sources.append(&mut http_sources);
    app.merge(crate::health::router(readiness))
        .merge(crate::metrics::router(sources))
}

/// `{address}-{pid}`: two processes never share a listening address at one time.
fn candidate_name(addr: SocketAddr) -> String {
    format!("{addr}-{}", std::process::id())
}

/// Binds the configured `listen` address.
///
/// # Errors
/// Names the address that could not be bound.
pub async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))
}

/// Runs `services` on `listener` until `shutdown` resolves, then stops them.
///
/// # Errors
/// Fails when the node cannot start or does not stop cleanly.
pub async fn run(
    config: Config,
    services: Vec<Service>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let node = Node::start(config, services, listener).await?;
    tracing::info!(addr = %node.addr, "ready");
    shutdown.await;
    tracing::info!("shutting down: draining requests, then background work");
    node.shutdown().await
}

/// The whole `main` of a service binary: `logpool-{name} --config FILE`, serving on
/// `listen` until SIGINT or SIGTERM.
///
/// # Errors
/// Fails on a bad configuration, a failed start or an unclean stop.
pub async fn run_service_binary(service: Service) -> anyhow::Result<()> {
    crate::service_main::init_logging();
    let config = crate::service_main::load_service_config(service.name)?;
    let listener = bind(&config).await?;
    run(
        config,
        vec![service],
        listener,
        crate::service_main::shutdown_signal(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What happened, in order, as the test service saw it.
    type Events = Arc<Mutex<Vec<&'static str>>>;

    fn record(events: &Events, event: &'static str) {
        events.lock().expect("events").push(event);
    }

    /// A service with one slow route and one background task, both recording events.
    fn recording_service(events: Events) -> Service {
        Service::new(
            "recorder",
            EngineNeeds::default(),
            move |context| async move {
                let slow = {
                    let events = events.clone();
                    move || async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        record(&events, "request answered");
                        "done"
                    }
                };
                let task = tokio::spawn({
                    let events = events.clone();
                    let mut stopping = context.stopping.clone();
                    async move {
                        stopping.stopped().await;
                        record(&events, "background stopped");
                        Ok(())
                    }
                });
                Ok(
                    ServiceHandle::new(Readiness::coordination(&context.engines))
                        .with_routes(Router::new().route("/slow", get(slow)))
                        .with_task("recorder", task),
                )
            },
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_shutdown_answers_in_flight_requests_before_background_work_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let events: Events = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let node = Node::start(config, vec![recording_service(events.clone())], listener)
            .await
            .expect("start");
        assert!(node.engines.index.is_none(), "only the engines it needs");
        let members = node.engines.coordinator.members().await.expect("members");
        assert_eq!(members.len(), 1, "{members:?}");
        assert_eq!(members[0].service, "recorder");

        let mut connection = tokio::net::TcpStream::connect(node.addr)
            .await
            .expect("connect");
        connection
            .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("request");
        // The request is in flight when the shutdown starts.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let coordinator = node.engines.coordinator.clone();
        let stopping = tokio::spawn(node.shutdown());
        let mut answer = String::new();
        connection
            .read_to_string(&mut answer)
            .await
            .expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), stopping)
            .await
            .expect("shutdown in time")
            .expect("shutdown task")
            .expect("clean shutdown");
        assert_eq!(
            *events.lock().expect("events"),
            ["request answered", "background stopped"]
        );
        assert!(
            coordinator.members().await.expect("members").is_empty(),
            "the member left"
        );
    }
}
