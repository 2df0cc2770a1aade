//! Cross-worker wake-ups, batched per worker: a fan-out that pushes frames to sockets whose
//! tasks run on other workers wakes each of those workers once, not each socket.
//! Must not hold frames: queues stay in `outbound`; this only moves wakers.
//!
//! Every worker is its own single-threaded runtime, and waking a task of another runtime
//! costs that runtime an `eventfd` write (and it a wake-up). A publish on worker A to a
//! thousand subscribers spread over two workers used to make about five hundred of them;
//! now the wakers of B's sockets are handed to B's mailbox in one go, and B wakes its own
//! tasks, which costs no syscall. A thread that is not a worker (the bus reader) defers every
//! wake this way. Sockets whose queue gets a frame from their own worker are woken at once.
//! A mailbox holds at most one waker per socket of its worker: a push takes the socket's
//! registered waker out, and the next one exists only once the session has run again.

use std::cell::Cell;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, RwLock};

/// The index of "not a worker": wakes of its sockets are never deferred.
pub const NO_WORKER: u16 = u16::MAX;

/// Every worker that ever started, by index (a few per server; tests start many servers).
static WORKERS: RwLock<Vec<Arc<Mailbox>>> = RwLock::new(Vec::new());

thread_local! {
    static HERE: Cell<u16> = const { Cell::new(NO_WORKER) };
}

/// Wakers handed to one worker, and its mailbox task's own waker.
#[derive(Default)]
struct Mailbox {
    wakers: Mutex<Vec<Waker>>,
    task: AtomicWaker,
}

/// Makes the calling thread a worker with a mailbox, once; must be called on the worker's
/// thread from inside its `LocalSet` (the mailbox task is spawned there). Returns its index.
pub fn enter_worker() -> u16 {
    let here = HERE.get();
    if here != NO_WORKER {
        return here;
    }
    let mailbox = Arc::new(Mailbox::default());
    let index = {
        let mut workers = WORKERS.write();
        workers.push(mailbox.clone());
        u16::try_from(workers.len() - 1).unwrap_or(NO_WORKER)
    };
    if index == NO_WORKER {
        return NO_WORKER;
    }
    tokio::task::spawn_local(deliver(mailbox));
    HERE.set(index);
    index
}

/// The calling thread's worker index, or [`NO_WORKER`].
pub fn current() -> u16 {
    HERE.get()
}

/// Wakes what other threads handed to this worker, in the order they came.
async fn deliver(mailbox: Arc<Mailbox>) {
    let mut batch = Vec::new();
    loop {
        poll_fn(|cx| {
            mailbox.task.register(cx.waker());
            std::mem::swap(&mut batch, &mut *mailbox.wakers.lock());
            if batch.is_empty() { Poll::Pending } else { Poll::Ready(()) }
        })
        .await;
        for waker in batch.drain(..) {
            waker.wake();
        }
        // Hold no burst's buffer while idle.
        if batch.capacity() > 64 {
            batch = Vec::new();
        }
        tokio::task::consume_budget().await;
    }
}

/// The wakes of one fan-out: its own worker's at once, the others' handed over when dropped.
pub struct Wakes {
    here: u16,
    deferred: Vec<(u16, Vec<Waker>)>,
}

impl Default for Wakes {
    fn default() -> Self {
        Self { here: current(), deferred: Vec::new() }
    }
}

impl Wakes {
    /// The worker this batch was made on.
    pub fn here(&self) -> u16 {
        self.here
    }

    /// Wakes `waker`, a task of worker `worker`: now if that is this thread's worker (or not
    /// a worker at all), else with the rest of that worker's when this is dropped.
    pub fn wake(&mut self, worker: u16, waker: Waker) {
        if worker == self.here || worker == NO_WORKER {
            return waker.wake();
        }
        match self.deferred.iter_mut().find(|(w, _)| *w == worker) {
            Some((_, wakers)) => wakers.push(waker),
            None => self.deferred.push((worker, vec![waker])),
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let workers = WORKERS.read();
        for (worker, wakers) in self.deferred.drain(..) {
            match workers.get(usize::from(worker)) {
                Some(mailbox) => {
                    mailbox.wakers.lock().extend(wakers);
                    mailbox.task.wake();
                }
                None => wakers.into_iter().for_each(Waker::wake),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn own_and_non_worker_wakes_happen_at_once_and_others_when_dropped() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut wakes = Wakes { here: 7, deferred: Vec::new() };
        wakes.wake(7, waker.clone());
        wakes.wake(NO_WORKER, waker.clone());
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // A worker index no mailbox has: woken directly when the batch ends.
        wakes.wake(NO_WORKER - 1, waker.clone());
        wakes.wake(NO_WORKER - 1, waker);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(wakes.deferred.len(), 1, "one batch per worker");
        drop(wakes);
        assert_eq!(count.0.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_worker_wakes_what_another_thread_handed_it() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = count.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                tx.send(enter_worker()).unwrap();
                assert_eq!(enter_worker(), current(), "once per thread");
                // Runs until its mailbox task woke all three (bounded).
                let all = async {
                    while seen.0.load(Ordering::SeqCst) < 3 {
                        tokio::task::yield_now().await;
                    }
                };
                tokio::time::timeout(std::time::Duration::from_secs(5), all).await.expect("woken in time");
            });
        });
        let index = rx.recv().unwrap();
        let mut wakes = Wakes::default();
        assert_eq!(wakes.here, NO_WORKER, "the test thread is no worker");
        for _ in 0..3 {
            wakes.wake(index, Waker::from(count.clone()));
        }
        drop(wakes);
        worker.join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
    }
}
