//! The open connections, oldest first, and whether each is serving a
//! request: at the connection cap the server sheds the oldest connection
//! that is not (an idle keep-alive, or a client that has not finished its
//! request head), so a real client that connects and asks at once is
//! served instead of waiting behind sockets that say nothing. Owns no
//! socket; the server asks it whom to close and each connection task
//! listens for its own notice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By id, so the first entry is the oldest connection.
    open: BTreeMap<u64, Entry>,
}

struct Entry {
    busy: Arc<AtomicUsize>,
    shed: Arc<Notify>,
}

/// One connection's part: dropped when the connection ends.
pub struct Conn {
    id: u64,
    registry: Arc<Registry>,
    pub busy: Arc<AtomicUsize>,
    pub shed: Arc<Notify>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

/// Held from the moment a request's head is parsed until its response
/// body is written: the connection is busy meanwhile.
pub struct Busy(Arc<AtomicUsize>);

impl Busy {
    pub fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(self: &Arc<Self>) -> Conn {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let shed = Arc::new(Notify::new());
        inner.open.insert(
            id,
            Entry {
                busy: busy.clone(),
                shed: shed.clone(),
            },
        );
        Conn {
            id,
            registry: self.clone(),
            busy,
            shed,
        }
    }

    /// Tells the oldest connection that serves no request to close, and
    /// forgets it (so a second call picks the next one). False when every
    /// connection is busy.
    pub fn shed_oldest_idle(&self) -> bool {
        let mut inner = self.lock();
        let oldest = inner
            .open
            .iter()
            .find(|(_, e)| e.busy.load(Ordering::SeqCst) == 0)
            .map(|(&id, _)| id);
        match oldest.and_then(|id| inner.open.remove(&id)) {
            Some(e) => {
                // A stored permit: the task closes even if it is not
                // waiting on the notice yet.
                e.shed.notify_one();
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_is_shed_first() {
        let r = Arc::new(Registry::default());
        let a = r.register();
        let b = r.register();
        let c = r.register();
        let busy_a = Busy::enter(&a.busy);
        assert!(r.shed_oldest_idle());
        // b was the oldest idle one; a is serving a request.
        assert_eq!(r.len(), 2);
        assert!(r.shed_oldest_idle());
        assert_eq!(r.len(), 1, "c shed next");
        assert!(!r.shed_oldest_idle(), "only a is left, and it is busy");
        drop(busy_a);
        assert!(r.shed_oldest_idle());
        drop((a, b, c));
        assert_eq!(r.len(), 0);
    }

    #[tokio::test]
    async fn the_notice_waits_for_its_connection() {
        let r = Arc::new(Registry::default());
        let a = r.register();
        assert!(r.shed_oldest_idle());
        // Notified before anyone listened: the permit is kept.
        tokio::time::timeout(std::time::Duration::from_secs(1), a.shed.notified())
            .await
            .expect("the shed notice");
    }
}
