//! Open-file limit handling for the scanner.
//!
//! Every connect in flight holds one file descriptor, so the scan window is
//! bounded by `RLIMIT_NOFILE`. The soft limit is often 1,024 while the hard
//! limit is far higher; an unprivileged process may raise its own soft limit
//! up to the hard one, which is what [`raise_nofile_soft_limit`] does before
//! a scan. [`window_for`] then sizes the window, keeping descriptors back
//! for the rest of the process (runtime, TLS, log files, phase 2).

/// Descriptors kept back for everything that is not a phase-1 connect.
pub(crate) const RESERVED_FDS: u64 = 128;
/// Upper bound on connects in flight, whatever the limit: past this point a
/// larger window only adds SYN bursts, not speed, on ordinary networks.
pub(crate) const MAX_WINDOW: usize = 16_384;
/// Lower bound on connects in flight, even under a tiny limit; the scanner
/// shrinks further by itself if the system says "too many open files".
pub(crate) const MIN_WINDOW: usize = 16;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns
/// `(soft limit now, hard limit)`.
///
/// Never fails: if the limit cannot be read, `(0, 0)` is returned (and
/// [`window_for`] then picks the minimum window); if it cannot be raised,
/// the unchanged soft limit is returned.
pub(crate) fn raise_nofile_soft_limit() -> (u64, u64) {
    let Some((soft, hard)) = get_nofile() else {
        tracing::warn!("could not read the open-file limit; scanning with a small window");
        return (0, 0);
    };
    if soft >= hard {
        return (soft, hard);
    }
    match set_nofile(hard, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the soft open-file limit");
            (hard, hard)
        }
        Err(err) => {
            tracing::debug!(%err, soft, hard, "could not raise the soft open-file limit");
            (soft, hard)
        }
    }
}

/// Number of connects to keep in flight for a given open-file limit:
/// the limit minus [`RESERVED_FDS`], clamped to `MIN_WINDOW..=MAX_WINDOW`.
pub(crate) fn window_for(limit: u64) -> usize {
    let usable = limit.saturating_sub(RESERVED_FDS);
    let capped = usable.min(MAX_WINDOW as u64) as usize;
    capped.max(MIN_WINDOW)
}

/// Current `(soft, hard)` open-file limits, `RLIM_INFINITY` read as
/// `u64::MAX`.
// `rlim_t` is `u64` on Linux but not on every Unix; keep the casts.
#[allow(clippy::unnecessary_cast)]
fn get_nofile() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes into the `rlimit` we pass, which is a
    // valid, exclusively borrowed struct of the right type.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return None;
    }
    Some((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// Sets the open-file limits of this process.
#[allow(clippy::unnecessary_cast)]
fn set_nofile(soft: u64, hard: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `setrlimit` only reads the `rlimit` we pass, a valid struct
    // that lives for the whole call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Lowers the soft open-file limit of this process (test helper for the
/// "too many open files" path; only ever used in a child test process).
#[cfg(test)]
pub(crate) fn lower_nofile_soft_limit(soft: u64) -> std::io::Result<()> {
    let (_, hard) = get_nofile().ok_or_else(std::io::Error::last_os_error)?;
    set_nofile(soft.min(hard), hard)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn window_leaves_headroom_and_is_bounded() {
        assert_eq!(window_for(0), MIN_WINDOW);
        assert_eq!(window_for(100), MIN_WINDOW);
        assert_eq!(window_for(1024), 1024 - 128);
        assert_eq!(window_for(4096), 4096 - 128);
        assert_eq!(window_for(1 << 20), MAX_WINDOW);
        assert_eq!(window_for(u64::MAX), MAX_WINDOW);
    }

    #[test]
    fn raising_reaches_the_hard_limit_and_sticks() {
        let (soft, hard) = raise_nofile_soft_limit();
        assert!(soft <= hard);
        let (now_soft, now_hard) = get_nofile().unwrap();
        assert_eq!(now_hard, hard);
        assert_eq!(now_soft, soft);
        // Raising is idempotent.
        assert_eq!(raise_nofile_soft_limit(), (soft, hard));
    }
}
