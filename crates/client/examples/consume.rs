//! A consumer-group member that prints every record of the shards it owns.
//!
//! Run with:
//!
//! ```sh
//! cargo run -p logpool-client --example consume -- http://127.0.0.1:8080 shop nginx printers worker-1
//! ```
//!
//! Start it twice with different member names (`worker-1`, `worker-2`): the pool's
//! shards are split between them. Stop one (Ctrl-C or `kill -9`) and, after the
//! group's timeout, the other takes its shards over from the last checkpoints. The
//! group is created on first use (30 s timeout). Each printed line is one record as
//! JSON; the member checkpoints after printing each batch, so a successor repeats at
//! most the batch that was being printed when a member died.

use std::time::Duration;

use logpool_client::pull::GroupMember;
use logpool_client::{ClientError, LogpoolClient};

/// Heartbeat and poll interval; well within the group's 30 s timeout.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Polls between two heartbeats at most while records keep coming.
const POLLS_PER_HEARTBEAT: usize = 10;
/// Heartbeat timeout of a group this example creates.
const GROUP_TIMEOUT_S: u32 = 30;

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, project, pool, group, consumer] = args.as_slice() else {
        eprintln!("usage: consume URL PROJECT POOL GROUP CONSUMER");
        std::process::exit(2);
    };
    let client = LogpoolClient::new(url)?;
    match client
        .create_consumer_group(project, pool, group, GROUP_TIMEOUT_S, false)
        .await
    {
        Ok(_) => eprintln!("created consumer group `{group}`"),
        Err(error) if error.status() == Some(409) => {}
        Err(error) => return Err(error),
    }
    let mut member = GroupMember::new(client, project, pool, group, consumer);
    let mut owned = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let shards = member.heartbeat().await?;
        if shards != owned {
            eprintln!("{consumer} owns shards {shards:?}");
            owned = shards;
        }
        // Read on while there is more, but heartbeat again in time.
        for _ in 0..POLLS_PER_HEARTBEAT {
            let batches = member.poll(500).await?;
            if batches.is_empty() {
                break;
            }
            for batch in &batches {
                for record in &batch.records {
                    println!(
                        "{} {}",
                        record.time,
                        serde_json::Value::from(record.fields.clone())
                    );
                }
                member.commit(batch).await?;
            }
        }
    }
}
