//! Sending mail: the transport chosen by `LATCHKEY_SMTP_URL` (SMTP through `lettre`, or the
//! log), the message templates, and the outbox worker that sends what the store holds.
//!
//! Nothing is sent from a request: the domain stores a rendered message in the outbox
//! ([`crate::store::MailStore`]) and wakes the worker ([`outbox::OutboxWorker`]), which claims,
//! sends and deletes it, or retries it later with exponential backoff.

pub mod outbox;
pub mod templates;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailConfig, MailTransport, SmtpTls};
use crate::store::OutboxMessage;

/// How long one SMTP exchange may take before it counts as a failed attempt.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt later (the server is down, busy or answered 4xx).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never succeed (a malformed address, a 5xx refusal of the recipient).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Where messages go.
pub enum Mailer {
    /// Written to the log (`log://`, development only).
    Log {
        /// The `From` mailbox.
        from: Mailbox,
    },
    /// An SMTP server.
    Smtp {
        /// The connection settings (a pool of connections, opened on demand).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The `From` mailbox.
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Log { .. } => "Mailer::Log",
            Self::Smtp { .. } => "Mailer::Smtp",
        })
    }
}

impl Mailer {
    /// The mailer `config` asks for; `None` when no `LATCHKEY_SMTP_URL` is set.
    ///
    /// # Errors
    /// A `From` mailbox or TLS setting that cannot be used (the config checked them already).
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>, String> {
        let Some(transport) = &config.transport else {
            return Ok(None);
        };
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("LATCHKEY_MAIL_FROM: {e}"))?;
        let MailTransport::Smtp {
            host,
            port,
            tls,
            credentials,
        } = transport
        else {
            tracing::warn!(
                "LATCHKEY_SMTP_URL=log://: messages, with their links and tokens, are written to \
                 the log instead of being sent. For development only."
            );
            return Ok(Some(Self::Log { from }));
        };
        let parameters =
            || TlsParameters::new(host.clone()).map_err(|e| format!("LATCHKEY_SMTP_URL: TLS: {e}"));
        let tls = match tls {
            SmtpTls::Required => Tls::Required(parameters()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(parameters()?),
            SmtpTls::None => {
                if credentials.is_some() {
                    tracing::warn!(
                        "LATCHKEY_SMTP_URL has tls=none and a password: it crosses the network \
                         in clear text"
                    );
                }
                Tls::None
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(*port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Some(Self::Smtp {
            transport: builder.build(),
            from,
        }))
    }

    fn from(&self) -> &Mailbox {
        match self {
            Self::Log { from } | Self::Smtp { from, .. } => from,
        }
    }

    /// Builds the MIME message (plain text and HTML alternatives).
    fn build(&self, message: &OutboxMessage) -> Result<Message, SendError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("the recipient address: {e}")))?;
        Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(message.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Sends one message.
    ///
    /// # Errors
    /// [`SendError::Temporary`] when a later attempt may succeed, [`SendError::Permanent`]
    /// otherwise.
    pub async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let email = self.build(message)?;
        match self {
            Self::Log { .. } => {
                // The only place a token may reach the log, and only in log:// mode.
                tracing::info!(
                    mail.id = %message.id,
                    to = %message.to,
                    subject = %message.subject,
                    body = %message.text,
                    "mail (log:// transport, not sent)"
                );
                Ok(())
            }
            Self::Smtp { transport, .. } => match transport.send(email).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Temporary(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn mail_config(smtp_url: &str) -> MailConfig {
        Config::for_tests_with(
            "sqlite://x.db",
            &[
                ("LATCHKEY_SMTP_URL", smtp_url),
                ("LATCHKEY_MAIL_FROM", "Latchkey <no-reply@example.com>"),
            ],
        )
        .unwrap()
        .mail
    }

    fn message(to: &str) -> OutboxMessage {
        let now = time::OffsetDateTime::now_utc();
        OutboxMessage::new(
            to.into(),
            "Subject".into(),
            "text".into(),
            "<p>html</p>".into(),
            now,
            now + time::Duration::minutes(5),
        )
    }

    #[test]
    fn every_transport_builds_without_touching_the_network() {
        for url in [
            "smtp://u:p@mail.example.com",
            "smtp://mail.example.com?tls=opportunistic",
            "smtp://127.0.0.1:2525?tls=none",
            "smtps://mail.example.com",
            "log://",
        ] {
            assert!(
                Mailer::from_config(&mail_config(url)).unwrap().is_some(),
                "{url}"
            );
        }
        let none = Config::for_tests("sqlite://x.db").unwrap().mail;
        assert!(Mailer::from_config(&none).unwrap().is_none());
    }

    #[tokio::test]
    async fn the_log_transport_sends_and_a_bad_recipient_is_a_permanent_failure() {
        let mailer = Mailer::from_config(&mail_config("log://"))
            .unwrap()
            .unwrap();
        mailer.send(&message("alice@example.com")).await.unwrap();
        assert!(matches!(
            mailer.send(&message("not an address")).await,
            Err(SendError::Permanent(_))
        ));
    }

    #[test]
    fn smtp_needs_a_from_address_and_requiring_verification_needs_smtp() {
        let e = Config::for_tests_with("sqlite://x.db", &[("LATCHKEY_SMTP_URL", "smtp://h")])
            .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_MAIL_FROM");
        let e = Config::for_tests_with(
            "sqlite://x.db",
            &[("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true")],
        )
        .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_REQUIRE_VERIFIED_EMAIL");
        let e = Config::for_tests_with(
            "sqlite://x.db",
            &[
                ("LATCHKEY_SMTP_URL", "log://"),
                ("LATCHKEY_MAIL_FROM", "nope"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_MAIL_FROM");
    }
}
