//! Tokio's clock for the drivers around the [`conn`](crate::conn) state
//! machines, which take the time as a `std::time::Instant` and never read a
//! clock themselves. Reading tokio's clock rather than the system's lets
//! tests pause it (`tokio::time::pause`) and have a driver's seconds pass
//! at once.

use std::pin::Pin;
use std::time::Instant;

use tokio::time::Sleep;

/// The current time on tokio's clock, as the state machines take it.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A state machine's next deadline (its `poll_timeout`) as a tokio timer,
/// re-armed only when the deadline moves.
#[derive(Debug)]
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

impl Deadline {
    /// A timer with no deadline.
    pub fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            armed: None,
        }
    }

    /// Sets the deadline (`None`: none).
    pub fn set(&mut self, deadline: Option<Instant>) {
        if deadline != self.armed {
            self.armed = deadline;
            if let Some(deadline) = deadline {
                self.sleep
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(deadline));
            }
        }
    }

    /// Completes once the deadline is reached, and disarms; never completes
    /// without a deadline. Cancel-safe: dropped before it completes, it
    /// changes nothing.
    pub async fn reached(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = None;
    }
}
