//! Retry delays for Consul calls: exponential, capped, with a little jitter
//! so many services retrying at once do not hit a returning agent together.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// The delay handed out last; `None` after a success.
    current: Option<Duration>,
    seed: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Backoff {
            initial,
            max,
            current: None,
            seed,
        }
    }

    /// The delay before the next attempt: `initial`, then doubling up to `max`,
    /// each shortened by up to a fifth at random.
    pub fn next_delay(&mut self) -> Duration {
        let base = match self.current {
            None => self.initial,
            Some(d) => d.saturating_mul(2).min(self.max),
        };
        self.current = Some(base);
        // xorshift64: enough randomness for spreading retries.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fifth = base / 5;
        let cut = if fifth.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.seed % fifth.as_nanos().max(1) as u64)
        };
        base - cut
    }

    /// After a success: the next failure starts again at `initial`.
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Whether the last attempt failed (a delay is in progress).
    pub fn is_backing_off(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, base) in delays.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            let base = Duration::from_millis(base);
            assert!(*d <= base && *d >= base * 4 / 5, "{d:?} vs {base:?}");
        }
        assert!(b.is_backing_off());
        b.reset();
        assert!(!b.is_backing_off());
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
