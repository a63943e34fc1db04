//! Template rendering against ContainerPilot's own: every corpus file
//! rendered with `rendered-by-containerpilot/ENV.tsv`'s environment must
//! equal ContainerPilot 3.8.0's `-template` output stored beside it, byte for
//! byte, or be a known difference listed here with its reason (the same as in
//! docs/migrating.md).

use std::collections::HashMap;
use std::path::PathBuf;

use super::quirks;
use super::template;

fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/compat-corpus/rendered-by-containerpilot"
    ))
}

fn corpus_file(key: &str) -> PathBuf {
    reference_dir().join("..").join(key)
}

/// Files autopilot renders differently on purpose, with the reason.
const KNOWN_DIFFERENCES: [(&str, &str); 1] = [(
    "v3/kieranajp__colossal__etc_containerpilot.json5",
    "ContainerPilot cut environment values at their first `=`; autopilot keeps \
     `CONSUL_ENCRYPT` whole, so the `==` the file appends to make up for the cut is one \
     too many (docs/migrating.md, the row \"Environment values with `=` in templates\")",
)];

/// `ENV.tsv`: for each `v2/FILE` or `v3/FILE`, the variables that were set.
fn environments() -> HashMap<String, HashMap<String, String>> {
    let text = std::fs::read_to_string(reference_dir().join("ENV.tsv")).expect("ENV.tsv");
    let mut all: HashMap<String, HashMap<String, String>> = HashMap::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        assert_eq!(cols.len(), 4, "ENV.tsv: a row without 4 columns: {line:?}");
        all.entry(format!("{}/{}", cols[0], cols[1]))
            .or_default()
            .insert(cols[2].to_string(), cols[3].to_string());
    }
    all
}

/// Every reference rendering, as `v2/FILE` or `v3/FILE`, sorted.
fn references() -> Vec<String> {
    let mut keys = Vec::new();
    for version in ["v2", "v3"] {
        let dir = reference_dir().join(version);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            keys.push(format!("{version}/{name}"));
        }
    }
    keys.sort();
    keys
}

#[test]
fn every_corpus_file_renders_as_containerpilot_rendered_it_or_is_a_known_difference() {
    let envs = environments();
    let keys = references();
    assert_eq!(keys.len(), 127, "the corpus has 127 files");
    let mut identical = 0;
    let mut failures = Vec::new();
    for key in &keys {
        let raw = std::fs::read_to_string(corpus_file(key)).unwrap();
        let expected = std::fs::read_to_string(reference_dir().join(key)).unwrap();
        let env = envs.get(key).cloned().unwrap_or_default();
        let ours =
            template::render(&raw, &env).unwrap_or_else(|e| panic!("{key}: does not render: {e}"));
        let known = KNOWN_DIFFERENCES.iter().find(|(k, _)| k == key);
        match (ours == expected, known) {
            (true, None) => identical += 1,
            (false, Some(_)) => {
                // The difference is exactly the quirk: with ContainerPilot's
                // cut environment, autopilot renders its output byte for byte.
                let cut = quirks::containerpilot_env(&env);
                let theirs = template::render_split(&raw, &cut, &env).unwrap();
                assert_eq!(theirs, expected, "{key}: differs by more than the known quirk");
            }
            (true, Some(_)) => failures.push(format!(
                "{key}: listed as a known difference but renders identically; remove it"
            )),
            (false, None) => failures.push(format!(
                "{key}: differs from ContainerPilot's rendering at line {}:\n  ours:   {:?}\n  theirs: {:?}",
                first_differing_line(&ours, &expected).0,
                first_differing_line(&ours, &expected).1,
                first_differing_line(&ours, &expected).2,
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(identical, 127 - KNOWN_DIFFERENCES.len());
}

/// Each known difference is one a migrating user is warned about: loading
/// the file with its environment gives the `=` warning at the line that
/// differs, and no other corpus file gets one.
#[test]
fn the_equals_sign_warning_fires_on_the_known_difference_only() {
    let envs = environments();
    let mut warned = Vec::new();
    for key in references() {
        let raw = std::fs::read_to_string(corpus_file(&key)).unwrap();
        let env = envs.get(&key).cloned().unwrap_or_default();
        let warnings = quirks::env_value_warnings(&raw, &key, &env);
        if let Some(w) = warnings.first() {
            let ours = template::render(&raw, &env).unwrap();
            let line = raw.lines().nth(w.line - 1).unwrap();
            assert!(line.contains("CONSUL_ENCRYPT"), "{key}: {w}");
            assert_ne!(
                ours,
                std::fs::read_to_string(reference_dir().join(&key)).unwrap()
            );
            warned.push(key);
        }
    }
    let known: Vec<&str> = KNOWN_DIFFERENCES.iter().map(|(k, _)| *k).collect();
    assert_eq!(warned, known);
}

fn first_differing_line(a: &str, b: &str) -> (usize, String, String) {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (None, None) => return (n, "(same lines; line ends differ)".into(), String::new()),
            (x, y) if x == y => continue,
            (x, y) => {
                return (
                    n,
                    x.unwrap_or("<end>").to_string(),
                    y.unwrap_or("<end>").to_string(),
                );
            }
        }
    }
}

/// Where the corpus leans on the other quirks: each file and setting that
/// gets a warning about a string command or `each: "healthy"`, and nothing
/// else in the 127 files (run as images would, the app on the command line).
#[test]
fn the_corpus_gets_quirk_warnings_exactly_where_it_leans_on_containerpilot() {
    let envs = environments();
    let options = super::LoadOptions {
        app: vec!["/usr/local/bin/app".into()],
        self_exe: Some("/usr/local/bin/autopilot".into()),
    };
    let mut found = Vec::new();
    for key in references() {
        let env = envs.get(&key).cloned().unwrap_or_default();
        let Ok(loaded) = super::load_with(&corpus_file(&key), &env, &options) else {
            continue;
        };
        for w in &loaded.warnings {
            if w.message.contains("one string") || w.message.contains("each time") {
                found.push(format!("{key} {}", w.path));
            }
        }
    }
    assert_eq!(
        found,
        [
            // `each: "healthy"` from a watch: ran on every change.
            "v3/autopilotpattern__ghost__etc_containerpilot.json5 jobs[0].when.each",
            // `each: "unhealthy"` from a job: ran after every failing check.
            "v3/double16__autopilotpattern-base__etc_containerpilot.json5 jobs[2].when.each",
            "v3/double16__autopilotpattern-nginx__etc_containerpilot.json5 jobs[5].when.each",
            "v3/double16__autopilotpattern-prometheus__etc_containerpilot.json5 jobs[4].when.each",
            // curl ... `hostname` in a string: the backquotes reach curl.
            "v3/ofsole__snmp_exporter__etc_containerpilot_containerpilot.json5 jobs[2].health.exec",
            // --data 'locale=en_GB&text=tomorrow at eight': the quotes reach curl.
            "v3/tagshelfsrl__duckling__containerpilot.json5 jobs[0].health.exec",
        ]
    );
}
