//! The gate every call to a node passes first: it reads the caller from its verified client
//! certificate, refuses a call without one (UNAUTHENTICATED) or one whose roles do not allow it
//! ([`rules`], PERMISSION_DENIED), and hands the [`Principal`] to the service in the request's
//! extensions ([`caller`]), so a service decides finer rights on the same identity. A node
//! serving plaintext (the explicit insecure mode) lets every call through as
//! [`Principal::unchecked`]. A controller's gate also reports what it refused ([`Refusal`]), for
//! the audit trail, through a bounded queue: a flood of refused calls drops reports, never
//! blocks or grows.
pub mod rules;

use crate::error::{Result, VmrmError};
use crate::transport::tls::{Principal, principal_of};
use futures::future::Either;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// Most certificates whose principal the gate remembers (reading one costs a parse per call).
const REMEMBERED: usize = 1024;

/// The caller of a request that passed the gate. A request that did not pass one (a service
/// called in-process) has none, and is refused rather than trusted.
pub fn caller<T>(req: &tonic::Request<T>) -> Result<&Principal> {
    req.extensions().get::<Principal>().ok_or_else(|| VmrmError::Unauthenticated("the caller is unknown".into()))
}

/// A call the gate refused: who (as far as known), what, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub who: String,
    pub path: String,
    pub why: String,
}

/// Refusals waiting to be written; more are dropped.
pub const REFUSALS_QUEUED: usize = 256;

#[derive(Clone)]
pub struct Gate {
    mutual: bool,
    known: Arc<Mutex<HashMap<u64, Principal>>>,
    refusals: Option<tokio::sync::mpsc::Sender<Refusal>>,
}

impl Gate {
    /// A gate checking certificates (`mutual`), or letting every call through.
    pub fn new(mutual: bool) -> Self {
        Self { mutual, known: Arc::default(), refusals: None }
    }

    /// Reports every refusal to `to` (while it has room).
    pub fn reporting(self, to: tokio::sync::mpsc::Sender<Refusal>) -> Self {
        Self { refusals: Some(to), ..self }
    }

    /// The caller of `req`, if it may make the call; else who it is (or where it called from)
    /// and why not.
    fn admit<B>(&self, req: &http::Request<B>) -> std::result::Result<Principal, (String, VmrmError)> {
        if !self.mutual {
            return Ok(Principal::unchecked());
        }
        let path = req.uri().path();
        let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let certs = info.and_then(|i| i.peer_certs());
        let from = || match info.and_then(|i| i.get_ref().remote_addr()) {
            Some(addr) => format!("(no certificate, from {addr})"),
            None => "(no certificate)".to_string(),
        };
        let who = match (certs.as_ref().and_then(|c| c.first()), rules::allowed(path)) {
            (None, None) => return Ok(Principal::anonymous()),
            (None, Some(_)) => {
                let why = format!("{path} needs a client certificate of this cluster's CA; the call carries none");
                return Err((from(), VmrmError::Unauthenticated(why)));
            }
            (Some(der), _) => self.principal(der).map_err(|e| (from(), e))?,
        };
        rules::authorize(&who, path).map_err(|e| (who.to_string(), e))?;
        Ok(who)
    }

    fn principal(&self, der: &[u8]) -> Result<Principal> {
        let key = xxhash_rust::xxh3::xxh3_64(der);
        // The map holds no invariant a panicking holder could break halfway.
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = known.get(&key) {
            return Ok(p.clone());
        }
        let p = principal_of(der)?;
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert(key, p.clone());
        Ok(p)
    }
}

impl<S> tower_layer::Layer<S> for Gate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated { inner, gate: self.clone() }
    }
}

/// A service behind the [`Gate`].
#[derive(Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S, B> tower_service::Service<http::Request<B>> for Gated<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<std::result::Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.gate.admit(&req) {
            Ok(who) => {
                req.extensions_mut().insert(who);
                Either::Left(self.inner.call(req))
            }
            Err((who, why)) => {
                tracing::debug!(path = req.uri().path(), %who, "call refused: {why}");
                if let Some(to) = &self.gate.refusals {
                    let refusal = Refusal { who, path: req.uri().path().to_string(), why: why.to_string() };
                    let _ = to.try_send(refusal);
                }
                let status = tonic::Status::from(why).into_http();
                Either::Right(std::future::ready(Ok(status)))
            }
        }
    }
}
