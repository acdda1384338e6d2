//! Phase 1 of `discover`: a TCP connect sweep over the targets.
//!
//! Every Talos node listens on TCP 50000 (apid when configured, the
//! maintenance service otherwise), so a plain connect separates the few hosts
//! worth a TLS handshake from the many that are not. Phase 2 (identifying
//! each open host over TLS/gRPC) takes [`ScanResult::open`] and reconnects;
//! this phase closes every connection as soon as it is established.
//!
//! The sweep keeps a sliding window of connects in flight and starts a new
//! one as each finishes; each connect has its own timeout. Running out of
//! file descriptors ("too many open files") is not an error of the target:
//! the window shrinks to what the process could actually hold and the
//! address is tried again a little later. A deadline or Ctrl-C stops the
//! sweep at once and the result says how far it got.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::targets::TargetSet;

/// Talos API port, where both apid and the maintenance service listen.
pub(crate) const TALOS_API_PORT: u16 = 50000;

/// How many times one address is retried after the system ran out of
/// descriptors or ports before it is counted as an error.
const MAX_EXHAUSTED_ATTEMPTS: u32 = 10;

/// How the sweep runs.
#[derive(Debug, Clone)]
pub(crate) struct ScanOptions {
    /// TCP port to connect to (Talos: 50000).
    pub port: u16,
    /// Limit for one connect; a host that neither accepts nor refuses within
    /// it counts as timed out.
    pub connect_timeout: Duration,
    /// Connects in flight at most (see [`super::rlimit::window_for`]).
    pub window: usize,
    /// When to stop: no connect starts after it, connects still in flight are
    /// abandoned, and the result reports what was done.
    pub deadline: Option<Instant>,
    /// Ctrl-C: stops the sweep like the deadline does.
    pub cancel: CancellationToken,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            port: TALOS_API_PORT,
            connect_timeout: Duration::from_secs(1),
            window: 1024,
            deadline: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// What the sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScanResult {
    /// Hosts that accepted the connection, sorted numerically (IPv4 first).
    pub open: Vec<SocketAddr>,
    /// Addresses with a final answer (open + refused + timed out + errors).
    pub scanned: u64,
    /// Connection refused: a host is there, nothing listens on the port.
    pub refused: u64,
    /// No answer within the connect timeout (no host, or a silent firewall).
    pub timed_out: u64,
    /// Other failures (unreachable network or host, permission denied, or
    /// descriptors still exhausted after several retries).
    pub errors: u64,
    /// Wall time the sweep took.
    pub elapsed: Duration,
    /// The deadline stopped the sweep before every address was answered.
    pub deadline_reached: bool,
    /// Ctrl-C stopped the sweep before every address was answered.
    pub interrupted: bool,
    /// Window in use at the end: smaller than requested when the process ran
    /// out of file descriptors on the way.
    pub final_window: usize,
}

/// Result of one connect attempt.
enum Probe {
    Open,
    Refused,
    TimedOut,
    /// The local system ran out of descriptors or ports: not an answer.
    Exhausted(io::Error),
    Failed(io::Error),
}

/// Connects to `targets` on `opts.port` and reports which accept.
///
/// `progress`, if given, is called with `(done, total)` at the start and
/// after every address that gets a final answer.
pub(crate) async fn scan(
    targets: &TargetSet,
    opts: &ScanOptions,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
) -> ScanResult {
    let timeout = opts.connect_timeout;
    sweep(targets, opts, progress, move |addr| {
        // Each connect runs as its own task, so a window's worth of
        // socket and connect calls is spread over every runtime thread
        // instead of queueing behind one. The task ends by itself at the
        // timeout (closing its socket), and is aborted if the sweep stops
        // first. Spawned when first polled: after a retry's backoff.
        async move {
            let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                tokio::time::timeout(timeout, connect_and_close(addr))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            }));
            task.await.unwrap_or_else(|e| Err(io::Error::other(e)))
        }
    })
    .await
}

/// One real connect; the stream is dropped (closed) at once because phase 2
/// opens its own TLS connection.
async fn connect_and_close(addr: SocketAddr) -> io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    drop(stream);
    Ok(())
}

/// The sliding-window sweep, generic over the connect so that its window
/// and retry logic can be tested without touching the network.
async fn sweep<C, F>(
    targets: &TargetSet,
    opts: &ScanOptions,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
    connect: C,
) -> ScanResult
where
    C: Fn(SocketAddr) -> F,
    F: Future<Output = io::Result<()>>,
{
    let started = Instant::now();
    let total = u64::try_from(targets.len()).unwrap_or(u64::MAX);
    let mut result = ScanResult::default();
    let mut window = opts.window.max(1);
    let mut fresh = targets.iter();
    let mut retries: VecDeque<(IpAddr, u32)> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();

    let probe = |ip: IpAddr, attempt: u32| {
        let connecting = connect(SocketAddr::new(ip, opts.port));
        one_connect(ip, attempt, connecting, opts.connect_timeout)
    };

    let deadline = opts.deadline;
    let deadline_sleep = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline_sleep);

    if let Some(report) = progress {
        report(0, total);
    }
    let cancel = opts.cancel.clone();
    loop {
        if deadline.is_some_and(|at| Instant::now() >= at) {
            result.deadline_reached = true;
            break;
        }
        if cancel.is_cancelled() {
            result.interrupted = true;
            break;
        }
        while in_flight.len() < window {
            let Some((ip, attempt)) = retries
                .pop_front()
                .or_else(|| fresh.next().map(|ip| (ip, 0)))
            else {
                break;
            };
            in_flight.push(probe(ip, attempt));
        }
        if in_flight.is_empty() {
            break;
        }
        let (ip, attempt, outcome) = tokio::select! {
            biased;
            () = &mut deadline_sleep => {
                result.deadline_reached = true;
                break;
            }
            () = cancel.cancelled() => {
                result.interrupted = true;
                break;
            }
            Some(done) = in_flight.next() => done,
        };
        if let Some(retry) = tally(
            &mut result,
            &mut window,
            in_flight.len(),
            ip,
            attempt,
            outcome,
            opts.port,
        ) {
            retries.push_back(retry);
            continue;
        }
        result.scanned += 1;
        if let Some(report) = progress {
            report(result.scanned, total);
        }
    }

    result.open.sort();
    result.elapsed = started.elapsed();
    result.final_window = window;
    result
}

/// One connect attempt under its timeout; a retry (`attempt > 0`) first
/// backs off.
async fn one_connect<F>(
    ip: IpAddr,
    attempt: u32,
    connecting: F,
    connect_timeout: Duration,
) -> (IpAddr, u32, Probe)
where
    F: Future<Output = io::Result<()>>,
{
    if attempt > 0 {
        tokio::time::sleep(exhausted_backoff(attempt)).await;
    }
    let outcome = match tokio::time::timeout(connect_timeout, connecting).await {
        Err(_) => Probe::TimedOut,
        Ok(Ok(())) => Probe::Open,
        Ok(Err(err)) => classify(err),
    };
    (ip, attempt, outcome)
}

/// Counts one connect's answer in `result`, or returns the address to try
/// again (the system ran out of descriptors or ports, not yet too often).
/// `in_flight` is what is still connecting besides this one.
fn tally(
    result: &mut ScanResult,
    window: &mut usize,
    in_flight: usize,
    ip: IpAddr,
    attempt: u32,
    outcome: Probe,
    port: u16,
) -> Option<(IpAddr, u32)> {
    match outcome {
        Probe::Open => result.open.push(SocketAddr::new(ip, port)),
        Probe::Refused => result.refused += 1,
        Probe::TimedOut => result.timed_out += 1,
        Probe::Failed(err) => {
            tracing::debug!(%ip, %err, "connect failed");
            result.errors += 1;
        }
        Probe::Exhausted(err) => {
            // Connects fail this way at once, before any packet, so what
            // is still in flight is what the process can hold: shrink to
            // that. A probe failing this way is then not replaced, so a
            // burst of failures converges on the real capacity. The
            // window does not grow back during this sweep.
            let fits = in_flight.max(1);
            if fits < *window {
                tracing::debug!(%err, from = *window, to = fits, "out of descriptors; shrinking the scan window");
                *window = fits;
            }
            if attempt + 1 < MAX_EXHAUSTED_ATTEMPTS {
                return Some((ip, attempt + 1));
            }
            tracing::warn!(%ip, %err, "giving up on an address: the system stayed out of descriptors or ports");
            result.errors += 1;
        }
    }
    None
}

/// Sorts a connect error into refused, resource exhaustion (retry later) or
/// another failure.
fn classify(err: io::Error) -> Probe {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => return Probe::Refused,
        // The connect's own timeout (or the kernel's): a silent host.
        io::ErrorKind::TimedOut => return Probe::TimedOut,
        _ => {}
    }
    match err.raw_os_error() {
        // Out of descriptors (per process or system-wide), of buffer memory,
        // or of local ports: the local machine's limits, not the target's.
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::EADDRNOTAVAIL | libc::EAGAIN) => {
            Probe::Exhausted(err)
        }
        _ => Probe::Failed(err),
    }
}

/// Pause before retry `attempt` (1-based) of an address that hit exhaustion:
/// 10 ms doubling, at most 500 ms.
fn exhausted_backoff(attempt: u32) -> Duration {
    let ms = 10u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(500))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::discovery::targets::parse_targets;
    use std::collections::BTreeSet;
    use std::hash::BuildHasher;
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// A random 127.x.y.0/24 (x, y in 1..=254) so parallel tests never share
    /// addresses.
    fn random_subnet() -> (u8, u8) {
        let h = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        ((h % 254 + 1) as u8, ((h >> 16) % 254 + 1) as u8)
    }

    /// Listeners on three hosts of a random loopback /24, all on one port.
    async fn three_listeners() -> ((u8, u8), u16, Vec<TcpListener>, Vec<SocketAddr>) {
        for _ in 0..20 {
            let (x, y) = random_subnet();
            let hosts = [7u8, 100, 201];
            let first = match TcpListener::bind((Ipv4Addr::new(127, x, y, hosts[0]), 0)).await {
                Ok(l) => l,
                Err(_) => continue,
            };
            let port = first.local_addr().unwrap().port();
            let mut listeners = vec![first];
            for &h in &hosts[1..] {
                match TcpListener::bind((Ipv4Addr::new(127, x, y, h), port)).await {
                    Ok(l) => listeners.push(l),
                    Err(_) => break,
                }
            }
            if listeners.len() == hosts.len() {
                let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
                return ((x, y), port, listeners, addrs);
            }
        }
        panic!("could not bind three loopback listeners");
    }

    fn opts(port: u16, window: usize) -> ScanOptions {
        ScanOptions {
            port,
            connect_timeout: Duration::from_millis(300),
            window,
            ..ScanOptions::default()
        }
    }

    #[tokio::test]
    async fn finds_exactly_the_listening_hosts_in_a_loopback_24() {
        let ((x, y), port, _listeners, expected) = three_listeners().await;
        let targets = parse_targets(&[format!("127.{x}.{y}.0/24")], false).unwrap();
        let calls = AtomicU64::new(0);
        let last = AtomicU64::new(0);
        let report = |done: u64, total: u64| {
            calls.fetch_add(1, Ordering::Relaxed);
            last.store(done, Ordering::Relaxed);
            assert_eq!(total, 254);
        };
        let result = scan(&targets, &opts(port, 64), Some(&report)).await;
        assert_eq!(result.open, expected);
        assert_eq!(result.scanned, 254);
        assert_eq!(result.refused, 251);
        assert_eq!(result.timed_out, 0);
        assert_eq!(result.errors, 0);
        assert!(!result.deadline_reached);
        assert_eq!(result.final_window, 64);
        assert_eq!(calls.load(Ordering::Relaxed), 255);
        assert_eq!(last.load(Ordering::Relaxed), 254);
    }

    #[tokio::test]
    async fn ipv6_loopback_host() {
        let listener = TcpListener::bind("[::1]:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = parse_targets(&["::1/128".to_string()], false).unwrap();
        let result = scan(&targets, &opts(addr.port(), 16), None).await;
        assert_eq!(result.open, vec![addr]);
        assert_eq!(result.scanned, 1);
        drop(listener);
        let result = scan(&targets, &opts(addr.port(), 16), None).await;
        assert!(result.open.is_empty());
        assert_eq!(result.refused, 1);
    }

    #[test]
    fn scan_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let targets = parse_targets(&["::1".to_string()], false).unwrap();
        let o = ScanOptions::default();
        let report = |_: u64, _: u64| {};
        assert_send(&scan(&targets, &o, Some(&report)));
    }

    #[test]
    fn classification() {
        assert!(matches!(
            classify(io::Error::from(io::ErrorKind::ConnectionRefused)),
            Probe::Refused
        ));
        for code in [libc::EMFILE, libc::ENFILE, libc::EADDRNOTAVAIL] {
            assert!(matches!(
                classify(io::Error::from_raw_os_error(code)),
                Probe::Exhausted(_)
            ));
        }
        assert!(matches!(
            classify(io::Error::from_raw_os_error(libc::ENETUNREACH)),
            Probe::Failed(_)
        ));
        // A connect task's own timeout, or the kernel giving up: silent.
        assert!(matches!(
            classify(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            Probe::TimedOut
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(exhausted_backoff(1), Duration::from_millis(10));
        assert_eq!(exhausted_backoff(2), Duration::from_millis(20));
        assert_eq!(exhausted_backoff(6), Duration::from_millis(320));
        assert_eq!(exhausted_backoff(7), Duration::from_millis(500));
        assert_eq!(exhausted_backoff(40), Duration::from_millis(500));
    }

    /// A fake network in which only `cap` sockets can exist at once: more
    /// connects fail with EMFILE, as they would against RLIMIT_NOFILE.
    #[tokio::test(start_paused = true)]
    async fn out_of_descriptors_shrinks_the_window_and_loses_nothing() {
        let targets = parse_targets(&["127.3.3.0/26".to_string()], false).unwrap();
        let cap = 10;
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let emfiles = Arc::new(AtomicUsize::new(0));
        let connect = |addr: SocketAddr| {
            let (live, peak, emfiles) = (live.clone(), peak.clone(), emfiles.clone());
            async move {
                if live.fetch_add(1, Ordering::SeqCst) >= cap {
                    live.fetch_sub(1, Ordering::SeqCst);
                    emfiles.fetch_add(1, Ordering::SeqCst);
                    return Err(io::Error::from_raw_os_error(libc::EMFILE));
                }
                peak.fetch_max(live.load(Ordering::SeqCst), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                live.fetch_sub(1, Ordering::SeqCst);
                let IpAddr::V4(v4) = addr.ip() else {
                    unreachable!()
                };
                if v4.octets()[3] % 10 == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                }
            }
        };
        let result = sweep(&targets, &opts(1, 1000), None, connect).await;
        let expected: Vec<SocketAddr> = (1..=62u8)
            .filter(|h| h % 10 == 0)
            .map(|h| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 3, 3, h)), 1))
            .collect();
        assert!(
            emfiles.load(Ordering::SeqCst) > 0,
            "the fake limit was never hit"
        );
        assert_eq!(result.open, expected);
        assert_eq!(result.scanned, 62);
        assert_eq!(result.refused, 62 - expected.len() as u64);
        assert_eq!(result.errors, 0);
        assert!(result.final_window <= cap, "window {}", result.final_window);
        assert!(peak.load(Ordering::SeqCst) <= cap);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_hosts_time_out() {
        let targets = parse_targets(&["127.4.4.0/30".to_string()], false).unwrap();
        let connect = |_: SocketAddr| std::future::pending::<io::Result<()>>();
        let result = sweep(&targets, &opts(1, 8), None, connect).await;
        assert_eq!(result.timed_out, 2);
        assert_eq!(result.scanned, 2);
        assert!(result.open.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_new_connects_and_reports_progress() {
        // 20 hosts, 4 at a time, 10 ms each: by 25 ms two rounds are done.
        let targets = parse_targets(&["127.5.5.0/27".to_string()], false).unwrap();
        let started: Arc<std::sync::Mutex<BTreeSet<SocketAddr>>> = Arc::default();
        let connect = |addr: SocketAddr| {
            let started = started.clone();
            async move {
                started.lock().unwrap().insert(addr);
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err(io::Error::from(io::ErrorKind::ConnectionRefused))
            }
        };
        let mut o = opts(1, 4);
        o.deadline = Some(Instant::now() + Duration::from_millis(25));
        let result = sweep(&targets, &o, None, connect).await;
        assert!(result.deadline_reached);
        assert_eq!(result.scanned, 8);
        assert_eq!(result.refused, 8);
        // The third round was started before the deadline but abandoned.
        assert_eq!(started.lock().unwrap().len(), 12);

        o.deadline = Some(Instant::now());
        let result = sweep(&targets, &o, None, |_| async { Ok(()) }).await;
        assert!(result.deadline_reached);
        assert_eq!(result.scanned, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn ctrl_c_stops_the_sweep_and_keeps_what_was_found() {
        // 30 hosts, 5 at a time, 10 ms each; Ctrl-C at 25 ms: two rounds done.
        let targets = parse_targets(&["127.5.6.0/27".to_string()], false).unwrap();
        let o = opts(1, 5);
        let cancel = o.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(25)).await;
            cancel.cancel();
        });
        let connect = |_: SocketAddr| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        };
        let result = sweep(&targets, &o, None, connect).await;
        assert!(result.interrupted && !result.deadline_reached);
        assert_eq!(result.scanned, 10);
        assert_eq!(result.open.len(), 10, "hosts found before Ctrl-C are kept");

        // Already interrupted: nothing is started.
        let result = sweep(&targets, &o, None, |_| async { Ok(()) }).await;
        assert!(result.interrupted);
        assert_eq!(result.scanned, 0);
    }

    /// Runs `real_emfile_child` in a child process whose soft open-file limit
    /// is tiny, so the real "too many open files" path is exercised without
    /// touching this process's limit.
    #[test]
    fn real_descriptor_exhaustion_does_not_panic_or_lose_hosts() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "discovery::scan::tests::real_emfile_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TALSTRAP_TEST_EMFILE_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "child did not run the test:\n{stdout}"
        );
    }

    #[tokio::test]
    #[ignore = "run by real_descriptor_exhaustion_does_not_panic_or_lose_hosts in a child process"]
    async fn real_emfile_child() {
        assert_eq!(
            std::env::var("TALSTRAP_TEST_EMFILE_CHILD").as_deref(),
            Ok("1"),
            "only meant to run in a child process"
        );
        let ((x, y), port, _listeners, expected) = three_listeners().await;
        let targets = parse_targets(&[format!("127.{x}.{y}.0/24")], false).unwrap();
        crate::discovery::rlimit::lower_nofile_soft_limit(48).unwrap();
        let result = scan(&targets, &opts(port, 1000), None).await;
        assert_eq!(result.open, expected);
        assert_eq!(result.refused, 251);
        assert_eq!(result.errors, 0);
        assert!(result.final_window < 48, "window {}", result.final_window);
    }
}
