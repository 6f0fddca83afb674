//! The fuzz targets' entry points (`r2_node::fuzz`) on stable Rust: the seed
//! corpus of `crates/node/fuzz/seeds/` and seeded random mutations of it
//! (byte flips, insertions, deletions, repeats, splices, dictionary tokens),
//! 35,000 inputs per target, must neither panic nor break a target's
//! property. cargo-fuzz (nightly, `crates/node/fuzz/`) explores further.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Inputs per target, seeds included.
const INPUTS: usize = 35_000;

/// Fragments that make parsers take unusual paths.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b":",
    b",",
    b"null",
    b"1e400",
    b"-0",
    b"18446744073709551616",
    b"%",
    b"%FF",
    b"&",
    b"=",
    b"+",
    b"\n",
    b"- ",
    b"*a",
    b"&a ",
    b"!!binary ",
    b"...",
    b"$",
    b"@include(if: true)",
    b"fragment F on Query { ...F }",
    b"\xff",
    b"\xc3",
    b"\0",
    b"{{{{{{{{{{{{{{{{{{{{",
    b"[[[[[[[[[[[[[[[[[[[[",
];

/// The seed corpus of one target.
fn seeds(target: &str) -> Result<Vec<Vec<u8>>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
        seeds.push(std::fs::read(entry?.path())?);
    }
    seeds.sort();
    ensure!(!seeds.is_empty(), "no seeds in {}", dir.display());
    Ok(seeds)
}

/// A random range of `input` (possibly empty).
fn span(rng: &mut SmallRng, len: usize) -> (usize, usize) {
    let start = rng.random_range(0..=len);
    let end = rng.random_range(start..=len.min(start + 64));
    (start, end)
}

/// `input` changed a few times.
fn mutate(rng: &mut SmallRng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let (start, end) = span(rng, out.len());
        match rng.random_range(0..6) {
            0 if start < out.len() => out[start] ^= 1 << rng.random_range(0..8),
            1 => out.insert(start, rng.random()),
            2 => {
                out.drain(start..end);
            }
            3 => {
                let piece = out[start..end].repeat(rng.random_range(2..50));
                out.splice(start..start, piece);
            }
            4 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let (from, to) = span(rng, other.len());
                out.splice(start..end, other[from..to].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                out.splice(start..start, token.iter().copied());
            }
        }
    }
    out
}

/// Feeds `target` its seeds and mutations of them.
fn fuzz(name: &str, target: fn(&[u8]) -> Result<(), r2_node::fuzz::Violation>) -> Result<()> {
    let corpus = seeds(name)?;
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for seed in &corpus {
        target(seed).with_context(|| format!("{name} seed"))?;
    }
    let mut current = corpus[0].clone();
    for n in corpus.len()..INPUTS {
        // Mostly a fresh mutation of a seed; sometimes stack on the last input.
        if rng.random_range(0..4) != 0 {
            current = corpus[n % corpus.len()].clone();
        }
        current = mutate(&mut rng, &current, &corpus);
        target(&current).with_context(|| {
            format!("{name} input {n}: {:?}", String::from_utf8_lossy(&current))
        })?;
    }
    Ok(())
}

#[test]
fn frame_decode_survives_mutated_frames() -> Result<()> {
    fuzz("frame_decode", r2_node::fuzz::frame_decode)
}

#[test]
fn graphql_request_survives_mutated_requests() -> Result<()> {
    fuzz("graphql_request", r2_node::fuzz::graphql_request)
}

#[test]
fn sentant_definition_survives_mutated_definitions() -> Result<()> {
    fuzz("sentant_definition", r2_node::fuzz::sentant_definition)
}
