//! Who uses the dashboard: the same people, with the same certificates, as `ksysmgr`. A browser
//! cannot present a client certificate without the operator installing it, so the page asks
//! for the person's certificate and key files, keeps the key in the page, and signs a one-time
//! challenge with it (WebCrypto, ECDSA P-256 like every certificate `vmrmd certs` issues). The
//! controller checks the certificate against the cluster's CA and the signature against the
//! certificate's key, reads the principal from the certificate as the gRPC gate does, and keeps
//! a session for it. The key never leaves the browser; a session is a random cookie, kept in
//! this controller's memory only (bounded, with an expiry).
use crate::error::{Result, VmrmError};
use crate::transport::tls::{Principal, Role, pem_certificates, principal_of};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::rustls::{self, pki_types::UnixTime, server::danger::ClientCertVerifier};

/// What the browser signs: this prefix, then the challenge (so no other signature made with
/// the person's key can be replayed as a login).
pub const SIGNED_PREFIX: &str = "vmrm-dashboard-login:";
/// How long a challenge may be answered.
const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// How long a session lasts (a working day).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most challenges and sessions kept at once; past it the oldest expired ones go, and a new
/// one is refused while none has expired.
const MOST_CHALLENGES: usize = 256;
const MOST_SESSIONS: usize = 256;

/// A login as the browser sends it.
#[derive(Debug, serde::Deserialize)]
pub struct LoginRequest {
    /// The person's certificate, PEM.
    pub certificate: String,
    pub challenge: String,
    /// The ECDSA signature of [`SIGNED_PREFIX`] + challenge, r‖s (64 bytes), hex.
    pub signature: String,
}

#[derive(Clone)]
pub struct Logins {
    verifier: Arc<dyn ClientCertVerifier>,
    challenges: Arc<Mutex<HashMap<String, Instant>>>,
    sessions: Arc<Mutex<HashMap<String, (Principal, Instant)>>>,
}

/// 32 random bytes, hex.
fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    crate::domain::hex::encode(&bytes)
}

/// Keeps `map` under `most` entries by dropping expired ones; false if it is still full.
fn make_room<V>(map: &mut HashMap<String, V>, most: usize, expiry: impl Fn(&V) -> Instant) -> bool {
    if map.len() >= most {
        let now = Instant::now();
        map.retain(|_, v| expiry(v) > now);
    }
    map.len() < most
}

fn refused(why: impl Into<String>) -> VmrmError {
    VmrmError::Unauthenticated(why.into())
}

impl Logins {
    /// Logins checked against the CA certificate `ca_pem`.
    pub fn new(ca_pem: &[u8]) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certificates(ca_pem)? {
            roots.add(cert).map_err(|e| VmrmError::invalid(format!("the cluster CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| VmrmError::invalid(format!("the cluster CA certificate: {e}")))?;
        Ok(Self { verifier, challenges: Arc::default(), sessions: Arc::default() })
    }

    /// A new one-time challenge.
    pub fn challenge(&self) -> Result<String> {
        let mut challenges = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        if !make_room(&mut challenges, MOST_CHALLENGES, |at| *at + CHALLENGE_TTL) {
            return Err(VmrmError::ResourceExhausted("too many logins at once; try again in a minute".into()));
        }
        let challenge = random_hex();
        challenges.insert(challenge.clone(), Instant::now());
        Ok(challenge)
    }

    /// Checks a login; the new session's id and its principal.
    pub fn login(&self, req: &LoginRequest) -> Result<(String, Principal)> {
        let issued = self.challenges.lock().unwrap_or_else(|p| p.into_inner()).remove(&req.challenge);
        if issued.is_none_or(|at| at.elapsed() >= CHALLENGE_TTL) {
            return Err(refused("the login challenge is unknown, used or expired; log in again"));
        }
        let der = pem_certificates(req.certificate.as_bytes())
            .map_err(|e| refused(format!("the certificate: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| refused("the certificate file holds no certificate"))?;
        self.verifier
            .verify_client_cert(&der, &[], UnixTime::now())
            .map_err(|e| refused(format!("the certificate is not one of this cluster's CA: {e}")))?;
        let who = principal_of(&der)?;
        if !Role::PEOPLE.iter().any(|r| who.roles.contains(r)) {
            return Err(VmrmError::denied(format!(
                "{who} is not a person: the dashboard is for people's certificates"
            )));
        }
        let signature =
            crate::domain::hex::decode(&req.signature).ok_or_else(|| refused("the signature is not hex"))?;
        let key = public_key(&der)?;
        let signed = format!("{SIGNED_PREFIX}{}", req.challenge);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| refused("the signature does not match the certificate's key"))?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if !make_room(&mut sessions, MOST_SESSIONS, |(_, at)| *at + SESSION_TTL) {
            return Err(VmrmError::ResourceExhausted(format!("{MOST_SESSIONS} dashboard sessions are open")));
        }
        let id = random_hex();
        sessions.insert(id.clone(), (who.clone(), Instant::now()));
        Ok((id, who))
    }

    /// The principal of session `id`, while it lasts.
    pub fn session(&self, id: &str) -> Option<Principal> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(id).filter(|(_, at)| at.elapsed() < SESSION_TTL).map(|(who, _)| who.clone())
    }

    pub fn logout(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// The certificate's public key (the uncompressed EC point).
fn public_key(der: &[u8]) -> Result<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| refused(format!("the certificate cannot be read: {e}")))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::issue::Authority;
    use std::collections::BTreeSet;

    fn person(role: Role) -> Principal {
        Principal {
            name: "alice".into(),
            roles: BTreeSet::from([role]),
            host: None,
            vms: BTreeSet::new(),
            unchecked: false,
        }
    }

    fn sign(key_pem: &str, challenge: &str) -> String {
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let signing = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(signing, der.secret_pkcs8_der(), &rng).unwrap();
        let sig = pair.sign(&rng, format!("{SIGNED_PREFIX}{challenge}").as_bytes()).unwrap();
        crate::domain::hex::encode(sig.as_ref())
    }

    #[test]
    fn a_person_signing_the_challenge_gets_a_session_once() {
        let ca = Authority::create("c").unwrap();
        let logins = Logins::new(ca.cert_pem().as_bytes()).unwrap();
        let alice = ca.issue(&person(Role::Monitor), &[]).unwrap();
        let challenge = logins.challenge().unwrap();
        let req = LoginRequest {
            certificate: alice.cert_pem.clone(),
            signature: sign(&alice.key_pem, &challenge),
            challenge: challenge.clone(),
        };
        let (id, who) = logins.login(&req).unwrap();
        assert_eq!(who.name, "alice");
        assert_eq!(logins.session(&id).unwrap().roles, BTreeSet::from([Role::Monitor]));
        // The challenge is spent.
        assert!(logins.login(&req).unwrap_err().to_string().contains("unknown, used or expired"));
        logins.logout(&id);
        assert!(logins.session(&id).is_none());
    }

    #[test]
    fn a_wrong_key_another_ca_or_a_node_is_refused() {
        let ca = Authority::create("c").unwrap();
        let logins = Logins::new(ca.cert_pem().as_bytes()).unwrap();
        let alice = ca.issue(&person(Role::Admin), &[]).unwrap();
        let mallory = ca.issue(&person(Role::Admin), &[]).unwrap();
        let login = |cert: &str, key: &str| {
            let challenge = logins.challenge().unwrap();
            let signature = sign(key, &challenge);
            logins.login(&LoginRequest { certificate: cert.into(), challenge, signature }).unwrap_err().to_string()
        };
        assert!(login(&alice.cert_pem, &mallory.key_pem).contains("does not match"));
        let other = Authority::create("other").unwrap().issue(&person(Role::Admin), &[]).unwrap();
        assert!(login(&other.cert_pem, &other.key_pem).contains("not one of this cluster's CA"));
        let node = Principal { roles: BTreeSet::from([Role::Controller]), ..person(Role::Admin) };
        let node = ca.issue(&node, &[]).unwrap();
        assert!(login(&node.cert_pem, &node.key_pem).contains("not a person"));
        assert!(login("garbage", &alice.key_pem).contains("no certificate"));
    }
}
