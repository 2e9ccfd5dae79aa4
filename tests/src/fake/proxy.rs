//! The fake's TLS proxy mode: an HTTP proxy that makes Anthropic's real host names lead to the
//! fake, so that a program whose endpoints cannot be pointed elsewhere (Claude Code, or
//! Switchboard left at its defaults) reaches it as it would reach Anthropic from behind a
//! corporate proxy that re-signs TLS.
//!
//! The proxy answers `CONNECT host:443`. For [`FAKE_HOSTS`] it terminates TLS with a leaf
//! certificate signed by a certificate authority made for this run alone, and serves the fake's
//! routes on the decrypted stream. Every other host gets a TLS endpoint (with its own leaf from
//! the same authority) that answers 404 to everything, so that telemetry and update checks fail
//! at once and quietly instead of timing out; nothing ever reaches the internet. A plain-HTTP
//! request with an absolute URI is answered 404 the same way.
//!
//! The authority's certificate is written to a file, and beside it a bundle holding the
//! system's trusted roots plus that certificate, to hand to `NODE_EXTRA_CA_CERTS` or
//! `SSL_CERT_FILE`. The key never leaves memory and dies with the proxy.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::FakeServer;

/// The hosts whose traffic the proxy hands to the fake: the token endpoint's and the API's.
pub const FAKE_HOSTS: &[&str] = &["platform.claude.com", "api.anthropic.com"];

/// Where Debian and its kin keep the system's trusted roots as one PEM file.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot make the test certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A running TLS proxy in front of a [`FakeServer`]. Dropping it stops the proxy, closes its
/// connections and deletes the certificate files.
#[derive(Debug)]
pub struct TlsProxy {
    addr: SocketAddr,
    ca_path: PathBuf,
    bundle_path: PathBuf,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Last, so that the files go only after the task has been told to stop.
    _dir: TempDir,
}

impl FakeServer {
    /// Starts a [`TlsProxy`] in front of this fake, on `127.0.0.1` at a port the system picks.
    pub async fn start_tls_proxy(&self) -> Result<TlsProxy, ProxyError> {
        TlsProxy::start(self.router.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }
}

impl TlsProxy {
    async fn start(fake: Router, addr: SocketAddr) -> Result<TlsProxy, ProxyError> {
        let authority = Authority::new()?;
        let dir = tempfile::Builder::new().prefix("fake-anthropic-ca.").tempdir()?;
        let ca_path = dir.path().join("test-ca.pem");
        let bundle_path = dir.path().join("ca-bundle.pem");
        std::fs::write(&ca_path, &authority.pem)?;
        let mut bundle = std::fs::read(SYSTEM_BUNDLE).unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(authority.pem.as_bytes());
        std::fs::write(&bundle_path, bundle)?;

        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            fake,
            not_found: not_found_router(),
            authority,
            configs: Mutex::new(HashMap::new()),
            seen: seen.clone(),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
        tracing::debug!(%addr, "fake TLS proxy listening");
        Ok(TlsProxy {
            addr,
            ca_path,
            bundle_path,
            seen,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The test authority's certificate alone, PEM.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The system's roots plus the test authority, PEM: for `NODE_EXTRA_CA_CERTS` and
    /// `SSL_CERT_FILE`.
    pub fn bundle_path(&self) -> &Path {
        &self.bundle_path
    }

    /// Everything asked of the proxy so far, in order: `CONNECT host:port` for each tunnel,
    /// `METHOD https://host/path` for each request inside one, and `METHOD URI` for a plain
    /// request. Shows what a client tried to reach.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops accepting, closes every connection, and waits until the proxy is gone.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The certificate authority of one run.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    fn new() -> Result<Authority, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "Switchboard test CA (fake-anthropic)");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(Authority {
            der: certificate.der().clone(),
            pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A server configuration presenting a fresh leaf for `names`, chained to this authority.
    fn server_config(&self, names: &[&str]) -> Result<ServerConfig, ProxyError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        let chain = vec![leaf.der().clone(), self.der.clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config =
            ServerConfig::builder().with_no_client_auth().with_single_cert(chain, private)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// What every connection task needs.
#[derive(Debug)]
struct Shared {
    fake: Router,
    not_found: Router,
    authority: Authority,
    /// TLS configurations by host: the fake's hosts share one, every other host gets its own
    /// leaf the first time it is asked for.
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    fn config_for(&self, host: &str) -> Result<Arc<ServerConfig>, ProxyError> {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = configs.get(host) {
            return Ok(config.clone());
        }
        let config = if FAKE_HOSTS.contains(&host) {
            let config = Arc::new(self.authority.server_config(FAKE_HOSTS)?);
            for name in FAKE_HOSTS {
                configs.insert((*name).to_owned(), config.clone());
            }
            config
        } else {
            let config = Arc::new(self.authority.server_config(&[host])?);
            configs.insert(host.to_owned(), config.clone());
            config
        };
        Ok(config)
    }

    fn note(&self, target: String) {
        tracing::info!(%target, "proxy request");
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).push(target);
    }
}

fn not_found_router() -> Router {
    Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "not found by the test proxy\n") })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_client(shared.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one client of the proxy: HTTP/1.1, where a `CONNECT` upgrades the connection into
/// the tunnel.
async fn serve_client(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy_request(shared, request)) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "proxy connection ended with an error");
    }
}

fn proxy_request(shared: Arc<Shared>, mut request: Request<Incoming>) -> Response<Body> {
    if request.method() != Method::CONNECT {
        shared.note(format!("{} {}", request.method(), request.uri()));
        return plain(StatusCode::NOT_FOUND, "not found by the test proxy\n");
    }
    let Some(authority) = request.uri().authority().cloned() else {
        return plain(StatusCode::BAD_REQUEST, "CONNECT needs host:port\n");
    };
    shared.note(format!("CONNECT {authority}"));
    if authority.port_u16() != Some(443) {
        return plain(StatusCode::FORBIDDEN, "the test proxy tunnels only port 443\n");
    }
    let host = authority.host().to_ascii_lowercase();
    let config = match shared.config_for(&host) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(error = %e, %host, "no certificate for a host");
            return plain(StatusCode::BAD_GATEWAY, "the test proxy cannot make a certificate\n");
        }
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let tunnel = match upgrade.await {
            Ok(tunnel) => tunnel,
            Err(e) => {
                tracing::debug!(error = %e, "CONNECT was not upgraded");
                return;
            }
        };
        let tls = match TlsAcceptor::from(config).accept(TokioIo::new(tunnel)).await {
            Ok(tls) => tls,
            Err(e) => {
                tracing::debug!(error = %e, %host, "TLS handshake in the tunnel failed");
                return;
            }
        };
        let router = if FAKE_HOSTS.contains(&host.as_str()) {
            shared.fake.clone()
        } else {
            shared.not_found.clone()
        };
        let seen = shared.seen.clone();
        let router = router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let target = format!("{} https://{host}{}", request.method(), request.uri().path());
                tracing::info!(%target, "proxied request");
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(target);
                next.run(request)
            },
        ));
        super::serve_io(router, tls).await;
    });
    Response::new(Body::empty())
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Sends `request` raw to the proxy and answers the status line of its reply.
    async fn status_line(proxy: &TlsProxy, request: &str) -> String {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = vec![0; 256];
        let n = stream.read(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply[..n]).lines().next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn refuses_plain_requests_and_other_ports_and_records_them() {
        let fake = FakeServer::start().await;
        let proxy = fake.start_tls_proxy().await.unwrap();
        let plain = "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(status_line(&proxy, plain).await, "HTTP/1.1 404 Not Found");
        let other_port = "CONNECT api.anthropic.com:80 HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n";
        assert_eq!(status_line(&proxy, other_port).await, "HTTP/1.1 403 Forbidden");
        assert_eq!(proxy.seen(), ["GET http://example.com/", "CONNECT api.anthropic.com:80"],);
        let bundle = std::fs::read_to_string(proxy.bundle_path()).unwrap();
        let ca = std::fs::read_to_string(proxy.ca_path()).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(bundle.ends_with(&ca), "the bundle ends with the test CA");
        proxy.shutdown().await;
    }
}
