//! The rate limiters and the operator's exceptions to them, as configured
//! (`RATE_LIMIT_ALLOWLIST`, `RATE_LIMIT_OVERRIDES`); `auth::ratelimit` counts with them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limiter {
    Auth,
    Api,
    Webhook,
    Demo,
    Signal,
}

impl Limiter {
    pub fn name(self) -> &'static str {
        match self {
            Limiter::Auth => "auth",
            Limiter::Api => "api",
            Limiter::Webhook => "webhook",
            Limiter::Demo => "demo",
            Limiter::Signal => "signal",
        }
    }

    /// The limiter of a name (`auth`, `api`, `webhook`, `demo`, `signal`).
    pub fn from_name(name: &str) -> Option<Limiter> {
        [
            Limiter::Auth,
            Limiter::Api,
            Limiter::Webhook,
            Limiter::Demo,
            Limiter::Signal,
        ]
        .into_iter()
        .find(|l| l.name() == name)
    }
}

/// Who an override applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Clients whose address is in this range (a single address is a /32 or /128).
    Net(ipnet::IpNet),
    /// Requests presenting the API key with this prefix (`dsk_` + 8 characters).
    Key(String),
}

/// Other limits for one subject: per minute, for the limiters it names (the others keep theirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub subject: Subject,
    pub limits: Vec<(Limiter, u32)>,
}

impl Override {
    pub(crate) fn limit(&self, limiter: Limiter) -> Option<u32> {
        self.limits
            .iter()
            .find(|(l, _)| *l == limiter)
            .map(|(_, n)| *n)
    }
}

/// The operator's exceptions to the limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `RATE_LIMIT_ALLOWLIST`: never limited.
    pub allowlist: Vec<ipnet::IpNet>,
    /// `RATE_LIMIT_OVERRIDES`: other limits per address range or API key.
    pub overrides: Vec<Override>,
}

impl Policy {
    /// Reads `RATE_LIMIT_ALLOWLIST` (comma-separated addresses or CIDR ranges).
    pub fn parse_allowlist(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(parse_net)
            .collect()
    }

    /// Reads `RATE_LIMIT_OVERRIDES`: `;`-separated `subject=limiter:n,limiter:n`, the subject an
    /// address, a CIDR range or an API key prefix (`dsk_AbCd1234`), e.g.
    /// `203.0.113.0/24=api:1000;dsk_AbCd1234=api:5000,signal:20000`.
    pub fn parse_overrides(text: &str) -> Result<Vec<Override>, String> {
        let mut out = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (subject, limits) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not `subject=limiter:n`"))?;
            let subject = subject.trim();
            let subject = if subject.starts_with("dsk_") {
                if subject.len() != domain::identity::api_keys::DISPLAY_PREFIX_LEN {
                    return Err(format!(
                        "{subject:?} is not an API key prefix (`dsk_` and 8 characters, as the \
                         dashboard shows it)"
                    ));
                }
                Subject::Key(subject.to_owned())
            } else {
                Subject::Net(parse_net(subject)?)
            };
            let mut parsed = Vec::new();
            for pair in limits.split(',').map(str::trim) {
                let (name, n) = pair
                    .split_once(':')
                    .ok_or_else(|| format!("{pair:?} is not `limiter:n`"))?;
                let limiter = Limiter::from_name(name.trim()).ok_or_else(|| {
                    format!("{name:?} is not a limiter (auth, api, webhook, demo, signal)")
                })?;
                let n = n
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{n:?} is not a number of requests per minute"))?;
                parsed.push((limiter, n));
            }
            out.push(Override {
                subject,
                limits: parsed,
            });
        }
        Ok(out)
    }
}

fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))
}
