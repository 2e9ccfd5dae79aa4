//! JSON-RPC 2.0 over stdio: the messages, the two framings, the dispatch loop and the single
//! writer. It knows nothing about accounts; the service plugs in through [`Handler`].
//!
//! The rules kept here are those of `docs/protocol.md` (Framing, Lifecycle, Errors): the
//! framing is chosen from the first byte (or forced) and answers go out in it; no message over
//! 4 MiB is held in memory; every malformed input gets a JSON-RPC error and the connection
//! lives on; one task owns stdout; and no log line carries a message body.
//!
//! - [`message`]: requests, notifications, responses, error codes.
//! - [`framing`]: LSP `Content-Length` headers and newline-delimited JSON.
//! - [`cancel`]: `$/cancelRequest` and the point of no return.
//! - [`server`]: [`serve`], the lifecycle methods, concurrency and the writer.
//! - [`connection`]: the client end, and [`memory_pair`] for tests.
//!
//! ```no_run
//! # async fn run(handler: std::sync::Arc<dyn switchboard::rpc::Handler>) -> std::io::Result<()> {
//! let (_notify, notifications) = tokio::sync::mpsc::unbounded_channel();
//! let status = switchboard::rpc::serve(
//!     tokio::io::stdin(),
//!     tokio::io::stdout(),
//!     None,
//!     handler,
//!     notifications,
//! )
//! .await?;
//! std::process::exit(status.code());
//! # }
//! ```

pub mod cancel;
pub mod connection;
pub mod framing;
pub mod message;
pub mod server;

#[cfg(test)]
mod tests;

pub use cancel::{CancelToken, Cancelled};
pub use connection::{Connection, MemoryPair, Received, memory_pair};
pub use framing::{Framing, MAX_MESSAGE_BYTES, UnknownFraming};
pub use message::{
    ErrorCode, InvalidMessage, Message, Notification, Request, RequestId, Response, ResponseError,
};
pub use server::{BoxFuture, ExitStatus, Handler, PROTOCOL_VERSION, initialize_result, serve};
