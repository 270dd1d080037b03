//! E-mail contacts through the operator's SMTP relay (lettre). The relay is the system's
//! `smtp_relay`; when it offers STARTTLS the mail goes encrypted, its certificate checked
//! against the machine's roots. A relay is asked to answer before it is accepted as a setting.
use crate::error::{Result, VmrmError, quote};
use crate::logic::notify::Notice;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one exchange with the relay may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A relay's `HOST:PORT`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    host: String,
    port: u16,
}

impl Relay {
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = || VmrmError::invalid(format!("smtp_relay={} is not HOST:PORT (a port 1-65535)", quote(raw)));
        let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c));
        match (host_ok, port.parse::<u16>()) {
            (true, Ok(port)) if port > 0 => Ok(Self { host: host.to_string(), port }),
            _ => Err(bad()),
        }
    }

    fn transport(&self) -> std::result::Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS set-up: {e}"))?;
        Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(Tls::Opportunistic(tls))
            .timeout(Some(SMTP_TIMEOUT))
            .build())
    }

    /// Whether the relay answers (greets and takes EHLO); FAILED_PRECONDITION saying why not.
    pub async fn check(&self) -> Result<()> {
        let refused = |why: String| VmrmError::precondition(format!("SMTP relay {self} does not answer: {why}"));
        match self.transport().map_err(refused)?.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(refused("it did not greet".into())),
            Err(e) => Err(refused(e.to_string())),
        }
    }

    /// Mails `notice` from `sender` to `to`; the error says what the relay said.
    pub async fn send(&self, sender: &str, to: &str, notice: &Notice) -> std::result::Result<(), String> {
        let message = Message::builder()
            .from(sender.parse().map_err(|e| format!("sender {sender}: {e}"))?)
            .to(to.parse().map_err(|e| format!("recipient {to}: {e}"))?)
            .subject(&notice.title)
            .message_id(Some(format!("<{}@vmrm>", notice.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(notice.body.clone())
            .map_err(|e| format!("the message: {e}"))?;
        self.transport()?.send(message).await.map(drop).map_err(|e| format!("relay {self}: {e}"))
    }
}

impl std::fmt::Display for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_is_host_and_port() {
        assert_eq!(Relay::parse("mail.example.com:25").unwrap().to_string(), "mail.example.com:25");
        assert_eq!(Relay::parse("[::1]:2525").unwrap().to_string(), "[::1]:2525");
        for bad in ["mail.example.com", "mail:0", "mail:99999", ":25", "a b:25", "x/y:25"] {
            assert!(matches!(Relay::parse(bad), Err(VmrmError::InvalidArgument(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_relay_that_does_not_answer_is_refused() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let err = Relay::parse(&format!("127.0.0.1:{port}")).unwrap().check().await.unwrap_err();
        assert!(matches!(err, VmrmError::FailedPrecondition(_)) && err.to_string().contains("does not answer"));
    }
}
