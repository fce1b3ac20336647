//! Outgoing email with lettre: SMTP when `SMTP_URL` is set, otherwise each message is written as
//! an `.eml` file under `DATA_DIR/mail` (development and tests read them there).

use std::path::PathBuf;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message: text, and HTML when given (sent as `multipart/alternative`).
#[derive(Debug, Clone, Default)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// An unsubscribe URL: sent as `List-Unsubscribe` with one-click `List-Unsubscribe-Post`
    /// (RFC 8058).
    pub unsubscribe: Option<String>,
}

/// The sender of outgoing email (cheap to clone: the SMTP pool is shared).
#[derive(Clone)]
pub struct Mailer {
    from: String,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    dir: PathBuf,
}

impl Mailer {
    /// Over SMTP at `smtp_url` (`smtp://` or `smtps://`), or into `dir` as `.eml` files.
    pub fn new(from: &str, smtp_url: Option<&str>, dir: PathBuf) -> anyhow::Result<Self> {
        let smtp = match smtp_url {
            Some(url) => Some(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build()),
            None => None,
        };
        Ok(Self {
            from: from.to_owned(),
            smtp,
            dir,
        })
    }

    /// Sends a plain-text message. Failures are logged and returned; callers that must answer the
    /// same either way (password reset) ignore them.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), domain::Error> {
        self.send_email(Email {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: body,
            ..Email::default()
        })
        .await
    }

    /// Sends `email`; a failure is logged and returned.
    pub async fn send_email(&self, email: Email) -> Result<(), domain::Error> {
        let result = self.try_send(email).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "email not sent");
        }
        result
    }

    async fn try_send(&self, email: Email) -> Result<(), domain::Error> {
        let internal = |e: String| domain::Error::Internal(format!("sending mail: {e}"));
        let from: Mailbox = self.from.parse().map_err(|e| internal(format!("{e}")))?;
        let to: Mailbox = email.to.parse().map_err(|e| internal(format!("{e}")))?;
        let mut builder = Message::builder().from(from).to(to).subject(email.subject);
        if let Some(url) = &email.unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let message = match email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
            None => builder.header(ContentType::TEXT_PLAIN).body(email.text),
        }
        .map_err(|e| internal(e.to_string()))?;
        match &self.smtp {
            Some(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| internal(e.to_string())),
            None => {
                let write = async {
                    tokio::fs::create_dir_all(&self.dir).await?;
                    let path = self.dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                    tokio::fs::write(&path, message.formatted()).await
                };
                write.await.map_err(|e| internal(e.to_string()))
            }
        }
    }
}
