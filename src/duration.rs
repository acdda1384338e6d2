//! Human durations on the command line: `500ms`, `90s`, `10m`, `1h30m`, or a
//! bare number of seconds. Also formats durations back for people.

use std::time::Duration;

/// Parse `1h30m`, `90s`, `250ms`, `1.5s` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {text:?}: missing unit (ms, s, m, h)"))?;
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before the unit"
            ));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, text)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid duration {text:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One millisecond: the shortest duration any flag takes. Anything shorter
/// (zero included) is a typo or a busy loop, never a useful setting.
const MIN_FLAG: Duration = Duration::from_millis(1);
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// [`parse_duration`], refused when shorter than 1 ms or longer than `max`
/// (a connect timeout of a week waits on nothing a real network does).
fn bounded(text: &str, max_secs: u64) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    let max = Duration::from_secs(max_secs);
    if d < MIN_FLAG {
        return Err(format!("{} is too short: use at least 1ms", text.trim()));
    }
    if d > max {
        return Err(format!(
            "{} is longer than the {} this setting allows",
            text.trim(),
            format_duration(max)
        ));
    }
    Ok(d)
}

/// `--timeout`: the whole command, 1 ms to 30 days.
pub(crate) fn command_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, 30 * DAY)
}

/// `--connect-timeout`: one TCP connect, 1 ms to 10 minutes (the kernel
/// gives up on an unanswered SYN after about two).
pub(crate) fn connect_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, 10 * MINUTE)
}

/// `--rpc-timeout`: one API call, 1 ms to an hour.
pub(crate) fn rpc_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, HOUR)
}

/// `--retry-delay` and `--poll-interval`: 1 ms to 10 minutes.
pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    bounded(text, 10 * MINUTE)
}

/// Waits measured against a cluster's own pace (`--stuck-after`,
/// `--etcd-timeout`, `--resend-after`, `--try-timeout`): 1 ms to 7 days.
pub(crate) fn wait(text: &str) -> Result<Duration, String> {
    bounded(text, 7 * DAY)
}

/// `--resend-after`: 0 (resend at once, a deliberate choice) to 7 days.
pub(crate) fn resend_window(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        Ok(d)
    } else {
        bounded(text, 7 * DAY)
    }
}

/// Short human form: `850ms`, `12.3s`, `4m05s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = d.as_secs() / 60;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    }

    #[test]
    fn rejects_garbage_with_the_text() {
        for bad in ["", "s", "10x", "-5", "1h30", "abc"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn flag_durations_refuse_zero_and_absurd_values() {
        for parse in [
            command_timeout,
            connect_timeout,
            rpc_timeout,
            interval,
            wait,
        ] {
            for zero in ["0", "0s", "0ms", "0.0001s", "0h0m"] {
                let err = parse(zero).unwrap_err();
                assert!(err.contains("too short"), "{zero:?}: {err}");
            }
            assert!(parse("1ms").is_ok());
            assert!(parse("999999999").unwrap_err().contains("longer than"));
            assert!(parse("soon").is_err());
        }
        assert!(connect_timeout("10m").is_ok());
        assert!(connect_timeout("11m").unwrap_err().contains("10m00s"));
        assert!(rpc_timeout("2h").is_err());
        assert!(command_timeout("30d").is_err(), "no day unit");
        assert!(command_timeout("720h").is_ok());
        assert!(command_timeout("721h").is_err());
        assert!(wait("169h").is_err());
        assert_eq!(resend_window("0s"), Ok(Duration::ZERO));
        assert!(resend_window("169h").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    }
}
