#!/usr/bin/env python3
"""Validates the Kubernetes example (examples/kubernetes) offline.

    python3 tests/k8s/validate.py [--autopilot BIN] [DIR]

Two layers, both without a cluster or a network:

1. Schema: every document in DIR/*.yaml is checked against the Kubernetes
   OpenAPI schemas bundled in the `kubernetes-validate` package (strict: an
   unknown or misspelt field is an error), for the oldest and newest
   Kubernetes versions we claim (KUBERNETES_VERSIONS).
2. Wiring, which no schema knows: the sidecar's config (the ConfigMap) is
   valid for autopilot (`autopilot check`), the probes hit autopilot's
   /live and /ready on its telemetry port, the config file is where the
   ConfigMap is mounted, the template's variables are set, the health check
   targets the app's port, and the shutdown fits the grace period.

Prints one line per check and exits 1 at the end if any failed, naming each
failure, so `cargo test` (tests/it_sidecar.rs) shows what to fix.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

# Kubernetes versions the example must be valid for: shareProcessNamespace
# and every field used are GA well before the oldest.
KUBERNETES_VERSIONS = ("1.29.0", "latest")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

try:
    import yaml
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("validate.py: PyYAML is missing: run `bash scripts/install-deps.sh` as root")
try:
    import kubernetes_validate
except ImportError:  # pragma: no cover
    sys.exit(
        "validate.py: the kubernetes-validate package is missing: run "
        "`bash scripts/install-deps.sh` as root (or `python3 -m pip install kubernetes-validate`)"
    )


class Report:
    def __init__(self):
        self.failures = []

    def ok(self, what):
        print(f"ok: {what}")

    def fail(self, what):
        print(f"FAIL: {what}")
        self.failures.append(what)

    def check(self, cond, what, why):
        if cond:
            self.ok(what)
        else:
            self.fail(f"{what}: {why}")
        return cond


def load(directory):
    """Every YAML document in the directory, with the file it came from."""
    docs = []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    if not files:
        sys.exit(f"validate.py: no *.yaml in {directory}")
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def schema(report, docs):
    failed = 0
    for version in KUBERNETES_VERSIONS:
        wanted = kubernetes_validate.latest_version() if version == "latest" else version
        for name, doc in docs:
            where = f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, wanted, strict=True)
            except kubernetes_validate.ValidationError as e:
                failed += 1
                path = ".".join(str(p) for p in e.path) or "(document)"
                report.fail(f"schema {wanted}: {where}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                failed += 1
                report.fail(f"schema {wanted}: {where}: {e}")
    if failed == 0:
        versions = ", ".join(
            kubernetes_validate.latest_version() if v == "latest" else v
            for v in KUBERNETES_VERSIONS
        )
        print(f"schema: ok ({len(docs)} documents, strict, Kubernetes {versions})")


def one(report, docs, kind):
    found = [d for _, d in docs if d.get("kind") == kind]
    if len(found) != 1:
        report.fail(f"expected exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def pod_spec(workload):
    if workload.get("kind") == "Pod":
        return workload.get("spec", {})
    return workload.get("spec", {}).get("template", {}).get("spec", {})


def container(report, spec, name):
    for c in spec.get("containers", []):
        if c.get("name") == name:
            return c
    report.fail(f"no container named `{name}` in the pod")
    return None


def port_number(c, port):
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def run_check(report, autopilot, config_text, env):
    """`autopilot check` on the config: (ok, plan text)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json5", delete=False) as f:
        f.write(config_text)
        path = f.name
    try:
        full_env = dict(os.environ)
        full_env.pop("CONTAINERPILOT", None)
        full_env.update(env)
        out = subprocess.run(
            [autopilot, "check", "-config", path],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=60,
        )
    finally:
        os.unlink(path)
    text = out.stdout + out.stderr
    good = report.check(
        out.returncode == 0,
        "autopilot check accepts the ConfigMap's config",
        f"exit code {out.returncode}:\n{text}",
    )
    warnings = [l for l in text.splitlines() if l.startswith("warning:")]
    report.check(not warnings, "the config has no warnings", "\n".join(warnings))
    return good, text


def seconds(text):
    """A Go-style duration from the plan (`10s`, `1m30s`, `500ms`) in seconds."""
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def wiring(report, docs, autopilot):
    workload = one(report, [d for d in docs if d[1].get("kind") != "ConfigMap"], "Deployment")
    configmap = one(report, docs, "ConfigMap")
    if workload is None or configmap is None:
        return
    spec = pod_spec(workload)
    report.check(
        spec.get("shareProcessNamespace") is True,
        "shareProcessNamespace is true (autopilot runs as a non-PID-1 sidecar)",
        f"it is {spec.get('shareProcessNamespace')!r}",
    )
    app = container(report, spec, "app")
    sidecar = container(report, spec, "autopilot")
    if app is None or sidecar is None:
        return
    report.check(
        "autopilot" in sidecar.get("image", ""),
        "the sidecar runs an autopilot image",
        f"image is {sidecar.get('image')!r}",
    )

    # The config file: -config PATH, inside a mount of the ConfigMap.
    args = sidecar.get("args", [])
    if not report.check(
        len(args) >= 2 and args[0] in ("-config", "--config"),
        "the sidecar's args pass -config",
        f"args are {args!r}",
    ):
        return
    config_path = args[1]
    volumes = {v.get("name"): v for v in spec.get("volumes", [])}
    mount = next(
        (
            m
            for m in sidecar.get("volumeMounts", [])
            if config_path.startswith(m.get("mountPath", "").rstrip("/") + "/")
        ),
        None,
    )
    if not report.check(
        mount is not None,
        f"{config_path} is inside one of the sidecar's volume mounts",
        "mount the ConfigMap's volume at its directory",
    ):
        return
    volume = volumes.get(mount.get("name"), {})
    report.check(
        volume.get("configMap", {}).get("name") == configmap["metadata"]["name"],
        f"the mount at {mount['mountPath']} is the ConfigMap {configmap['metadata']['name']}",
        f"volume {mount.get('name')!r} is {volume!r}",
    )
    key = config_path[len(mount["mountPath"].rstrip("/")) + 1 :]
    data = configmap.get("data", {})
    if not report.check(
        key in data, f"the ConfigMap has the key {key}", f"it has {sorted(data)}"
    ):
        return
    config_text = data[key]

    # Every template variable is in the sidecar's environment.
    env_names = {e.get("name") for e in sidecar.get("env", [])}
    used = set(re.findall(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)", config_text))
    kubernetes_sets = {"HOSTNAME"}
    missing = sorted(used - env_names - kubernetes_sets)
    report.check(
        not missing,
        f"the config's template variables ({', '.join(sorted(used)) or 'none'}) are set",
        f"add {missing} to the sidecar's env",
    )

    good, plan = run_check(report, autopilot, config_text, {v: "10.0.0.1" for v in used})
    if not good:
        return

    # Probes: /live and /ready on autopilot's telemetry port.
    match = re.search(r"probes +GET /live and /ready on port (\d+)", plan)
    if not report.check(
        match is not None,
        "the config serves the probes (telemetry is configured)",
        "add `telemetry: {port: 9090}` to the config",
    ):
        return
    telemetry_port = int(match.group(1))
    for probe, path in (("livenessProbe", "/live"), ("readinessProbe", "/ready")):
        http = sidecar.get(probe, {}).get("httpGet")
        if not report.check(
            http is not None, f"the sidecar has a {probe} with httpGet", "add one"
        ):
            continue
        report.check(
            http.get("path") == path,
            f"{probe} asks {path}",
            f"it asks {http.get('path')!r}; autopilot serves {path}",
        )
        number = port_number(sidecar, http.get("port"))
        report.check(
            number == telemetry_port,
            f"{probe} asks port {telemetry_port} (telemetry.port)",
            f"it asks {http.get('port')!r} = {number}, but the config's telemetry port is "
            f"{telemetry_port}",
        )

    # The health check targets the app's port over the pod's loopback.
    app_ports = {p.get("containerPort") for p in app.get("ports", [])}
    for target in re.findall(r"health +(?:GET \w+://[^:/ ]+|connects to [^: ]+):(\d+)", plan):
        report.check(
            int(target) in app_ports,
            f"a health check targets the app's port {target}",
            f"the app's ports are {sorted(app_ports)}",
        )

    # Shutdown: autopilot is done (stopTimeout), and the app's preStop is
    # over, well before the kubelet's SIGKILL.
    grace = spec.get("terminationGracePeriodSeconds", 30)
    stop = re.search(r"shutdown +within (\S+)", plan)
    stop_timeout = seconds(stop.group(1)) if stop else 5
    report.check(
        stop_timeout < grace,
        f"autopilot's stopTimeout ({stop_timeout:g}s) ends before terminationGracePeriodSeconds ({grace})",
        "raise terminationGracePeriodSeconds above the config's stopTimeout, or lower stopTimeout",
    )
    pre_stop = app.get("lifecycle", {}).get("preStop", {})
    delay = 0
    if "sleep" in pre_stop:
        delay = pre_stop["sleep"].get("seconds", 0)
    elif "exec" in pre_stop:
        command = pre_stop["exec"].get("command", [])
        if len(command) == 2 and command[0].endswith("sleep") and command[1].isdigit():
            delay = int(command[1])
    report.check(
        delay > 0,
        f"the app's preStop waits ({delay}s) so autopilot deregisters before the app stops",
        "add `lifecycle: {preStop: {exec: {command: [\"sleep\", \"5\"]}}}` to the app",
    )
    report.check(
        delay < grace,
        f"the app's preStop ({delay}s) fits in terminationGracePeriodSeconds ({grace})",
        "shorten the preStop or raise the grace period",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory",
        nargs="?",
        default=os.path.join(REPO, "examples", "kubernetes"),
        help="the manifests (default: examples/kubernetes)",
    )
    parser.add_argument(
        "--autopilot",
        default=os.path.join(REPO, "target", "debug", "autopilot"),
        help="the autopilot binary for `autopilot check` (default: target/debug/autopilot)",
    )
    options = parser.parse_args()
    if not os.access(options.autopilot, os.X_OK):
        sys.exit(f"validate.py: no autopilot binary at {options.autopilot}: run `cargo build`")
    report = Report()
    docs = load(options.directory)
    schema(report, docs)
    wiring(report, docs, options.autopilot)
    if report.failures:
        print(f"\n{len(report.failures)} check(s) failed:")
        for f in report.failures:
            print(f"  - {f}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
