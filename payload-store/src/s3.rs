//! An S3-compatible bucket of payloads, through the `object_store` crate on a small tokio
//! runtime of the store's own (the storage's callers block on it; nothing runs on a runtime
//! of the host's). Each payload is one object whose key is its path in a payload folder
//! (`<first two hex digits>/<digest>.zst`) and whose bytes are those of the file: the size,
//! then the zstd frame, or the sealed frame with a sealer that seals ([`Sealer::pack`]).

use std::time::Duration;

use bonnie_core::payload;
use futures_util::StreamExt;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig,
    aws::{AmazonS3, AmazonS3Builder},
    path::Path,
};

use crate::{Error, PayloadStore, Sealer};

/// How a bucket is reached.
#[derive(Clone)]
pub struct S3Config {
    /// `https://host[:port]` (or `http://` with `allow_http`).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region requests are signed for.
    pub region: String,
    /// The access key's id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Whether an `http://` endpoint may be used.
    pub allow_http: bool,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Tries of one request, the first included: a server that does not answer fails the job
/// after about three timeouts, and the job is tried again later.
const TRIES: usize = 3;

/// The key listed at start-up to learn that the bucket answers (no object has it).
const PROBE_PREFIX: &str = "bonnie-start-up-check";

/// A bucket of payloads.
pub struct S3Bucket {
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
    endpoint: String,
    bucket: String,
    sealer: Sealer,
}

impl S3Bucket {
    /// The bucket with its payloads sealed by `sealer`: objects written from now on are
    /// sealed, and those kept plain before still read.
    pub fn sealed_by(self, sealer: Sealer) -> Self {
        Self { sealer, ..self }
    }

    /// Connects to the bucket and checks that it answers (lists a prefix no payload has):
    /// an endpoint that does not answer, a bucket that does not exist or a key refused is
    /// an error naming the endpoint and the bucket.
    pub fn connect(config: &S3Config) -> Result<Self, String> {
        let place = format!("the bucket {:?} at {}", config.bucket, config.endpoint);
        let options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout(config.timeout)
            .with_connect_timeout(config.timeout.min(Duration::from_secs(10)));
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: TRIES - 1,
            retry_timeout: config.timeout * TRIES as u32,
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| format!("cannot set up {place}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-payloads")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime of {place}: {e}"))?;
        runtime
            .block_on(store.list_with_delimiter(Some(&Path::from(PROBE_PREFIX))))
            .map_err(|e| format!("{place} does not answer: {e}"))?;
        Ok(Self {
            store,
            runtime,
            endpoint: config.endpoint.clone(),
            bucket: config.bucket.clone(),
            sealer: Sealer::default(),
        })
    }

    fn unavailable(&self, what: &str, digest: &str, e: object_store::Error) -> Error {
        Error::Unavailable(format!(
            "{what} payload {digest} in {}: {e}",
            self.location()
        ))
    }

    /// An error of the sealer, naming the bucket.
    fn in_bucket(&self, e: Error) -> Error {
        e.within(&self.location())
    }

    fn damaged(&self, digest: &str, why: impl std::fmt::Display) -> Error {
        Error::Damaged(format!(
            "payload {digest} in {} is damaged: {why}",
            self.location()
        ))
    }

    /// The object's bytes, `None` if there is none. Read chunk by chunk as they arrive: the
    /// size the server announces is not reserved, and reading stops, as damage, once the
    /// object holds more than its size prefix allows.
    async fn object(&self, digest: &str, key: &Path) -> Result<Option<Vec<u8>>, Error> {
        let found = match self.store.get(key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.unavailable("cannot read", digest, e)),
        };
        let mut chunks = found.into_stream();
        let mut content = Vec::new();
        let mut bound = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.unavailable("cannot read", digest, e))?;
            content.extend_from_slice(&chunk);
            if bound.is_none()
                && let Some(size) = content.first_chunk::<8>()
            {
                bound = Some(payload::packed_bound(u64::from_le_bytes(*size)));
            }
            if bound.is_some_and(|bound| content.len() as u64 > bound) {
                return Err(self.damaged(digest, "it holds more bytes than its size allows"));
            }
        }
        Ok(Some(content))
    }
}

impl PayloadStore for S3Bucket {
    fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = payload::digest(bytes);
        let key = Path::from(payload::relative_path(&digest));
        let kept = self.runtime.block_on(async {
            match self.store.head(&key).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.unavailable("cannot look up", &digest, e)),
            }
        })?;
        if kept {
            return Ok(digest);
        }
        let content = self
            .sealer
            .pack(&digest, bytes)
            .map_err(|e| self.in_bucket(e))?;
        // A plain PUT, not a conditional one (If-None-Match, which not every S3-compatible
        // server takes): a worker that writes the same payload between the look-up and the
        // write writes the same bytes.
        self.runtime
            .block_on(self.store.put(&key, content.into()))
            .map_err(|e| self.unavailable("cannot write", &digest, e))?;
        Ok(digest)
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        if !payload::is_digest(digest) {
            return Ok(None);
        }
        let key = Path::from(payload::relative_path(digest));
        let Some(content) = self.runtime.block_on(self.object(digest, &key))? else {
            return Ok(None);
        };
        self.sealer
            .unpack(digest, &content)
            .map(Some)
            .map_err(|e| self.in_bucket(e))
    }

    fn location(&self) -> String {
        let sealed = if self.sealer.seals() { ", sealed" } else { "" };
        format!("the bucket {:?} at {}{sealed}", self.bucket, self.endpoint)
    }

    fn remove(&self, digest: &str) -> Result<(), Error> {
        if !payload::is_digest(digest) {
            return Ok(());
        }
        let key = Path::from(payload::relative_path(digest));
        match self.runtime.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable("cannot remove", digest, e)),
        }
    }
}
