//! Cancellation of requests, and the point of no return that stops it.
//!
//! The rule kept here: a request is cancelled only while nothing it did needs finishing. A
//! handler that is about to start something that must complete (an `account/use` about to
//! write the live store) calls [`CancelToken::commit`] first. Before that call, a
//! `$/cancelRequest` drops the handler's future at its next `.await` and the client gets
//! `-32800`; after it, the cancel is ignored and the request answers normally. The two race
//! on one atomic, so exactly one of them wins.
//!
//! The server runs every handler future with its token installed, so a handler reaches it
//! with [`CancelToken::current`] (or calls [`commit`]) without any change to the
//! [`Handler`](super::Handler) signature. The token is per task: a handler that moves work to
//! a task of its own takes the token first and passes it along.
//!
//! ```no_run
//! use switchboard::rpc::{BoxFuture, CancelToken, Handler, ResponseError};
//! use serde_json::Value;
//!
//! struct Service;
//!
//! impl Handler for Service {
//!     fn handle(&self, method: &str, _params: Option<Value>)
//!         -> BoxFuture<'static, Result<Value, ResponseError>> {
//!         let method = method.to_owned();
//!         Box::pin(async move {
//!             if method != "account/use" {
//!                 return Err(ResponseError::method_not_found(&method));
//!             }
//!             // Cancellable: reading and refreshing change nothing the client sees.
//!             CancelToken::current().commit()?;
//!             // From here on the request runs to the end, whatever the client asks.
//!             Ok(Value::Null)
//!         })
//!     }
//! }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use super::message::{ErrorCode, ResponseError};

const RUNNING: u8 = 0;
const COMMITTED: u8 = 1;
const CANCELLED: u8 = 2;
const FINISHED: u8 = 3;

tokio::task_local! {
    static CURRENT: CancelToken;
}

/// The request can no longer commit: the client cancelled it. Converts into the `-32800`
/// answer, so `token.commit()?` works inside a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request was cancelled")]
pub struct Cancelled;

impl From<Cancelled> for ResponseError {
    fn from(_: Cancelled) -> Self {
        ResponseError::new(ErrorCode::RequestCancelled, Cancelled.to_string())
    }
}

/// The cancellation state of one request, shared by the server and the handler.
#[derive(Debug, Clone)]
pub struct CancelToken {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    phase: AtomicU8,
    cancelled: Notify,
}

impl CancelToken {
    /// A token for a new request.
    pub(crate) fn new() -> Self {
        CancelToken {
            state: Arc::new(State { phase: AtomicU8::new(RUNNING), cancelled: Notify::new() }),
        }
    }

    /// A token nobody can cancel, for work that runs outside a request.
    pub fn never() -> Self {
        let token = CancelToken::new();
        token.state.phase.store(COMMITTED, Ordering::SeqCst);
        token
    }

    /// The token of the request this task is running; outside a request, a token nobody can
    /// cancel, so code shared with the terminal commands works unchanged.
    pub fn current() -> Self {
        CURRENT.try_with(CancelToken::clone).unwrap_or_else(|_| CancelToken::never())
    }

    /// Marks the point of no return. After `Ok`, the request is never cancelled; `Err` means
    /// it already was, and the handler must stop without starting what it meant to protect.
    /// Calling it again is harmless.
    pub fn commit(&self) -> Result<(), Cancelled> {
        match self.state.phase.compare_exchange(
            RUNNING,
            COMMITTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => Ok(()),
            Err(COMMITTED) | Err(FINISHED) => Ok(()),
            Err(_) => Err(Cancelled),
        }
    }

    /// Whether the client cancelled this request (and won the race against `commit`).
    pub fn is_cancelled(&self) -> bool {
        self.state.phase.load(Ordering::SeqCst) == CANCELLED
    }

    /// Asks for cancellation; `true` when the request was still cancellable.
    pub(crate) fn cancel(&self) -> bool {
        let won = self
            .state
            .phase
            .compare_exchange(RUNNING, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if won {
            // `notify_one` keeps a permit when nobody waits yet, so the wake-up is not lost.
            self.state.cancelled.notify_one();
        }
        won
    }

    /// Resolves once [`Self::cancel`] has won.
    pub(crate) async fn cancelled(&self) {
        if self.is_cancelled() {
            return;
        }
        self.state.cancelled.notified().await;
    }

    /// Closes the request: `Err` when a cancel won before the answer was ready, in which case
    /// the answer is `-32800` whatever the handler returned.
    pub(crate) fn finish(&self) -> Result<(), Cancelled> {
        match self.state.phase.swap(FINISHED, Ordering::SeqCst) {
            CANCELLED => {
                self.state.phase.store(CANCELLED, Ordering::SeqCst);
                Err(Cancelled)
            }
            _ => Ok(()),
        }
    }

    /// Runs `future` with this token as [`CancelToken::current`].
    pub(crate) fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }
}

/// Shorthand for `CancelToken::current().commit()`.
pub fn commit() -> Result<(), Cancelled> {
    CancelToken::current().commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_cancel_exclude_each_other() {
        let token = CancelToken::new();
        assert_eq!(token.commit(), Ok(()));
        assert!(!token.cancel());
        assert!(!token.is_cancelled());
        assert_eq!(token.commit(), Ok(()));
        assert_eq!(token.finish(), Ok(()));

        let token = CancelToken::new();
        assert!(token.cancel());
        assert!(token.is_cancelled());
        assert_eq!(token.commit(), Err(Cancelled));
        assert_eq!(token.finish(), Err(Cancelled));
        assert!(!token.cancel());
    }

    #[test]
    fn a_finished_request_cannot_be_cancelled() {
        let token = CancelToken::new();
        assert_eq!(token.finish(), Ok(()));
        assert!(!token.cancel());
    }

    #[tokio::test]
    async fn current_is_the_scoped_token_and_never_outside() {
        let outside = CancelToken::current();
        assert!(!outside.cancel(), "a token outside a request cannot be cancelled");

        let token = CancelToken::new();
        let inner = token.clone().scope(async { CancelToken::current() }).await;
        assert!(inner.cancel());
        assert!(token.is_cancelled());
        assert_eq!(ResponseError::from(Cancelled).code, -32800);
    }

    #[tokio::test]
    async fn cancel_before_waiting_is_not_lost() {
        let token = CancelToken::new();
        assert!(token.cancel());
        tokio::time::timeout(std::time::Duration::from_secs(5), token.cancelled())
            .await
            .expect("the cancellation was seen");
    }
}
