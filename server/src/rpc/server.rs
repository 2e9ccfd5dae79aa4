//! The dispatch loop: reads frames, answers the lifecycle methods itself, runs every other
//! request as a task of its own, and hands every outgoing message to the single writer.
//!
//! The rules kept here:
//!
//! - Exactly one task owns the output. Answers, batch answers and notifications all reach it
//!   through channels, and it flushes after every message, so messages never interleave and a
//!   client never waits on a buffered answer.
//! - A notification queued before an answer is written before it: the writer drains
//!   notifications first. A handler that announces a change and then answers therefore
//!   reaches the client in that order.
//! - Every request gets exactly one answer, including requests that panic (`-32603`) or are
//!   cancelled (`-32800`); the connection outlives every malformed message.
//! - Logs name the method, the request id and the outcome's error code; never params, results
//!   or error messages, since those are bodies.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::cancel::{CancelToken, Cancelled};
use super::framing::{Frame, FrameReader, Framing, MAX_MESSAGE_BYTES};
use super::message::{Message, Notification, Request, RequestId, Response, ResponseError, to_json};

/// A boxed future that can move between threads, as [`Handler::handle`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The version of the protocol `initialize` announces.
pub const PROTOCOL_VERSION: u32 = 1;

/// Requests running at once; beyond this the server stops reading input until one finishes,
/// so a client that floods requests is slowed down instead of growing memory.
const MAX_IN_FLIGHT: usize = 64;

/// Serialized messages waiting for the writer.
const OUTGOING_QUEUE: usize = 64;

/// What the server calls to answer requests. It knows nothing of framing or lifecycle:
/// `initialize`, `shutdown`, `exit` and `$/cancelRequest` never reach it.
///
/// The future runs as a task of its own and is dropped at its next `.await` when the client
/// cancels the request, unless it has passed its point of no return
/// ([`CancelToken::commit`]).
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. Errors carry the application code and data; a method the handler
    /// does not know answers [`ResponseError::method_not_found`].
    fn handle(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> BoxFuture<'static, Result<Value, ResponseError>>;

    /// Whether requests of `method` must run one at a time, in the order they arrived on the
    /// connection: the methods that change state, so that a client sending two changes
    /// without waiting gets them applied in its order. Others run concurrently.
    fn is_ordered(&self, method: &str) -> bool {
        let _ = method;
        false
    }
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The input ended; every request that was running has been answered.
    EndOfInput,
    /// The client sent `exit`; `after_shutdown` says whether `shutdown` came first.
    Exit { after_shutdown: bool },
}

impl ExitStatus {
    /// The process exit code the protocol assigns: 1 only for `exit` without `shutdown`.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::EndOfInput | ExitStatus::Exit { after_shutdown: true } => 0,
            ExitStatus::Exit { after_shutdown: false } => 1,
        }
    }
}

/// The result of `initialize`.
pub fn initialize_result() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "serverInfo": {"name": "switchboard", "version": env!("CARGO_PKG_VERSION")},
        "capabilities": {"accounts": true, "didChange": true},
    })
}

/// Serves one connection until end of input or `exit`. Notifications pushed into
/// `notifications` are written to the output in the connection's framing.
///
/// `framing` forces a framing; `None` detects it from the first byte that is not white space.
/// Notifications pushed before the framing is known wait in the channel until it is.
/// At end of input, requests still running are awaited and answered before this returns. On
/// `exit`, requests that can still be cancelled are cancelled and those past their point of
/// no return are awaited. An error reading the input or writing the output ends the
/// connection the same way and is returned, after being logged.
pub async fn serve<R, W>(
    input: R,
    output: W,
    framing: Option<Framing>,
    handler: Arc<dyn Handler>,
    notifications: mpsc::UnboundedReceiver<Notification>,
) -> std::io::Result<ExitStatus>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = FrameReader::new(input, framing);
    let framing = match reader.framing().await {
        Ok(Some(framing)) => framing,
        Ok(None) => return Ok(ExitStatus::EndOfInput),
        Err(error) => {
            tracing::error!(%error, "could not read input");
            return Err(error);
        }
    };
    tracing::debug!(%framing, "connection framing chosen");

    let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
    let mut writer = tokio::spawn(write_loop(output, framing, queue, notifications));
    let mut dispatcher = Dispatcher::new(handler, outgoing);

    let mut failure = None;
    let status = loop {
        let frame = tokio::select! {
            frame = reader.next_frame() => frame,
            written = &mut writer => {
                // The writer only stops early when the output fails; nothing more can be
                // answered, so whatever can still be cancelled is.
                let error = writer_error(written);
                tracing::error!(%error, "could not write output");
                dispatcher.cancel_all();
                dispatcher.drain().await;
                return Err(error);
            }
        };
        match frame {
            Ok(Some(frame)) => {
                if let Control::Exit = dispatcher.frame(frame).await {
                    dispatcher.cancel_all();
                    break ExitStatus::Exit { after_shutdown: dispatcher.shut_down };
                }
            }
            Ok(None) => break ExitStatus::EndOfInput,
            Err(error) => {
                tracing::error!(%error, "could not read input; ending the connection");
                failure = Some(error);
                break ExitStatus::EndOfInput;
            }
        }
    };
    tracing::debug!(?status, "connection ending");

    dispatcher.drain().await;
    drop(dispatcher);
    if let Err(error) = writer.await.map_err(join_error).and_then(|written| written) {
        tracing::error!(%error, "could not write output");
        return Err(error);
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(status),
    }
}

/// Owns the output: writes every message whole, in the connection's framing, and flushes.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut output: W,
    framing: Framing,
    mut answers: mpsc::Receiver<Vec<u8>>,
    mut notifications: mpsc::UnboundedReceiver<Notification>,
) -> std::io::Result<()> {
    let mut notifications_open = true;
    loop {
        let json = tokio::select! {
            biased;
            notification = notifications.recv(), if notifications_open => match notification {
                Some(notification) => to_json(&notification),
                None => {
                    notifications_open = false;
                    continue;
                }
            },
            answer = answers.recv() => match answer {
                Some(answer) => answer,
                None => break,
            },
        };
        write_message(&mut output, framing, &json).await?;
    }
    // Notifications already queued when the connection ends still reach the client.
    while let Ok(notification) = notifications.try_recv() {
        write_message(&mut output, framing, &to_json(&notification)).await?;
    }
    output.shutdown().await
}

async fn write_message<W: AsyncWrite + Unpin>(
    output: &mut W,
    framing: Framing,
    json: &[u8],
) -> std::io::Result<()> {
    output.write_all(&framing.encode(json)).await?;
    output.flush().await
}

fn writer_error(written: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Error {
    match written {
        Ok(Err(error)) => error,
        Ok(Ok(())) => std::io::Error::other("the output closed"),
        Err(error) => join_error(error),
    }
}

fn join_error(error: tokio::task::JoinError) -> std::io::Error {
    std::io::Error::other(format!("the output writer failed: {error}"))
}

/// Whether the loop goes on after a message.
enum Control {
    Continue,
    Exit,
}

/// Where one request's answer goes: straight to the writer, or into its place in a batch.
enum Reply {
    Direct(mpsc::Sender<Vec<u8>>),
    Slot(oneshot::Sender<Response>),
}

impl Reply {
    async fn send(self, response: Response) {
        // A closed channel means the writer is gone, and with it any way to answer.
        match self {
            Reply::Direct(outgoing) => {
                let _ = outgoing.send(to_json(&response)).await;
            }
            Reply::Slot(slot) => {
                let _ = slot.send(response);
            }
        }
    }
}

type InFlight = Arc<Mutex<HashMap<RequestId, CancelToken>>>;

/// The state of one connection's reading side.
struct Dispatcher {
    handler: Arc<dyn Handler>,
    outgoing: mpsc::Sender<Vec<u8>>,
    in_flight: InFlight,
    tasks: JoinSet<()>,
    permits: Arc<Semaphore>,
    shut_down: bool,
    /// Resolves when the last ordered request to arrive has finished: the next one waits
    /// for it.
    ordered_tail: Option<oneshot::Receiver<()>>,
}

impl Dispatcher {
    fn new(handler: Arc<dyn Handler>, outgoing: mpsc::Sender<Vec<u8>>) -> Self {
        Dispatcher {
            handler,
            outgoing,
            in_flight: Arc::default(),
            tasks: JoinSet::new(),
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            shut_down: false,
            ordered_tail: None,
        }
    }

    async fn frame(&mut self, frame: Frame) -> Control {
        self.reap();
        match frame {
            Frame::Malformed(reason) => {
                tracing::warn!(reason, "malformed message framing");
                let error =
                    ResponseError::parse_error(format!("could not read a message: {reason}"));
                self.answer(Response::err(None, error)).await;
                Control::Continue
            }
            Frame::TooLarge { len } => {
                tracing::warn!(len, "message too large");
                let error = ResponseError::invalid_request(format!(
                    "a message of {len} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes"
                ));
                self.answer(Response::err(None, error)).await;
                Control::Continue
            }
            Frame::Message(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Err(error) => {
                    // serde_json's messages give a position, never the input itself.
                    tracing::warn!(%error, "message is not JSON");
                    let error = ResponseError::parse_error(format!("invalid JSON: {error}"));
                    self.answer(Response::err(None, error)).await;
                    Control::Continue
                }
                Ok(Value::Array(items)) => self.batch(items).await,
                Ok(value) => {
                    let reply = Reply::Direct(self.outgoing.clone());
                    self.one(value, reply).await
                }
            },
        }
    }

    async fn answer(&self, response: Response) {
        Reply::Direct(self.outgoing.clone()).send(response).await;
    }

    /// Runs every element like a message of its own and answers them together, in order,
    /// once all are done. Notifications and responses in a batch take no place in the answer;
    /// a batch of only those gets no answer at all.
    async fn batch(&mut self, items: Vec<Value>) -> Control {
        if items.is_empty() {
            let error = ResponseError::invalid_request("a batch must not be empty");
            self.answer(Response::err(None, error)).await;
            return Control::Continue;
        }
        let mut control = Control::Continue;
        let mut slots = Vec::with_capacity(items.len());
        for item in items {
            let (slot, answer) = oneshot::channel();
            slots.push(answer);
            if let Control::Exit = self.one(item, Reply::Slot(slot)).await {
                control = Control::Exit;
            }
        }
        let outgoing = self.outgoing.clone();
        self.tasks.spawn(async move {
            let mut responses = Vec::with_capacity(slots.len());
            for answer in slots {
                // A slot dropped without an answer belongs to a notification.
                if let Ok(response) = answer.await {
                    responses.push(response);
                }
            }
            if !responses.is_empty() {
                let _ = outgoing.send(to_json(&responses)).await;
            }
        });
        control
    }

    async fn one(&mut self, value: Value, reply: Reply) -> Control {
        match Message::from_value(value) {
            Err(invalid) => {
                tracing::warn!(reason = %invalid.reason, id = ?invalid.id, "invalid message");
                reply.send(invalid.to_response()).await;
                Control::Continue
            }
            Ok(Message::Response(response)) => {
                tracing::debug!(id = ?response.id, "ignoring a response; this server sends no requests");
                Control::Continue
            }
            Ok(Message::Notification(notification)) => self.notification(notification),
            Ok(Message::Request(request)) => self.request(request, reply).await,
        }
    }

    fn notification(&mut self, notification: Notification) -> Control {
        match notification.method.as_str() {
            "exit" => Control::Exit,
            "initialized" => Control::Continue,
            "$/cancelRequest" => {
                self.cancel(notification.params);
                Control::Continue
            }
            method => {
                tracing::debug!(method, "ignoring a notification with an unknown method");
                Control::Continue
            }
        }
    }

    fn cancel(&mut self, params: Option<Value>) {
        let id = params
            .and_then(|mut params| params.get_mut("id").map(Value::take))
            .and_then(|id| RequestId::deserialize(id).ok());
        let Some(id) = id else {
            tracing::debug!("ignoring $/cancelRequest without a valid id");
            return;
        };
        let token = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
        match token {
            Some(token) if token.cancel() => tracing::debug!(%id, "request cancelled"),
            Some(_) => tracing::debug!(%id, "request past its point of no return; not cancelled"),
            None => tracing::debug!(%id, "no running request to cancel"),
        }
    }

    async fn request(&mut self, request: Request, reply: Reply) -> Control {
        let Request { id, method, params } = request;
        if method == "exit" {
            // `exit` is a notification, but a client that sends it as a request still means it.
            reply.send(Response::ok(id, Value::Null)).await;
            return Control::Exit;
        }
        if self.shut_down {
            let error = ResponseError::invalid_request(
                "the server is shutting down; only exit is accepted",
            );
            reply.send(Response::err(Some(id), error)).await;
            return Control::Continue;
        }
        match method.as_str() {
            "initialize" => reply.send(Response::ok(id, initialize_result())).await,
            "shutdown" => {
                self.shut_down = true;
                reply.send(Response::ok(id, Value::Null)).await;
            }
            _ => self.spawn(id, method, params, reply).await,
        }
        Control::Continue
    }

    /// Runs one request as a task. The handler's future runs as a task of its own inside it,
    /// so that cancelling aborts exactly that future and a panic becomes an answer.
    async fn spawn(&mut self, id: RequestId, method: String, params: Option<Value>, reply: Reply) {
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the semaphore is never closed"),
        };
        let token = CancelToken::new();
        let duplicate = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            let duplicate = in_flight.contains_key(&id);
            if !duplicate {
                in_flight.insert(id.clone(), token.clone());
            }
            duplicate
        };
        if duplicate {
            tracing::warn!(%id, "request id already in use");
            let error = ResponseError::invalid_request(format!(
                "request id {id} is already in use by a running request"
            ));
            reply.send(Response::err(Some(id), error)).await;
            return;
        }

        // The chain is made here, on the reading side, because tasks may start in any order.
        let (turn, after) = if self.handler.is_ordered(&method) {
            let (done, tail) = oneshot::channel::<()>();
            (self.ordered_tail.replace(tail), Some(done))
        } else {
            (None, None)
        };

        let span = tracing::info_span!("request", %method, %id);
        let handler = Arc::clone(&self.handler);
        let in_flight = Arc::clone(&self.in_flight);
        self.tasks.spawn(
            async move {
                let started = Instant::now();
                tracing::debug!("request started");
                let work = {
                    let token = token.clone();
                    tokio::spawn(
                        token
                            .scope(async move {
                                // Waiting for the previous ordered request, finished or
                                // cancelled: its sender is dropped either way.
                                if let Some(turn) = turn {
                                    let _ = turn.await;
                                }
                                let outcome = handler.handle(&method, params).await;
                                drop(after);
                                outcome
                            })
                            .in_current_span(),
                    )
                };
                let mut work = CancelOnDrop { work, token: token.clone() };
                let joined = tokio::select! {
                    biased;
                    () = token.cancelled() => None,
                    joined = &mut work.work => Some(joined),
                };
                let outcome = match joined {
                    None => {
                        // Answer only once the handler's future is gone, so a client that sees
                        // -32800 knows the work has stopped.
                        work.work.abort();
                        let _ = (&mut work.work).await;
                        Err(ResponseError::from(Cancelled))
                    }
                    Some(Ok(outcome)) => outcome,
                    Some(Err(error)) if error.is_panic() => {
                        tracing::error!("the request handler panicked");
                        Err(ResponseError::internal("the request failed unexpectedly"))
                    }
                    Some(Err(_)) => Err(ResponseError::from(Cancelled)),
                };
                let outcome = token.finish().map_err(ResponseError::from).and(outcome);
                drop(work);
                in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                match &outcome {
                    Ok(_) => tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis(),
                        "request answered"
                    ),
                    Err(error) => tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis(),
                        code = error.code,
                        "request failed"
                    ),
                }
                reply.send(Response::from_outcome(id, outcome)).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Cancels every request that can still be cancelled.
    fn cancel_all(&self) {
        for token in self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).values() {
            token.cancel();
        }
    }

    /// Forgets tasks that have finished, so the set stays as small as the work in flight.
    fn reap(&mut self) {
        while let Some(finished) = self.tasks.try_join_next() {
            log_task_end(finished);
        }
    }

    /// Waits for every request task, and so for every answer to be queued.
    async fn drain(&mut self) {
        while let Some(finished) = self.tasks.join_next().await {
            log_task_end(finished);
        }
    }
}

fn log_task_end(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        tracing::error!("a request task panicked");
    }
}

/// Holds a handler's task. Dropping it aborts the task only while the request can still be
/// cancelled: past the point of no return the work finishes even if nobody waits for it.
struct CancelOnDrop {
    work: JoinHandle<Result<Value, ResponseError>>,
    token: CancelToken,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.token.cancel() || self.token.is_cancelled() {
            self.work.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ordering promise rests on the writer preferring notifications when both kinds are
    /// waiting; scheduling alone usually hides the difference, so it is checked directly.
    #[tokio::test]
    async fn the_writer_drains_notifications_before_answers() {
        let (answers_in, answers) = mpsc::channel(4);
        let (notifications_in, notifications) = mpsc::unbounded_channel();
        answers_in.send(b"{\"answer\":1}".to_vec()).await.unwrap();
        notifications_in.send(Notification::new("account/didChange", None)).unwrap();
        drop(answers_in);

        let mut output = Vec::new();
        write_loop(&mut output, Framing::Ndjson, answers, notifications).await.unwrap();
        assert_eq!(
            String::from_utf8(output).unwrap(),
            "{\"jsonrpc\":\"2.0\",\"method\":\"account/didChange\"}\n{\"answer\":1}\n"
        );
    }

    #[tokio::test]
    async fn notifications_queued_at_the_end_are_still_written() {
        let (answers_in, answers) = mpsc::channel::<Vec<u8>>(4);
        let (notifications_in, notifications) = mpsc::unbounded_channel();
        drop(answers_in);
        notifications_in.send(Notification::new("a", None)).unwrap();
        notifications_in.send(Notification::new("b", None)).unwrap();

        let mut output = Vec::new();
        write_loop(&mut output, Framing::Lsp, answers, notifications).await.unwrap();
        let a = Framing::Lsp.encode(br#"{"jsonrpc":"2.0","method":"a"}"#);
        let b = Framing::Lsp.encode(br#"{"jsonrpc":"2.0","method":"b"}"#);
        assert_eq!(output, [a, b].concat());
    }
}
