use super::*;
use crate::config::{LoadOptions, load_str, load_str_with};
use crate::plan::comparable_plan;
use std::collections::HashMap;

/// A config without what differs between a file and its migration:
/// positions, and the signal meanings of ContainerPilot 2.
fn comparable(mut c: Config) -> Config {
    for j in &mut c.jobs {
        j.line = 0;
    }
    for w in &mut c.watches {
        w.line = 0;
    }
    c.signals = SignalMode::V3;
    c
}

fn round_trip(v2: &str, app: &[&str]) -> (Config, String, Config) {
    let options = LoadOptions {
        app: app.iter().map(|s| s.to_string()).collect(),
        self_exe: Some("/bin/autopilot".into()),
    };
    let env = HashMap::new();
    let before = load_str_with(v2, "old.json", &env, &options)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let text = to_json5(&before, "old.json");
    let after = load_str(&text, "new.json5", &env)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config;
    (before, text, after)
}

const FULL: &str = r#"{
      "consul": "localhost:8500",
      "logging": {"level": "DEBUG"},
      "stopTimeout": 7,
      "preStart": "/bin/prep {{ "{{" }} not-a-template",
      "preStop": ["/bin/drain", "--all jobs"],
      "postStop": "/bin/bye",
      "services": [
        {"name": "web", "port": 80, "health": "/bin/check", "poll": 5, "ttl": 12,
         "tags": ["a", "b"], "interfaces": ["eth0"],
         "consul": {"enableTagOverride": true, "deregisterCriticalServiceAfter": "10m"}}
      ],
      "backends": [
        {"name": "db", "poll": 3, "onChange": "/bin/reload db", "tag": "primary"},
        {"name": "cache", "onChange": "/bin/reload cache", "timeout": "30s"},
        {"name": "quiet"}
      ],
      "coprocesses": [{"command": ["/bin/consul", "agent"], "restarts": "unlimited"},
                      {"name": "sidecar", "command": "/bin/side", "restarts": 3}],
      "tasks": [{"name": "backup", "command": "/bin/backup", "frequency": "5m", "timeout": "1m"},
                {"command": "/bin/tick", "frequency": "1500ms"}],
      "telemetry": {"port": 9091, "tags": ["metrics"], "sensors": [
        {"namespace": "app", "name": "load", "help": "load", "type": "gauge", "poll": 5,
         "check": ["/bin/load", "it's"]}
      ]}
    }"#;

#[test]
fn a_v2_config_migrates_to_the_same_jobs_and_watches() {
    let (before, text, after) = round_trip(FULL, &["/bin/app", "-x", "two words"]);
    assert_eq!(
        comparable(before.clone()),
        comparable(after.clone()),
        "\n{text}"
    );
    assert_eq!(
        comparable_plan(&before),
        comparable_plan(&after),
        "\n{text}"
    );
    assert!(text.contains("hooks: {"), "{text}");
    assert!(text.contains("onChange: \"/bin/reload db\""), "{text}");
    assert!(text.contains("// The app ContainerPilot 2 took"), "{text}");
    // `{{` in a value is escaped, so the template step leaves it alone.
    assert!(text.contains("\\u007b\\u007b not-a-template"), "{text}");
}

#[test]
fn without_an_app_the_hooks_still_migrate() {
    let (before, text, after) = round_trip(FULL, &[]);
    assert_eq!(comparable(before), comparable(after), "\n{text}");
    assert!(text.contains("No app was given"), "{text}");
}

#[test]
fn a_v3_config_migrates_to_itself() {
    let v3 = r#"{
          jobs: [
            {name: "setup", exec: "/bin/setup", exitOnFailure: true},
            {name: "app", exec: ["/bin/app", "a b"], when: {source: "setup", once: "exitSuccess"},
             restarts: 2, backoff: {initial: "1s", max: "1m", reset: "5m"}, port: 80,
             health: {http: {url: "http://localhost/", status: "200-399"}, interval: 1.5, ttl: 5},
             meta: {"x-y": "1"}, initial_status: "warning",
             hooks: {preStop: "/bin/drain"},
             leader: {key: "service/app/primary", ttl: "20s", lockDelay: "2s"}},
            {name: "hup", exec: "/bin/hup", when: {each: "SIGHUP"}},
          ],
          watches: [{name: "cfg", key: "app/config", onChange: "/bin/reconfig"}],
          consul: {address: "localhost:8501", scheme: "https", tls: {verify: false}},
          control: {socket: "/tmp/a.sock"},
        }"#;
    let env = HashMap::new();
    let before = load_str(v3, "a.json5", &env).unwrap().config;
    let text = to_json5(&before, "a.json5");
    let after = load_str(&text, "b.json5", &env)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config;
    assert_eq!(comparable(before), comparable(after), "\n{text}");
}

#[test]
fn output_is_readable() {
    let (_, text, _) = round_trip(
        r#"{"consul": "c:8500", "preStart": "/bin/prep",
                "services": [{"name": "web", "port": 80, "health": "/bin/check", "poll": 5, "ttl": 12}]}"#,
        &["/bin/app"],
    );
    let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("//")).collect();
    assert_eq!(
        body,
        [
            "{",
            "  consul: \"c:8500\",",
            "  stopTimeout: \"10s\",",
            "  jobs: [",
            "    {",
            "      // The app ContainerPilot 2 took from the command line.",
            "      name: \"app\",",
            "      exec: \"/bin/app\",",
            "      stopTimeout: \"5s\",",
            "      logging: {raw: true},",
            "      main: true,",
            "      hooks: {preStart: \"/bin/prep\"},",
            "    },",
            "    {",
            "      name: \"web\",",
            "      when: {source: \"app.preStart\", once: \"exitSuccess\"},",
            "      health: {exec: \"/bin/check\", interval: 5, ttl: 12},",
            "      port: 80,",
            "    },",
            "  ],",
            "}",
        ]
    );
}
