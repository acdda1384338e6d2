//! Bootstrap-leader election: which control plane gets the one Bootstrap
//! call. Pure functions, no I/O; shared by `discover` and `bootstrap --auto`.
//!
//! Rules:
//! - A candidate is *eligible* when it is reachable, is a control plane and
//!   reported a boot time (`SystemStat.boot_time`, the kernel `btime`, read
//!   over an authenticated channel so a stranger cannot claim to be oldest).
//! - If any reachable candidate already has etcd, the election is refused and
//!   names them: the cluster is bootstrapped (or being bootstrapped), and a
//!   second Bootstrap elsewhere would create a second etcd cluster.
//! - Fewer eligible candidates than the quorum: wait.
//! - Otherwise the oldest boot time wins; equal boot times go to the
//!   numerically lowest IP (IPv4 before IPv6), never to the lowest string,
//!   so `127.0.0.9` beats `127.0.0.10`.
//!
//! The result does not depend on the order of the input, so two runners
//! looking at the same nodes pick the same leader; Talos's own
//! `AlreadyExists` guard on that node stops the slower one. [`Settle`] adds
//! the requirement that the same leader wins two rounds in a row, so a node
//! that is still booting cannot win on a stale view.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

/// What is known about one control-plane candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Candidate {
    pub ip: IpAddr,
    pub hostname: Option<String>,
    /// Kernel boot time, Unix seconds (`SystemStat.boot_time`).
    pub boot_time: Option<u64>,
    /// etcd data or a running etcd was seen on this node.
    pub has_etcd: bool,
    /// The node answered over an authenticated channel.
    pub reachable: bool,
    /// The node is a control plane (`MachineTypes` says so).
    pub role_ok: bool,
}

/// Outcome of one election round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// `ip` should receive the Bootstrap call.
    Leader { ip: IpAddr, reason: String },
    /// Not enough eligible control planes yet.
    Waiting {
        reason: String,
        eligible: usize,
        quorum: usize,
    },
    /// etcd already exists somewhere: nobody must be bootstrapped.
    Refused {
        reason: String,
        etcd_on: Vec<IpAddr>,
    },
}

impl Verdict {
    /// The leader, if this round elected one.
    pub(crate) fn leader(&self) -> Option<IpAddr> {
        match self {
            Verdict::Leader { ip, .. } => Some(*ip),
            _ => None,
        }
    }
}

/// Why one candidate won, lost or was left out, for the user to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CandidateReport {
    pub ip: IpAddr,
    pub hostname: Option<String>,
    pub outcome: String,
}

/// A verdict plus one report per candidate: ranked eligible candidates first
/// (leader on top), then those with etcd, then the excluded, each by IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Round {
    pub verdict: Verdict,
    pub candidates: Vec<CandidateReport>,
}

/// Numeric sort key of an address: IPv4 by its `u32`, IPv6 by its `u128`,
/// every IPv4 address before every IPv6 address.
fn ip_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (6, u128::from(a)),
    }
}

/// Runs one election round over `candidates` with the given quorum (the
/// number of eligible control planes required; 0 counts as 1).
///
/// Candidates are expected to be unique by IP; duplicates are merged (any
/// reachable entry makes it reachable, the oldest boot time counts, etcd seen
/// on any reachable entry counts) so that one IP yields one report.
pub(crate) fn elect(candidates: &[Candidate], quorum: usize) -> Round {
    let quorum = quorum.max(1);
    let nodes = merge_duplicates(candidates);

    let etcd: Vec<&Candidate> = nodes.iter().filter(|c| c.reachable && c.has_etcd).collect();
    let mut eligible: Vec<&Candidate> = nodes
        .iter()
        .filter(|c| c.reachable && !c.has_etcd && c.role_ok && c.boot_time.is_some())
        .collect();
    eligible.sort_by_key(|c| (c.boot_time, ip_key(c.ip)));

    let verdict = if !etcd.is_empty() {
        let names = etcd.iter().map(|c| label(c)).collect::<Vec<_>>().join(", ");
        Verdict::Refused {
            reason: format!(
                "etcd already exists on {names}: the cluster is bootstrapped or being \
                 bootstrapped; no other node may be bootstrapped"
            ),
            etcd_on: etcd.iter().map(|c| c.ip).collect(),
        }
    } else if eligible.len() < quorum {
        Verdict::Waiting {
            reason: format!(
                "quorum not reached: have {} of {quorum} eligible control planes",
                eligible.len()
            ),
            eligible: eligible.len(),
            quorum,
        }
    } else {
        // Non-empty: quorum >= 1 and eligible.len() >= quorum.
        let leader = eligible[0];
        Verdict::Leader {
            ip: leader.ip,
            reason: leader_reason(leader, &eligible),
        }
    };

    let mut reports = Vec::with_capacity(nodes.len());
    for c in &eligible {
        let outcome = match &verdict {
            Verdict::Leader { .. } => ranked_outcome(c, eligible[0], &eligible),
            Verdict::Waiting {
                eligible: have,
                quorum,
                ..
            } => format!("eligible: waiting for quorum (have {have} of {quorum})"),
            Verdict::Refused { .. } => "not elected: etcd already exists elsewhere".to_string(),
        };
        reports.push(report(c, outcome));
    }
    for c in &etcd {
        reports.push(report(c, "has etcd".to_string()));
    }
    for c in nodes.iter().filter(|c| !(c.reachable && c.has_etcd)) {
        let outcome = if !c.reachable {
            "excluded: unreachable"
        } else if !c.role_ok {
            "excluded: not a control plane"
        } else if c.boot_time.is_none() {
            "excluded: no boot time"
        } else {
            continue; // eligible, reported above
        };
        reports.push(report(c, outcome.to_string()));
    }

    Round {
        verdict,
        candidates: reports,
    }
}

/// One entry per IP, sorted by IP. See [`elect`] for how duplicates merge.
fn merge_duplicates(candidates: &[Candidate]) -> Vec<Candidate> {
    let mut by_ip: BTreeMap<(u8, u128), Candidate> = BTreeMap::new();
    for c in candidates {
        let mut c = c.clone();
        // etcd on a node we could not reach is not a fact we hold.
        c.has_etcd &= c.reachable;
        by_ip
            .entry(ip_key(c.ip))
            .and_modify(|m| {
                m.hostname = match (m.hostname.take(), c.hostname.clone()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                m.boot_time = match (m.boot_time, c.boot_time) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                m.has_etcd |= c.has_etcd;
                m.reachable |= c.reachable;
                m.role_ok |= c.role_ok;
            })
            .or_insert(c);
    }
    by_ip.into_values().collect()
}

fn report(c: &Candidate, outcome: String) -> CandidateReport {
    CandidateReport {
        ip: c.ip,
        hostname: c.hostname.clone(),
        outcome,
    }
}

/// `cp-1 (127.0.0.3)` or `127.0.0.3`.
fn label(c: &Candidate) -> String {
    match &c.hostname {
        Some(h) => format!("{h} ({})", c.ip),
        None => c.ip.to_string(),
    }
}

/// Candidates other than `leader` with the leader's boot time.
fn tied_with<'a>(leader: &Candidate, eligible: &'a [&'a Candidate]) -> Vec<&'a Candidate> {
    eligible
        .iter()
        .copied()
        .filter(|c| c.ip != leader.ip && c.boot_time == leader.boot_time)
        .collect()
}

fn leader_reason(leader: &Candidate, eligible: &[&Candidate]) -> String {
    let when = fmt_boot_time(leader.boot_time.unwrap_or_default());
    let mut reason = if eligible.len() == 1 {
        format!(
            "{} is the only eligible control plane (booted {when})",
            label(leader)
        )
    } else {
        format!(
            "{} has the oldest boot time ({when}) of {} eligible control planes",
            label(leader),
            eligible.len()
        )
    };
    let tied = tied_with(leader, eligible);
    if !tied.is_empty() {
        let others = tied
            .iter()
            .map(|c| c.ip.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        reason.push_str(&format!("; tie with {others} broken by the lowest IP"));
    }
    reason
}

fn ranked_outcome(c: &Candidate, leader: &Candidate, eligible: &[&Candidate]) -> String {
    let mine = c.boot_time.unwrap_or_default();
    let theirs = leader.boot_time.unwrap_or_default();
    if c.ip == leader.ip {
        let mut s = format!("leader: oldest boot time ({})", fmt_boot_time(mine));
        if !tied_with(leader, eligible).is_empty() {
            s.push_str(", lowest IP among equal boot times");
        }
        s
    } else if mine == theirs {
        format!("lost: tie on boot time, higher IP than {}", leader.ip)
    } else {
        format!(
            "lost: booted later than {} ({}, {} later)",
            label(leader),
            fmt_boot_time(mine),
            fmt_delta(mine.saturating_sub(theirs))
        )
    }
}

/// Requires the same leader on consecutive rounds before anyone acts on it.
#[derive(Debug, Clone)]
pub(crate) struct Settle {
    required: usize,
    current: Option<IpAddr>,
    streak: usize,
}

impl Settle {
    /// `required_rounds` consecutive rounds with the same leader (talstrap
    /// uses 2; 0 counts as 1).
    pub(crate) fn new(required_rounds: usize) -> Self {
        Settle {
            required: required_rounds.max(1),
            current: None,
            streak: 0,
        }
    }

    /// Feeds one round; returns the leader once it has won the required
    /// number of consecutive rounds. A round without a leader, or with a
    /// different one, starts the count again.
    pub(crate) fn observe(&mut self, round: &Round) -> Option<IpAddr> {
        match round.verdict.leader() {
            Some(ip) if self.current == Some(ip) => self.streak += 1,
            Some(ip) => {
                self.current = Some(ip);
                self.streak = 1;
            }
            None => {
                self.current = None;
                self.streak = 0;
            }
        }
        self.current.filter(|_| self.streak >= self.required)
    }
}

/// Unix seconds as an RFC 3339 UTC timestamp, e.g. `2023-11-14T22:13:20Z`.
pub(crate) fn fmt_boot_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from a day count (proleptic Gregorian, 400-year eras
    // starting on 0000-03-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A positive number of seconds, briefly: `42 s`, `3 min 5 s`, `2 h 10 min`.
fn fmt_delta(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3_600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3_600, secs % 3_600 / 60),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn cp(ip: &str, boot: u64) -> Candidate {
        Candidate {
            ip: ip.parse().unwrap(),
            hostname: None,
            boot_time: Some(boot),
            has_etcd: false,
            reachable: true,
            role_ok: true,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn outcome_of(round: &Round, addr: &str) -> String {
        round
            .candidates
            .iter()
            .find(|r| r.ip == ip(addr))
            .map(|r| r.outcome.clone())
            .unwrap()
    }

    #[test]
    fn oldest_boot_time_wins() {
        let mut a = cp("127.0.0.3", 1_700_000_000);
        a.hostname = Some("cp-1".into());
        let b = cp("127.0.0.2", 1_700_000_125);
        let round = elect(&[b, a], 2);
        assert_eq!(round.verdict.leader(), Some(ip("127.0.0.3")));
        assert_eq!(
            outcome_of(&round, "127.0.0.3"),
            "leader: oldest boot time (2023-11-14T22:13:20Z)"
        );
        assert_eq!(
            outcome_of(&round, "127.0.0.2"),
            "lost: booted later than cp-1 (127.0.0.3) (2023-11-14T22:15:25Z, 2 min 5 s later)"
        );
        let Verdict::Leader { reason, .. } = &round.verdict else {
            panic!()
        };
        assert_eq!(
            reason,
            "cp-1 (127.0.0.3) has the oldest boot time (2023-11-14T22:13:20Z) of 2 eligible control planes"
        );
        assert_eq!(round.candidates[0].ip, ip("127.0.0.3"));
    }

    #[test]
    fn ties_go_to_the_numerically_lowest_ip_not_the_string() {
        // As strings "127.0.0.10" < "127.0.0.9"; as numbers 9 < 10.
        let round = elect(&[cp("127.0.0.10", 5), cp("127.0.0.9", 5)], 2);
        assert_eq!(round.verdict.leader(), Some(ip("127.0.0.9")));
        assert_eq!(
            outcome_of(&round, "127.0.0.10"),
            "lost: tie on boot time, higher IP than 127.0.0.9"
        );
        assert_eq!(
            outcome_of(&round, "127.0.0.9"),
            "leader: oldest boot time (1970-01-01T00:00:05Z), lowest IP among equal boot times"
        );
        let Verdict::Leader { reason, .. } = &round.verdict else {
            panic!()
        };
        assert!(
            reason.ends_with("; tie with 127.0.0.10 broken by the lowest IP"),
            "{reason}"
        );

        // IPv4 sorts before IPv6; IPv6 compares as a 128-bit number.
        let round = elect(&[cp("::1", 5), cp("127.255.0.1", 5)], 1);
        assert_eq!(round.verdict.leader(), Some(ip("127.255.0.1")));
        let round = elect(&[cp("fd00::10", 5), cp("fd00::9", 5), cp("fd00::a", 5)], 1);
        assert_eq!(round.verdict.leader(), Some(ip("fd00::9")));
    }

    #[test]
    fn exclusions_are_explained() {
        let mut unreachable = cp("127.0.0.5", 1);
        unreachable.reachable = false;
        let mut worker = cp("127.0.0.6", 1);
        worker.role_ok = false;
        let mut no_time = cp("127.0.0.7", 1);
        no_time.boot_time = None;
        let round = elect(&[no_time, worker, unreachable, cp("127.0.0.8", 9)], 1);
        assert_eq!(round.verdict.leader(), Some(ip("127.0.0.8")));
        assert_eq!(outcome_of(&round, "127.0.0.5"), "excluded: unreachable");
        assert_eq!(
            outcome_of(&round, "127.0.0.6"),
            "excluded: not a control plane"
        );
        assert_eq!(outcome_of(&round, "127.0.0.7"), "excluded: no boot time");
        let order: Vec<IpAddr> = round.candidates.iter().map(|r| r.ip).collect();
        assert_eq!(
            order,
            vec![
                ip("127.0.0.8"),
                ip("127.0.0.5"),
                ip("127.0.0.6"),
                ip("127.0.0.7")
            ]
        );
        let Verdict::Leader { reason, .. } = &round.verdict else {
            panic!()
        };
        assert!(reason.contains("only eligible control plane"), "{reason}");
    }

    #[test]
    fn etcd_anywhere_reachable_refuses_and_names_the_node() {
        let mut done = cp("127.0.0.4", 100);
        done.has_etcd = true;
        done.hostname = Some("cp-2".into());
        let round = elect(&[cp("127.0.0.3", 1), done.clone()], 1);
        let Verdict::Refused { reason, etcd_on } = &round.verdict else {
            panic!("{:?}", round.verdict)
        };
        assert_eq!(etcd_on, &vec![ip("127.0.0.4")]);
        assert!(reason.contains("cp-2 (127.0.0.4)"), "{reason}");
        assert_eq!(outcome_of(&round, "127.0.0.4"), "has etcd");
        assert!(outcome_of(&round, "127.0.0.3").starts_with("not elected"));

        // Even when that node is not otherwise eligible (no boot time).
        done.boot_time = None;
        let round = elect(&[cp("127.0.0.3", 1), done.clone()], 1);
        assert!(matches!(round.verdict, Verdict::Refused { .. }));

        // etcd on an unreachable node is not known, so it does not count.
        done.reachable = false;
        let round = elect(&[cp("127.0.0.3", 1), done], 1);
        assert_eq!(round.verdict.leader(), Some(ip("127.0.0.3")));
        assert_eq!(outcome_of(&round, "127.0.0.4"), "excluded: unreachable");
    }

    #[test]
    fn waits_for_quorum() {
        let round = elect(&[cp("127.0.0.3", 1), cp("127.0.0.4", 2)], 3);
        assert_eq!(
            round.verdict,
            Verdict::Waiting {
                reason: "quorum not reached: have 2 of 3 eligible control planes".into(),
                eligible: 2,
                quorum: 3
            }
        );
        assert_eq!(
            outcome_of(&round, "127.0.0.4"),
            "eligible: waiting for quorum (have 2 of 3)"
        );
        // Quorum 0 still needs somebody to elect.
        let round = elect(&[], 0);
        assert!(matches!(
            round.verdict,
            Verdict::Waiting {
                eligible: 0,
                quorum: 1,
                ..
            }
        ));
    }

    #[test]
    fn duplicate_ips_give_one_report() {
        let mut late = cp("127.0.0.3", 50);
        late.hostname = Some("cp-1".into());
        let round = elect(&[late, cp("127.0.0.3", 10), cp("127.0.0.4", 20)], 2);
        assert_eq!(round.candidates.len(), 2);
        assert_eq!(round.verdict.leader(), Some(ip("127.0.0.3")));
        assert_eq!(round.candidates[0].hostname.as_deref(), Some("cp-1"));
    }

    #[test]
    fn settle_needs_two_equal_rounds_in_a_row() {
        let a = elect(&[cp("127.0.0.3", 1)], 1);
        let b = elect(&[cp("127.0.0.4", 1)], 1);
        let waiting = elect(&[], 1);
        let mut s = Settle::new(2);
        assert_eq!(s.observe(&a), None);
        assert_eq!(s.observe(&b), None);
        assert_eq!(s.observe(&b), Some(ip("127.0.0.4")));
        assert_eq!(s.observe(&b), Some(ip("127.0.0.4")));
        assert_eq!(s.observe(&waiting), None);
        assert_eq!(s.observe(&b), None);
        assert_eq!(s.observe(&b), Some(ip("127.0.0.4")));
    }

    #[test]
    fn time_formatting() {
        assert_eq!(fmt_boot_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_boot_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(fmt_boot_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(fmt_boot_time(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(fmt_delta(59), "59 s");
        assert_eq!(fmt_delta(125), "2 min 5 s");
        assert_eq!(fmt_delta(7_800), "2 h 10 min");
    }

    fn candidate() -> impl Strategy<Value = Candidate> {
        let addr = prop_oneof![
            (1u8..=20).prop_map(|h| IpAddr::from([127, 0, 0, h])),
            (1u8..=3).prop_map(|h| IpAddr::from([127, 0, 1, h])),
            (1u16..=12).prop_map(|h| IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, h])),
        ];
        (
            addr,
            proptest::option::of("[a-c]{1,2}"),
            proptest::option::weighted(0.9, 1_000u64..1_004),
            proptest::bool::weighted(0.05),
            proptest::bool::weighted(0.9),
            proptest::bool::weighted(0.85),
        )
            .prop_map(|(ip, hostname, boot_time, has_etcd, reachable, role_ok)| {
                Candidate {
                    ip,
                    hostname,
                    boot_time,
                    has_etcd,
                    reachable,
                    role_ok,
                }
            })
    }

    /// Candidates with unique IPs, in random order, plus a shuffled copy.
    fn field() -> impl Strategy<Value = (Vec<Candidate>, Vec<Candidate>)> {
        proptest::collection::vec(candidate(), 0..12)
            .prop_map(|v| {
                let mut seen = BTreeSet::new();
                v.into_iter()
                    .filter(|c| seen.insert(c.ip))
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    }

    fn numeric(ip: IpAddr) -> (u8, u128) {
        match ip {
            IpAddr::V4(a) => (0, u128::from(u32::from_be_bytes(a.octets()))),
            IpAddr::V6(a) => (1, u128::from_be_bytes(a.octets())),
        }
    }

    proptest! {
        #[test]
        fn election_properties((list, shuffled) in field(), quorum in 0usize..6) {
            let round = elect(&list, quorum);
            // Deterministic, and blind to input order.
            prop_assert_eq!(&round, &elect(&list, quorum));
            prop_assert_eq!(&round, &elect(&shuffled, quorum));

            // One report per candidate.
            let reported: BTreeSet<IpAddr> = round.candidates.iter().map(|r| r.ip).collect();
            prop_assert_eq!(reported.len(), round.candidates.len());
            prop_assert_eq!(reported, list.iter().map(|c| c.ip).collect::<BTreeSet<_>>());

            let with_etcd: Vec<IpAddr> = {
                let mut v: Vec<_> = list.iter().filter(|c| c.reachable && c.has_etcd).map(|c| c.ip).collect();
                v.sort_by_key(|ip| numeric(*ip));
                v
            };
            let eligible: Vec<&Candidate> = list
                .iter()
                .filter(|c| c.reachable && c.role_ok && c.boot_time.is_some())
                .collect();
            match &round.verdict {
                Verdict::Refused { etcd_on, .. } => {
                    prop_assert!(!with_etcd.is_empty());
                    prop_assert_eq!(etcd_on, &with_etcd);
                }
                Verdict::Waiting { eligible: have, .. } => {
                    prop_assert!(with_etcd.is_empty());
                    prop_assert_eq!(*have, eligible.len());
                    prop_assert!(eligible.len() < quorum.max(1));
                }
                Verdict::Leader { ip, .. } => {
                    prop_assert!(with_etcd.is_empty());
                    prop_assert!(eligible.len() >= quorum.max(1));
                    let leader = eligible.iter().find(|c| c.ip == *ip).unwrap();
                    let oldest = eligible.iter().filter_map(|c| c.boot_time).min();
                    prop_assert_eq!(leader.boot_time, oldest);
                    let lowest = eligible
                        .iter()
                        .filter(|c| c.boot_time == oldest)
                        .map(|c| numeric(c.ip))
                        .min();
                    prop_assert_eq!(Some(numeric(*ip)), lowest);
                    prop_assert!(round.candidates[0].outcome.starts_with("leader:"));
                    let leaders = round.candidates.iter().filter(|r| r.outcome.starts_with("leader")).count();
                    prop_assert_eq!(leaders, 1);
                }
            }
        }

        #[test]
        fn settle_matches_a_model(leaders in proptest::collection::vec(proptest::option::of(1u8..4), 0..30)) {
            let rounds: Vec<Round> = leaders
                .iter()
                .map(|l| match l {
                    Some(h) => elect(&[cp(&format!("127.0.0.{h}"), 1)], 1),
                    None => elect(&[], 1),
                })
                .collect();
            let mut settle = Settle::new(2);
            for (i, round) in rounds.iter().enumerate() {
                let got = settle.observe(round);
                let expected = match (i.checked_sub(1).map(|p| leaders[p]), leaders[i]) {
                    (Some(Some(prev)), Some(now)) if prev == now => Some(IpAddr::from([127, 0, 0, now])),
                    _ => None,
                };
                prop_assert_eq!(got, expected);
            }
        }
    }
}
