//! The invariant behind issue 14, checked on inputs nobody wrote by hand: for
//! any bytes, reading, rendering, parsing, decoding, planning and migrating a
//! config never panics, finishes quickly and produces bounded output.
//!
//! A mutation loop seeded with every config of the compatibility corpus
//! (`../shared/compat-corpus`) and a few hostile snippets; each case mutates
//! a seed (splices, deletions, hostile tokens, numbers at the edges) with a
//! fixed-seed generator, so a failure names the case that reproduces it. It
//! runs for a fixed budget: `AUTOPILOT_FUZZ_SECONDS` (default 20) or
//! `AUTOPILOT_FUZZ_CASES`, whichever ends first.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::template::MAX_RENDERED;
use super::{LoadOptions, load_str_with};

/// Deterministic xorshift64*: enough randomness for mutations, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Text that has broken, or could break, some stage.
const HOSTILE: &[&str] = &[
    "{{ printf \"%.65536f\" 1.0 }}",
    "{{ printf \"%.*e\" 70000 2.5 }}",
    "{{ printf \"%1000000s\" \"\" }}",
    "{{ range loop 1000 }}{{ range loop 1000 }}x{{ end }}{{ end }}",
    "{{ range $i := loop 5 }}{\"name\": \"j{{ $i }}\", \"exec\": \"x\"},{{ end }}",
    "{{ replaceAll \"\" \"ab\" .HOSTNAME }}",
    "{{ regexReplaceAll \"(a*)*\" \"$1$1\" \"aaaa\" }}",
    "{{ index . \"A\" }}",
    "{{ .A | default 9223372036854775807 }}",
    "{{ if",
    "}}",
    "{{ end }}",
    "{{ printf \"%c\" 0 }}",
    "\\u0000",
    "\u{feff}",
    "\u{2028}",
    "=",
    "1e19",
    "9.3e18",
    "-1",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "0x",
    "0xFFFFFFFFFFFFFFFFFF",
    "Infinity",
    "-Infinity",
    "NaN",
    "1e-400",
    "null",
    "\"\"",
    "'",
    "\\",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "/*",
    "//",
    "\"87600h1ns\"",
    "\"2562047h47m16.854775808s\"",
    ".5",
    "{name: \"a=b\", exec: \"x\"}",
    "when: {interval: 1e19}",
    "when: {each: \"changed\", source: \"x\"}",
    "health: {exec: \"true\", interval: 0, ttl: 0}",
    "backoff: {initial: \"1h\", max: \"1s\"}",
    "restarts: 4294967296",
    "stopTimeout: 1e300",
    "port: 65536",
    "leader: {key: \"\", ttl: 1e19}",
    "poll: 5e18",
    "ttl: 5e18",
    "services: [{name: \"s\", poll: 5e18, ttl: 1e19}]",
    "backends: [{name: \"b\", poll: 1e19, onChange: \"x\"}]",
    "jobs: [{name: \"j\", exec: \"x\", when: {once: \"stopped\", source: \"j\"}}]",
    "watches: [{name: \"w\", interval: 1e19}]",
    "telemetry: {port: 9090, metrics: [{name: \"m\", type: \"histogram\", buckets: [1e308, -1e308]}]}",
];

/// Interesting numbers, to replace a number found in the seed.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1e19",
    "9.3e18",
    "5e18",
    "315360001",
    "4294967296",
    "65536",
    "1e308",
    "-1e308",
    "NaN",
    "Infinity",
    "0x7FFFFFFFFFFFFFFF",
    "1e-9",
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/compat-corpus"
    ))
}

/// Every corpus config, and the hostile snippets as configs of their own.
fn seeds() -> Vec<String> {
    let mut seeds = Vec::new();
    for dir in ["v2", "v3", "rendered-by-containerpilot"] {
        let Ok(entries) = std::fs::read_dir(corpus_dir().join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        seeds.extend(paths.iter().filter_map(|p| read_seed(p)));
    }
    seeds.push("{}".into());
    seeds.push("{jobs: [{name: \"app\", exec: \"/bin/app\", port: 80, health: {exec: \"true\", interval: 5, ttl: 10}}]}".into());
    seeds.extend(HOSTILE.iter().map(|h| format!("{{jobs: [{h}]}}")));
    seeds
}

fn read_seed(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    // Big seeds make slow cases without finding more.
    (bytes.len() < 64 * 1024).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// One mutation of `text`, at char boundaries.
fn mutate(text: &str, rng: &mut Rng, seeds: &[String]) -> String {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let at = |rng: &mut Rng| boundaries[rng.below(boundaries.len())];
    let (a, b) = {
        let (x, y) = (at(rng), at(rng));
        (x.min(y), x.max(y))
    };
    match rng.below(7) {
        // Insert a hostile token.
        0 | 1 => format!("{}{}{}", &text[..a], rng.pick(HOSTILE), &text[a..]),
        // Delete a range (short ones mostly).
        2 => {
            let b = b.min(a + 1 + rng.below(16));
            let b = boundaries
                .iter()
                .copied()
                .find(|&i| i >= b)
                .unwrap_or(text.len());
            format!("{}{}", &text[..a], &text[b..])
        }
        // Duplicate a range.
        3 => format!("{}{}{}", &text[..b], &text[a..b], &text[b..]),
        // Splice in a piece of another seed.
        4 => {
            let other = rng.pick(seeds);
            let cut: Vec<usize> = other.char_indices().map(|(i, _)| i).collect();
            if cut.is_empty() {
                return text.to_string();
            }
            let from = cut[rng.below(cut.len())];
            let to = cut
                .iter()
                .copied()
                .find(|&i| i >= from + rng.below(200))
                .unwrap_or(other.len());
            format!("{}{}{}", &text[..a], &other[from..to], &text[a..])
        }
        // Replace the first number after `a` with an interesting one.
        5 => match text[a..].find(|c: char| c.is_ascii_digit()) {
            Some(offset) => {
                let start = a + offset;
                let end = text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                    .map_or(text.len(), |e| start + e);
                format!("{}{}{}", &text[..start], rng.pick(NUMBERS), &text[end..])
            }
            None => format!("{text}{}", rng.pick(NUMBERS)),
        },
        // Flip one byte to another ASCII character.
        _ => {
            let c = (rng.below(95) as u8 + b' ') as char;
            let end = boundaries
                .iter()
                .copied()
                .find(|&i| i > a)
                .unwrap_or(text.len());
            format!("{}{c}{}", &text[..a], &text[end..])
        }
    }
}

/// The environment the templates see: the corpus' usual variables.
fn env() -> HashMap<String, String> {
    [
        ("CONSUL", "consul"),
        ("HOSTNAME", "web1"),
        ("SERVICE_NAME", "app"),
        ("PORT", "8080"),
        ("A", "a,b,c"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The whole pipeline on one input: the bytes it output, and the size of
/// the text it worked on (the input, or its rendering when that is longer).
fn run_pipeline(text: &str, env: &HashMap<String, String>) -> (usize, usize) {
    let rendered = super::template::render(text, env).map_or(0, |r| r.len());
    let basis = text.len().max(rendered);
    let options = LoadOptions {
        app: vec!["/bin/app".into(), "{{ .HOSTNAME }}".into()],
        self_exe: Some("/bin/autopilot".into()),
    };
    match load_str_with(text, "fuzz.json5", env, &options) {
        Ok(loaded) => {
            let plan = crate::plan::plan(&loaded.config).to_string();
            let migrated = super::migrate::to_json5(&loaded.config, text);
            let warnings: usize = loaded.warnings.iter().map(|w| w.to_string().len()).sum();
            assert!(loaded.rendered.len() <= MAX_RENDERED);
            (plan.len() + migrated.len() + warnings, basis)
        }
        Err(e) => (e.to_string().len(), basis),
    }
}

/// Output allowed per byte of the config, beyond a fixed allowance: a plan
/// or a migration grows with the config, diagnostics must not grow faster.
const OUTPUT_PER_INPUT_BYTE: usize = 64;

#[test]
fn no_config_input_panics_runs_long_or_explodes() {
    let budget = std::env::var("AUTOPILOT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(20), Duration::from_secs);
    let max_cases: u64 = std::env::var("AUTOPILOT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let seeds = seeds();
    let env = env();
    // Quiet the default hook: a caught panic is reported below, with its input.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut cases = 0u64;
    let mut failure = None;
    while cases < max_cases && started.elapsed() < budget {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ cases.wrapping_mul(0x1000_0000_01b3));
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            text = mutate(&text, &mut rng, &seeds);
        }
        let case_started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run_pipeline(&text, &env)));
        let took = case_started.elapsed();
        let problem = match result {
            Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
            // Generous for a debug build on a loaded machine; a runaway
            // template or a quadratic diagnostic takes far longer.
            Ok(_) if took > Duration::from_secs(5) => Some(format!("took {took:?}")),
            Ok((out, basis)) if out > 256 * 1024 + OUTPUT_PER_INPUT_BYTE * basis => Some(format!(
                "{out} bytes of output for a config of {basis} bytes"
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            failure = Some((cases, problem, text));
            break;
        }
        cases += 1;
    }
    std::panic::set_hook(previous_hook);
    if let Some((case, problem, text)) = failure {
        let saved = std::env::temp_dir().join(format!("autopilot-fuzz-case-{case}.json5"));
        let _ = std::fs::write(&saved, &text);
        panic!(
            "case {case} {problem}; its input is in {} (AUTOPILOT_FUZZ_CASES={} reproduces it):\n{}",
            saved.display(),
            case + 1,
            text.chars().take(2000).collect::<String>()
        );
    }
    println!(
        "config fuzz: {cases} cases in {:.1}s from {} seeds, no panic, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        seeds.len(),
        peak_rss_kib() / 1024
    );
    assert!(cases > 0, "the budget ran out before the first case");
    // Memory: the peak of the whole test process (other tests included), so
    // only a blow-up shows; the 10 000 duplicate keys of issue 14 took 1.2 GB.
    let peak_kib = peak_rss_kib();
    assert!(peak_kib < 1024 * 1024, "peak RSS {peak_kib} KiB");
}

/// The process's peak resident memory, from getrusage.
fn peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}
