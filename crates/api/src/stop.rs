//! A stop request that any number of tasks wait for.
//!
//! A process stops in phases (see [`crate::node`]): first HTTP, then background
//! work, then the engines. Each phase is one [`StopSender`]; the tasks of that phase
//! hold a [`Stop`].

use std::time::Duration;

use tokio::sync::watch;

/// Sends the stop request of one phase.
#[derive(Debug)]
pub struct StopSender(watch::Sender<bool>);

/// Waits for the stop request of one phase.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl StopSender {
    /// A new phase, not yet stopped, and the first receiver of it.
    pub fn new() -> (StopSender, Stop) {
        let (sender, receiver) = watch::channel(false);
        (StopSender(sender), Stop(receiver))
    }

    /// Asks every receiver to stop.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }

    /// Another receiver.
    pub fn subscribe(&self) -> Stop {
        Stop(self.0.subscribe())
    }
}

impl Stop {
    /// Whether the stop was asked for.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is asked for (or its sender is gone).
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps for `pause`, or less when the stop comes first. Returns true when it
    /// was the stop.
    pub async fn sleep(&mut self, pause: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.stopped() => true,
            () = tokio::time::sleep(pause) => false,
        }
    }

    /// The stop as an owned future, for APIs that take a shutdown future.
    pub async fn into_stopped(mut self) {
        self.stopped().await;
    }

    /// The underlying channel, for state that keeps a receiver.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_stop_reaches_every_receiver_and_cuts_a_sleep_short() {
        let (sender, mut first) = StopSender::new();
        let mut second = sender.subscribe();
        assert!(!first.is_stopped());
        assert!(!first.sleep(Duration::from_millis(1)).await, "no stop yet");
        let sleeping = tokio::spawn(async move { second.sleep(Duration::from_secs(60)).await });
        sender.stop();
        let cut_short = tokio::time::timeout(Duration::from_secs(5), sleeping)
            .await
            .expect("the sleep ends at the stop")
            .expect("task");
        assert!(cut_short);
        first.stopped().await;
        assert!(first.is_stopped());
    }
}
