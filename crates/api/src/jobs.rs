//! Background jobs of a service, each registered in one line.
//!
//! Three shapes cover every job:
//! - [`Jobs::every`]: a round of work every interval in every process of a service
//!   (routing republish: each control-api retries its own unpublished change).
//! - [`Jobs::leader_every`]: a round of work every interval in the one process that
//!   leads the job across the cluster (retention, index pre-creation, storage-quota
//!   watch). Leadership is advisory, so a round must be safe to run twice.
//! - [`Jobs::while_leader`]: a long-running worker that works for as long as its
//!   process leads, and starts over after each new win (the archive worker).
//!
//! The runner owns the campaign, the schedule and the stop: a job only says what
//! one round (or one leadership term) does. A failed round is simply tried again at
//! the next one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use logpool_engines::coordination::{Coordinator, Leadership};
use tokio::task::JoinHandle;

use crate::stop::Stop;

/// How often a process that does not lead a worker's job checks again.
const FOLLOWER_POLL: Duration = Duration::from_millis(500);

/// One round of a periodic job.
pub trait Job: Send + 'static {
    /// Does one round of work; failures are logged and retried at the next round.
    fn run_once(&mut self) -> impl Future<Output = ()> + Send;
}

/// A worker that runs while its process leads its job.
pub trait LeaderWorker: Send + 'static {
    /// Works until [`Term::leads`] turns false (the leadership was lost or the
    /// process is stopping), then returns; the runner calls it again after the next
    /// win. Returning early (after a failure) is fine: it is called again at once
    /// while the process still leads, so it should pause before it returns.
    fn lead(&mut self, term: &mut Term) -> impl Future<Output = ()> + Send;
}

/// One leadership term of a [`LeaderWorker`].
#[derive(Debug)]
pub struct Term {
    leadership: Arc<dyn Leadership>,
    stop: Stop,
}

impl Term {
    /// Whether the worker should go on: this process still leads and is not stopping.
    pub fn leads(&self) -> bool {
        self.leadership.is_leader() && !self.stop.is_stopped()
    }

    /// Resolves when the process is stopping.
    pub async fn stopped(&mut self) {
        self.stop.stopped().await;
    }

    /// Sleeps for `pause`, or less when the process stops first (then true).
    pub async fn sleep(&mut self, pause: Duration) -> bool {
        self.stop.sleep(pause).await
    }
}

/// The background jobs of one service, stopped together.
#[derive(Debug)]
pub struct Jobs {
    coordinator: Arc<dyn Coordinator>,
    candidate: String,
    stop: Stop,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Jobs {
    /// Jobs that campaign as `candidate` (unique among the processes) and stop at `stop`.
    pub fn new(coordinator: Arc<dyn Coordinator>, candidate: String, stop: Stop) -> Jobs {
        Jobs {
            coordinator,
            candidate,
            stop,
            tasks: Vec::new(),
        }
    }

    /// Runs `job` every `interval` in every process, the first round one interval
    /// after the start.
    pub fn every(&mut self, name: &'static str, interval: Duration, mut job: impl Job) {
        let mut stop = self.stop.clone();
        self.spawn(name, async move {
            while !stop.sleep(interval).await {
                job.run_once().await;
            }
        });
    }

    /// Runs `job` every `interval` in the one process that leads `name`, the first
    /// round at once.
    pub fn leader_every(&mut self, name: &'static str, interval: Duration, mut job: impl Job) {
        let leadership = self.coordinator.campaign(name, &self.candidate);
        let mut stop = self.stop.clone();
        self.spawn(name, async move {
            let mut led = false;
            loop {
                let leads = leadership.is_leader();
                // Operators (and failover tests) read from the log which process
                // leads a job.
                if leads != led {
                    tracing::info!(job = name, leads, "job leadership changed");
                    led = leads;
                }
                if leads {
                    job.run_once().await;
                }
                if stop.sleep(interval).await {
                    return;
                }
            }
        });
    }

    /// Runs `worker` for as long as this process leads `name`, again after each win.
    pub fn while_leader(&mut self, name: &'static str, mut worker: impl LeaderWorker) {
        let leadership: Arc<dyn Leadership> =
            Arc::from(self.coordinator.campaign(name, &self.candidate));
        let mut stop = self.stop.clone();
        let mut term = Term {
            leadership: leadership.clone(),
            stop: self.stop.clone(),
        };
        self.spawn(name, async move {
            while !stop.is_stopped() {
                if leadership.is_leader() {
                    worker.lead(&mut term).await;
                } else if stop.sleep(FOLLOWER_POLL).await {
                    return;
                }
            }
        });
    }

    /// How many jobs run.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no job runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for every job to end (they end at the stop).
    ///
    /// # Errors
    /// Names the first job that panicked.
    pub async fn join(self) -> anyhow::Result<()> {
        let mut first_panic = None;
        for (name, task) in self.tasks {
            if task.await.is_err() && first_panic.is_none() {
                first_panic = Some(name);
            }
        }
        match first_panic {
            Some(name) => Err(anyhow::anyhow!("the {name} job panicked")),
            None => Ok(()),
        }
    }

    fn spawn(&mut self, name: &'static str, job: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push((name, tokio::spawn(job)));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    use logpool_core::routing::RoutingSnapshot;
    use logpool_engines::coordination::{
        CoordinationResult, LocalCoordinator, MemberInfo, Membership,
    };
    use tokio::sync::watch;

    use super::*;
    use crate::stop::StopSender;

    /// The first candidate of each job leads, while `on` is set.
    #[derive(Debug, Default)]
    struct FirstWins {
        inner: LocalCoordinator,
        first: Mutex<HashMap<String, String>>,
        on: Arc<AtomicBool>,
    }

    #[derive(Debug)]
    struct Switch {
        leads: bool,
        on: Arc<AtomicBool>,
    }

    impl Leadership for Switch {
        fn is_leader(&self) -> bool {
            self.leads && self.on.load(Ordering::Relaxed)
        }
    }

    #[async_trait::async_trait]
    impl Coordinator for FirstWins {
        async fn register(&self, member: MemberInfo) -> CoordinationResult<Box<dyn Membership>> {
            self.inner.register(member).await
        }
        async fn members(&self) -> CoordinationResult<Vec<MemberInfo>> {
            self.inner.members().await
        }
        fn campaign(&self, job: &str, candidate: &str) -> Box<dyn Leadership> {
            let mut first = self.first.lock().expect("lock");
            let winner = first
                .entry(job.to_string())
                .or_insert(candidate.to_string());
            Box::new(Switch {
                leads: winner == candidate,
                on: self.on.clone(),
            })
        }
        async fn publish(&self, snapshot: RoutingSnapshot) -> CoordinationResult<u64> {
            self.inner.publish(snapshot).await
        }
        fn watch(&self) -> watch::Receiver<Arc<RoutingSnapshot>> {
            self.inner.watch()
        }
        async fn check_health(&self) -> CoordinationResult<()> {
            Ok(())
        }
    }

    /// Counts rounds (as a job) or terms (as a worker).
    #[derive(Debug, Clone, Default)]
    struct Rounds(Arc<AtomicU64>);

    impl Rounds {
        fn count(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    impl Job for Rounds {
        async fn run_once(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl LeaderWorker for Rounds {
        async fn lead(&mut self, term: &mut Term) {
            self.0.fetch_add(1, Ordering::Relaxed);
            while term.leads() {
                if term.sleep(Duration::from_millis(5)).await {
                    return;
                }
            }
        }
    }

    #[tokio::test]
    async fn test_leader_jobs_run_in_the_leading_process_only_and_all_stop() {
        let coordinator = Arc::new(FirstWins::default());
        coordinator.on.store(true, Ordering::Relaxed);
        let (sender, stop) = StopSender::new();
        let mut first = Jobs::new(coordinator.clone(), "a".into(), stop.clone());
        let mut second = Jobs::new(coordinator.clone(), "b".into(), stop);
        let [led_a, led_b, each_a, each_b, worker_a, worker_b] =
            std::array::from_fn(|_| Rounds::default());
        let tick = Duration::from_millis(10);
        first.leader_every("job", tick, led_a.clone());
        second.leader_every("job", tick, led_b.clone());
        first.every("each", tick, each_a.clone());
        second.every("each", tick, each_b.clone());
        first.while_leader("worker", worker_a.clone());
        second.while_leader("worker", worker_b.clone());
        assert_eq!(first.len(), 3);

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(led_a.count() > 0, "the leader runs the job");
        assert_eq!(led_b.count(), 0, "a follower never does");
        assert!(each_a.count() > 0 && each_b.count() > 0, "every process");
        assert_eq!((worker_a.count(), worker_b.count()), (1, 0), "one term");

        // Losing the leadership ends the term; winning again starts a new one.
        coordinator.on.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let led = led_a.count();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(led_a.count(), led, "no rounds without the leadership");
        coordinator.on.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(worker_a.count(), 2, "a second term after the new win");
        assert!(led_a.count() > led);

        sender.stop();
        tokio::time::timeout(Duration::from_secs(5), async {
            first.join().await.expect("first");
            second.join().await.expect("second");
        })
        .await
        .expect("every job ends at the stop");
    }
}
