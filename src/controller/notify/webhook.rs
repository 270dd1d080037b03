//! Webhook contacts: each notice POSTed as JSON over HTTP/1.1 (TLS for `https://`, checked
//! against the machine's roots), with its id in an `Idempotency-Key` header. Any 2xx answer
//! is a delivery; anything else, or no answer within [`WEBHOOK_TIMEOUT`], is tried again later.
use crate::logic::notify::Notice;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, pki_types::ServerName};

/// How long one POST may take, from connecting to the answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS client of `https://` webhooks: the machine's roots.
static TLS: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
});

/// POSTs `notice` to `url` (a contact, checked when it was added).
pub async fn post(url: &str, notice: &Notice) -> Result<(), String> {
    tokio::time::timeout(WEBHOOK_TIMEOUT, exchange(url, notice))
        .await
        .map_err(|_| format!("no answer from {url} within {WEBHOOK_TIMEOUT:?}"))?
}

async fn exchange(url: &str, notice: &Notice) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or_else(|| format!("{url} names no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // The host and port only: an authority's user:password@ is not for the Host header.
    let host_header = uri.port_u16().map_or_else(|| host.clone(), |p| format!("{host}:{p}"));
    let request = http::Request::post(path)
        .header(http::header::HOST, host_header)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("vmrm/", env!("CARGO_PKG_VERSION")))
        .header("idempotency-key", notice.id.as_str())
        .body(Full::new(Bytes::from(notice.json.to_string())))
        .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = match https {
        false => send(tcp, request).await?,
        true => {
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                .map_err(|e| format!("{url}: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(TLS.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("{url}: TLS: {e}"))?;
            send(tls, request).await?
        }
    };
    match status.is_success() {
        true => Ok(()),
        false => Err(format!("{url} answered {status}")),
    }
}

async fn send<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<http::StatusCode, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(request).await.map(|r| r.status()).map_err(|e| e.to_string());
    connection.abort();
    answer
}
