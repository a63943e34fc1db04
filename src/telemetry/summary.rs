//! A Prometheus summary: count, sum and quantiles over a sliding window.
//!
//! Neither `prometheus` (tikv) nor `prometheus-client` has a summary type, and
//! ContainerPilot configs may declare `type: "summary"`, so this is ours. It
//! follows what ContainerPilot's Go client did by default: the 0.5, 0.9 and
//! 0.99 quantiles over the last 10 minutes, `_sum` and `_count` over all time.
//!
//! Quantiles are exact (nearest rank over the kept observations) rather than
//! streaming estimates: sensors update metrics a few times a minute, so the
//! window is small. To keep memory bounded whatever the rate, only the most
//! recent [`MAX_SAMPLES`] observations are kept. Old ones are dropped when a
//! value is observed or scraped, never by a timer.

use prometheus::proto::{Metric, MetricFamily, MetricType, Quantile, Summary as SummaryValue};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The quantiles reported, as ContainerPilot's Go client did by default.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
/// How far back quantiles look.
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// The most observations kept for quantiles.
pub const MAX_SAMPLES: usize = 1024;

pub struct Summary {
    name: String,
    help: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    count: u64,
    sum: f64,
    /// Recent observations, oldest first.
    window: VecDeque<(Instant, f64)>,
}

impl State {
    fn forget_before(&mut self, now: Instant) {
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > MAX_AGE)
        {
            self.window.pop_front();
        }
    }
}

impl Summary {
    pub fn new(name: &str, help: &str) -> Summary {
        Summary {
            name: name.to_string(),
            help: help.to_string(),
            state: Mutex::default(),
        }
    }

    pub fn observe(&self, value: f64) {
        self.observe_at(value, Instant::now());
    }

    fn observe_at(&self, value: f64, now: Instant) {
        let mut s = self.state.lock().unwrap();
        s.count += 1;
        s.sum += value;
        s.forget_before(now);
        if s.window.len() == MAX_SAMPLES {
            s.window.pop_front();
        }
        s.window.push_back((now, value));
    }

    /// The metric family as the text encoder wants it.
    pub fn family(&self) -> MetricFamily {
        self.family_at(Instant::now())
    }

    fn family_at(&self, now: Instant) -> MetricFamily {
        let (count, sum, mut values) = {
            let mut s = self.state.lock().unwrap();
            s.forget_before(now);
            let values: Vec<f64> = s.window.iter().map(|(_, v)| *v).collect();
            (s.count, s.sum, values)
        };
        values.sort_by(f64::total_cmp);
        let quantiles = QUANTILES
            .iter()
            .map(|&q| {
                let mut quantile = Quantile::default();
                quantile.set_quantile(q);
                quantile.set_value(nearest_rank(&values, q));
                quantile
            })
            .collect();
        let mut value = SummaryValue::default();
        value.set_sample_count(count);
        value.set_sample_sum(sum);
        value.set_quantile(quantiles);
        let mut metric = Metric::default();
        metric.set_summary(value);
        let mut family = MetricFamily::default();
        family.set_name(self.name.clone());
        family.set_help(self.help.clone());
        family.set_field_type(MetricType::SUMMARY);
        family.set_metric(vec![metric]);
        family
    }
}

/// The `q` quantile of sorted `values` by nearest rank; NaN when empty, as
/// Prometheus clients report a quantile without observations.
fn nearest_rank(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile_values(f: &MetricFamily) -> Vec<f64> {
        f.get_metric()[0]
            .get_summary()
            .get_quantile()
            .iter()
            .map(|q| q.value())
            .collect()
    }

    #[test]
    fn quantiles_count_and_sum() {
        let s = Summary::new("latency", "help");
        let t0 = Instant::now();
        for v in 1..=100 {
            s.observe_at(v as f64, t0);
        }
        let f = s.family_at(t0);
        assert_eq!(quantile_values(&f), vec![50.0, 90.0, 99.0]);
        assert_eq!(f.get_metric()[0].get_summary().sample_count(), 100);
        assert_eq!(f.get_metric()[0].get_summary().sample_sum(), 5050.0);
    }

    #[test]
    fn old_observations_leave_the_window_but_not_the_totals() {
        let s = Summary::new("x", "help");
        let t0 = Instant::now();
        s.observe_at(1000.0, t0);
        s.observe_at(1.0, t0 + MAX_AGE);
        let later = t0 + MAX_AGE + Duration::from_secs(1);
        assert_eq!(quantile_values(&s.family_at(later)), vec![1.0, 1.0, 1.0]);
        let summary = s.family_at(later).get_metric()[0].get_summary().clone();
        assert_eq!((summary.sample_count(), summary.sample_sum()), (2, 1001.0));
        let empty = s.family_at(later + MAX_AGE * 2);
        assert!(quantile_values(&empty).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn memory_is_bounded() {
        let s = Summary::new("x", "help");
        let t0 = Instant::now();
        for v in 0..(MAX_SAMPLES * 3) {
            s.observe_at(v as f64, t0);
        }
        assert_eq!(s.state.lock().unwrap().window.len(), MAX_SAMPLES);
        assert_eq!(
            s.family_at(t0).get_metric()[0].get_summary().sample_count(),
            (MAX_SAMPLES * 3) as u64
        );
    }
}
