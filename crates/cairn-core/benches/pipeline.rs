//! Single-thread throughput of each pipeline stage and of the whole pipeline,
//! on 256 MiB of random data, and how close the pipeline comes to the bound
//! its stages set.
//!
//! Run with `cargo bench -p cairn-core`. Every stage is applied to the whole
//! file, chunk by chunk as the pipeline does, and its throughput is counted
//! in file bytes per second; so the fastest the pipeline could go, if it did
//! nothing but its stages one after another, is `1 / Σ 1/stage`. After the
//! criterion runs, a table prints each figure, that bound, and the pipeline
//! as a share of it, using only estimates measured by this run.
//!
//! Stages of sealing (2-of-4): chunking; BLAKE3 of the plaintext twice (keyed
//! for the key material, plain for the whole-file hash); the zstd attempt;
//! AES-256-GCM; Reed-Solomon encoding; BLAKE3 of every shard for its id.
//! Stages of opening with every data shard present: BLAKE3 of the k data
//! shards (id check), AES-256-GCM, BLAKE3 of the plaintext.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use cairn_core::chunk::Chunker;
use cairn_core::erasure::{StripeDecoder, StripeEncoder};
use cairn_core::keys::ConvergenceKey;
use cairn_core::{FileOpener, FileSealer, Redundancy, SealedStripe};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

const MIB: usize = 1024 * 1024;
const LEN: usize = 256 * MIB;

fn group<'a>(c: &'a mut Criterion, name: &str, bytes: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes as u64));
    group
}

fn chunk_ranges(data: &[u8]) -> Vec<Range<usize>> {
    let mut chunker = Chunker::new(data);
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(chunk) = chunker.next_chunk().unwrap() {
        out.push(start..start + chunk.len());
        start += chunk.len();
    }
    out
}

fn aes_for(material: &[u8; 32]) -> (LessSafeKey, Nonce) {
    let mut okm = [0u8; 44];
    blake3::Hasher::new_derive_key("cairn 2026-11 chunk aes-256-gcm key and nonce")
        .update(material)
        .finalize_xof()
        .fill(&mut okm);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm[..32]).unwrap());
    (key, Nonce::try_assume_unique_for_key(&okm[32..]).unwrap())
}

fn stages(c: &mut Criterion, data: &[u8], text: &[u8], chunks: &[Range<usize>]) {
    let key = ConvergenceKey::from_bytes([1; 32]);
    let r24 = Redundancy::new(2, 4).unwrap();
    let r46 = Redundancy::new(4, 6).unwrap();
    let mut g = group(c, "stage", data.len());

    g.bench_function("chunk", |b| {
        b.iter(|| {
            let mut chunker = Chunker::new(data);
            while let Some(chunk) = chunker.next_chunk().unwrap() {
                black_box(chunk);
            }
        })
    });
    g.bench_function("hash-keyed", |b| {
        b.iter(|| {
            for r in chunks {
                black_box(key.key_material(&data[r.clone()]));
            }
        })
    });
    g.bench_function("hash-plain", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for r in chunks {
                hasher.update(&data[r.clone()]);
            }
            black_box(hasher.finalize())
        })
    });
    let mut compressor = zstd::bulk::Compressor::new(1).unwrap();
    let mut out = Vec::with_capacity(5 * MIB);
    g.bench_function("zstd-random", |b| {
        b.iter(|| {
            for r in chunks {
                out.clear();
                let _ = black_box(compressor.compress_to_buffer(&data[r.clone()], &mut out));
            }
        })
    });
    let mut buffer = Vec::with_capacity(5 * MIB);
    g.bench_function("aes-gcm-seal", |b| {
        b.iter(|| {
            for (i, r) in chunks.iter().enumerate() {
                buffer.clear();
                buffer.extend_from_slice(&data[r.clone()]);
                let (cipher, nonce) = aes_for(&[i as u8; 32]);
                let tag = cipher
                    .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buffer)
                    .unwrap();
                let _ = black_box(tag);
            }
        })
    });
    for (name, r) in [("2of4", r24), ("4of6", r46)] {
        let mut encoder = StripeEncoder::new();
        g.bench_function(format!("rs-encode-{name}"), |b| {
            // Whole stripes (split, pad, headers, parity) minus the id hashes,
            // which the shard-hash stage counts.
            b.iter(|| {
                for range in chunks {
                    let blob = &data[range.clone()];
                    let k = r.data();
                    let len = r.shard_payload_len(blob.len());
                    let mut shards: Vec<Vec<u8>> = (0..k)
                        .map(|i| {
                            let start = (i * len).min(blob.len());
                            let mut s = blob[start..(start + len).min(blob.len())].to_vec();
                            s.resize(len, 0);
                            s
                        })
                        .collect();
                    let parity = reed_solomon_simd::encode(k, r.parity(), &shards).unwrap();
                    shards.extend(parity);
                    black_box(shards);
                }
            })
        });
        let stripes: Vec<_> = chunks
            .iter()
            .map(|range| encoder.encode(&data[range.clone()], r).unwrap())
            .collect();
        g.bench_function(format!("hash-shards-{name}"), |b| {
            b.iter(|| {
                for (_, shards) in &stripes {
                    for shard in shards {
                        black_box(blake3::hash(&shard.bytes));
                    }
                }
            })
        });
        g.bench_function(format!("hash-data-shards-{name}"), |b| {
            b.iter(|| {
                for (_, shards) in &stripes {
                    for shard in &shards[..r.data()] {
                        black_box(blake3::hash(&shard.bytes));
                    }
                }
            })
        });
        let mut decoder = StripeDecoder::new();
        g.bench_function(format!("rs-decode-{name}"), |b| {
            // The worst case: every data shard lost, rebuilt from parity
            // (and, for 4-of-6, two data shards).
            b.iter(|| {
                for (stripe, shards) in &stripes {
                    let slots: Vec<Option<&[u8]>> = shards
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (i >= r.total() - r.data()).then_some(&s.bytes[..]))
                        .collect();
                    black_box(decoder.decode(stripe, &slots).unwrap());
                }
            })
        });
    }
    drop(g);

    let mut g = group(c, "stage", text.len());
    g.bench_function("zstd-text", |b| {
        b.iter(|| {
            for r in chunk_ranges(text) {
                out.clear();
                black_box(compressor.compress_to_buffer(&text[r], &mut out).unwrap());
            }
        })
    });
    drop(g);
}

fn seal_all(data: &[u8], key: &ConvergenceKey, r: Redundancy) -> u64 {
    let mut sealer = FileSealer::new(data, key, r);
    for stripe in sealer.by_ref() {
        black_box(stripe.unwrap());
    }
    sealer.finish().unwrap().size
}

fn pipeline(c: &mut Criterion, data: &[u8]) {
    let key = ConvergenceKey::from_bytes([1; 32]);
    let r = Redundancy::new(2, 4).unwrap();
    let mut g = group(c, "pipeline", data.len());
    g.bench_function("seal-2of4", |b| b.iter(|| seal_all(data, &key, r)));

    let mut sealer = FileSealer::new(data, &key, r);
    let stripes: Vec<SealedStripe> = sealer.by_ref().map(Result::unwrap).collect();
    let manifest = sealer.finish().unwrap();
    g.bench_function("open-2of4", |b| {
        b.iter(|| {
            let mut opener = FileOpener::new(manifest.clone(), std::io::sink());
            for stripe in &stripes {
                let s = &stripe.shards;
                opener
                    .write_chunk(&[Some(&s[0].bytes), Some(&s[1].bytes), None, None])
                    .unwrap();
            }
            opener.finish().unwrap();
        })
    });
    g.bench_function("open-2of4-degraded", |b| {
        b.iter(|| {
            let mut opener = FileOpener::new(manifest.clone(), std::io::sink());
            for stripe in &stripes {
                let s = &stripe.shards;
                opener
                    .write_chunk(&[None, None, Some(&s[2].bytes), Some(&s[3].bytes)])
                    .unwrap();
            }
            opener.finish().unwrap();
        })
    });
    drop(stripes);
    drop(g);

    // Both cores busy: two files sealed at once, one per thread.
    let mut g = group(c, "pipeline", 2 * data.len());
    g.bench_function("seal-2of4-two-files", |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| seal_all(data, &key, r));
                seal_all(data, &key, r) + other.join().unwrap()
            })
        })
    });
    drop(g);
}

/// MB/s of each benchmark this process measured, read back from criterion's
/// estimates (older files, from earlier runs, are ignored).
fn measured(dir: &Path, since: SystemTime, bytes: &BTreeMap<&str, usize>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (id, len) in bytes {
        let path = dir.join(id).join("new/estimates.json");
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.modified().map(|m| m < since).unwrap_or(true) {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let ns = json["mean"]["point_estimate"].as_f64().unwrap();
        out.insert((*id).to_owned(), *len as f64 / (ns / 1e9) / 1e6);
    }
    out
}

fn bound(rates: &BTreeMap<String, f64>, stages: &[&str]) -> Option<f64> {
    let mut inverse = 0.0;
    for stage in stages {
        inverse += 1.0 / rates.get(*stage)?;
    }
    Some(1.0 / inverse)
}

fn report(dir: &Path, since: SystemTime, text_len: usize) {
    let mut lens: BTreeMap<&str, usize> = [
        "stage/chunk",
        "stage/hash-keyed",
        "stage/hash-plain",
        "stage/zstd-random",
        "stage/aes-gcm-seal",
        "stage/rs-encode-2of4",
        "stage/rs-encode-4of6",
        "stage/rs-decode-2of4",
        "stage/rs-decode-4of6",
        "stage/hash-shards-2of4",
        "stage/hash-shards-4of6",
        "stage/hash-data-shards-2of4",
        "stage/hash-data-shards-4of6",
        "pipeline/seal-2of4",
        "pipeline/open-2of4",
        "pipeline/open-2of4-degraded",
    ]
    .into_iter()
    .map(|id| (id, LEN))
    .collect();
    lens.insert("stage/zstd-text", text_len);
    lens.insert("pipeline/seal-2of4-two-files", 2 * LEN);
    let rates = measured(dir, since, &lens);

    println!(
        "\nthroughput on 256 MiB of random data, MB/s of file bytes (one thread unless named)"
    );
    for (id, rate) in &rates {
        println!("  {id:<32} {rate:>9.0}");
    }
    let seal_stages = [
        "stage/chunk",
        "stage/hash-keyed",
        "stage/hash-plain",
        "stage/zstd-random",
        "stage/aes-gcm-seal",
        "stage/rs-encode-2of4",
        "stage/hash-shards-2of4",
    ];
    let open_stages = [
        "stage/hash-data-shards-2of4",
        "stage/aes-gcm-seal",
        "stage/hash-plain",
    ];
    for (what, stages, pipeline) in [
        ("seal", &seal_stages[..], "pipeline/seal-2of4"),
        ("open", &open_stages[..], "pipeline/open-2of4"),
    ] {
        match (bound(&rates, stages), rates.get(pipeline)) {
            (Some(bound), Some(actual)) => println!(
                "{what}: pipeline {actual:.0} MB/s, bound from its stages {bound:.0} MB/s, ratio {:.0} % (target ≥ 85 %)",
                100.0 * actual / bound
            ),
            _ => println!("{what}: run the stage and pipeline benchmarks together for the ratio"),
        }
    }
    println!(
        "(a ratio above 100 % means the stages, each measured streaming the whole file\n \
         through memory, cost more alone than inside the pipeline, which runs all of them\n \
         on one chunk while it is in cache)"
    );
    if let (Some(one), Some(two)) = (
        rates.get("pipeline/seal-2of4"),
        rates.get("pipeline/seal-2of4-two-files"),
    ) {
        println!(
            "two files at once: {two:.0} MB/s, {:.2}× single-thread (target ≥ 1.7×)",
            two / one
        );
    }
}

fn main() {
    let since = SystemTime::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion");
    let data = testdata::seeded_bytes(1, LEN);
    let text = testdata::seeded_text(1, 64 * MIB);
    let chunks = chunk_ranges(&data);
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    stages(&mut c, &data, &text, &chunks);
    pipeline(&mut c, &data);
    c.final_summary();
    report(&dir, since, text.len());
}
