//! Reading a pool as a queue: shard cursors, a [`PullReader`] per shard, and a
//! [`GroupMember`] that shares a pool's shards with the other members of a consumer
//! group.
//!
//! ```no_run
//! # async fn run() -> Result<(), logpool_client::ClientError> {
//! use logpool_client::{pull::GroupMember, LogpoolClient};
//! let client = LogpoolClient::new("http://127.0.0.1:8080")?;
//! let mut member = GroupMember::new(client, "shop", "nginx", "billing", "worker-1");
//! loop {
//!     member.heartbeat().await?;
//!     for batch in member.poll(100).await? {
//!         for record in &batch.records {
//!             println!("{} {:?}", record.time, record.fields);
//!         }
//!         // After the records are processed: a successor resumes from here.
//!         member.commit(&batch).await?;
//!     }
//!     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//! }
//! # }
//! ```

use std::collections::BTreeMap;

use logpool_wire::queue::{
    CheckpointList, ConsumerGroup, ConsumerGroupList, CreateConsumerGroup, CursorAnswer, Heartbeat,
    HeartbeatAnswer, QueueRecords, QueueShard, SaveCheckpoint, ShardList,
};
use logpool_wire::search::Hit;
use serde::de::IgnoredAny;

use crate::{ClientError, ClientResult, LogpoolClient};

/// Where a new cursor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained record.
    Begin,
    /// After the newest record.
    End,
    /// The first record put at or after this time (RFC 3339 or epoch milliseconds).
    Time(String),
}

impl StartAt {
    fn as_param(&self) -> &str {
        match self {
            StartAt::Begin => "begin",
            StartAt::End => "end",
            StartAt::Time(time) => time,
        }
    }
}

/// The records of one read, with the cursors to go on from.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardBatch {
    /// Shard index.
    pub shard: u32,
    /// Records, in shard order.
    pub records: Vec<Hit>,
    /// Where the next read starts.
    pub next_cursor: String,
    /// The end of the shard when the read was made.
    pub end_cursor: String,
}

impl ShardBatch {
    /// Whether the read reached the end of the shard.
    pub fn at_end(&self) -> bool {
        self.next_cursor == self.end_cursor
    }
}

/// Returns the earliest valid cursor sent with a 410 (the cursor's data is gone).
pub fn earliest_cursor_of(error: &ClientError) -> Option<String> {
    match error {
        ClientError::Http { status: 410, .. } => error
            .error()?
            .detail_str("earliest_cursor")
            .map(str::to_string),
        _ => None,
    }
}

impl LogpoolClient {
    fn pool_path(project: &str, pool: &str) -> String {
        format!("/v1/projects/{project}/pools/{pool}")
    }

    /// Lists a pool's shards with their begin and end positions and cursors.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn shards(&self, project: &str, pool: &str) -> ClientResult<Vec<QueueShard>> {
        let answer: ShardList = self
            .get_as(&format!("{}/shards", Self::pool_path(project, pool)))
            .await?;
        Ok(answer.shards)
    }

    /// Returns a cursor of one shard.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn cursor(
        &self,
        project: &str,
        pool: &str,
        shard: u32,
        from: &StartAt,
    ) -> ClientResult<String> {
        let response = self
            .request(
                reqwest::Method::GET,
                self.url(&format!(
                    "{}/shards/{shard}/cursor",
                    Self::pool_path(project, pool)
                )),
            )
            .query(&[("from", from.as_param())])
            .send()
            .await?;
        let answer: CursorAnswer = Self::answer(response).await?;
        Ok(answer.cursor)
    }

    /// Reads up to `count` records of one shard from `cursor`.
    ///
    /// # Errors
    /// Any non-2xx answer; a 410 carries the earliest valid cursor
    /// ([`earliest_cursor_of`]).
    pub async fn read_records(
        &self,
        project: &str,
        pool: &str,
        shard: u32,
        cursor: &str,
        count: u32,
    ) -> ClientResult<ShardBatch> {
        let response = self
            .request(
                reqwest::Method::GET,
                self.url(&format!(
                    "{}/shards/{shard}/records",
                    Self::pool_path(project, pool)
                )),
            )
            .query(&[("cursor", cursor), ("count", &count.to_string())])
            .send()
            .await?;
        let answer: QueueRecords = Self::answer(response).await?;
        Ok(ShardBatch {
            shard,
            records: answer.records,
            next_cursor: answer.next_cursor,
            end_cursor: answer.end_cursor,
        })
    }

    /// Creates a consumer group.
    ///
    /// # Errors
    /// Any non-2xx answer (409 when it exists).
    pub async fn create_consumer_group(
        &self,
        project: &str,
        pool: &str,
        name: &str,
        timeout_s: u32,
        in_order: bool,
    ) -> ClientResult<ConsumerGroup> {
        let response = self
            .request(
                reqwest::Method::POST,
                self.url(&format!(
                    "{}/consumer-groups",
                    Self::pool_path(project, pool)
                )),
            )
            .json(&CreateConsumerGroup {
                name: Some(name.to_string()),
                timeout_s: Some(timeout_s),
                in_order: Some(in_order),
            })
            .send()
            .await?;
        Self::answer(response).await
    }

    /// The consumer groups of a pool.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn consumer_groups(
        &self,
        project: &str,
        pool: &str,
    ) -> ClientResult<Vec<ConsumerGroup>> {
        let list: ConsumerGroupList = self
            .get_as(&format!(
                "{}/consumer-groups",
                Self::pool_path(project, pool)
            ))
            .await?;
        Ok(list.consumer_groups)
    }

    /// Deletes a consumer group.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn delete_consumer_group(
        &self,
        project: &str,
        pool: &str,
        group: &str,
    ) -> ClientResult<()> {
        let response = self
            .request(
                reqwest::Method::DELETE,
                self.url(&format!(
                    "{}/consumer-groups/{group}",
                    Self::pool_path(project, pool)
                )),
            )
            .send()
            .await?;
        Self::answer::<IgnoredAny>(response).await.map(drop)
    }

    /// Sends a heartbeat and returns the shards `consumer` owns now.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn heartbeat(
        &self,
        project: &str,
        pool: &str,
        group: &str,
        consumer: &str,
    ) -> ClientResult<Vec<u32>> {
        let response = self
            .request(
                reqwest::Method::POST,
                self.url(&format!(
                    "{}/consumer-groups/{group}/heartbeat",
                    Self::pool_path(project, pool)
                )),
            )
            .json(&Heartbeat {
                consumer: Some(consumer.to_string()),
            })
            .send()
            .await?;
        let answer: HeartbeatAnswer = Self::answer(response).await?;
        Ok(answer.shards)
    }

    /// Saves a group's checkpoint for one shard.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn save_checkpoint(
        &self,
        project: &str,
        pool: &str,
        group: &str,
        shard: u32,
        cursor: &str,
    ) -> ClientResult<()> {
        let response = self
            .request(
                reqwest::Method::PUT,
                self.url(&format!(
                    "{}/consumer-groups/{group}/checkpoints",
                    Self::pool_path(project, pool)
                )),
            )
            .json(&SaveCheckpoint {
                shard: Some(shard.into()),
                cursor: Some(cursor.to_string()),
            })
            .send()
            .await?;
        Self::answer::<IgnoredAny>(response).await.map(drop)
    }

    /// Returns a group's checkpoints as shard → cursor.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn checkpoints(
        &self,
        project: &str,
        pool: &str,
        group: &str,
    ) -> ClientResult<BTreeMap<u32, String>> {
        let answer: CheckpointList = self
            .get_as(&format!(
                "{}/consumer-groups/{group}/checkpoints",
                Self::pool_path(project, pool)
            ))
            .await?;
        Ok(answer
            .checkpoints
            .into_iter()
            .map(|checkpoint| (checkpoint.shard, checkpoint.cursor))
            .collect())
    }
}

/// Reads one shard from a cursor on.
#[derive(Debug, Clone)]
pub struct PullReader {
    client: LogpoolClient,
    project: String,
    pool: String,
    shard: u32,
    cursor: String,
}

impl PullReader {
    /// Opens a reader at `from`.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn open(
        client: LogpoolClient,
        project: &str,
        pool: &str,
        shard: u32,
        from: &StartAt,
    ) -> ClientResult<PullReader> {
        let cursor = client.cursor(project, pool, shard, from).await?;
        Ok(PullReader::at_cursor(client, project, pool, shard, cursor))
    }

    /// A reader that starts at a cursor saved earlier.
    pub fn at_cursor(
        client: LogpoolClient,
        project: &str,
        pool: &str,
        shard: u32,
        cursor: String,
    ) -> PullReader {
        PullReader {
            client,
            project: project.to_string(),
            pool: pool.to_string(),
            shard,
            cursor,
        }
    }

    /// The cursor the next read starts at (save it to resume later).
    pub fn cursor(&self) -> &str {
        &self.cursor
    }

    /// Reads the next records (at most `count`) and moves the cursor past them.
    ///
    /// # Errors
    /// Any non-2xx answer; the cursor does not move then.
    pub async fn next_batch(&mut self, count: u32) -> ClientResult<ShardBatch> {
        let batch = self
            .client
            .read_records(&self.project, &self.pool, self.shard, &self.cursor, count)
            .await?;
        self.cursor.clone_from(&batch.next_cursor);
        Ok(batch)
    }
}

/// One member of a consumer group: sends heartbeats, reads the shards it owns from
/// the group's checkpoints on, and saves checkpoints.
#[derive(Debug)]
pub struct GroupMember {
    client: LogpoolClient,
    project: String,
    pool: String,
    group: String,
    consumer: String,
    /// Owned shards and where reading goes on.
    cursors: BTreeMap<u32, String>,
    /// Records skipped because retention removed them before they were read.
    num_expired_jumps: u64,
}

impl GroupMember {
    /// Creates a member; nothing is sent until [`GroupMember::heartbeat`].
    pub fn new(
        client: LogpoolClient,
        project: &str,
        pool: &str,
        group: &str,
        consumer: &str,
    ) -> GroupMember {
        GroupMember {
            client,
            project: project.to_string(),
            pool: pool.to_string(),
            group: group.to_string(),
            consumer: consumer.to_string(),
            cursors: BTreeMap::new(),
            num_expired_jumps: 0,
        }
    }

    /// The shards this member owns (as of the last heartbeat).
    pub fn shards(&self) -> Vec<u32> {
        self.cursors.keys().copied().collect()
    }

    /// How many times a checkpoint pointed at data that retention had removed, so
    /// reading went on from the earliest retained record.
    pub fn num_expired_jumps(&self) -> u64 {
        self.num_expired_jumps
    }

    /// Sends a heartbeat; shards taken over start from the group's checkpoint (or
    /// from the oldest retained record when the group has none for them).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn heartbeat(&mut self) -> ClientResult<Vec<u32>> {
        let owned = self
            .client
            .heartbeat(&self.project, &self.pool, &self.group, &self.consumer)
            .await?;
        self.cursors.retain(|shard, _| owned.contains(shard));
        let new_shards: Vec<u32> = owned
            .iter()
            .copied()
            .filter(|shard| !self.cursors.contains_key(shard))
            .collect();
        if !new_shards.is_empty() {
            let checkpoints = self
                .client
                .checkpoints(&self.project, &self.pool, &self.group)
                .await?;
            for shard in new_shards {
                let cursor = match checkpoints.get(&shard) {
                    Some(cursor) => cursor.clone(),
                    None => {
                        self.client
                            .cursor(&self.project, &self.pool, shard, &StartAt::Begin)
                            .await?
                    }
                };
                self.cursors.insert(shard, cursor);
            }
        }
        Ok(owned)
    }

    /// Reads up to `count` records from each owned shard. Call
    /// [`GroupMember::commit`] with a batch once its records are processed.
    ///
    /// # Errors
    /// Any non-2xx answer other than 410 (expired data, skipped to the earliest).
    pub async fn poll(&mut self, count: u32) -> ClientResult<Vec<ShardBatch>> {
        let mut batches = Vec::new();
        let shards: Vec<(u32, String)> = self
            .cursors
            .iter()
            .map(|(shard, cursor)| (*shard, cursor.clone()))
            .collect();
        for (shard, cursor) in shards {
            let read = self
                .client
                .read_records(&self.project, &self.pool, shard, &cursor, count)
                .await;
            let batch = match read {
                Ok(batch) => batch,
                Err(error) => match earliest_cursor_of(&error) {
                    Some(earliest) => {
                        self.num_expired_jumps += 1;
                        self.cursors.insert(shard, earliest);
                        continue;
                    }
                    None => return Err(error),
                },
            };
            self.cursors.insert(shard, batch.next_cursor.clone());
            if !batch.records.is_empty() {
                batches.push(batch);
            }
        }
        Ok(batches)
    }

    /// Saves the checkpoint after `batch`: a member taking the shard over resumes
    /// right after its last record.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn commit(&self, batch: &ShardBatch) -> ClientResult<()> {
        self.client
            .save_checkpoint(
                &self.project,
                &self.pool,
                &self.group,
                batch.shard,
                &batch.next_cursor,
            )
            .await
    }
}
