//! A node's Talos release, and the protocol differences talstrap decides by
//! (facts from the Talos source at v1.12.11, v1.13.9 and v1.14.0-rc.1;
//! see the README's version table).

use std::fmt;

/// A Talos release as a node reports it (`v1.13.9`, `v1.14.0-rc.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Release {
    /// Parses `v1.13.9`, `1.14.0-rc.1`, `v1.12`; `None` for anything else.
    pub fn parse(tag: &str) -> Option<Release> {
        let t = tag.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Release {
            major,
            minor,
            patch,
        })
    }

    fn at_least(self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }

    /// v1.14+: a configured node refuses the REBOOT apply mode (and an unset
    /// mode, which is REBOOT), and AUTO never reboots (Talos v1.14.0-rc.1
    /// internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go).
    pub fn apply_never_reboots(self) -> bool {
        self.at_least(14)
    }

    /// v1.13+: maintenance mode is apid with the reader role, so calls that
    /// need admin answer PermissionDenied, and `Version` works.
    pub fn maintenance_in_apid(self) -> bool {
        self.at_least(13)
    }

    /// v1.13+: the maintenance dry run carries a config diff.
    pub fn maintenance_dry_run_diff(self) -> bool {
        self.at_least(13)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The minor of a Talos 1.x tag (`v1.13.9` → 13).
pub fn version_minor(tag: &str) -> Option<u32> {
    Release::parse(tag)
        .filter(|r| r.major == 1)
        .map(|r| r.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_and_orders_releases() {
        let r = Release::parse("v1.14.0-rc.1");
        assert_eq!(
            r,
            Some(Release {
                major: 1,
                minor: 14,
                patch: 0
            })
        );
        assert!(Release::parse("v1.12.11") < Release::parse("v1.13.0"));
        assert_eq!(Release::parse("1.13"), Release::parse("v1.13.0"));
        assert_eq!(Release::parse("latest"), None);
        assert_eq!(version_minor("v1.13.9"), Some(13));
        assert_eq!(version_minor("v2.0.0"), None);
    }

    #[test]
    fn behaviours_by_release() {
        let v = |t| {
            Release::parse(t).unwrap_or(Release {
                major: 0,
                minor: 0,
                patch: 0,
            })
        };
        assert!(!v("v1.13.9").apply_never_reboots());
        assert!(v("v1.14.0-rc.1").apply_never_reboots());
        assert!(!v("v1.12.11").maintenance_in_apid());
        assert!(v("v1.13.0").maintenance_in_apid());
        assert!(v("v1.14.2").maintenance_dry_run_diff());
    }
}
