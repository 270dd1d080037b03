//! The guest application server's TLS identity (seed 002: the managers and servers talk over
//! SSL; "Key generation on the VM or vPar guest"). Generated once, in the VM's own files: a key
//! and a self-signed certificate for the VM's name. The host-side manager reads the certificate
//! from there — as an operator copies it to the host — and trusts that certificate only.
use super::guest::{GuestDir, io_error};
use crate::error::{Result, VmrmError};
use crate::transport::tls::issue::write_private;

/// The server's certificate and key, PEM; made on first use.
pub fn server_identity(guest: &GuestDir, vm: &str) -> Result<(String, String)> {
    let (cert_path, key_path) = (guest.appserver_cert_path(), guest.appserver_key_path());
    if let (Ok(cert), Ok(key)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path)) {
        return Ok((cert, key));
    }
    guest.create()?;
    let made = rcgen::generate_simple_self_signed(vec![vm.to_string()])
        .map_err(|e| VmrmError::internal(format!("no key for the application server of VM {vm}: {e}")))?;
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    write_private(&key_path, &key).map_err(|e| io_error(&key_path, e))?;
    std::fs::write(&cert_path, &cert).map_err(|e| io_error(&cert_path, e))?;
    tracing::info!(vm = %vm, "application server key generated: {}", cert_path.display());
    Ok((cert, key))
}

/// The certificate a manager trusts for VM `vm`.
pub fn trusted_certificate(guest: &GuestDir, vm: &str) -> Result<String> {
    let path = guest.appserver_cert_path();
    std::fs::read_to_string(&path).map_err(|e| {
        VmrmError::precondition(format!(
            "no application server certificate for VM {vm} at {} ({e}): is the VM running?",
            path.display()
        ))
    })
}
