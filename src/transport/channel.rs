//! Lazily connected gRPC channels, one per endpoint and shared, plus the per-call deadline.
//! A dead peer costs one connect timeout, never a hang; a connection whose peer vanished
//! without a word (a host cut off the network) is found by HTTP/2 keepalive pings and replaced,
//! so calls do not keep timing out on it after the network is back. Every channel speaks as its
//! process's [`Security`] says: mutual TLS with its certificate, or plaintext when chosen.
use super::tls::Security;
use crate::error::{Result, VmrmError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Wraps a message in a request that fails after `d`.
pub fn deadline<T>(msg: T, d: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(d);
    req
}

/// `call`'s answer, or DEADLINE_EXCEEDED once `d` has passed — connecting included, which a
/// request's own deadline does not cover: a paused peer accepts the TCP connection and then
/// never finishes the TLS handshake, and the call would wait out the connect timeout.
pub async fn within<T>(
    d: Duration,
    call: impl Future<Output = std::result::Result<T, tonic::Status>>,
) -> std::result::Result<T, tonic::Status> {
    tokio::time::timeout(d, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded(format!("no answer within {d:?}"))))
}

/// How often an idle connection is pinged, and how long an answer may take.
const KEEPALIVE: Duration = Duration::from_secs(2);

/// The way to `host:port` as `security` says; connecting (the TLS handshake included: a
/// paused peer accepts the TCP connection and then says nothing) takes at most `connect_timeout`.
pub fn dial(endpoint: &str, security: &Security, connect_timeout: Duration) -> Result<Endpoint> {
    let bad = |e: &dyn std::fmt::Display| VmrmError::invalid(format!("`{endpoint}` is not a valid endpoint: {e}"));
    let dial = Endpoint::from_shared(format!("{}://{endpoint}", security.scheme()))
        .map_err(|e| bad(&e))?
        .connect_timeout(connect_timeout);
    match security.client() {
        Some(tls) => dial.tls_config(tls.timeout(connect_timeout)).map_err(|e| bad(&e)),
        None => Ok(dial),
    }
}

/// Opens a channel to `host:port` that connects on first use.
pub fn lazy_channel(endpoint: &str, connect_timeout: Duration, security: &Security) -> Result<Channel> {
    Ok(dial(endpoint, security, connect_timeout)?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Most channels a pool keeps; one more drops another (it reconnects on its next use).
const MAX_CHANNELS: usize = 4096;

/// Channels by endpoint, created on first use and reused (tonic multiplexes calls on one).
#[derive(Clone)]
pub struct ChannelPool {
    connect_timeout: Duration,
    security: Security,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl ChannelPool {
    pub fn new(connect_timeout: Duration, security: Security) -> Self {
        Self { connect_timeout, security, channels: Arc::default() }
    }

    pub fn security(&self) -> &Security {
        &self.security
    }

    pub fn get(&self, endpoint: &str) -> Result<Channel> {
        // The map holds no invariant a panicking holder could break halfway.
        let mut map = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = map.get(endpoint) {
            return Ok(c.clone());
        }
        let c = lazy_channel(endpoint, self.connect_timeout, &self.security)?;
        if map.len() >= MAX_CHANNELS
            && let Some(other) = map.keys().next().cloned()
        {
            map.remove(&other);
        }
        map.insert(endpoint.to_string(), c.clone());
        Ok(c)
    }
}

/// `host:port` where host is an IP address or a DNS name and port a TCP port: what a node can
/// be reached at (containers reach each other by name).
pub fn is_endpoint(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else { return false };
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    name_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod endpoint_tests {
    use super::is_endpoint;

    #[test]
    fn ips_and_names_with_a_port_are_endpoints() {
        for ok in ["127.0.0.1:7001", "[::1]:7001", "ctl-1:7001", "hmc.example.com:443"] {
            assert!(is_endpoint(ok), "{ok}");
        }
        for bad in ["ctl-1", "ctl-1:", "ctl-1:0", "ctl-1:70000", ":7001", "bad name:1", "-x:1", "a..b:1"] {
            assert!(!is_endpoint(bad), "{bad}");
        }
    }
}
