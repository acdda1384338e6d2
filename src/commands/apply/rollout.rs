//! The rollout decision: which nodes get their config next, given where
//! every node stands. Pure, so the ordering rules are tested apart from I/O.
//!
//! On a bootstrapped cluster a change that reboots nodes goes to the
//! control planes one at a time (the next only once the previous one
//! rebooted, came back ready and etcd is healthy with every member), then
//! to the workers in batches of `--max-unavailable`. Changes without a
//! reboot go together. Before bootstrap there is no quorum to protect:
//! everything goes at once. A failed node stops the rollout.

/// Where one node of the rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    Pending,
    /// Applied (and, for a reboot, back and healthy).
    Done,
    Failed,
}

/// One node of the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub control_plane: bool,
    /// The change reboots the node.
    pub reboots: bool,
    pub progress: Progress,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Apply to these nodes (indexes into the items) together.
    Wave(Vec<usize>),
    /// A node failed: apply to nobody else.
    Stop {
        failed: Vec<usize>,
    },
    Finished,
}

/// The next wave of the rollout.
pub(crate) fn next_wave(items: &[Item], bootstrapped: bool, max_unavailable: usize) -> Next {
    let pending: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].progress == Progress::Pending)
        .collect();
    let failed: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].progress == Progress::Failed)
        .collect();
    if pending.is_empty() {
        return Next::Finished;
    }
    if !failed.is_empty() {
        return Next::Stop { failed };
    }
    if !bootstrapped {
        return Next::Wave(pending);
    }
    let live: Vec<usize> = pending
        .iter()
        .copied()
        .filter(|&i| !items[i].reboots)
        .collect();
    if !live.is_empty() {
        return Next::Wave(live);
    }
    if let Some(&cp) = pending.iter().find(|&&i| items[i].control_plane) {
        return Next::Wave(vec![cp]);
    }
    Next::Wave(pending.into_iter().take(max_unavailable.max(1)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(control_plane: bool, reboots: bool) -> Item {
        Item {
            control_plane,
            reboots,
            progress: Progress::Pending,
        }
    }

    /// Run the decision to the end, marking every wave done (or failing the
    /// node at `fail`), and return the waves.
    fn drive(
        mut items: Vec<Item>,
        bootstrapped: bool,
        max: usize,
        fail: Option<usize>,
    ) -> (Vec<Vec<usize>>, Next) {
        let mut waves = Vec::new();
        loop {
            match next_wave(&items, bootstrapped, max) {
                Next::Wave(w) => {
                    for &i in &w {
                        items[i].progress = if Some(i) == fail {
                            Progress::Failed
                        } else {
                            Progress::Done
                        };
                    }
                    waves.push(w);
                }
                end => return (waves, end),
            }
        }
    }

    fn cluster_3_2() -> Vec<Item> {
        vec![
            item(true, true),
            item(true, true),
            item(true, true),
            item(false, true),
            item(false, true),
        ]
    }

    #[test]
    fn control_planes_one_at_a_time_then_workers_in_batches() {
        let (waves, end) = drive(cluster_3_2(), true, 1, None);
        assert_eq!(waves, vec![vec![0], vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(end, Next::Finished);
        let (waves, _) = drive(cluster_3_2(), true, 2, None);
        assert_eq!(waves, vec![vec![0], vec![1], vec![2], vec![3, 4]]);
        // max 0 is treated as 1: a rollout always moves.
        let (waves, _) = drive(cluster_3_2(), true, 0, None);
        assert_eq!(waves.len(), 5);
    }

    #[test]
    fn never_two_control_planes_in_one_wave_whatever_the_batch_size() {
        for max in 1..6 {
            let (waves, _) = drive(cluster_3_2(), true, max, None);
            for w in &waves {
                let cps = w.iter().filter(|&&i| i < 3).count();
                assert!(cps <= 1, "{waves:?}");
                if cps == 1 {
                    assert_eq!(w.len(), 1, "a control plane goes alone: {waves:?}");
                }
            }
        }
    }

    #[test]
    fn changes_without_a_reboot_go_together_first() {
        let items = vec![
            item(true, false),
            item(true, true),
            item(false, false),
            item(true, true),
            item(false, true),
        ];
        let (waves, _) = drive(items, true, 1, None);
        assert_eq!(waves, vec![vec![0, 2], vec![1], vec![3], vec![4]]);
    }

    #[test]
    fn before_bootstrap_everything_goes_at_once() {
        let (waves, _) = drive(cluster_3_2(), false, 1, None);
        assert_eq!(waves, vec![vec![0, 1, 2, 3, 4]]);
    }

    #[test]
    fn a_failed_node_stops_the_rollout_before_the_next() {
        let (waves, end) = drive(cluster_3_2(), true, 1, Some(1));
        assert_eq!(waves, vec![vec![0], vec![1]]);
        assert_eq!(end, Next::Stop { failed: vec![1] });
        // A failure in the last wave ends it normally: nothing is left.
        let (waves, end) = drive(cluster_3_2(), true, 2, Some(4));
        assert_eq!(waves.last(), Some(&vec![3, 4]));
        assert_eq!(end, Next::Finished);
    }

    #[test]
    fn nothing_pending_is_finished() {
        assert_eq!(next_wave(&[], true, 1), Next::Finished);
    }
}
