//! A faithful fake of Anthropic's OAuth service, as `docs/fake-anthropic.md` specifies it.
//!
//! Faithful means it refuses what the real service refuses: a refresh token is good for one
//! refresh, spending it again is answered `invalid_grant` and recorded, and an access token
//! dies with its lineage, its lifetime, or the next refresh. Tests start it in process with
//! [`FakeServer::start`] and drive it through [`Control`]; other programs run the
//! `fake-anthropic` binary and use the HTTP control API. [`proxy`] puts the fake behind
//! Anthropic's real host names, for clients whose endpoints cannot be pointed elsewhere.
//!
//! The server runs its own accept loop rather than `axum::serve` because one fault,
//! `dropAfterRotation`, must close a connection without answering: each connection is served
//! by hyper in its own task, and a handler can ask that task to drop the socket.

mod control;
mod model;
pub mod proxy;
mod routes;

use std::io;
use std::net::SocketAddr;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

pub use control::{
    AccountIds, Control, ControlError, Endpoint, Fault, LineageReport, MintedLogin,
    MintedLoginAccount, MintedLoginOrganization, NewAccount, Report, RequestCounts, ReuseAttempt,
    Settings, SettingsUpdate, TokenState, TokenStatus, UsageValues,
};
pub use model::LOGIN_SCOPES;
pub use proxy::{ProxyError, TlsProxy};
pub use routes::{CLIENT_ID, OAUTH_BETA};

use routes::ConnectionKill;

/// A running fake service. Dropping it stops the server and closes its connections.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    control: Control,
    router: Router,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a fake on `127.0.0.1` at a port the system picks.
    ///
    /// # Panics
    ///
    /// When the loopback interface cannot be bound, which leaves a test nothing to do.
    pub async fn start() -> FakeServer {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        FakeServer::bind(addr).await.expect("bind the fake service to 127.0.0.1")
    }

    /// Starts a fake listening on `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<FakeServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let control = Control::default();
        let router = routes::router(control.clone());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, router.clone(), stopped));
        tracing::debug!(%addr, "fake service listening");
        Ok(FakeServer { addr, control, router, stop: Some(stop), task: Some(task) })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, `{url}/v1/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/v1/oauth/token", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The in-process control handle, the same operations as `/_control`.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Serves one already-accepted connection (a TLS stream a proxy terminated, say) with this
    /// fake's routes, until the client closes it.
    pub async fn serve_connection<I>(&self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_io(self.router.clone(), io).await;
    }

    /// Stops accepting, closes every connection, and waits until the server is gone.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut stop: oneshot::Receiver<()>) {
    // Dropping the set when the loop ends aborts every connection still open.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_tcp(router.clone(), stream));
                }
                Err(e) => {
                    // Running out of descriptors is the usual cause; give others time to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_tcp(router: Router, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    serve_io(router, stream).await;
}

async fn serve_io<I>(router: Router, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = ConnectionKill::default();
    let handler_kill = kill.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(handler_kill.clone());
        router.clone().oneshot(request)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        // Leaving the select drops the connection and with it the socket: the client sees the
        // connection close with no answer.
        () = kill.0.notified() => tracing::debug!("connection dropped on purpose"),
    }
}
