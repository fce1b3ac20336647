//! A fake SMTP server (RFC 5321 without TLS or AUTH): greets, answers EHLO with its
//! extensions, takes MAIL FROM / RCPT TO / DATA (dot-unstuffed) / RSET / NOOP / QUIT, and records
//! every message accepted. While `refuse` is above zero, each DATA is answered
//! `451 4.3.0 try again later` (and counted down), the way a busy or greylisting server answers.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends).
    pub data: String,
}

impl Mail {
    /// The value of header `name` (case-insensitive; folded lines joined).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push_str(line.trim_start());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }

    /// The message with quoted-printable soft line breaks and `=XX` escapes undone (enough to
    /// search a text or HTML part for what it says).
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
pub struct Data {
    pub mails: Vec<Mail>,
    /// The next this many messages are refused at DATA with a temporary failure.
    pub refuse: u32,
}

#[derive(Clone)]
pub struct FakeSmtp {
    /// `smtp://127.0.0.1:<port>`, for `SMTP_URL`.
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeSmtp {
    pub async fn start() -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let data = Arc::new(Mutex::new(Data::default()));
        let shared = data.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(session(sock, shared.clone()));
            }
        });
        FakeSmtp { url, data }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.data.lock().unwrap().mails.clone()
    }

    pub fn refuse(&self, n: u32) {
        self.data.lock().unwrap().refuse = n;
    }
}

async fn session(sock: tokio::net::TcpStream, data: Arc<Mutex<Data>>) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r);
    macro_rules! reply {
        ($s:expr) => {
            if w.write_all(format!("{}\r\n", $s).as_bytes()).await.is_err() {
                return;
            }
        };
    }
    reply!("220 fake.smtp ESMTP ready");
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            reply!("250-fake.smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING");
        } else if upper.starts_with("HELO") {
            reply!("250 fake.smtp");
        } else if upper.starts_with("MAIL FROM:") {
            from = addr(&cmd[10..]);
            to.clear();
            reply!("250 2.1.0 OK");
        } else if upper.starts_with("RCPT TO:") {
            to.push(addr(&cmd[8..]));
            reply!("250 2.1.5 OK");
        } else if upper == "DATA" {
            reply!("354 end data with <CR><LF>.<CR><LF>");
            let mut body = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                body.push_str(l);
            }
            let refused = {
                let mut d = data.lock().unwrap();
                if d.refuse > 0 {
                    d.refuse -= 1;
                    true
                } else {
                    d.mails.push(Mail {
                        from: from.clone(),
                        to: to.clone(),
                        data: body,
                    });
                    false
                }
            };
            if refused {
                reply!("451 4.3.0 try again later");
            } else {
                reply!("250 2.0.0 queued");
            }
        } else if upper == "RSET" {
            to.clear();
            reply!("250 2.0.0 OK");
        } else if upper == "NOOP" {
            reply!("250 2.0.0 OK");
        } else if upper == "QUIT" {
            reply!("221 2.0.0 bye");
            return;
        } else {
            reply!("502 5.5.2 command not recognized");
        }
    }
}

fn addr(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or(s);
    s.trim_start_matches('<').trim_end_matches('>').to_owned()
}
