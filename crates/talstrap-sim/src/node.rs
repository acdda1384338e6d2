//! One simulated node: its identity, its locked state, and the driver task
//! that advances the state machine at each deadline (or when anything in the
//! fleet changes) and turns the wanted listener into real sockets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::cosi::ResourceVersions;
use super::fleet::FleetShared;
use super::server::Listener;
use super::state::{ListenerKind, NodeIdent, NodeState, StopStyle};

/// A simulated Talos node.
pub struct SimNode {
    pub id: NodeIdent,
    state: Mutex<NodeState>,
    fleet: Weak<FleetShared>,
    /// Bumped on every state change; COSI watches follow it.
    changes: watch::Sender<u64>,
    /// COSI resource versions.
    pub versions: ResourceVersions,
    /// Listener generation currently bound (see `NodeState::listener`).
    bound: AtomicU64,
    /// `NodeState::view_key` at the last step.
    view_key: AtomicU64,
}

impl SimNode {
    pub fn new(id: NodeIdent, fleet: Weak<FleetShared>, member_id: u64) -> Self {
        let state = NodeState::new(&id, Instant::now(), member_id);
        Self {
            id,
            state: Mutex::new(state),
            fleet,
            changes: watch::channel(0).0,
            versions: ResourceVersions::default(),
            bound: AtomicU64::new(0),
            view_key: AtomicU64::new(0),
        }
    }

    /// The node's state. Never hold two nodes' locks at once; the fleet's
    /// etcd registry may be locked while holding this one, not the reverse.
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn fleet(&self) -> Option<Arc<FleetShared>> {
        self.fleet.upgrade()
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.id.ip, port)
    }

    /// Something changed: wake watchers and this node's driver (whose step
    /// wakes the others if the change matters to them).
    pub fn touch(&self) {
        self.changes.send_modify(|g| *g += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn count_connection(&self) {
        self.lock().stats.connections += 1;
    }

    pub fn count_handshake(&self) {
        self.lock().stats.handshakes += 1;
    }

    pub fn count_request(&self, path: &str) {
        // The key is allocated on a path's first request only.
        let mut st = self.lock();
        match st.stats.requests.get_mut(path) {
            Some(n) => *n += 1,
            None => {
                st.stats.requests.insert(path.to_string(), 1);
            }
        }
    }

    /// Advances the state machine to now; returns the next deadline, the
    /// listener the node wants, and whether it waits on the other nodes
    /// (then a change of theirs must wake it).
    fn step(&self, fleet: &FleetShared) -> Stepped {
        let needs_view = self.lock().needs_view(&self.id);
        let view = if needs_view {
            fleet.current_view()
        } else {
            Arc::default()
        };
        let (changed, stepped, key) = {
            let mut st = self.lock();
            let mut registry = fleet.etcd();
            let changed = st.step(&self.id, Instant::now(), &view, &mut registry);
            let stepped = Stepped {
                deadline: st.next_deadline(),
                want: st.listener.clone(),
                waits_on_fleet: st.needs_view(&self.id),
            };
            (changed, stepped, st.view_key(&self.id))
        };
        if changed {
            self.touch();
        }
        // What this node adds to the view changed (here or in a handler
        // since the last step): wake the nodes that read it.
        if self.view_key.swap(key, Ordering::SeqCst) != key {
            fleet.bump();
        }
        stepped
    }
}

/// What one step of the driver found.
struct Stepped {
    deadline: Option<Instant>,
    want: super::state::ListenerWant,
    waits_on_fleet: bool,
}

/// Runs a node until `stop` turns true.
pub async fn drive(node: Arc<SimNode>, mut stop: watch::Receiver<bool>) {
    let Some(fleet) = node.fleet() else { return };
    let mut tick = fleet.subscribe();
    let mut mine = node.subscribe();
    let port = fleet.port;
    drop(fleet);
    let mut current: Option<Listener> = None;
    let mut current_gen = 0u64;
    // Connections frozen by a power cut: open and silent until the node
    // comes back, when they are reset (a rebooted machine answers RST).
    let mut frozen: Vec<Arc<super::server::KillSwitch>> = Vec::new();
    loop {
        tick.borrow_and_update();
        mine.borrow_and_update();
        let Some(fleet) = node.fleet() else { break };
        let Stepped {
            deadline,
            want,
            waits_on_fleet,
        } = node.step(&fleet);
        drop(fleet);
        let mut retry = None;
        if want.generation != current_gen {
            if let Some(old) = current.take() {
                let held = if want.stop == StopStyle::Freeze {
                    old.open_connections()
                } else {
                    Vec::new()
                };
                old.stop(want.stop).await;
                for c in frozen.drain(..) {
                    c.reset();
                }
                frozen = held;
            }
            if want.kind == ListenerKind::None {
                current_gen = want.generation;
                node.bound.store(current_gen, Ordering::SeqCst);
            } else {
                match Listener::start(&node, &want, node.addr(port)).await {
                    Ok(l) => {
                        current = Some(l);
                        current_gen = want.generation;
                        node.bound.store(current_gen, Ordering::SeqCst);
                        node.touch();
                    }
                    Err(e) => {
                        tracing::warn!(node = %node.id.hostname, error = %e, "cannot listen; retrying");
                        retry = Some(Instant::now() + Duration::from_millis(50));
                    }
                }
            }
        }
        let wake = [deadline, retry].into_iter().flatten().min();
        tokio::select! {
            _ = mine.changed() => {}
            _ = async {
                if waits_on_fleet {
                    let _ = tick.changed().await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {}
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    if let Some(l) = current {
        l.stop(StopStyle::Abort).await;
    }
}

/// Whether the listener the node wants is in place (bound, or deliberately
/// absent); the fleet waits for this before handing nodes to tests.
pub fn settled(node: &SimNode) -> bool {
    let want = node.lock().listener.generation;
    node.bound.load(Ordering::SeqCst) == want
}
