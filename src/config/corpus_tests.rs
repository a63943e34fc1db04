//! The compatibility corpus: real ContainerPilot configs from public
//! repositories (`../shared/compat-corpus`, see its README) must load, or fail
//! with a located error that is the config's own fault.

use std::collections::HashMap;
use std::path::PathBuf;

use super::error::ConfigError;
use super::model::SignalMode;
use super::{LoadOptions, load, load_with};

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/compat-corpus"
    ))
}

/// Files the corpus README lists as failing as published, through their own
/// fault (syntax, or a template that cannot work).
const BROKEN_AS_PUBLISHED: [&str; 8] = [
    "v2/autopilotpattern__nfsserver__etc_containerpilot.json",
    "v2/autopilotpattern__skel__etc_containerpilot.json",
    "v2/ttrahan__cp-nginx__etc_containerpilot.json",
    "v2/Thomanphan__nginx__etc_containerpilot.json",
    "v3/technostar98__mysql__etc_containerpilot.json5",
    "v3/autopilotpattern__memcached__etc_containerpilot.json5",
    "v3/geek__minio-proto__etc_containerpilot.json5",
    "v3/caseywebdev__bob__etc_containerpilot.json5",
];

/// Files that parse but that ContainerPilot 3 itself rejected, because its
/// decoder refused unknown keys too. Each must fail with the given message,
/// which names the key and suggests the fix.
const REJECTED_BY_CONTAINERPILOT: [(&str, &str); 4] = [
    // `restart` instead of `restarts` (and `"always"`, which never existed).
    (
        "v3/cheapRoc__redis__etc_containerpilot.json5",
        "unknown key `restart`",
    ),
    // ContainerPilot 2's `telemetry.sensors` left in a ContainerPilot 3 file.
    (
        "v3/Thomanphan__nginx__etc_containerpilot.json5",
        "unknown key `sensors`",
    ),
    // `port` without `health`: ContainerPilot 3 said "job[vault].health must
    // be set if 'port' is set".
    (
        "v3/leoj3n__consul-vault__etc_containerpilot.json5",
        "has `port` 8200 but no `health` check",
    ),
    (
        "v3/shai-adani-ericom__Proxy__config_containerpilot.json",
        "has `port` 3128 but no `health` check",
    ),
];

/// A plausible value for each variable the corpus templates read.
fn plausible(var: &str) -> &'static str {
    match var {
        "ACME_DOMAIN" => "example.com",
        "ADVERTISE_CIDR" => "10.0.0.0/8",
        "ADVERTISE_CIDR6" => "fd00::/8",
        "APP_EXEC" => "/usr/local/bin/app --serve",
        "APP_HEALTH_EXEC" => "/usr/local/bin/app --health",
        "APP_HEALTH_INTERVAL" => "10",
        "APP_HEALTH_TIMEOUT" => "5",
        "APP_HEALTH_TTL" => "25",
        "APP_INTERFACES" => "eth0,eth1",
        "APP_INTERFACES_STATIC" => "10.0.0.5",
        "APP_NAME" => "app",
        "APP_PORT" => "8080",
        "APP_RESTARTS" => "10",
        "APP_TAGS" => "web,prod",
        "BACKEND" => "app",
        "CASSANDRA_PASSWORD" => "secret",
        "CASSANDRA_USER" => "cassandra",
        "CAS_SERVICE_NAME" => "cassandra",
        "CONFD_BACKEND" => "env",
        "CONSUL" => "consul",
        "CONSUL_ADDR" => "consul",
        "CONSUL_AGENT" => "1",
        "CONSUL_DATACENTER" => "dc1",
        "CONSUL_DEV" => "1",
        "CONSUL_ENCRYPT" => "c2VjcmV0c2VjcmV0",
        "CONSUL_PORT" => "8500",
        "CONSUL_SERVICE_NAME" => "web",
        "CONSUL_SERVICE_PORT" => "9116",
        "CONSUL_SERVICE_TAGS" => "blue,green",
        "CONSUL_TOKEN" => "00000000-0000-0000-0000-000000000000",
        "CONSUL_URL" => "http://consul:8500",
        "ES_SERVICE_NAME" => "elasticsearch",
        "ETCD_BOOTSTRAP" => "1",
        "HAPROXY_EXPORTER" => "1",
        "HEALTH_ENDPOINT" => "health",
        "LOGLEVEL" | "LOG_LEVEL" => "INFO",
        "LOG_FORMAT" => "default",
        "NAMESPACE" => "app",
        "NODE_START" => "node .",
        "PORT" => "8080",
        "PUB_ADDR" => "10.0.0.5",
        "PUB_PORT" => "8000",
        "REPLICASET" => "rs0",
        "SCHEME" => "http",
        "SERVICE_NAME" => "mysql",
        "TLS_VERIFY" => "true",
        "WATCH" => "1",
        // ContainerPilot 2 corpus variables.
        "BACKEND_PORT" => "8080",
        "CONSULPORT" => "8500",
        "CONSUL_ADDRESS" => "consul:8500",
        "CONSUL_HOST" => "consul",
        "CONTAINERPILOT_CONSUL_IP" => "10.0.0.5",
        "HOSTNAME" => "web1",
        "MONGO_REPLSET" => "rs0",
        "SELF_HOST" => "web1",
        "SERVICENAME" => "temperature",
        "SERVICE_ADDRESS" => "10.0.0.5",
        _ => "value",
    }
}

struct Entry {
    file: String,
    version: String,
    vars: Vec<String>,
}

fn manifest() -> Vec<Entry> {
    let text =
        std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("corpus MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry {
                file: cols[0].to_string(),
                version: cols[1].to_string(),
                vars: cols.get(5).map_or(Vec::new(), |v| {
                    v.split_whitespace().map(str::to_string).collect()
                }),
            }
        })
        .collect()
}

fn env_for(entry: &Entry) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for var in &entry.vars {
        if let Some(prefix) = var.strip_suffix('*') {
            for i in 0..30 {
                let value = if prefix.contains("INTERVAL") {
                    "10".to_string()
                } else {
                    format!("svc-{i}")
                };
                env.insert(format!("{prefix}{i}"), value);
            }
        } else {
            env.insert(var.clone(), plausible(var).to_string());
        }
    }
    env
}

fn path_of(entry: &Entry) -> PathBuf {
    corpus_dir().join(&entry.version).join(&entry.file)
}

fn key(entry: &Entry) -> String {
    format!("{}/{}", entry.version, entry.file)
}

/// A failure must be located (a line number) and render without panicking.
fn assert_located(name: &str, err: &ConfigError) {
    let first = err
        .errors()
        .next()
        .unwrap_or_else(|| panic!("{name}: an error without diagnostics"));
    assert!(
        first.line > 0,
        "{name}: error without a line number:\n{err}"
    );
    assert!(!err.to_string().is_empty());
}

#[test]
fn every_v3_corpus_config_loads() {
    let entries: Vec<Entry> = manifest()
        .into_iter()
        .filter(|e| e.version == "v3")
        .collect();
    assert_eq!(entries.len(), 65, "the corpus README counts 65 v3 files");
    let mut failures = Vec::new();
    for entry in &entries {
        let name = key(entry);
        let result = load(&path_of(entry), &env_for(entry));
        let rejected = REJECTED_BY_CONTAINERPILOT.iter().find(|(f, _)| *f == name);
        match (
            result,
            BROKEN_AS_PUBLISHED.contains(&name.as_str()),
            rejected,
        ) {
            (Ok(loaded), false, None) => {
                assert!(
                    !loaded.config.jobs.is_empty() || !loaded.config.watches.is_empty(),
                    "{name}: empty"
                );
            }
            (Err(err), true, _) => assert_located(&name, &err),
            (Err(err), false, Some((_, message))) => {
                assert_located(&name, &err);
                assert!(
                    err.errors().any(|d| d.message.contains(message)),
                    "{name}: expected {message:?}:\n{err}"
                );
                assert!(
                    err.errors().all(|d| d.hint.is_some()),
                    "{name}: an error without a hint:\n{err}"
                );
            }
            (Ok(_), _, _) => {
                failures.push(format!("{name}: loaded, but it is broken as published"))
            }
            (Err(err), false, None) => failures.push(format!("{name}:\n{err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus files failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Every ContainerPilot 2 file translates into jobs and watches and has a
/// plan (`autopilot check`), run with an app on the command line, as an
/// image's ENTRYPOINT would; the files broken as published fail, located.
#[test]
fn every_v2_corpus_config_translates_and_has_a_plan() {
    let entries: Vec<Entry> = manifest()
        .into_iter()
        .filter(|e| e.version == "v2")
        .collect();
    assert_eq!(entries.len(), 62, "the corpus README counts 62 v2 files");
    let options = LoadOptions {
        app: vec!["/usr/local/bin/app".into(), "--port={{ .PORT }}".into()],
        self_exe: Some("/usr/local/bin/autopilot".into()),
    };
    let mut failures = Vec::new();
    for entry in &entries {
        let name = key(entry);
        let mut env = env_for(entry);
        env.insert("PORT".into(), "8080".into());
        let broken = BROKEN_AS_PUBLISHED.contains(&name.as_str());
        match (load_with(&path_of(entry), &env, &options), broken) {
            (Ok(loaded), false) => {
                let config = &loaded.config;
                assert_eq!(config.signals, SignalMode::V2, "{name}");
                let app = config.jobs.iter().find(|j| j.main);
                let app = app.unwrap_or_else(|| panic!("{name}: no app job"));
                assert_eq!(
                    app.exec.as_ref().map(|e| e.display()).as_deref(),
                    Some("/usr/local/bin/app --port=8080"),
                    "{name}"
                );
                let plan = crate::plan::plan(config).to_string();
                assert!(plan.contains("ContainerPilot 2"), "{name}:\n{plan}");
                assert!(
                    plan.contains(&format!("job {} (", app.name)),
                    "{name}:\n{plan}"
                );
            }
            (Err(err), true) => assert_located(&name, &err),
            (Ok(_), true) => {
                failures.push(format!("{name}: loaded, but it is broken as published"))
            }
            (Err(err), false) => failures.push(format!("{name}:\n{err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus files failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `autopilot migrate` on every ContainerPilot 2 file that loads writes a
/// ContainerPilot 3 config that loads again into the same plan, or says
/// which edit it needs (a service name version 3 does not take).
#[test]
fn every_v2_corpus_config_migrates_to_the_same_plan() {
    let options = LoadOptions {
        app: vec!["/usr/local/bin/app".into(), "--serve".into()],
        self_exe: Some("/usr/local/bin/autopilot".into()),
    };
    let mut migrated = 0;
    let mut needs_edit = Vec::new();
    for entry in manifest().into_iter().filter(|e| e.version == "v2") {
        let name = key(&entry);
        let Ok(loaded) = load_with(&path_of(&entry), &env_for(&entry), &options) else {
            continue;
        };
        let migration = super::migrate::migrate(&loaded.config, &name);
        let text = migration.text;
        let result = super::load_str(&text, "migrated.json5", &HashMap::new());
        if !migration.todo.is_empty() {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name}: loads despite {:?}", migration.todo));
            assert!(
                err.errors()
                    .all(|d| d.message.contains("cannot be a Consul service name")),
                "{name}:\n{err}"
            );
            needs_edit.push(name);
            continue;
        }
        let again = result.unwrap_or_else(|e| {
            panic!("{name}: the migrated config does not load:\n{e}\n\n{text}")
        });
        assert_eq!(again.config.signals, SignalMode::V3, "{name}");
        assert_eq!(
            crate::plan::comparable_plan(&loaded.config),
            crate::plan::comparable_plan(&again.config),
            "{name}: the plans differ; migrated text:\n{text}"
        );
        migrated += 1;
    }
    // `node_exporter` is registered by ContainerPilot 2 but not by version 3.
    assert_eq!(
        needs_edit,
        ["v2/vickov__autopilotpattern-consul__etc_containerpilot.json"]
    );
    assert_eq!(migrated, 62 - 4 - 1, "every v2 file but the 4 broken ones");
}

/// Without any environment (every template variable unset), each file still
/// loads or fails with a located error, as `port: {{ .PORT }}` → `port: ,` does.
#[test]
fn corpus_configs_without_their_variables_fail_cleanly() {
    let mut loaded = 0;
    for entry in manifest() {
        match load(&path_of(&entry), &HashMap::new()) {
            Ok(_) => loaded += 1,
            Err(err) => assert_located(&key(&entry), &err),
        }
    }
    assert!(
        loaded > 30,
        "only {loaded} corpus files load without variables"
    );
}

/// Never panic, whatever the input: feed mangled versions of the corpus
/// through the whole pipeline (template, JSON5, decoding, display).
#[test]
fn mangled_corpus_inputs_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut sources = Vec::new();
    for entry in manifest() {
        if let Ok(text) = std::fs::read_to_string(path_of(&entry)) {
            sources.push((text, env_for(&entry)));
        }
    }
    let noise = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "'",
        "{{",
        "}}",
        "{{ .X }}",
        "\n",
        "0x",
        "-",
        "null",
        "//",
        "/*",
        "\\",
        "µ",
        "when",
        "interval: -1",
        "port: 99999",
        "restarts: 'x'",
        "{{ end }}",
        "\u{2028}",
    ];
    for round in 0..400 {
        let (text, env) = &sources[rng.below(sources.len())];
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..=rng.below(6) {
            if chars.is_empty() {
                break;
            }
            let at = rng.below(chars.len());
            match rng.below(4) {
                0 => {
                    let len = rng.below(40).min(chars.len() - at);
                    chars.drain(at..at + len);
                }
                1 => {
                    let piece = noise[rng.below(noise.len())];
                    chars.splice(at..at, piece.chars());
                }
                2 => chars.truncate(at),
                _ => {
                    let other = rng.below(chars.len());
                    chars.swap(at, other);
                }
            }
        }
        let mangled: String = chars.into_iter().collect();
        let outcome =
            std::panic::catch_unwind(|| match super::load_str(&mangled, "fuzz.json5", env) {
                Ok(loaded) => {
                    let _ = crate::plan::plan(&loaded.config).to_string();
                }
                Err(err) => {
                    let _ = err.to_string();
                }
            });
        assert!(outcome.is_ok(), "round {round} panicked on:\n{mangled}");
        // The JSON5 and decoding stages alone, without the template.
        let outcome =
            std::panic::catch_unwind(|| super::parse_str(&mangled, "fuzz.json5").map(|_| ()));
        assert!(
            outcome.is_ok(),
            "round {round} panicked (no template) on:\n{mangled}"
        );
    }
}

/// A tiny deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            (self.0 % n as u64) as usize
        }
    }
}

/// Every corpus file that loads is valid against the JSON Schema for editors
/// (`autopilot schema`, built from the decoder's key lists): the schema
/// accepts what the decoder accepts. Checked with Python's `jsonschema`
/// (scripts/install-deps.sh installs it), a validator independent of ours.
#[test]
fn every_corpus_config_that_loads_matches_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LoadOptions {
        app: vec!["/usr/local/bin/app".into()],
        self_exe: None,
    };
    let mut written = 0;
    for entry in manifest() {
        let mut env = env_for(&entry);
        env.insert("PORT".into(), "8080".into());
        let Ok(loaded) = load_with(&path_of(&entry), &env, &options) else {
            continue;
        };
        let root = super::source::parse(&loaded.rendered, &key(&entry))
            .unwrap_or_else(|e| panic!("{}: {e}", key(&entry)));
        let json = crate::cli::schema::json_of(&root);
        let file = dir.path().join(key(&entry).replace('/', "__") + ".json");
        std::fs::write(&file, json.to_string()).expect("write");
        written += 1;
    }
    assert!(written > 100, "only {written} corpus files loaded");
    // A file the decoder refuses must fail too, or the check proves nothing.
    std::fs::write(
        dir.path().join("planted-typo.json"),
        r#"{"jobs": [{"name": "app", "exce": "/bin/app"}]}"#,
    )
    .expect("write");
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, crate::cli::schema::text()).expect("write schema");
    let script = r#"
import json, sys, glob, os, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sorted(glob.glob(os.path.join(sys.argv[2], "*.json"))):
    if path == sys.argv[1]:
        continue
    for error in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(os.path.basename(path), "/".join(map(str, error.absolute_path)), error.message[:200])
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .arg(dir.path())
        .output()
        .expect("run python3 (scripts/install-deps.sh installs it with jsonschema)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .starts_with("planted-typo.json jobs/0 Additional properties are not allowed ('exce'"),
        "the schema let the planted typo through:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "corpus files the decoder loads but the schema rejects:\n{stdout}"
    );
}
