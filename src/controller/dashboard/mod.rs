//! The web dashboard every controller serves (`[controller] dashboard_listen`): the topology
//! tree, details and policies, events with acknowledgement, live updates, and the actions an
//! operator takes — restart, live migration, evacuation, restore, policy changes. It is one more
//! client of the admin API, in the same process: every call goes through the gate's rules for
//! the person logged in ([`login`]) and then to the same [`AdminService`] method `ksysmgr`
//! reaches over gRPC, so it checks, audits and refuses exactly as it does there. Queries read
//! this controller's own HSDB copy (a standby shows the topology too); actions and the live
//! streams need the active controller, and a standby says which one that is.
//!
//! Served over HTTPS with the node's certificate (a browser trusts it once the cluster's
//! `ca.pem` is imported), or plain HTTP on a node in the explicit insecure mode, where everyone
//! is let in as on its gRPC port.
mod api;
mod live;
pub mod login;

use crate::controller::api::admin::AdminService;
use crate::controller::core::ControllerCore;
use crate::error::{Result, VmrmError};
use crate::transport::tls::{Principal, Security};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The largest request body (a login's certificate is the largest there is).
const BODY_LIMIT: usize = 64 * 1024;
/// Connections served at once; more wait in the listen backlog.
const MOST_CONNECTIONS: usize = 128;
/// A TLS handshake, or a request's head, that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The session cookie.
const COOKIE: &str = "vmrm_session";
/// The header every action carries (a form on another site cannot set it).
const ACTION_HEADER: &str = "x-vmrm-action";

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct Dashboard {
    node: String,
    core: ControllerCore,
    admin: Arc<AdminService>,
    /// None: the node serves plaintext, and every caller is let in unchecked.
    logins: Option<login::Logins>,
}

impl Dashboard {
    pub fn new(node: &str, core: ControllerCore, security: &Security) -> Result<Self> {
        let logins = security.ca_pem().map(login::Logins::new).transpose()?;
        Ok(Self { node: node.to_string(), admin: Arc::new(AdminService::new(core.clone())), core, logins })
    }

    /// The person of the request's session, or why there is none.
    fn who(&self, headers: &HeaderMap) -> std::result::Result<Principal, VmrmError> {
        let Some(logins) = &self.logins else { return Ok(Principal::unchecked()) };
        session_id(headers)
            .and_then(|id| logins.session(id))
            .ok_or_else(|| VmrmError::Unauthenticated("log in first (the session is missing or expired)".into()))
    }

    /// [`Self::who`] for an action: the request must also carry [`ACTION_HEADER`].
    fn actor(&self, headers: &HeaderMap) -> std::result::Result<Principal, VmrmError> {
        match headers.contains_key(ACTION_HEADER) {
            true => self.who(headers),
            false => Err(VmrmError::denied(format!("an action needs the {ACTION_HEADER} header"))),
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers.get_all(header::COOKIE).into_iter().filter_map(|v| v.to_str().ok());
    cookies.flat_map(|c| c.split(';')).find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The page and its two files, built into the binary.
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/login/challenge", get(api::challenge))
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/api/whoami", get(api::whoami))
        .route("/api/topology", get(api::topology))
        .route("/api/events", get(api::events))
        .route("/api/ack", post(api::ack))
        .route("/api/restart", post(api::restart))
        .route("/api/lpm", post(api::lpm))
        .route("/api/evacuate", post(api::evacuate))
        .route("/api/restore", post(api::restore))
        .route("/api/policy", post(api::policy))
        .route("/api/live", get(live::live))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard)
}

/// The page loads nothing from elsewhere, runs no inline script and is framed by no one.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Binds `addr` (a port in use fails the node at once).
pub async fn bind(node: &str, addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| VmrmError::unavailable(format!("node {node} cannot serve its dashboard on {addr}: {e}")))
}

/// Serves the dashboard on `listener` until `until` resolves: over TLS with the node's
/// certificate when `security` has one.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dashboard: Dashboard,
    security: &Security,
    until: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let tls = security.rustls_server()?.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    let app = router(dashboard);
    let slots = Arc::new(tokio::sync::Semaphore::new(MOST_CONNECTIONS));
    let mut until = std::pin::pin!(until);
    loop {
        // Shutdown is heard also while every connection slot is taken.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.map_err(VmrmError::internal)?,
            _ = &mut until => return Ok(()),
        };
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("dashboard accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut until => return Ok(()),
        };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper_util::service::TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            // A client that sends its request's head slowly holds a connection: not for long.
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let served = match tls {
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                    _ => return,
                },
                None => http.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(e) = served {
                tracing::debug!("dashboard connection ended: {e}");
            }
        });
    }
}
