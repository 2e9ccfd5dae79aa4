//! The client end of a connection, for tests and for programs that drive a sidecar.
//!
//! [`memory_pair`] runs [`serve`] on an in-memory pipe and hands back a typed
//! [`Connection`]; [`Connection::new`] wraps any pair of streams (a child process's stdout and
//! stdin, say). The rule kept here: the client speaks exactly one framing and reads the
//! server's output with the same reader the server uses, so tests see what a real client
//! would.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::framing::{Frame, FrameReader, Framing};
use super::message::{Message, Notification, Request, RequestId, Response, to_json};
use super::server::{ExitStatus, Handler, serve};

/// Room in each direction of the in-memory pipe; small, so that tests exercise partial reads.
const PIPE_BYTES: usize = 64 * 1024;

/// What the server sent: one message, or the answer to a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Single(Message),
    Batch(Vec<Message>),
}

/// A client's side of a connection.
pub struct Connection {
    reader: FrameReader<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    framing: Framing,
    next_id: i64,
    /// Messages read while waiting for a particular response, handed out by `recv` later.
    queued: VecDeque<Received>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("framing", &self.framing)
            .field("next_id", &self.next_id)
            .field("queued", &self.queued.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A client reading the server's output from `reader` and writing to `writer`.
    pub fn new(
        reader: impl AsyncRead + Unpin + Send + 'static,
        writer: impl AsyncWrite + Unpin + Send + 'static,
        framing: Framing,
    ) -> Self {
        Connection {
            reader: FrameReader::new(Box::new(reader), Some(framing)),
            writer: Box::new(writer),
            framing,
            next_id: 1,
            queued: VecDeque::new(),
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Sends one message, framed.
    pub async fn send(&mut self, message: impl Into<Message>) -> io::Result<()> {
        self.send_json(&to_json(&message.into())).await
    }

    /// Sends several messages as one batch.
    pub async fn send_batch(&mut self, messages: &[Message]) -> io::Result<()> {
        self.send_json(&to_json(&messages)).await
    }

    /// Frames and sends any text, valid JSON or not.
    pub async fn send_json(&mut self, json: &[u8]) -> io::Result<()> {
        self.send_bytes(&self.framing.encode(json)).await
    }

    /// Sends bytes exactly as given, without framing.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Sends a request with the next free numeric id and returns that id.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> io::Result<RequestId> {
        let id = RequestId::Number(self.next_id);
        self.next_id += 1;
        self.send(Request::new(id.clone(), method, params)).await?;
        Ok(id)
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> io::Result<()> {
        self.send(Notification::new(method, params)).await
    }

    /// Sends a request and waits for its answer; anything else that arrives meanwhile is kept
    /// for [`Self::recv`].
    pub async fn call(&mut self, method: &str, params: Option<Value>) -> io::Result<Response> {
        let id = self.request(method, params).await?;
        self.response(&id).await
    }

    /// Waits for the answer to `id`, keeping everything else for [`Self::recv`].
    pub async fn response(&mut self, id: &RequestId) -> io::Result<Response> {
        let found = self.queued.iter().position(|received| answers(received, id));
        if let Some(Received::Single(Message::Response(response))) =
            found.and_then(|at| self.queued.remove(at))
        {
            return Ok(response);
        }
        loop {
            match self.read().await? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the server closed the connection before answering {id}"),
                    ));
                }
                Some(Received::Single(Message::Response(response)))
                    if response.id.as_ref() == Some(id) =>
                {
                    return Ok(response);
                }
                Some(other) => self.queued.push_back(other),
            }
        }
    }

    /// The next message from the server, or `None` once it has closed its output.
    pub async fn recv(&mut self) -> io::Result<Option<Received>> {
        match self.queued.pop_front() {
            Some(received) => Ok(Some(received)),
            None => self.read().await,
        }
    }

    /// Ends the input: the server sees end of input once it has read what was sent.
    pub async fn close(&mut self) -> io::Result<()> {
        self.writer.shutdown().await
    }

    async fn read(&mut self) -> io::Result<Option<Received>> {
        let bytes = match self.reader.next_frame().await? {
            None => return Ok(None),
            Some(Frame::Message(bytes)) => bytes,
            Some(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server sent a damaged frame: {other:?}"),
                ));
            }
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        let parse = |value| {
            Message::from_value(value)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
        };
        match value {
            Value::Array(items) => {
                Ok(Some(Received::Batch(items.into_iter().map(parse).collect::<Result<_, _>>()?)))
            }
            value => Ok(Some(Received::Single(parse(value)?))),
        }
    }
}

fn answers(received: &Received, id: &RequestId) -> bool {
    matches!(received, Received::Single(Message::Response(response)) if response.id.as_ref() == Some(id))
}

/// A server running on an in-memory pipe, and everything a test needs to drive it.
#[derive(Debug)]
pub struct MemoryPair {
    /// The client's end, speaking the pair's framing.
    pub client: Connection,
    /// Pushes server-initiated notifications, as the service does.
    pub notifications: mpsc::UnboundedSender<Notification>,
    /// The running [`serve`]; resolves when the connection ends.
    pub server: JoinHandle<io::Result<ExitStatus>>,
}

/// Starts [`serve`] with `handler` on an in-memory pipe, with `framing` forced on both ends.
/// Must be called inside a Tokio runtime.
pub fn memory_pair(handler: Arc<dyn Handler>, framing: Framing) -> MemoryPair {
    let (client_end, server_end) = tokio::io::duplex(PIPE_BYTES);
    let (client_read, client_write) = tokio::io::split(client_end);
    let (server_read, server_write) = tokio::io::split(server_end);
    let (notifications, queue) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(server_read, server_write, Some(framing), handler, queue));
    MemoryPair {
        client: Connection::new(client_read, client_write, framing),
        notifications,
        server,
    }
}
