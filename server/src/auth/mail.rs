//! Outgoing email with lettre: SMTP when `SMTP_URL` is set, otherwise each message is written as
//! an `.eml` file under `DATA_DIR/mail` (development and tests read them there).

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::Config;

pub struct Mailer {
    from: String,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    dir: PathBuf,
}

impl Mailer {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let smtp = match &config.smtp_url {
            Some(url) => {
                Some(AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?.build())
            }
            None => None,
        };
        Ok(Self {
            from: config.email_from.clone(),
            smtp,
            dir: config.data_dir.join("mail"),
        })
    }

    /// Sends a plain-text message. Failures are logged and returned; callers that must answer the
    /// same either way (password reset) ignore them.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), domain::Error> {
        let internal = |e: String| domain::Error::Internal(format!("sending mail: {e}"));
        let from: Mailbox = self.from.parse().map_err(|e| internal(format!("{e}")))?;
        let to: Mailbox = to.parse().map_err(|e| internal(format!("{e}")))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| internal(e.to_string()))?;
        let result = match &self.smtp {
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
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "email not sent");
        }
        result
    }
}
