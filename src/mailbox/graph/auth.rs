//! App-only OAuth 2.0 client credentials against the cloud's identity
//! platform; one token per writer, reused until shortly before it expires.

use std::time::Duration;

use base64::Engine;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::GraphError;
use super::throttle::{GraphLimits, parse_retry_after};
use crate::secrets::Secret;

/// Tokens are renewed this long before Microsoft says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// The longest lifetime taken from a token answer (Microsoft's are an
/// hour or so); a larger `expires_in` is clamped, not trusted.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The largest token answer read.
const TOKEN_ANSWER_CAP: usize = 1024 * 1024;

pub(crate) struct TokenSource {
    url: Url,
    client_id: String,
    secret: Secret,
    scope: String,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    token: Secret,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(deserialize_with = "number_or_string")]
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl TokenSource {
    pub fn new(login: &Url, tenant: &str, client_id: &str, secret: Secret, scope: &str) -> Self {
        let mut url = login.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        TokenSource {
            url,
            client_id: client_id.to_owned(),
            secret,
            scope: scope.to_owned(),
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, fetched once and shared by every request.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        limits: &GraphLimits,
    ) -> Result<Secret, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.renew_at > Instant::now()) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch(http, limits).await?;
        check_roles(&token)?;
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Forgets `token` after Graph refused it, so the next call fetches a
    /// new one (unless another task already did).
    pub async fn invalidate(&self, token: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        limits: &GraphLimits,
    ) -> Result<(Secret, Duration), GraphError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", self.scope.as_str()),
        ];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = http.post(self.url.clone()).form(&form).send().await;
            let retry_in = match sent {
                Ok(resp) if resp.status().is_redirection() => {
                    return Err(GraphError::Auth(format!(
                        "the token request to {} was redirected to {}; redirects are refused so that the client secret goes only to the configured login endpoint",
                        self.url,
                        crate::http::redirect_target(&resp)
                    )));
                }
                Ok(resp) if resp.status().is_success() => {
                    let body = crate::http::read_capped(resp, TOKEN_ANSWER_CAP)
                        .await
                        .map_err(|e| match e {
                            crate::http::BodyError::Broken(e) => self.unreachable(e),
                            e => {
                                GraphError::Protocol(format!("token answer from {}: {e}", self.url))
                            }
                        })?;
                    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
                        GraphError::Protocol(format!(
                            "token answer from {} is not valid: {e}",
                            self.url
                        ))
                    })?;
                    let lifetime = Duration::from_secs(answer.expires_in.max(1)).min(MAX_LIFETIME);
                    return Ok((Secret::new(answer.access_token), lifetime));
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let body = crate::http::error_body(resp).await;
                    if !matches!(status, 429 | 500 | 502 | 503 | 504) {
                        return Err(self.refused(status, &body));
                    }
                    retry_after.unwrap_or_else(|| limits.backoff(attempt))
                }
                Err(e) if attempt < limits.max_attempts => {
                    tracing::warn!("token request failed ({e}); retrying");
                    limits.backoff(attempt)
                }
                Err(e) => return Err(self.unreachable(e)),
            };
            if attempt >= limits.max_attempts {
                return Err(GraphError::Unreachable(format!(
                    "the token endpoint {} kept failing after {attempt} attempts",
                    self.url
                )));
            }
            tokio::time::sleep(retry_in.min(limits.max_retry_after)).await;
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> GraphError {
        GraphError::Unreachable(format!("token endpoint {}: {}", self.url, e.without_url()))
    }

    fn refused(&self, status: u16, body: &[u8]) -> GraphError {
        let err: TokenError = serde_json::from_slice(body).unwrap_or_default();
        let description = crate::http::server_text(
            &err.error_description
                .lines()
                .next()
                .unwrap_or("")
                .replace(self.secret.expose(), "[redacted]"),
        );
        let hint = match err.error.as_str() {
            "invalid_client" | "unauthorized_client" => {
                "; check the client id and store the current client secret with `wechat-archiver login`"
            }
            "invalid_request" if description.contains("AADSTS90002") => "; check the tenant id",
            _ => "",
        };
        GraphError::Auth(format!(
            "the Microsoft identity platform refused the application's credentials ({status} {}): {description}{hint}",
            if err.error.is_empty() {
                "error".to_owned()
            } else {
                crate::http::server_text(&err.error)
            }
        ))
    }
}

/// When the token is a JWT that lists its application roles, refuses to
/// go on without `Mail.ReadWrite`: otherwise every mailbox would look
/// invalid and every item would end up unmapped.
fn check_roles(token: &Secret) -> Result<(), GraphError> {
    let Some(payload) = token.expose().split('.').nth(1) else {
        return Ok(());
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return Ok(());
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(());
    };
    let Some(roles) = claims.get("roles").and_then(|r| r.as_array()) else {
        return Ok(());
    };
    let has = |name: &str| roles.iter().any(|r| r.as_str() == Some(name));
    if has("Mail.ReadWrite") {
        Ok(())
    } else {
        Err(GraphError::Auth(
            "the application's token does not carry the Mail.ReadWrite application permission; grant it (with admin consent) in the app registration".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> Secret {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Secret::new(format!("{}.{}.sig", e.encode("{}"), e.encode(claims)))
    }

    #[test]
    fn a_token_without_mail_readwrite_is_refused() {
        assert!(check_roles(&jwt(r#"{"roles":["User.Read.All"]}"#)).is_err());
        assert!(check_roles(&jwt(r#"{"roles":["Mail.ReadWrite","User.Read.All"]}"#)).is_ok());
        assert!(check_roles(&Secret::new("opaque")).is_ok());
        assert!(check_roles(&jwt(r#"{"aud":"x"}"#)).is_ok());
    }
}
