//! Talos version strings (`v1.12.11`) and the behaviours that depend on them.

/// Parses `v1.12.11` / `1.12` into (major, minor, patch).
pub fn parse(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// Whether `version` is at least `major.minor` (unparsable versions count
/// as the newest, the simulator's default).
pub fn at_least(version: &str, major: u32, minor: u32) -> bool {
    parse(version).is_none_or(|(ma, mi, _)| (ma, mi) >= (major, minor))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compares_minor_versions() {
        assert_eq!(parse("v1.12.11"), Some((1, 12, 11)));
        assert_eq!(parse("1.9"), Some((1, 9, 0)));
        assert_eq!(parse("v1.13.0-alpha.1"), Some((1, 13, 0)));
        assert!(at_least("v1.12.11", 1, 12));
        assert!(at_least("v1.10.0", 1, 10));
        assert!(!at_least("v1.9.5", 1, 10));
        assert!(!at_least("v1.11.3", 1, 12));
        assert!(at_least("latest", 1, 12));
    }
}
