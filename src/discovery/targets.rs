//! Scan targets: the addresses `talstrap discover CIDR...` will probe.
//!
//! Arguments are CIDRs (`127.0.0.0/24`, `fd00::/120`) or bare addresses,
//! several per command line and optionally comma-separated inside one
//! argument. They are parsed into a [`TargetSet`]: the ordered (IPv4 before
//! IPv6, each numerically ascending), de-duplicated union of every range.
//! The set is stored as merged spans and iterated lazily, so a /16 costs a
//! few bytes, not 65,536 entries.
//!
//! Like the usual "hosts of a network" rule, the network and broadcast
//! addresses of an IPv4 prefix shorter than /31 are not targets (nothing
//! answers there); /31 and /32 keep every address, and IPv6 ranges keep
//! every address. Any single range of more than 65,536 addresses (larger
//! than an IPv4 /16), and any set of ranges whose union has more, is
//! refused unless the caller allows large scans.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Largest number of addresses one range may have without `--allow-large-scan`
/// (an IPv4 /16).
pub(crate) const MAX_RANGE_ADDRESSES: u128 = 1 << 16;

/// Why a target argument was rejected. Every variant names the argument.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// No target at all was given.
    #[error("no scan target given: pass at least one CIDR (e.g. 127.0.0.0/24) or address")]
    Empty,
    /// The text is neither an address nor a CIDR.
    #[error("invalid scan target {arg:?}: {reason}")]
    Invalid { arg: String, reason: String },
    /// The range is larger than the safety cap.
    #[error(
        "{arg} has {count} addresses; talstrap refuses ranges larger than /16 \
         (65,536 addresses) without --allow-large-scan"
    )]
    TooLarge { arg: String, count: String },
    /// Every range is small enough, but together (overlaps counted once)
    /// they are more than the cap.
    #[error(
        "the {ranges} ranges given have {count} distinct addresses together; talstrap refuses \
         to scan more than 65,536 addresses (a /16) without --allow-large-scan"
    )]
    TooLargeTogether { ranges: usize, count: String },
}

impl TargetError {
    fn invalid(arg: &str, reason: impl Into<String>) -> Self {
        TargetError::Invalid {
            arg: arg.to_string(),
            reason: reason.into(),
        }
    }
}

/// Address family of a span. IPv4 orders before IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Family {
    V4,
    V6,
}

/// An inclusive run of consecutive addresses of one family, as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    family: Family,
    first: u128,
    last: u128,
}

impl Span {
    fn len(&self) -> u128 {
        // `last - first + 1` overflows only for all of IPv6 (::/0).
        (self.last - self.first).saturating_add(1)
    }
}

/// The de-duplicated union of the scan targets, iterated in numeric order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSet {
    /// Sorted, non-overlapping, non-adjacent spans.
    spans: Vec<Span>,
    /// Remarks for the user about how arguments were read (e.g. host bits
    /// cleared).
    notes: Vec<String>,
}

impl TargetSet {
    /// Number of distinct addresses to probe. Saturates at `u128::MAX` (only
    /// reachable with `::/0`).
    pub fn len(&self) -> u128 {
        self.spans
            .iter()
            .fold(0u128, |acc, s| acc.saturating_add(s.len()))
    }

    /// True when there is nothing to probe.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Every target address, IPv4 first, each family in ascending numeric
    /// order, each address once. Lazy: nothing is materialised.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.spans.iter().flat_map(|span| {
            let family = span.family;
            (span.first..=span.last).map(move |n| to_ip(family, n))
        })
    }

    /// Whether `ip` is one of the targets.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (family, n) = to_key(ip);
        self.spans
            .iter()
            .any(|s| s.family == family && s.first <= n && n <= s.last)
    }

    /// Remarks about how the arguments were read, for the user to see (for
    /// example "127.0.0.5/24 has host bits set; scanning 127.0.0.0/24").
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl fmt::Display for TargetSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.spans.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if s.first == s.last {
                write!(f, "{}", to_ip(s.family, s.first))?;
            } else {
                write!(
                    f,
                    "{}-{}",
                    to_ip(s.family, s.first),
                    to_ip(s.family, s.last)
                )?;
            }
        }
        Ok(())
    }
}

/// Parses scan target arguments into a [`TargetSet`].
///
/// Each argument may hold several targets separated by commas. A range of
/// more than 65,536 addresses is an error unless `allow_large` is set.
pub fn parse_targets(args: &[String], allow_large: bool) -> Result<TargetSet, TargetError> {
    let mut spans = Vec::new();
    let mut notes = Vec::new();
    for arg in args {
        for piece in arg.split(',') {
            let piece = piece.trim();
            if piece.is_empty() {
                if arg.trim().is_empty() {
                    return Err(TargetError::invalid(arg, "empty target"));
                }
                // Tolerate "a,b," (trailing comma) but not an empty argument.
                continue;
            }
            let (span, note) = parse_one(piece, allow_large)?;
            spans.push(span);
            notes.extend(note);
        }
    }
    if spans.is_empty() {
        return Err(TargetError::Empty);
    }
    let ranges = spans.len();
    let set = TargetSet {
        spans: merge(spans),
        notes,
    };
    // Each range passed on its own; their union must pass too.
    let total = set.len();
    if total > MAX_RANGE_ADDRESSES && !allow_large {
        return Err(TargetError::TooLargeTogether {
            ranges,
            count: group_thousands(total),
        });
    }
    Ok(set)
}

/// Parses one CIDR or address into its span of targets, plus a note when
/// the text needed normalising.
fn parse_one(text: &str, allow_large: bool) -> Result<(Span, Option<String>), TargetError> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr_text.parse().map_err(|_| {
        let why = if addr_text.contains('%') {
            "IPv6 zone identifiers are not supported".to_string()
        } else {
            format!("{addr_text:?} is not an IPv4 or IPv6 address")
        };
        TargetError::invalid(text, why)
    })?;
    let (family, bits) = match ip {
        IpAddr::V4(_) => (Family::V4, 32u32),
        IpAddr::V6(_) => (Family::V6, 128u32),
    };
    let prefix = match prefix_text {
        None => bits,
        Some(p) => {
            let n: u32 = p.parse().map_err(|_| {
                TargetError::invalid(text, format!("prefix length {p:?} is not a number"))
            })?;
            if n > bits {
                return Err(TargetError::invalid(
                    text,
                    format!(
                        "prefix length /{n} is longer than the {bits} bits of an {} address",
                        if family == Family::V4 { "IPv4" } else { "IPv6" }
                    ),
                ));
            }
            n
        }
    };

    let host_bits = bits - prefix;
    let (_, n) = to_key(ip);
    // Mask of the host part; `checked_shl` covers ::/0 (a 128-bit shift).
    let host_mask: u128 = 1u128.checked_shl(host_bits).map_or(u128::MAX, |v| v - 1);
    let network = n & !host_mask;
    let broadcast = network | host_mask;

    let mut note = None;
    if network != n {
        let net_ip = to_ip(family, network);
        note = Some(format!(
            "{text} has host bits set; scanning {net_ip}/{prefix}"
        ));
    }

    let count = host_mask.checked_add(1); // None means 2^128
    let too_large = count.is_none_or(|c| c > MAX_RANGE_ADDRESSES);
    if too_large && !allow_large {
        let count = match count {
            Some(c) => group_thousands(c),
            None => "340,282,366,920,938,463,463,374,607,431,768,211,456".to_string(),
        };
        let shown = if note.is_some() {
            format!("{}/{prefix}", to_ip(family, network))
        } else {
            text.to_string()
        };
        return Err(TargetError::TooLarge { arg: shown, count });
    }

    let (first, last) = if family == Family::V4 && prefix < 31 {
        // Network and broadcast addresses are not hosts.
        (network + 1, broadcast - 1)
    } else {
        (network, broadcast)
    };
    Ok((
        Span {
            family,
            first,
            last,
        },
        note,
    ))
}

/// Sorts spans and merges those that overlap or touch, so that iteration
/// yields each address once and in order.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(cur) if cur.family == s.family && s.first <= cur.last.saturating_add(1) => {
                cur.last = cur.last.max(s.last);
            }
            _ => out.push(s),
        }
    }
    out
}

fn to_key(ip: IpAddr) -> (Family, u128) {
    match ip {
        IpAddr::V4(a) => (Family::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (Family::V6, u128::from(a)),
    }
}

fn to_ip(family: Family, n: u128) -> IpAddr {
    match family {
        // Spans of the V4 family only ever hold values below 2^32.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// `16777216` → `16,777,216`.
fn group_thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parse(list: &[&str]) -> TargetSet {
        parse_targets(&args(list), false).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_24_skips_network_and_broadcast() {
        let set = parse(&["127.9.9.0/24"]);
        assert_eq!(set.len(), 254);
        let all: Vec<IpAddr> = set.iter().collect();
        assert_eq!(all.first(), Some(&ip("127.9.9.1")));
        assert_eq!(all.last(), Some(&ip("127.9.9.254")));
        assert!(!set.contains(ip("127.9.9.0")));
        assert!(!set.contains(ip("127.9.9.255")));
        assert!(set.notes().is_empty());
    }

    #[test]
    fn ipv4_31_and_32_keep_every_address() {
        let set = parse(&["127.1.1.4/31"]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![ip("127.1.1.4"), ip("127.1.1.5")]
        );
        let set = parse(&["127.1.1.7/32"]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![ip("127.1.1.7")]);
        let set = parse(&["127.1.1.7"]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![ip("127.1.1.7")]);
    }

    #[test]
    fn ipv4_30_has_two_hosts() {
        let set = parse(&["127.1.1.8/30"]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![ip("127.1.1.9"), ip("127.1.1.10")]
        );
    }

    #[test]
    fn ipv6_ranges_keep_every_address() {
        let set = parse(&["fd00::/126", "::1"]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![
                ip("::1"),
                ip("fd00::"),
                ip("fd00::1"),
                ip("fd00::2"),
                ip("fd00::3")
            ]
        );
    }

    #[test]
    fn ipv4_sorts_before_ipv6_and_numerically() {
        let set = parse(&["::1", "127.0.0.10", "127.0.0.9"]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![ip("127.0.0.9"), ip("127.0.0.10"), ip("::1")]
        );
    }

    #[test]
    fn host_bits_are_normalised_with_a_note() {
        let set = parse(&["127.0.0.5/24"]);
        let plain = parse(&["127.0.0.0/24"]);
        assert!(set.iter().eq(plain.iter()));
        assert_eq!(set.len(), 254);
        assert_eq!(
            set.notes(),
            ["127.0.0.5/24 has host bits set; scanning 127.0.0.0/24"]
        );
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        // The /32 for .0 fills the gap the /24 leaves; the /25 is inside.
        let set = parse(&["127.0.0.0/24", "127.0.0.0/25", "127.0.0.0/32"]);
        assert_eq!(set.len(), 255);
        assert_eq!(set.iter().next(), Some(ip("127.0.0.0")));
        assert_eq!(set.to_string(), "127.0.0.0-127.0.0.254");
    }

    #[test]
    fn comma_separated_targets_in_one_argument() {
        let set = parse(&["127.0.0.1, 127.0.0.3,"]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![ip("127.0.0.1"), ip("127.0.0.3")]
        );
    }

    #[test]
    fn invalid_text_names_the_argument() {
        for bad in [
            "127.0.0.300/24",
            "not-an-ip",
            "127.0.0.0/33",
            "::/129",
            "127.0.0.0/x",
            "fe80::1%eth0",
        ] {
            let err = parse_targets(&args(&[bad]), false).unwrap_err();
            assert!(
                matches!(&err, TargetError::Invalid { arg, .. } if arg == bad),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = parse_targets(&args(&["  "]), false).unwrap_err();
        assert!(matches!(err, TargetError::Invalid { .. }));
        assert_eq!(parse_targets(&[], false).unwrap_err(), TargetError::Empty);
    }

    #[test]
    fn ranges_larger_than_a_16_are_refused_unless_allowed() {
        let err = parse_targets(&args(&["127.0.0.0/8"]), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "127.0.0.0/8 has 16,777,216 addresses; talstrap refuses ranges larger than /16 \
             (65,536 addresses) without --allow-large-scan"
        );
        // A /16 is the largest range allowed by default.
        assert_eq!(parse(&["127.5.0.0/16"]).len(), 65_534);
        let err = parse_targets(&args(&["fd00::/111"]), false).unwrap_err();
        assert!(err.to_string().contains("131,072 addresses"), "{err}");
        assert_eq!(parse(&["fd00::/112"]).len(), 65_536);

        let big = parse_targets(&args(&["127.0.0.0/8"]), true).unwrap();
        assert_eq!(big.len(), (1 << 24) - 2);
        let everything = parse_targets(&args(&["::/0"]), true).unwrap();
        assert_eq!(everything.len(), u128::MAX);
        let err = parse_targets(&args(&["::/0"]), false).unwrap_err();
        assert!(err.to_string().starts_with("::/0 has 340,282,366,920,938"));
    }

    #[test]
    fn the_cap_counts_every_range_together_and_overlaps_once() {
        let four = [
            "127.1.0.0/16",
            "127.2.0.0/16",
            "127.3.0.0/16",
            "127.4.0.0/16",
        ];
        let err = parse_targets(&args(&four), false).unwrap_err();
        assert_eq!(
            err,
            TargetError::TooLargeTogether {
                ranges: 4,
                count: "262,136".into()
            }
        );
        assert!(err.to_string().contains("--allow-large-scan"), "{err}");
        assert_eq!(parse_targets(&args(&four), true).unwrap().len(), 262_136);
        // Overlaps and repeats count once: a /16 and pieces of it pass.
        let same = [
            "127.1.0.0/16",
            "127.1.0.0/17",
            "127.1.128.0/24",
            "127.1.0.0/16",
        ];
        assert_eq!(parse(&same).len(), 65_534);
        // Two halves of the cap pass; one address more does not.
        assert_eq!(parse(&["fd00::/113", "fd00::8000/113"]).len(), 65_536);
        let err = parse_targets(&args(&["fd00::/112", "fd00::1:0"]), false).unwrap_err();
        assert!(
            matches!(err, TargetError::TooLargeTogether { ranges: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn too_large_error_shows_the_normalised_range() {
        let err = parse_targets(&args(&["127.1.2.3/12"]), false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("127.0.0.0/12 has 1,048,576 addresses"),
            "{err}"
        );
    }

    #[test]
    fn thousands_grouping() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(16_777_216), "16,777,216");
    }

    /// A CIDR somewhere inside 127.0.0.0/8 (IPv4) or fd00::/104 (IPv6) with a
    /// small enough range for brute-force comparison.
    fn cidr() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u32..1 << 24, 22u32..=32)
                .prop_map(|(low, p)| { format!("{}/{p}", Ipv4Addr::from((127u32 << 24) | low)) }),
            (0u128..1 << 24, 116u32..=128).prop_map(|(low, p)| {
                format!("{}/{p}", Ipv6Addr::from((0xfd00u128 << 112) | low))
            }),
        ]
    }

    proptest! {
        #[test]
        fn union_matches_brute_force(list in proptest::collection::vec(cidr(), 1..6)) {
            let set = parse_targets(&list, false).unwrap();
            // Oracle: ipnet's own notion of a network's hosts.
            let mut expected = BTreeSet::new();
            for c in &list {
                let net: ipnet::IpNet = c.parse::<ipnet::IpNet>().unwrap().trunc();
                expected.extend(net.hosts());
            }
            let got: Vec<IpAddr> = set.iter().collect();
            // Count equals the arithmetic size of the union.
            prop_assert_eq!(set.len(), expected.len() as u128);
            prop_assert_eq!(got.len(), expected.len());
            // Same addresses, each once, in order (IPv4 first, numeric).
            let expected: Vec<IpAddr> = expected.into_iter().collect();
            prop_assert_eq!(&got, &expected);
            for a in &got {
                prop_assert!(set.contains(*a));
            }
        }

        #[test]
        fn single_range_count_is_arithmetic(low in 0u32..1 << 24, p in 16u32..=32) {
            let arg = format!("{}/{p}", Ipv4Addr::from((127u32 << 24) | low));
            let set = parse_targets(&[arg], false).unwrap();
            let size = 1u128 << (32 - p);
            let expected = if p < 31 { size - 2 } else { size };
            prop_assert_eq!(set.len(), expected);
            prop_assert_eq!(set.iter().count() as u128, expected);
        }
    }
}
