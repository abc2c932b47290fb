//! Multipart upload of one large object: create the upload, send the parts a few at a
//! time, complete it. S3 makes the object visible only on completion, so readers see
//! the old object or the whole new one. A failed upload is aborted so no parts are left
//! behind (they would be billed and invisible); when the caller drops the put midway,
//! the abort is sent from a spawned task.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};

use super::{unavailable, S3ObjectStore};
use crate::object_store::{ObjectStoreError, ObjectStoreResult};

/// Parts of one upload in flight at once: enough to overlap latency, few enough not to
/// hold many parts' worth of requests open.
const PART_CONCURRENCY: usize = 4;

/// Most parts one multipart upload may have (an S3 limit).
const MAX_PARTS: usize = 10_000;

impl S3ObjectStore {
    /// Uploads `data` under `wire_key` in parts of `self.part_size` bytes.
    pub(super) async fn put_multipart(&self, wire_key: &str, data: Bytes) -> ObjectStoreResult<()> {
        let parts = data.len().div_ceil(self.part_size);
        if parts > MAX_PARTS {
            return Err(ObjectStoreError::Unavailable(format!(
                "object `{wire_key}` of {} bytes needs {parts} parts of \
                 `object_store.multipart_part_size_bytes` = {}; S3 allows {MAX_PARTS}",
                data.len(),
                self.part_size
            )));
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(wire_key)
            .set_server_side_encryption(self.encryption.mode.clone())
            .set_ssekms_key_id(self.encryption.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| unavailable("create multipart upload", wire_key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                ObjectStoreError::Unavailable(format!(
                    "create multipart upload of `{wire_key}`: the answer has no upload id"
                ))
            })?
            .to_string();
        let mut guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: wire_key.to_string(),
            upload_id,
            armed: true,
        };
        match self.send_parts_and_complete(&guard, data).await {
            Ok(()) => {
                guard.armed = false;
                Ok(())
            }
            Err(error) => {
                guard.abort_now().await;
                Err(error)
            }
        }
    }

    async fn send_parts_and_complete(
        &self,
        upload: &AbortOnDrop,
        data: Bytes,
    ) -> ObjectStoreResult<()> {
        let part_size = self.part_size;
        let chunks = (0..data.len().div_ceil(part_size))
            .map(|i| data.slice(i * part_size..data.len().min((i + 1) * part_size)));
        let parts: Vec<CompletedPart> = futures::stream::iter(chunks.enumerate())
            .map(|(index, chunk)| self.send_part(upload, index, chunk))
            .buffered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(error) if completed_under_legacy_root(&error) => Ok(()),
            Err(error) => Err(unavailable("complete multipart upload", &upload.key, error)),
        }
    }

    async fn send_part(
        &self,
        upload: &AbortOnDrop,
        index: usize,
        chunk: Bytes,
    ) -> ObjectStoreResult<CompletedPart> {
        // Part numbers start at 1; at most MAX_PARTS, so the conversion cannot fail.
        let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let length = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        let sent = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .content_length(length)
            .body(ByteStream::from(chunk))
            .send()
            .await
            .map_err(|e| unavailable("upload part", &upload.key, e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(sent.e_tag().map(str::to_string))
            .build())
    }
}

/// Whether a completion the SDK could not decode did complete: some S3-compatible
/// servers (moto among them) answer success with the root element
/// `CompleteMultipartUploadResponse` instead of S3's `CompleteMultipartUploadResult`,
/// which the SDK refuses although the object exists. A failed completion answers with
/// an `<Error>` document (even under status 200), never with this root and an ETag.
fn completed_under_legacy_root<E>(error: &SdkError<E, HttpResponse>) -> bool {
    let Some(response) = error.raw_response() else {
        return false;
    };
    let Some(body) = response.body().bytes() else {
        return false;
    };
    let body = String::from_utf8_lossy(body);
    response.status().as_u16() == 200
        && body.contains("<CompleteMultipartUploadResponse")
        && body.contains("<ETag>")
        && !body.contains("<Error>")
}

/// One multipart upload in progress, aborted unless it completed.
struct AbortOnDrop {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortOnDrop {
    /// Aborts the upload now (the put failed); a failed abort is logged with the upload
    /// id, since the parts then stay until the bucket's lifecycle rule removes them.
    async fn abort_now(&mut self) {
        self.armed = false;
        abort(&self.client, &self.bucket, &self.key, &self.upload_id).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The put was dropped midway (its caller gave up): abort in the background.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, upload_id = %self.upload_id,
                "multipart upload dropped outside a runtime; its parts stay until the bucket's lifecycle rule removes them");
            return;
        };
        let client = self.client.clone();
        let bucket = std::mem::take(&mut self.bucket);
        let key = std::mem::take(&mut self.key);
        let upload_id = std::mem::take(&mut self.upload_id);
        runtime.spawn(async move { abort(&client, &bucket, &key, &upload_id).await });
    }
}

async fn abort(client: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    let result = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(error) = result {
        tracing::warn!(key, upload_id, error = %aws_sdk_s3::error::DisplayErrorContext(&error),
            "could not abort a failed multipart upload; its parts stay until the bucket's lifecycle rule removes them");
    }
}
