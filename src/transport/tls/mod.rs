//! Mutual TLS on every connection between nodes and from clients: each side shows a certificate
//! of the cluster's CA and checks the other's. A node serves with its own certificate and asks
//! every client for one; the client checks that the node's certificate names the address it
//! dialled. Who the client is ([`Principal`]) is read from its verified certificate by the
//! node's gate ([`crate::transport::gate`]). Plaintext exists only as an explicit choice
//! (`insecure = true` in a node's config, `--insecure` for a client), for a cluster behind its
//! own encrypted network; nothing falls back to it.
pub mod issue;
pub mod principal;

pub use principal::{Principal, Role};
use tokio_rustls::rustls::pki_types::CertificateDer;

use crate::error::{Result, VmrmError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A node's or a client's TLS files: the cluster CA's certificate and its own certificate and key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `name`'s files in certificate directory `dir` (as [`issue::Authority::issue_into`] writes them).
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        let (cert, key) = issue::identity_files(dir, name);
        Self { ca: dir.join(issue::CA_CERT), cert, key }
    }
}

/// The PEM texts of a [`TlsFiles`].
#[derive(Debug)]
pub struct Credentials {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// How a process talks to the others: mutual TLS with its credentials, or plaintext.
#[derive(Debug, Clone)]
pub enum Security {
    Mutual(Arc<Credentials>),
    /// The explicit insecure mode: no encryption, no authentication.
    Plaintext,
}

impl Security {
    /// Reads the three files (a missing or unreadable one is named).
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let read = |what: &str, p: &Path| {
            let bytes = std::fs::read(p)
                .map_err(|e| VmrmError::invalid(format!("cannot read the TLS {what} {}: {e}", p.display())))?;
            match bytes.starts_with(b"-----BEGIN") {
                true => Ok(bytes),
                false => Err(VmrmError::invalid(format!("the TLS {what} {} is not PEM", p.display()))),
            }
        };
        Ok(Self::Mutual(Arc::new(Credentials {
            ca_pem: read("CA certificate", &files.ca)?,
            cert_pem: read("certificate", &files.cert)?,
            key_pem: read("key", &files.key)?,
        })))
    }

    /// The cluster CA's certificate (PEM), when serving with TLS.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        match self {
            Self::Mutual(c) => Some(&c.ca_pem),
            Self::Plaintext => None,
        }
    }

    /// A rustls server config with this node's certificate (no client certificates asked:
    /// for HTTPS to browsers), when serving with TLS.
    pub fn rustls_server(&self) -> Result<Option<tokio_rustls::rustls::ServerConfig>> {
        match self {
            Self::Mutual(c) => https_server(&c.cert_pem, &c.key_pem).map(Some),
            Self::Plaintext => Ok(None),
        }
    }

    /// `files`, or plaintext when `insecure` (both or neither given is an error).
    pub fn choose(files: Option<&TlsFiles>, insecure: bool) -> Result<Self> {
        match chosen(files, insecure)? {
            Some(f) => Self::load(f),
            None => Ok(Self::Plaintext),
        }
    }

    pub fn is_mutual(&self) -> bool {
        matches!(self, Self::Mutual(_))
    }

    /// The URI scheme to dial.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Mutual(_) => "https",
            Self::Plaintext => "http",
        }
    }

    /// What a client shows and trusts.
    pub fn client(&self) -> Option<ClientTlsConfig> {
        let Self::Mutual(c) = self else { return None };
        Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&c.ca_pem))
                .identity(Identity::from_pem(&c.cert_pem, &c.key_pem)),
        )
    }

    /// This process's own certificate and key (none in plaintext).
    pub fn identity(&self) -> Option<Identity> {
        let Self::Mutual(c) = self else { return None };
        Some(Identity::from_pem(&c.cert_pem, &c.key_pem))
    }

    /// The cluster CA's certificate (none in plaintext).
    pub fn ca(&self) -> Option<Certificate> {
        let Self::Mutual(c) = self else { return None };
        Some(Certificate::from_pem(&c.ca_pem))
    }

    /// What a node shows, and the CA its clients' certificates must come from. A client
    /// without one still completes the handshake, so that the gate can answer it with
    /// UNAUTHENTICATED (and serve it the health check) instead of a bare TLS alert.
    pub fn server(&self) -> Option<ServerTlsConfig> {
        let Self::Mutual(c) = self else { return None };
        Some(
            ServerTlsConfig::new()
                .identity(Identity::from_pem(&c.cert_pem, &c.key_pem))
                .client_ca_root(Certificate::from_pem(&c.ca_pem))
                .client_auth_optional(true),
        )
    }
}

/// The TLS files to use, `None` for plaintext: exactly one of the two must be chosen.
pub fn chosen(files: Option<&TlsFiles>, insecure: bool) -> Result<Option<&TlsFiles>> {
    match (files, insecure) {
        (Some(f), false) => Ok(Some(f)),
        (None, true) => Ok(None),
        (Some(_), true) => Err(VmrmError::invalid("TLS files and insecure are exclusive: choose one")),
        (None, false) => Err(VmrmError::invalid(
            "no TLS files given: give the CA, certificate and key (see `vmrmd certs`), or choose plaintext \
             explicitly with insecure",
        )),
    }
}

/// The certificates of a PEM text.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| VmrmError::invalid(format!("not a PEM certificate: {e}")))
}

/// An HTTP/1.1 server's TLS: the node's certificate, no client certificate asked.
fn https_server(cert_pem: &[u8], key_pem: &[u8]) -> Result<tokio_rustls::rustls::ServerConfig> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let chain = pem_certificates(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| VmrmError::invalid(format!("the node's key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(VmrmError::internal)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| VmrmError::invalid(format!("the node's certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The principal a verified client certificate (DER) names.
pub fn principal_of(der: &[u8]) -> Result<Principal> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| VmrmError::Unauthenticated(format!("the client certificate cannot be read: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| VmrmError::Unauthenticated(format!("the client certificate's names cannot be read: {e}")))?;
    let uris = san.iter().flat_map(|s| s.value.general_names.iter()).filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    Principal::from_uris(uris).map_err(|e| VmrmError::Unauthenticated(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::HostName;

    #[test]
    fn an_issued_certificate_names_its_principal() {
        let ca = issue::Authority::create("test").unwrap();
        let who = Principal {
            name: "host-1-su".into(),
            roles: [Role::ServerUnit].into(),
            host: Some(HostName::parse("host-1").unwrap()),
            vms: Default::default(),
            unchecked: false,
        };
        let issued = ca.issue(&who, &["127.0.0.1".into(), "host-1-su".into()]).unwrap();
        let der = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).unwrap().1.contents;
        assert_eq!(principal_of(&der).unwrap(), who);
    }

    #[test]
    fn plaintext_must_be_chosen() {
        assert!(Security::choose(None, false).is_err());
        assert!(matches!(Security::choose(None, true), Ok(Security::Plaintext)));
        let files = TlsFiles::in_dir(Path::new("/nonexistent"), "x");
        assert!(Security::choose(Some(&files), true).is_err());
        let err = Security::choose(Some(&files), false).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
