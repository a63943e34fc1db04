//! Issue 14's invariant for the control socket: no request body or path can
//! panic a parser (PID 1 runs them). A mutation loop over every endpoint's
//! body parser, seeded with valid bodies and hostile ones, for a fixed
//! budget (`AUTOPILOT_FUZZ_SECONDS`, a quarter of it here, default 5 s).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::{Route, bad_env_name, json_object, parse_signal, percent_decode};
use crate::discovery::edit::{Overrides, ServiceEdit};

const SEEDS: &[&[u8]] = &[
    br#"{"NAME": "value", "OTHER": null}"#,
    br#"{"requests_total": 1, "temperature": "21.5"}"#,
    br#"{"signal": "SIGHUP"}"#,
    br#"{"signal": 9}"#,
    b"HUP",
    b"15",
    br#"{"addTags": ["primary"], "removeTags": ["replica"], "meta": {"role": "primary"}}"#,
    br#"{"resetTags": true, "resetMeta": true, "tags": ["a", "b"], "meta": {"k": null}}"#,
    b"",
    b"   ",
    b"null",
    b"[]",
    b"my%2Dapp",
];

const TOKENS: &[&[u8]] = &[
    b"\\u0000", b"\0", b"=", b"%", b"%zz", b"%e9", b"%C3", b"\xff\xfe", b"\xc3", b"1e999",
    b"-1", b"18446744073709551616", b"-9223372036854775809", b"NaN", b"Infinity", b"\"",
    b"{", b"}", b"[", b"]", b",", b":", b"null", b"true", b"SIG", b"sig", b"\\ud800",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"consul-", b"\n",
];

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

fn mutate(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    let at = rng.below(body.len() + 1);
    let mut out = body[..at].to_vec();
    match rng.below(4) {
        0 => {
            out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
            out.extend_from_slice(&body[at..]);
        }
        1 => out.extend_from_slice(&body[(at + 1 + rng.below(8)).min(body.len())..]),
        2 => {
            out.extend_from_slice(&body[at..]);
            out.extend_from_slice(&body[at..]);
        }
        _ => {
            out.push(rng.below(256) as u8);
            out.extend_from_slice(&body[(at + 1).min(body.len())..]);
        }
    }
    out
}

/// Every parser a request reaches before any state is touched.
fn parse_everything(body: &[u8]) {
    if let Ok(map) = json_object(body, "{}") {
        for name in map.keys() {
            let _ = bad_env_name(name);
        }
    }
    let _ = parse_signal(body);
    if let Ok(edit) = serde_json::from_slice::<ServiceEdit>(body) {
        let config_meta = BTreeMap::from([("role".to_string(), "replica".to_string())]);
        let _ = Overrides::default().edited(&["web".into()], &config_meta, &edit);
    }
    let text = String::from_utf8_lossy(body);
    let _ = percent_decode(&text);
    for path in [
        format!("/v3/jobs/{text}/signal"),
        format!("/v3/jobs/{text}/service"),
        format!("/v3/{text}"),
        text.to_string(),
    ] {
        let route = Route::parse(&path);
        let _ = route.label();
    }
}

#[test]
fn no_control_request_body_panics_a_parser() {
    let budget = std::env::var("AUTOPILOT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), |s| Duration::from_secs(s / 4 + 1));
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut cases = 0u64;
    let mut failure = None;
    while started.elapsed() < budget {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ cases.wrapping_mul(0x1000_0000_01b3));
        let mut body = SEEDS[rng.below(SEEDS.len())].to_vec();
        for _ in 0..1 + rng.below(6) {
            body = mutate(&body, &mut rng);
        }
        let case_started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| parse_everything(&body)));
        if result.is_err() || case_started.elapsed() > Duration::from_secs(1) {
            failure = Some((cases, body));
            break;
        }
        cases += 1;
    }
    std::panic::set_hook(previous_hook);
    if let Some((case, body)) = failure {
        panic!(
            "case {case}: a control body panicked or took over 1 s: {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    println!("control fuzz: {cases} bodies, no panic");
    assert!(cases > 0);
}
