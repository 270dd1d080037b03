//! The cluster's certificate authority (`vmrmd certs`): one CA per cluster, and a certificate per
//! node and per person, each naming its principal ([`super::principal`]) and, for a node, the
//! names and addresses it is reached at (the client checks them, as a browser does). Keys are
//! ECDSA P-256, written readable by their owner only. Like etcd's or Kubernetes' kubeadm
//! certificates, these are meant to be replaced by the site's own PKI where it has one: any CA
//! works whose certificates carry the same URIs.
use super::principal::Principal;
use crate::error::{Result, VmrmError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::path::{Path, PathBuf};

/// The CA's files in a certificate directory.
pub const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

/// A certificate and its private key, PEM-encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where `name`'s certificate and key are in a certificate directory.
pub fn identity_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")))
}

pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> VmrmError {
    VmrmError::internal(format!("cannot {what}: {e}"))
}

impl Authority {
    /// A new CA for cluster `cluster`.
    pub fn create(cluster: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(|e| failed("generate the CA key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, format!("vmrm CA {cluster}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(|e| failed("sign the CA certificate", e))?;
        Ok(Self { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA kept in `dir` (its certificate and key).
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .map_err(|e| VmrmError::not_found(format!("{}: {e}", dir.join(f).display())))
        };
        let (cert_pem, key_pem) = (read(CA_CERT)?, read(CA_KEY)?);
        let key = KeyPair::from_pem(&key_pem).map_err(|e| failed("read the CA key", e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| failed("read the CA certificate", e))?;
        Ok(Self { issuer, cert_pem })
    }

    /// Writes the CA into `dir` (created if missing); an existing CA there is never replaced.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if dir.join(CA_CERT).exists() {
            return Err(VmrmError::AlreadyExists(format!("{} already holds a CA", dir.display())));
        }
        std::fs::create_dir_all(dir).map_err(|e| failed(&format!("create {}", dir.display()), e))?;
        let key = dir.join(CA_KEY);
        write_private(&key, &self.issuer.key().serialize_pem())
            .map_err(|e| failed(&format!("write {}", key.display()), e))?;
        write_public(&dir.join(CA_CERT), &self.cert_pem)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `who`, valid for the DNS names and IP addresses in `reached_at` (a
    /// node's; empty for a person).
    pub fn issue(&self, who: &Principal, reached_at: &[String]) -> Result<Issued> {
        let key = KeyPair::generate().map_err(|e| failed("generate a key", e))?;
        let mut params = CertificateParams::new(reached_at.to_vec())
            .map_err(|e| VmrmError::invalid(format!("a certificate cannot name {reached_at:?}: {e}")))?;
        params.distinguished_name.push(DnType::CommonName, who.name.clone());
        for uri in who.uris() {
            let uri = uri.try_into().map_err(|e| VmrmError::invalid(format!("certificate URI: {e}")))?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| failed("sign a certificate", e))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Issues `who`'s certificate into `dir` as `NAME.pem` / `NAME.key`, with the CA's
    /// certificate beside them.
    pub fn issue_into(&self, dir: &Path, who: &Principal, reached_at: &[String]) -> Result<(PathBuf, PathBuf)> {
        let issued = self.issue(who, reached_at)?;
        let (cert, key) = identity_files(dir, &who.name);
        std::fs::create_dir_all(dir).map_err(|e| failed(&format!("create {}", dir.display()), e))?;
        write_private(&key, &issued.key_pem).map_err(|e| failed(&format!("write {}", key.display()), e))?;
        write_public(&cert, &issued.cert_pem)?;
        if !dir.join(CA_CERT).exists() {
            write_public(&dir.join(CA_CERT), &self.cert_pem)?;
        }
        Ok((cert, key))
    }
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| failed(&format!("write {}", path.display()), e))
}

/// Writes a key file only its owner reads (0600 from the start, never readable in between).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}
