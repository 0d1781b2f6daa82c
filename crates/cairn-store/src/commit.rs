//! Group commit: requests that arrive together share one run of their
//! batch.
//!
//! The metadata database takes one write transaction at a time, and each
//! durable commit costs milliseconds (it flushes the file). Threads that
//! each commit their own small change therefore queue behind one another,
//! and a node's throughput is one commit per change. [`GroupCommit`] lets
//! them share: a thread that submits a request while no batch is running
//! becomes the batch's *leader*, takes every request queued so far (its own
//! included), runs them all at once (in [`Metadata`](crate::Metadata), in one
//! transaction and one commit), and hands each waiter its own result.
//! Requests submitted while a batch runs wait for the next one, which the
//! first of their threads to wake leads.
//!
//! So a lone request runs at once, with no added wait, and under load
//! batches form by themselves, as large as the number of requests that
//! arrived during the previous batch. No thread of its own, no timer.
//!
//! A leader returns as soon as its batch is done: it never runs a second
//! batch for others, so no caller waits for more than the batch in progress
//! and its own.
//!
//! If running a batch panics, each of its waiters gets `None` (the panic
//! goes on in the leader's thread) and the next batch is led as usual.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A queue of requests of type `C`, run in batches that yield one result
/// of type `R` per request. See the module docs.
#[derive(Debug)]
pub(crate) struct GroupCommit<C, R> {
    queue: Mutex<Queue<C, R>>,
    /// Signalled whenever a batch finishes: its results are in `done`, and
    /// no batch is running.
    finished: Condvar,
}

#[derive(Debug)]
struct Queue<C, R> {
    /// The ticket of the next request submitted.
    next_ticket: u64,
    /// The next batch: requests not yet taken by a leader, in the order
    /// they were submitted.
    waiting: Vec<(u64, C)>,
    /// Whether a leader is running a batch. Set when a leader takes
    /// `waiting`, cleared under the same lock as its results are stored: so
    /// while it is clear, every request taken has its result in `done`.
    running: bool,
    /// Results not yet picked up, by ticket; `None` if the batch panicked.
    done: HashMap<u64, Option<R>>,
    /// While set, no batch starts: tests use it to gather a batch exactly.
    #[cfg(test)]
    held: bool,
}

impl<C, R> Default for GroupCommit<C, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                next_ticket: 0,
                waiting: Vec::new(),
                running: false,
                done: HashMap::new(),
                #[cfg(test)]
                held: false,
            }),
            finished: Condvar::new(),
        }
    }
}

impl<C, R> GroupCommit<C, R> {
    /// Queues `request` and returns its result once its batch has run:
    /// either in this thread, which then runs the batch with `run`, or in
    /// another thread, with that thread's `run`. Every caller must pass the
    /// same `run` (in effect: they run each other's requests).
    ///
    /// `run` gets the batch's requests in submission order and must return
    /// exactly one result per request, in the same order.
    ///
    /// Returns `None` if the batch's `run` panicked (in another thread: in
    /// this one, the panic goes on).
    pub(crate) fn submit(&self, request: C, run: impl FnOnce(Vec<C>) -> Vec<R>) -> Option<R> {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, request));
        let mut run = Some(run);
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            // Not done and no batch running: the request is still waiting
            // (see `Queue::running`), and this thread leads the next batch.
            if !queue.running && !queue.is_held() {
                queue.running = true;
                let (tickets, requests): (Vec<u64>, Vec<C>) =
                    std::mem::take(&mut queue.waiting).into_iter().unzip();
                drop(queue);
                let leading = Leading {
                    group: self,
                    tickets,
                };
                // A leader's batch holds its own request, so it finds its
                // result next time round and never leads twice.
                let run = run.take().expect("a thread leads at most one batch");
                let results = run(requests);
                assert_eq!(
                    results.len(),
                    leading.tickets.len(),
                    "one result per request"
                );
                queue = leading.finish(results);
                continue;
            }
            queue = self
                .finished
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// The queue's lock. It is held only to push, take and store, never
    /// while a batch runs, and nothing in between can panic with the queue
    /// half-changed; so poison is ignored.
    fn lock(&self) -> MutexGuard<'_, Queue<C, R>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops batches from starting until [`release`](Self::release).
    #[cfg(test)]
    pub(crate) fn hold(&self) {
        self.lock().held = true;
    }

    /// Lets batches start again, the next one with every request queued.
    #[cfg(test)]
    pub(crate) fn release(&self) {
        self.lock().held = false;
        self.finished.notify_all();
    }

    /// How many requests wait for the next batch.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.lock().waiting.len()
    }
}

impl<C, R> Queue<C, R> {
    #[cfg(test)]
    fn is_held(&self) -> bool {
        self.held
    }

    #[cfg(not(test))]
    fn is_held(&self) -> bool {
        false
    }
}

/// The batch a leader is running. Its results, or if the leader panics
/// its `None`s, go to the waiters when it finishes or is dropped.
struct Leading<'a, C, R> {
    group: &'a GroupCommit<C, R>,
    /// The batch's tickets, emptied once results are stored.
    tickets: Vec<u64>,
}

impl<'a, C, R> Leading<'a, C, R> {
    /// Stores the batch's results, ends the batch and wakes the waiters.
    /// Returns the queue, still locked, for the leader to take its own.
    fn finish(mut self, results: Vec<R>) -> MutexGuard<'a, Queue<C, R>> {
        let mut queue = self.group.lock();
        let tickets = std::mem::take(&mut self.tickets);
        queue
            .done
            .extend(tickets.into_iter().zip(results.into_iter().map(Some)));
        queue.running = false;
        self.group.finished.notify_all();
        queue
    }
}

impl<C, R> Drop for Leading<'_, C, R> {
    fn drop(&mut self) {
        // Only a panic in `run` gets here with tickets left.
        if self.tickets.is_empty() {
            return;
        }
        let mut queue = self.group.lock();
        for ticket in self.tickets.drain(..) {
            queue.done.insert(ticket, None);
        }
        queue.running = false;
        self.group.finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// Doubles each request; records each batch.
    fn doubling(batches: &Mutex<Vec<Vec<u32>>>) -> impl FnOnce(Vec<u32>) -> Vec<u32> + '_ {
        move |batch| {
            batches.lock().unwrap().push(batch.clone());
            batch.into_iter().map(|n| n * 2).collect()
        }
    }

    /// Waits until `n` requests are queued.
    fn until_queued<C, R>(group: &GroupCommit<C, R>, n: usize) {
        while group.queued() < n {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_lone_request_runs_at_once_in_its_own_thread() {
        let group = GroupCommit::default();
        let batches = Mutex::new(Vec::new());
        let me = thread::current().id();
        let result = group.submit(21, |batch: Vec<u32>| {
            assert_eq!(thread::current().id(), me);
            doubling(&batches)(batch)
        });
        assert_eq!(result, Some(42));
        assert_eq!(*batches.lock().unwrap(), [vec![21]]);
    }

    #[test]
    fn requests_queued_together_share_one_batch_in_order_and_get_their_own_results() {
        let group = GroupCommit::default();
        let batches = Mutex::new(Vec::new());
        group.hold();
        thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|n| {
                    let handle = s.spawn({
                        let (group, batches) = (&group, &batches);
                        move || group.submit(n, doubling(batches))
                    });
                    // One at a time, so the batch's order is known.
                    until_queued(&group, n as usize + 1);
                    handle
                })
                .collect();
            group.release();
            for (n, handle) in (0..8u32).zip(handles) {
                assert_eq!(handle.join().unwrap(), Some(n * 2));
            }
        });
        assert_eq!(*batches.lock().unwrap(), [(0..8).collect::<Vec<u32>>()]);
    }

    /// Requests arriving while a batch runs form the next batch, and no
    /// leader runs more than one batch.
    #[test]
    fn requests_arriving_during_a_batch_form_the_next() {
        let group = Arc::new(GroupCommit::default());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let (release_first, first_released) = std::sync::mpsc::channel::<()>();
        let first = thread::spawn({
            let (group, batches, started) = (group.clone(), batches.clone(), started.clone());
            move || {
                group.submit(1u32, |batch| {
                    started.store(1, Ordering::SeqCst);
                    first_released.recv().unwrap();
                    doubling(&batches)(batch)
                })
            }
        });
        while started.load(Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        let later: Vec<_> = (2..6u32)
            .map(|n| {
                let (group, batches) = (group.clone(), batches.clone());
                thread::spawn(move || group.submit(n, doubling(&batches)))
            })
            .collect();
        until_queued(&group, 4);
        release_first.send(()).unwrap();
        assert_eq!(first.join().unwrap(), Some(2));
        for (n, handle) in (2..6u32).zip(later) {
            assert_eq!(handle.join().unwrap(), Some(n * 2));
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0], [1]);
        let mut second = batches[1].clone();
        second.sort_unstable();
        assert_eq!(second, [2, 3, 4, 5]);
    }

    /// A leader that panics must not leave its waiters waiting forever,
    /// nor stop the next batch.
    #[test]
    fn a_panicking_batch_gives_its_waiters_none_and_the_next_runs() {
        let group = GroupCommit::default();
        group.hold();
        let group = &group;
        thread::scope(|s| {
            // Both pass the same `run`, as callers must: either may lead.
            let failing = |_| -> Vec<u32> { panic!("the batch fails") };
            let leader = s.spawn(move || group.submit(0u32, failing));
            until_queued(group, 1);
            let waiter = s.spawn(move || group.submit(1u32, failing));
            until_queued(group, 2);
            group.release();
            // Whichever thread led gets the panic, the other `None`.
            let results = [leader.join(), waiter.join()];
            assert_eq!(
                results.iter().filter(|r| r.is_err()).count(),
                1,
                "{results:?}"
            );
            assert!(results.iter().any(|r| matches!(r, Ok(None))));
        });
        assert_eq!(group.submit(5, |batch| batch), Some(5));
    }
}
