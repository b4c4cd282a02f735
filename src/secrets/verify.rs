//! Checks a TeleMessage user name and password against
//! `POST /v1/auth/token` (telemessage-api.md §1), so that `login` never
//! stores a password TeleMessage would refuse.
//!
//! A stand-in until `telemessage::Client::authenticate` exists: `login`
//! calls only [`check_credentials`], which can then delegate to the client.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::Secret;
use crate::mailbox::target::is_loopback_host;

/// Why TeleMessage did not accept the credentials, or could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CredentialCheckError {
    #[error("TeleMessage refused the user name or password (401 {code})")]
    Rejected { code: String },
    #[error("TeleMessage says the account is disabled (403 account_disabled)")]
    AccountDisabled,
    #[error(
        "TeleMessage says the WeChat Archiver product is not enabled for this account (403 wechat_archiver_not_enabled)"
    )]
    ProductNotEnabled,
    #[error(
        "TeleMessage refused access (403 {code}): the account or the WeChat Archiver product is not enabled"
    )]
    Forbidden { code: String },
    #[error("endpoint {endpoint:?} is not usable: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("cannot reach TeleMessage at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("TeleMessage answered {status} to {url}{}", code_suffix(.code))]
    Unexpected {
        url: String,
        status: u16,
        code: Option<String>,
    },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
}

impl CredentialCheckError {
    /// Whether TeleMessage itself said no (as opposed to not being reached).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Rejected { .. }
                | Self::AccountDisabled
                | Self::ProductNotEnabled
                | Self::Forbidden { .. }
        )
    }
}

/// What TeleMessage says about the account on success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub account_id: Option<String>,
    pub account_name: Option<String>,
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    account: Option<AccountInfo>,
}

#[derive(Deserialize)]
struct AccountInfo {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

/// Asks TeleMessage for a token with these credentials; the token itself
/// is dropped. Plain `http://` is refused unless the host is loopback, and
/// redirects are not followed (a redirect would resend the password).
pub async fn check_credentials(
    endpoint: &str,
    username: &str,
    password: &Secret,
) -> Result<Accepted, CredentialCheckError> {
    let url = token_url(endpoint)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("wechat-archiver/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| unreachable_err(&url, &e))?;
    let request = TokenRequest {
        username,
        password: password.expose(),
    };
    let response = client
        .post(url.clone())
        .json(&request)
        .send()
        .await
        .map_err(|e| unreachable_err(&url, &e))?;
    let status = response.status();
    // A token answer is a few hundred bytes; more is cut off, not read.
    let body = crate::http::error_body(response).await;
    interpret(&url, status, &body)
}

fn interpret(url: &Url, status: StatusCode, body: &[u8]) -> Result<Accepted, CredentialCheckError> {
    let code = || error_code(body);
    match status {
        StatusCode::OK => {
            let parsed: TokenResponse =
                serde_json::from_slice(body).map_err(|_| CredentialCheckError::Unexpected {
                    url: url.to_string(),
                    status: 200,
                    code: Some("the body is not the expected JSON".to_owned()),
                })?;
            let _token = parsed.access_token.map(Secret::new);
            let account = parsed.account.unwrap_or(AccountInfo {
                id: None,
                name: None,
            });
            Ok(Accepted {
                account_id: account.id,
                account_name: account.name,
            })
        }
        StatusCode::UNAUTHORIZED => Err(CredentialCheckError::Rejected {
            code: code().unwrap_or_else(|| "invalid_credentials".to_owned()),
        }),
        StatusCode::FORBIDDEN => Err(match code().as_deref() {
            Some("account_disabled") => CredentialCheckError::AccountDisabled,
            Some("wechat_archiver_not_enabled") => CredentialCheckError::ProductNotEnabled,
            other => CredentialCheckError::Forbidden {
                code: other.unwrap_or("no error code").to_owned(),
            },
        }),
        _ => Err(CredentialCheckError::Unexpected {
            url: url.to_string(),
            status: status.as_u16(),
            code: code(),
        }),
    }
}

/// The `error` field of an error body, if it is a plain code: a server's
/// free text is not repeated, in case it echoes what was sent.
fn error_code(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    parsed
        .error
        .filter(|c| (1..=64).contains(&c.len()))
        .filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
}

fn unreachable_err(url: &Url, error: &reqwest::Error) -> CredentialCheckError {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    CredentialCheckError::Unreachable {
        url: url.to_string(),
        reason,
    }
}

/// `{endpoint}/v1/auth/token`, after checking the endpoint may carry a password.
pub fn token_url(endpoint: &str) -> Result<Url, CredentialCheckError> {
    let bad = |reason: &str| CredentialCheckError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let base = Url::parse(endpoint).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !base.username().is_empty() || base.password().is_some() {
        return Err(bad("it must not contain a user name or password"));
    }
    let host = base.host_str().ok_or_else(|| bad("it has no host"))?;
    match base.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => {
            return Err(bad(
                "plain http:// is allowed only to a loopback address; use https://",
            ));
        }
        _ => return Err(bad("use an https:// URL")),
    }
    let path = format!("{}/v1/auth/token", base.path().trim_end_matches('/'));
    let mut url = base;
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_keeps_a_base_path_and_refuses_plain_http_off_loopback() {
        assert_eq!(
            token_url("https://tm.example.net/api/").unwrap().as_str(),
            "https://tm.example.net/api/v1/auth/token"
        );
        assert_eq!(
            token_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/v1/auth/token"
        );
        assert!(token_url("http://[::1]:9/").is_ok());
        for bad in [
            "http://tm.example.net",
            "ftp://tm.example.net",
            "https://u:p@tm.example.net",
            "tm.example.net",
        ] {
            assert!(
                matches!(
                    token_url(bad),
                    Err(CredentialCheckError::BadEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_are_read_as_the_api_contract_says() {
        let url = token_url("https://tm.example.net").unwrap();
        let ok = br#"{"access_token":"t","token_type":"Bearer","expires_in":3600,"account":{"id":"acc-1","name":"Contoso"}}"#;
        assert_eq!(
            interpret(&url, StatusCode::OK, ok)
                .unwrap()
                .account_name
                .as_deref(),
            Some("Contoso")
        );
        let e = interpret(
            &url,
            StatusCode::UNAUTHORIZED,
            br#"{"error":"invalid_credentials"}"#,
        );
        assert!(matches!(e, Err(CredentialCheckError::Rejected { .. })));
        let e = interpret(
            &url,
            StatusCode::FORBIDDEN,
            br#"{"error":"account_disabled"}"#,
        );
        assert!(matches!(e, Err(CredentialCheckError::AccountDisabled)));
        let e = interpret(
            &url,
            StatusCode::FORBIDDEN,
            br#"{"error":"wechat_archiver_not_enabled"}"#,
        );
        assert!(matches!(e, Err(CredentialCheckError::ProductNotEnabled)));
        let e = interpret(&url, StatusCode::FORBIDDEN, b"nope").unwrap_err();
        assert!(e.to_string().contains("not enabled"), "{e}");
        let e = interpret(&url, StatusCode::BAD_GATEWAY, b"").unwrap_err();
        assert!(!e.is_refusal());
    }

    #[test]
    fn server_text_is_not_repeated_in_errors() {
        let url = token_url("https://tm.example.net").unwrap();
        let body = br#"{"error":"you sent hunter2","message":"hunter2"}"#;
        let e = interpret(&url, StatusCode::INTERNAL_SERVER_ERROR, body).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
