//! Durations as ContainerPilot wrote them.
//!
//! Two spellings exist in ContainerPilot configs:
//! - Go's `time.ParseDuration` syntax (`"1500ms"`, `"1m30s"`, `"1.5s"`), used
//!   by `when.interval`, `timeout`, `stopTimeout`, `health.timeout`;
//! - plain integers meaning seconds, either as numbers (`5`) or, through
//!   ContainerPilot's `GetTimeout`, as numeric strings (`"10"`).
//!
//! The decoder picks which one a field accepts; this module only parses and
//! formats. Negative durations mean nothing to a supervisor and are rejected,
//! and so are durations longer than [`MAX`]: the runtime adds them to clocks
//! and multiplies them, and a config that passes `check` must not be able to
//! overflow either.

use std::fmt;
use std::time::Duration;

/// Why a duration did not parse, with a suggestion when one is obvious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The longest duration a config may give: ten years. Far beyond any sensible
/// interval or timeout, and far within what the runtime can add to a clock
/// (Go's own limit is about 292 years, Rust's `Instant` overflows near there).
pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `MAX` as written in messages.
const MAX_TEXT: &str = "87600h (10 years)";

/// `d` when it is at most [`MAX`].
fn bounded(d: Duration, original: &str) -> Result<Duration, DurationError> {
    if d > MAX {
        return Err(too_long(original));
    }
    Ok(d)
}

/// `from + after`, or the farthest representable instant: decoding bounds
/// every configured duration by [`MAX`], and this keeps the runtime from
/// panicking even if a duration ever escapes that bound.
pub fn later(from: tokio::time::Instant, after: Duration) -> tokio::time::Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(MAX))
        .unwrap_or(from)
}

fn fail(message: impl Into<String>, hint: Option<String>) -> DurationError {
    DurationError {
        message: message.into(),
        hint,
    }
}

const UNITS_HINT: &str = "durations are written like `500ms`, `10s`, `1m30s` or `2h` \
                          (units: ns, us, ms, s, m, h)";

/// Nanoseconds per unit, longest spelling first so `ms` wins over `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`, without negative values.
pub fn parse_go(text: &str) -> Result<Duration, DurationError> {
    let original = text;
    let s = text.trim();
    if s != text {
        return Err(fail(
            format!("invalid duration {original:?}: it has spaces around it"),
            Some(format!("write `{:?}`", s)),
        ));
    }
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("the duration is empty", Some(UNITS_HINT.into())));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(fail(
                format!("invalid duration {original:?}"),
                Some(UNITS_HINT.into()),
            ));
        }
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        if unit.is_empty() {
            let hint = if original == number {
                format!("add a unit, for example `{number}s`")
            } else {
                UNITS_HINT.to_string()
            };
            return Err(fail(
                format!("missing unit in duration {original:?}"),
                Some(hint),
            ));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(fail(
                format!("unknown unit {unit:?} in duration {original:?}"),
                Some(UNITS_HINT.into()),
            ));
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| too_long(&format!("{original:?}")))?
        };
        let mut nanos = whole
            .checked_mul(scale)
            .ok_or_else(|| too_long(&format!("{original:?}")))?;
        // The fraction, exact to the nanosecond: digits beyond that cannot matter.
        let mut place = scale;
        for digit in frac.bytes().take(30) {
            place /= 10;
            nanos += u128::from(digit - b'0') * place;
        }
        total = total
            .checked_add(nanos)
            .ok_or_else(|| too_long(&format!("{original:?}")))?;
        if total > MAX.as_nanos() {
            return Err(too_long(&format!("{original:?}")));
        }
    }
    if negative && total > 0 {
        return Err(fail(
            format!("duration {original:?} is negative"),
            Some("durations must be zero or more".into()),
        ));
    }
    Ok(Duration::from_nanos(total as u64))
}

fn too_long(original: &str) -> DurationError {
    fail(
        format!("duration {original} is too long"),
        Some(format!(
            "the longest duration autopilot accepts is {MAX_TEXT}"
        )),
    )
}

/// ContainerPilot's `GetTimeout` for a string: an integer means seconds
/// (`"10"`), anything else is a Go duration.
pub fn parse_timeout(text: &str) -> Result<Duration, DurationError> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits
            .parse::<u64>()
            .map_err(|_| too_long(&format!("{text:?}")))
            .and_then(|secs| bounded(Duration::from_secs(secs), &format!("{text:?}")));
    }
    if let Some(neg) = text.strip_prefix('-')
        && !neg.is_empty()
        && neg.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(fail(
            format!("duration {text:?} is negative"),
            Some("durations must be zero or more".into()),
        ));
    }
    parse_go(text)
}

/// Seconds given as a JSON number (`5`, `0.5`), as ContainerPilot's integer
/// fields and `GetTimeout` accepted them.
pub fn from_seconds(seconds: f64) -> Result<Duration, DurationError> {
    if !seconds.is_finite() {
        return Err(fail("the duration is not a finite number", None));
    }
    if seconds < 0.0 {
        return Err(fail(
            format!("duration {seconds} is negative"),
            Some("durations must be zero or more".into()),
        ));
    }
    // `1e19`, not its twenty digits.
    let text = if seconds >= 1e9 {
        format!("{seconds:e} seconds")
    } else {
        format!("{seconds} seconds")
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| too_long(&text))
        .and_then(|d| bounded(d, &text))
}

/// Formats a duration the way Go prints one, compactly: `1m30s`, `1.5s`,
/// `300ms`, `2h`, `0s`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}\u{b5}s", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let total_secs = d.as_secs();
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let seconds_nanos = nanos - u128::from(hours * 3600 + minutes * 60) * 1_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds_nanos > 0 {
        out.push_str(&format!("{}s", decimal(seconds_nanos, 1_000_000_000)));
    }
    out
}

/// `value / unit` with the fraction written only as far as needed.
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn go_syntax() {
        assert_eq!(parse_go("1500ms"), Ok(ms(1500)));
        assert_eq!(parse_go("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_go("10s"), Ok(ms(10_000)));
        assert_eq!(parse_go("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_go("300us"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_go("300\u{b5}s"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_go("300\u{3bc}s"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_go("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_go("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_go(".5s"), Ok(ms(500)));
        assert_eq!(parse_go("1.s"), Ok(ms(1000)));
        assert_eq!(parse_go("1h2m3.25s"), Ok(ms(3_723_250)));
        assert_eq!(parse_go("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go("+5s"), Ok(ms(5000)));
        assert_eq!(parse_go("-0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn go_syntax_errors_say_why() {
        let e = parse_go("10").unwrap_err();
        assert!(e.message.contains("missing unit"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("add a unit, for example `10s`"));
        assert!(parse_go("5 s").is_err());
        assert!(parse_go("").unwrap_err().message.contains("empty"));
        assert!(
            parse_go("5d")
                .unwrap_err()
                .message
                .contains("unknown unit \"d\"")
        );
        assert!(parse_go("-5s").unwrap_err().message.contains("negative"));
        assert!(parse_go(".s").is_err());
        assert!(parse_go("1.2.3s").is_err());
        assert!(parse_go(" 5s").is_err());
        assert!(
            parse_go("99999999999999999999h")
                .unwrap_err()
                .message
                .contains("too long")
        );
        assert!(
            parse_go("3000000h")
                .unwrap_err()
                .message
                .contains("too long")
        );
    }

    /// Issue 14, defect 2: durations near `u64::MAX` nanoseconds passed
    /// `check` and overflowed the clock at run time.
    #[test]
    fn durations_longer_than_ten_years_are_rejected() {
        assert_eq!(parse_go("87600h"), Ok(MAX));
        assert_eq!(parse_timeout("315360000"), Ok(MAX));
        assert_eq!(from_seconds(315_360_000.0), Ok(MAX));
        for e in [
            parse_go("87600h1ns").unwrap_err(),
            parse_go("2562047h47m16.854775807s").unwrap_err(),
            parse_timeout("315360001").unwrap_err(),
            parse_timeout("18446744073709551615").unwrap_err(),
            from_seconds(1e19).unwrap_err(),
            from_seconds(5e18).unwrap_err(),
            from_seconds(315_360_000.5).unwrap_err(),
        ] {
            assert!(e.message.ends_with("is too long"), "{e}");
            assert_eq!(
                e.hint.as_deref(),
                Some("the longest duration autopilot accepts is 87600h (10 years)")
            );
        }
        assert_eq!(
            from_seconds(1e19).unwrap_err().message,
            "duration 1e19 seconds is too long"
        );
    }

    #[test]
    fn timeouts_take_plain_integers_as_seconds() {
        assert_eq!(parse_timeout("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("250ms"), Ok(ms(250)));
        assert!(
            parse_timeout("-3")
                .unwrap_err()
                .message
                .contains("negative")
        );
        assert!(parse_timeout("ten").is_err());
    }

    #[test]
    fn numbers_are_seconds() {
        assert_eq!(from_seconds(5.0), Ok(Duration::from_secs(5)));
        assert_eq!(from_seconds(0.25), Ok(ms(250)));
        assert!(from_seconds(-1.0).is_err());
        assert!(from_seconds(f64::INFINITY).is_err());
        assert!(from_seconds(1e300).is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(ms(1500)), "1.5s");
        assert_eq!(format(ms(90_000)), "1m30s");
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(3601)), "1h1s");
        assert_eq!(format(ms(300)), "300ms");
        assert_eq!(format(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format(Duration::from_micros(300)), "300\u{b5}s");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
        for text in ["1h2m3.25s", "10s", "250ms", "1.5ms"] {
            assert_eq!(format(parse_go(text).unwrap()), text);
        }
    }
}
