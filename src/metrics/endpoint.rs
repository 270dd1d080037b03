//! The node's Prometheus endpoint: `GET /metrics` on `metrics_listen`, plain HTTP like etcd's
//! `--listen-metrics-urls`. It serves nothing else and takes no input, so it changes nothing;
//! what it tells (counts, Raft indexes, the node's name and roles) is kept off the gRPC port,
//! and the operator chooses where it listens (a loopback address keeps it on the machine).
use super::metrics;
use crate::error::{Result, VmrmError};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use std::future::Future;

/// What Prometheus reads the OpenMetrics text format as.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (a port in use fails the node at once).
pub async fn bind(node: &str, addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| VmrmError::unavailable(format!("node {node} cannot serve metrics on {addr}: {e}")))
}

/// Serves `/metrics` on `listener` until `until` resolves.
pub async fn serve(listener: tokio::net::TcpListener, until: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let app = Router::new().route("/metrics", get(|| async { ([(CONTENT_TYPE, OPENMETRICS)], metrics().encode()) }));
    axum::serve(listener, app)
        .with_graceful_shutdown(until)
        .await
        .map_err(|e| VmrmError::internal(format!("metrics endpoint failed: {e}")))
}
