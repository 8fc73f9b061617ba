//! Payload store throughput: mail-sized payloads (4 KB to 1 MB, most of them small: sizes
//! spread evenly on a log scale; text bodies, every third with a base64 attachment that
//! compresses as little as a real one) written into the store and read back, checked, by four
//! threads at once as a worker's threads do; for a payload folder on this disk (each file
//! synced) and for moto's S3 server on this machine (`.venv/bin/moto_server`, from
//! scripts/test). MB are the payloads' own bytes, before compression.

use std::time::Instant;

use anyhow::{Context as _, bail};
use bonnie_payload_store::{LocalFolder, PayloadStore, S3Bucket, S3Config};
use bonnie_tests::moto::{ACCESS_KEY_ID, MotoServer};
use serde_json::{Value, json};

/// Threads writing and reading at once.
const THREADS: usize = 4;

/// The smallest and the largest payload.
const SIZES: (f64, f64) = (4_000.0, 1_000_000.0);

/// A small deterministic generator (xorshift64*), so every run measures the same payloads.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "figures",
    "meeting",
    "please",
    "find",
    "attached",
    "report",
    "thanks",
    "regards",
    "project",
    "deadline",
    "budget",
    "review",
    "tomorrow",
    "office",
    "customer",
    "invoice",
    "schedule",
    "update",
    "draft",
    "contract",
    "Grüße",
    "señor",
    "délai",
];

/// Payload `n` of the run: headers, then text, and for every third one an attachment.
fn message(n: usize, noise: &mut Noise) -> Vec<u8> {
    let size = (SIZES.0.ln() + noise.unit() * (SIZES.1.ln() - SIZES.0.ln())).exp() as usize;
    let mut message = format!(
        "From: <user{}@example.org>\r\nTo: <user{}@example.org>\r\nSubject: message {n}\r\n\
         Message-ID: <bench.{n}@example.org>\r\nMIME-Version: 1.0\r\n\r\n",
        n % 10,
        (n + 3) % 10
    )
    .into_bytes();
    let text_until = if n.is_multiple_of(3) { size / 4 } else { size };
    while message.len() < text_until {
        for _ in 0..12 {
            message.extend(WORDS[noise.next() as usize % WORDS.len()].bytes());
            message.push(b' ');
        }
        message.extend(b"\r\n");
    }
    while message.len() < size {
        let chunk: Vec<u8> = (0..57).map(|_| noise.next() as u8).collect();
        message.extend(
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, chunk).bytes(),
        );
        message.extend(b"\r\n");
    }
    message
}

/// MB/s writing `payloads` into `store`, then reading each back (checked), `THREADS` at once.
fn throughput(store: &dyn PayloadStore, payloads: &[Vec<u8>]) -> anyhow::Result<(f64, f64)> {
    let mb = payloads.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let share = payloads.len().div_ceil(THREADS);
    let started = Instant::now();
    let digests: Vec<String> = std::thread::scope(|scope| {
        let writers: Vec<_> = payloads
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().map(|p| store.put(p)).collect::<Vec<_>>()))
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("a writing thread"))
            .collect::<Result<_, _>>()
    })?;
    let write = mb / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let read: usize = std::thread::scope(|scope| {
        let readers: Vec<_> = digests
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|d| {
                            store
                                .get(d)
                                .map_err(anyhow::Error::from)?
                                .map(|bytes| bytes.len())
                                .with_context(|| format!("payload {d} is not in the store"))
                        })
                        .sum::<anyhow::Result<usize>>()
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().expect("a reading thread"))
            .sum::<anyhow::Result<usize>>()
    })?;
    let read_rate = mb / started.elapsed().as_secs_f64();
    if read != payloads.iter().map(Vec::len).sum::<usize>() {
        bail!("read {read} bytes back, not the bytes written");
    }
    Ok((write, read_rate))
}

/// The figures for `count` payloads.
pub fn figures(count: usize) -> anyhow::Result<Value> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let payloads: Vec<Vec<u8>> = (0..count).map(|n| message(n, &mut noise)).collect();
    let mb = payloads.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;

    let folder = tempfile::Builder::new()
        .prefix("bonnie-bench-payloads-")
        .tempdir_in(crate::lab::bench_root()?)?;
    let (local_write, local_read) = throughput(&LocalFolder::new(folder.path()), &payloads)?;
    eprintln!("payload store, folder: write {local_write:.1} MB/s, read {local_read:.1} MB/s");

    let moto = MotoServer::start();
    let bucket = S3Bucket::connect(&S3Config {
        endpoint: moto.endpoint.clone(),
        bucket: moto.bucket.clone(),
        region: "us-east-1".to_string(),
        access_key_id: ACCESS_KEY_ID.to_string(),
        secret_access_key: "moto-takes-any-secret".to_string(),
        allow_http: true,
        timeout: std::time::Duration::from_secs(60),
    })
    .map_err(anyhow::Error::msg)?;
    let (s3_write, s3_read) = throughput(&bucket, &payloads)?;
    eprintln!("payload store, moto S3: write {s3_write:.1} MB/s, read {s3_read:.1} MB/s");
    if moto.keys().len() != count {
        bail!(
            "the bucket holds {} objects, not {count}",
            moto.keys().len()
        );
    }
    Ok(json!({
        "payload_store_payloads": count,
        "payload_store_mb": crate::round(mb, 1),
        "payload_store_threads": THREADS,
        "payload_store_local_write_mb_per_s": crate::round(local_write, 1),
        "payload_store_local_read_mb_per_s": crate::round(local_read, 1),
        "payload_store_s3_write_mb_per_s": crate::round(s3_write, 1),
        "payload_store_s3_read_mb_per_s": crate::round(s3_read, 1),
    }))
}
