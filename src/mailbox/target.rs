//! The `--target` syntax of `cli.md`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a connector writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `maildir:DIR`: a Maildir++ root per mailbox under `DIR`.
    Maildir { root: PathBuf },
    /// `imap://HOST:PORT` or `imaps://HOST:PORT`.
    Imap { tls: bool, host: String, port: u16 },
    /// `graph:TENANT_ID`: Microsoft 365 through Microsoft Graph.
    Graph { tenant: String },
}

/// Why a `--target` value is not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "target {value:?} is not understood: {reason}; use maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT or graph:TENANT_ID"
)]
pub struct InvalidTarget {
    pub value: String,
    pub reason: String,
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| InvalidTarget {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(dir) = value.strip_prefix("maildir:") {
            if dir.is_empty() {
                return Err(fail("the directory is missing"));
            }
            return Ok(Target::Maildir {
                root: PathBuf::from(dir),
            });
        }
        if let Some(tenant) = value.strip_prefix("graph:") {
            let ok = !tenant.is_empty()
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
            if !ok {
                return Err(fail("the tenant id must be a GUID or a domain name"));
            }
            return Ok(Target::Graph {
                tenant: tenant.to_owned(),
            });
        }
        let (tls, rest, default_port) = if let Some(rest) = value.strip_prefix("imaps://") {
            (true, rest, 993)
        } else if let Some(rest) = value.strip_prefix("imap://") {
            (false, rest, 143)
        } else {
            return Err(fail("unknown scheme"));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = split_host_port(rest, default_port).map_err(|r| fail(&r))?;
        Ok(Target::Imap { tls, host, port })
    }
}

fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
        (host, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number"))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Maildir { root } => write!(f, "maildir:{}", root.display()),
            Target::Imap { tls, host, port } => {
                let scheme = if *tls { "imaps" } else { "imap" };
                if host.contains(':') {
                    write!(f, "{scheme}://[{host}]:{port}")
                } else {
                    write!(f, "{scheme}://{host}:{port}")
                }
            }
            Target::Graph { tenant } => write!(f, "graph:{tenant}"),
        }
    }
}

/// Whether a host name or address is the loopback interface, the only
/// place plain-text protocols are allowed.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    // The name alone is not trusted: /etc/hosts or a resolver may map it
    // elsewhere, and plain text would then leave the machine.
    host.eq_ignore_ascii_case("localhost")
        && std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
            .is_ok_and(|addrs| loopback_only(addrs.map(|a| a.ip())))
}

/// Whether a name's addresses are all loopback (and there is one).
fn loopback_only(mut addrs: impl Iterator<Item = std::net::IpAddr>) -> bool {
    let mut any = false;
    addrs.all(|ip| {
        any = true;
        ip.is_loopback()
    }) && any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "maildir:/srv/a".parse::<Target>().unwrap(),
            Target::Maildir {
                root: "/srv/a".into()
            }
        );
        assert_eq!(
            "imaps://mail.example.net:993".parse::<Target>().unwrap(),
            Target::Imap {
                tls: true,
                host: "mail.example.net".into(),
                port: 993
            }
        );
        assert_eq!(
            "imap://[::1]:1143".parse::<Target>().unwrap(),
            Target::Imap {
                tls: false,
                host: "::1".into(),
                port: 1143
            }
        );
        assert!(matches!(
            "graph:contoso.onmicrosoft.com".parse::<Target>().unwrap(),
            Target::Graph { .. }
        ));
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("imap://h:99999".parse::<Target>().is_err());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(
            is_loopback_host("localhost"),
            "localhost resolves to loopback here"
        );
        assert!(!is_loopback_host("localhost.example.net"));
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(loopback_only([ip("127.0.0.1"), ip("::1")].into_iter()));
        assert!(!loopback_only(
            [ip("127.0.0.1"), ip("192.0.2.7")].into_iter()
        ));
        assert!(!loopback_only(std::iter::empty()));
        assert!(!is_loopback_host("example.net"));
        assert!(!is_loopback_host("127.0.0.1.example.net"));
    }
}
