//! Where a national cloud's Graph and login services live, and the check
//! that every endpoint uses TLS unless it is on loopback.

use reqwest::Url;

use crate::config::Cloud;
use crate::mailbox::target::is_loopback_host;

/// The service roots the writer talks to, and the token scope.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// Service root; requests go to `{graph}/v1.0/...`.
    pub graph: Url,
    /// Authority root; tokens come from `{login}/{tenant}/oauth2/v2.0/token`.
    pub login: Url,
    /// `{graph root of the cloud}/.default`. An override of the Graph
    /// endpoint (a proxy, a test server) does not change the audience.
    pub scope: String,
}

fn defaults(cloud: Cloud) -> (&'static str, &'static str) {
    match cloud {
        Cloud::Global => (
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com",
        ),
        Cloud::Usgov => (
            "https://graph.microsoft.us",
            "https://login.microsoftonline.us",
        ),
        Cloud::UsgovDod => (
            "https://dod-graph.microsoft.us",
            "https://login.microsoftonline.us",
        ),
        Cloud::China => (
            "https://microsoftgraph.chinacloudapi.cn",
            "https://login.chinacloudapi.cn",
        ),
    }
}

/// Exchange Online in each cloud: its IMAP host, and the root whose
/// `/.default` is the scope of app-only tokens for IMAP (`IMAP.AccessAsApp`).
/// From Microsoft's endpoint lists for each cloud; a different host (a
/// proxy, a test server) is given as the target and keeps the cloud's scope.
pub(crate) fn exchange(cloud: Cloud) -> (&'static str, &'static str) {
    match cloud {
        Cloud::Global => ("outlook.office365.com", "https://outlook.office365.com"),
        Cloud::Usgov => ("outlook.office365.us", "https://outlook.office365.us"),
        Cloud::UsgovDod => (
            "outlook-dod.office365.us",
            "https://outlook-dod.office365.us",
        ),
        Cloud::China => ("partner.outlook.cn", "https://partner.outlook.cn"),
    }
}

/// The `imaps://` URL of Exchange Online in the cloud (what
/// `--large-item-fallback imap` stands for).
pub fn exchange_imap_target(cloud: Cloud) -> String {
    format!("imaps://{}:993", exchange(cloud).0)
}

impl Endpoints {
    /// The cloud's login authority (or its override) and Exchange
    /// Online's token scope, for IMAP with XOAUTH2.
    pub fn exchange(cloud: Cloud, login_override: Option<&str>) -> Result<(Url, String), String> {
        let login = Endpoints::resolve(cloud, None, login_override)?.login;
        Ok((login, format!("{}/.default", exchange(cloud).1)))
    }

    pub fn resolve(
        cloud: Cloud,
        graph_override: Option<&str>,
        login_override: Option<&str>,
    ) -> Result<Endpoints, String> {
        let (graph_default, login_default) = defaults(cloud);
        let graph = parse_endpoint("Graph endpoint", graph_override.unwrap_or(graph_default))?;
        let login = parse_endpoint("login endpoint", login_override.unwrap_or(login_default))?;
        Ok(Endpoints {
            graph,
            login,
            scope: format!("{graph_default}/.default"),
        })
    }
}

/// Parses an endpoint and refuses plain HTTP to anything but loopback.
pub(crate) fn parse_endpoint(what: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{what} {value:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{what} must not contain a user name or password; the application's secret is given to `wechat-archiver login`"
        ));
    }
    require_secure(what, &url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{what} {value:?} must be a service root without query or fragment"
        ));
    }
    Ok(url)
}

/// TLS everywhere except loopback, for configured endpoints and for the
/// upload URLs Graph hands back.
pub(crate) fn require_secure(what: &str, url: &Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "{what} {url} uses plain http:// to a host that is not loopback; use https://"
        )),
        other => Err(format!("{what} {url} has unsupported scheme {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_clouds_have_their_own_roots_and_scopes() {
        let e = Endpoints::resolve(Cloud::UsgovDod, None, None).unwrap();
        assert_eq!(e.graph.as_str(), "https://dod-graph.microsoft.us/");
        assert_eq!(e.login.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(e.scope, "https://dod-graph.microsoft.us/.default");
        let e = Endpoints::resolve(Cloud::China, None, None).unwrap();
        assert_eq!(e.scope, "https://microsoftgraph.chinacloudapi.cn/.default");
        let e = Endpoints::resolve(Cloud::Global, Some("http://127.0.0.1:9/"), None).unwrap();
        assert_eq!(e.scope, "https://graph.microsoft.com/.default");
    }

    #[test]
    fn exchange_online_has_a_host_and_scope_in_each_cloud() {
        let (login, scope) = Endpoints::exchange(Cloud::Global, None).unwrap();
        assert_eq!(login.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(scope, "https://outlook.office365.com/.default");
        let (login, scope) = Endpoints::exchange(Cloud::Usgov, None).unwrap();
        assert_eq!(login.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(scope, "https://outlook.office365.us/.default");
        assert_eq!(
            exchange_imap_target(Cloud::China),
            "imaps://partner.outlook.cn:993"
        );
        let (login, scope) =
            Endpoints::exchange(Cloud::Global, Some("http://127.0.0.1:9")).unwrap();
        assert_eq!(login.as_str(), "http://127.0.0.1:9/");
        assert_eq!(scope, "https://outlook.office365.com/.default");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(Endpoints::resolve(Cloud::Global, Some("http://graph.example.net"), None).is_err());
        assert!(Endpoints::resolve(Cloud::Global, None, Some("http://login.example.net")).is_err());
        assert!(Endpoints::resolve(Cloud::Global, Some("http://[::1]:8080"), None).is_ok());
        assert!(Endpoints::resolve(Cloud::Global, Some("ftp://x"), None).is_err());
        let with_password =
            Endpoints::resolve(Cloud::Global, Some("https://u:pw@graph.example.net"), None);
        assert!(with_password.is_err_and(|e| !e.contains("pw@")));
    }
}
