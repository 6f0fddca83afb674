//! The fuzz targets' entry points (`r2_node::fuzz`) on stable Rust: the seed
//! corpus of `crates/node/fuzz/seeds/` and seeded random mutations of it
//! (byte flips, insertions, deletions, repeats, splices, dictionary tokens),
//! 35,000 inputs per parser target and 600 for `registry_apply` (each runs
//! a registry for 10 virtual seconds), must neither panic (in any task) nor
//! break a target's property. cargo-fuzz (nightly, `crates/node/fuzz/`)
//! explores further.

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

/// Feeds `target` its seeds and mutations of them, [`INPUTS`] in all.
fn fuzz(name: &str, target: fn(&[u8]) -> Result<(), r2_node::fuzz::Violation>) -> Result<()> {
    fuzz_n(name, target, INPUTS)
}

/// Feeds `target` its seeds and mutations of them, `inputs` in all.
fn fuzz_n(
    name: &str,
    target: fn(&[u8]) -> Result<(), r2_node::fuzz::Violation>,
    inputs: usize,
) -> Result<()> {
    let corpus = seeds(name)?;
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for seed in &corpus {
        target(seed).with_context(|| format!("{name} seed"))?;
    }
    let mut current = corpus[0].clone();
    for n in corpus.len()..inputs {
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

/// Panics anywhere in the process, sentant tasks included (tokio catches
/// those, so the target itself would not see them).
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn registry_apply_survives_mutated_sequences_and_hostile_definitions() -> Result<()> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    for kind in 0..r2_node::fuzz::HOSTILE_KINDS {
        for n in [0u8, 1, 2, 3, 4, 5, 6, 7, 255] {
            let input = [kind << 3, n, 2, 0, 2, 1, (31 << 3) | 5];
            r2_node::fuzz::registry_apply(&input)
                .with_context(|| format!("hostile kind {kind}, size {n}"))?;
        }
    }
    let started = std::time::Instant::now();
    fuzz_n("registry_apply", r2_node::fuzz::registry_apply, 600)?;
    eprintln!("registry_apply: 600 inputs in {:?}", started.elapsed());
    let panics = PANICS.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(panics == 0, "{panics} panics (see above)");
    Ok(())
}
