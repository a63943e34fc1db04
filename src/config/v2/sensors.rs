//! ContainerPilot 2's `telemetry` section: the endpoint, and each sensor as
//! a declared metric plus a job that runs the check every `poll` and hands
//! its output to `-putmetric`.

use super::{
    SENSOR_KEYS, TELEMETRY_KEYS, line_of, optional_timeout, plain_job, required, required_period,
};
use crate::config::decode::fields::Fields;
use crate::config::decode::{telemetry, values};
use crate::config::error::Reporter;
use crate::config::metric_name::{full_name, is_valid_name};
use crate::config::model::{
    Exec, JobConfig, MetricConfig, MetricType, Restarts, TelemetryConfig, When,
};
use crate::config::source::{Span, Spanned, Value};

/// `telemetry`: the endpoint, and each sensor as a metric plus a job.
pub(super) fn telemetry(
    v: &Spanned<Value>,
    path: &str,
    self_exe: &str,
    rep: &mut Reporter<'_>,
) -> (Option<TelemetryConfig>, Vec<JobConfig>) {
    let Some(mut f) = Fields::open(v, path, "telemetry options", TELEMETRY_KEYS, rep) else {
        return (None, Vec::new());
    };
    let mut telemetry = telemetry::endpoint(&mut f, rep);
    let mut metrics = Vec::new();
    let mut jobs: Vec<JobConfig> = Vec::new();
    let sensors_path = f.path_of("sensors");
    if let Some(list) = f.get("sensors", rep) {
        match &list.value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Some((metric, job, span)) =
                        sensor(item, &format!("{sensors_path}[{i}]"), self_exe, rep)
                    else {
                        continue;
                    };
                    if jobs.iter().any(|j| j.name == job.name) {
                        rep.error(
                            span,
                            &format!("{sensors_path}[{i}].name"),
                            format!(
                                "there is already a sensor for the metric `{}`",
                                full_name(&metric)
                            ),
                            Some("metric names (namespace_subsystem_name) must be unique".into()),
                        );
                    }
                    metrics.push(metric);
                    jobs.push(job);
                }
            }
            other => rep.error(
                list.span(),
                &sensors_path,
                format!("expected an array of sensors, found {}", other.kind()),
                Some("write `\"sensors\": [{\"name\": ..., \"check\": ...}]`".into()),
            ),
        }
    }
    f.finish_lenient(rep, &|key| {
        (key == "metrics").then(|| {
            "`metrics` is ContainerPilot 3 syntax; in a ContainerPilot 2 config write `sensors`"
                .to_string()
        })
    });
    telemetry.metrics = metrics;
    (Some(telemetry), jobs)
}

/// A sensor: its metric, and the job that feeds the metric.
fn sensor(
    v: &Spanned<Value>,
    path: &str,
    self_exe: &str,
    rep: &mut Reporter<'_>,
) -> Option<(MetricConfig, JobConfig, Span)> {
    let mut f = Fields::open(v, path, "a sensor", SENSOR_KEYS, rep)?;
    let line = line_of(rep, v);
    let text = |f: &mut Fields<'_>, key: &str, rep: &mut Reporter<'_>| {
        f.get(key, rep)
            .and_then(|v| values::string(v, &f.path_of(key), rep))
            .unwrap_or_default()
    };
    let namespace = text(&mut f, "namespace", rep);
    let subsystem = text(&mut f, "subsystem", rep);
    let help = text(&mut f, "help", rep);
    let name_value = required(&mut f, "name", rep, "add `\"name\": \"requests\"`");
    let name = name_value.and_then(|n| values::string(n, &f.path_of("name"), rep));
    let kind = required(
        &mut f,
        "type",
        rep,
        "add `\"type\":` with one of: counter, gauge, histogram, summary",
    )
    .and_then(|t| metric_type(t, &f.path_of("type"), rep));
    let check = required(
        &mut f,
        "check",
        rep,
        "add `\"check\": [\"/bin/sensor.sh\"]`",
    )
    .and_then(|c| values::exec(c, &f.path_of("check"), rep));
    let poll = required_period(
        &mut f,
        "poll",
        rep,
        "add `\"poll\": 10`: seconds between two checks",
        "\"poll\": 10",
    );
    let timeout = optional_timeout(&mut f, rep, "\"timeout\": \"5s\"");
    f.finish_lenient(rep, &|key| {
        (key == "exec" || key == "command").then(|| "a sensor's command is `check`".to_string())
    });
    let metric = MetricConfig {
        namespace,
        subsystem,
        name: name?,
        help,
        kind: kind?,
    };
    let span = name_value.map_or(v.span(), Spanned::span);
    let metric_name = full_name(&metric);
    if !is_valid_name(&metric_name) {
        rep.error(
            span,
            &format!("{path}.name"),
            format!("`{metric_name}` is not a valid Prometheus metric name"),
            Some(
                "use letters, digits, `_` and `:`, not starting with a digit \
                 (the name is namespace_subsystem_name)"
                    .into(),
            ),
        );
        return None;
    }
    let poll = poll?;
    let job = JobConfig {
        name: format!("sensor.{metric_name}"),
        exec: Some(sensor_exec(&check?, self_exe, &metric_name)),
        when: When::Interval(poll),
        restarts: Restarts::Unlimited,
        timeout: Some(timeout.unwrap_or(poll)),
        ..plain_job(line)
    };
    Some((metric, job, span))
}

/// The command of a sensor job: run the check, then hand its output to the
/// metric through the control socket, as ContainerPilot 2 recorded the
/// check's output. The output is split on whitespace (no globbing), so a
/// trailing newline or padding does not matter; a failing check records
/// nothing and fails the run.
pub(super) fn sensor_exec(check: &Exec, self_exe: &str, metric: &str) -> Exec {
    let check = std::iter::once(check.program.as_str())
        .chain(check.args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "v=$({check}) || exit; set -f; set -- $v; exec {} -putmetric \"{metric}=$1\"",
        shell_quote(self_exe)
    );
    Exec {
        program: "sh".into(),
        args: vec!["-c".into(), script],
    }
}

/// Quotes a word for `sh` when it needs it.
fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn metric_type(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<MetricType> {
    let text = values::string(v, path, rep)?;
    telemetry::metric_type(&text, v, path, rep)
}
