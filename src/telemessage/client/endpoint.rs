//! Which endpoints the client may talk to.

use reqwest::Url;

use super::ClientError;
use crate::mailbox::target::is_loopback_host;

/// Accepts `https://` anywhere and `http://` only to a loopback host;
/// refuses a user name or password in the URL, which would end up in the
/// configuration file.
pub fn check_endpoint(endpoint: &str) -> Result<Url, ClientError> {
    let url = Url::parse(endpoint).map_err(|_| ClientError::BadEndpoint(endpoint.to_owned()))?;
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(ClientError::CredentialsInEndpoint(shown.to_string()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| ClientError::BadEndpoint(endpoint.to_owned()))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(host) => Ok(url),
        "http" => Err(ClientError::InsecureEndpoint(endpoint.to_owned())),
        _ => Err(ClientError::BadEndpoint(endpoint.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_endpoint("https://archive.example.net").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint("http://[::1]:8080/api").is_ok());
        assert!(matches!(
            check_endpoint("http://archive.example.net"),
            Err(ClientError::InsecureEndpoint(_))
        ));
        assert!(check_endpoint("ftp://x").is_err());
        let with_password =
            check_endpoint("https://admin:hunter2@archive.example.net").unwrap_err();
        assert!(
            matches!(with_password, ClientError::CredentialsInEndpoint(_)),
            "{with_password:?}"
        );
        assert!(!with_password.to_string().contains("hunter2"));
        assert!(!with_password.to_string().contains("admin"));
        assert!(check_endpoint("not a url").is_err());
    }
}
