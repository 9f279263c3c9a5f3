//! Durations written the way operators write them: `30s`, `10m`, `12h`, `7d`.

use std::time::Duration;

/// Parses `30s`, `10m`, `12h`, `7d` (a positive integer and one unit).
///
/// # Errors
/// A message saying what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 10m, 12h or 7d"))?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3_600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("`{text}` is not a duration like 30s, 10m, 12h or 7d"))?;
    Ok(Duration::from_secs(seconds))
}

/// Writes a duration back in the largest exact unit.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "10",
            "m",
            "-1m",
            "1.5h",
            "10 minutes",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["30s", "10m", "12h", "7d", "90s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
