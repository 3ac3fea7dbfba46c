//! Coalescing: identical questions in flight go upstream once. The first
//! asker of a question leads and asks; everyone asking the same while it
//! waits gets the leader's result. A burst of containers starting together
//! and resolving the same name costs the upstream one query, not hundreds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::wire::Prepared;

/// What one upstream exchange gave: a prepared answer, or nothing.
pub type Outcome = Option<Arc<Prepared>>;

/// Questions being asked, each with the senders of those waiting for it.
type Waiting = HashMap<Box<[u8]>, Vec<oneshot::Sender<Outcome>>>;

/// Questions being asked upstream, and who else waits for each.
#[derive(Debug, Default)]
pub struct InFlight {
    // A std mutex: held for map operations only, never across an await.
    waiting: Mutex<Waiting>,
}

impl InFlight {
    /// Runs `ask` for `key` unless the same key is already being asked, in
    /// which case waits for that answer instead. `ask` runs at most once
    /// per key at a time.
    pub async fn coalesce<F>(&self, key: &[u8], ask: F) -> Outcome
    where
        F: Future<Output = Outcome>,
    {
        let receiver = {
            let mut waiting = self.lock();
            match waiting.get_mut(key) {
                Some(others) => {
                    let (sender, receiver) = oneshot::channel();
                    others.push(sender);
                    Some(receiver)
                }
                None => {
                    waiting.insert(key.into(), Vec::new());
                    None
                }
            }
        };
        if let Some(receiver) = receiver {
            // A leader that was dropped mid-way sends nothing: no answer.
            return receiver.await.unwrap_or(None);
        }
        let mut leader = Leader {
            flight: self,
            key,
            outcome: None,
        };
        leader.outcome = ask.await;
        leader.outcome.clone()
    }

    /// Whether no question is in flight.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The leader's claim on a key: when it ends, finished or dropped, the key
/// is released and every waiter gets the outcome (None if it never came).
struct Leader<'a> {
    flight: &'a InFlight,
    key: &'a [u8],
    outcome: Outcome,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let others = self.flight.lock().remove(self.key).unwrap_or_default();
        for other in others {
            let _ = other.send(self.outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn answer() -> Arc<Prepared> {
        // A NOERROR response to a.example. A with no records.
        let mut bytes = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        let question = b"\x01a\x07example\x00\x00\x01\x00\x01";
        bytes.extend_from_slice(question);
        Arc::new(Prepared::new(&bytes, question, 300).unwrap())
    }

    #[tokio::test]
    async fn identical_questions_in_flight_are_asked_once() {
        let flight = Arc::new(InFlight::default());
        let asked = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (flight, asked) = (flight.clone(), asked.clone());
                tokio::spawn(async move {
                    flight
                        .coalesce(b"key", async {
                            asked.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Some(answer())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Some(answer()));
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert!(flight.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_waiters() {
        let flight = Arc::new(InFlight::default());
        let leader = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .coalesce(b"key", std::future::pending::<Outcome>())
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.coalesce(b"key", async { Some(answer()) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        assert_eq!(waiter.await.unwrap(), None);
        assert!(flight.is_empty());
        // The key is free again.
        assert_eq!(
            flight.coalesce(b"key", async { Some(answer()) }).await,
            Some(answer())
        );
    }
}
