//! App-only OAuth 2.0 client credentials against the cloud's identity
//! platform, shared by the Graph writer (scope Graph) and the IMAP writer
//! into Exchange Online (scope Exchange, SASL XOAUTH2): one token per
//! writer, reused until shortly before it expires.

use std::time::Duration;

use base64::Engine;
use rand::Rng;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::mailbox::graph::parse_retry_after;
use crate::secrets::Secret;

/// Tokens are renewed this long before Microsoft says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// The longest lifetime taken from a token answer (Microsoft's are an
/// hour or so); a larger `expires_in` is clamped, not trusted.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The largest token answer read.
const TOKEN_ANSWER_CAP: usize = 1024 * 1024;

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TokenError {
    /// The identity platform refused the application's credentials, or the
    /// token lacks the permission the writer needs.
    #[error("{0}")]
    Refused(String),
    /// The token endpoint could not be reached, even after retries.
    #[error("{0}")]
    Unreachable(String),
    /// The token endpoint answered something that is not a token.
    #[error("{0}")]
    Protocol(String),
}

/// How token requests are retried (throttling, server errors, resets).
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    pub max_attempts: u32,
    /// First backoff without `Retry-After`; doubles per attempt.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest wait honoured between attempts.
    pub max_retry_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl Retry {
    /// Exponential backoff with jitter (between half and all of the step).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let step = self
            .base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let jitter = rand::rng().random_range(0.5..=1.0);
        step.mul_f64(jitter)
    }
}

/// The application permission a writer's tokens must carry, and where it
/// is granted, for the error that says it is missing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permission {
    /// The role claim, e.g. `Mail.ReadWrite` or `IMAP.AccessAsApp`.
    pub role: &'static str,
    /// The API it belongs to, e.g. "Microsoft Graph".
    pub api: &'static str,
}

pub(crate) struct TokenSource {
    url: Url,
    client_id: String,
    secret: Secret,
    scope: String,
    permission: Permission,
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
struct ErrorAnswer {
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
    pub fn new(
        login: &Url,
        tenant: &str,
        client_id: &str,
        secret: Secret,
        scope: &str,
        permission: Permission,
    ) -> Self {
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
            permission,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, fetched once and shared by every request.
    pub async fn token(&self, http: &reqwest::Client, retry: &Retry) -> Result<Secret, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.renew_at > Instant::now()) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch(http, retry).await?;
        check_roles(&token, self.permission)?;
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: renew_at(Instant::now(), lifetime),
        });
        tracing::debug!(scope = %self.scope, ?lifetime, "fetched an access token");
        Ok(token)
    }

    /// Forgets `token` after the service refused it, so the next call fetches a
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
        limits: &Retry,
    ) -> Result<(Secret, Duration), TokenError> {
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
                    return Err(TokenError::Refused(format!(
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
                                TokenError::Protocol(format!("token answer from {}: {e}", self.url))
                            }
                        })?;
                    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
                        TokenError::Protocol(format!(
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
                return Err(TokenError::Unreachable(format!(
                    "the token endpoint {} kept failing after {attempt} attempts",
                    self.url
                )));
            }
            tokio::time::sleep(retry_in.min(limits.max_retry_after)).await;
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> TokenError {
        TokenError::Unreachable(format!("token endpoint {}: {}", self.url, e.without_url()))
    }

    fn refused(&self, status: u16, body: &[u8]) -> TokenError {
        let err: ErrorAnswer = serde_json::from_slice(body).unwrap_or_default();
        let description = crate::http::server_text(
            &err.error_description
                .lines()
                .next()
                .unwrap_or("")
                .replace(self.secret.expose(), "[redacted]"),
        );
        let hint = refusal_hint(&err.error, &description, self.permission);
        TokenError::Refused(format!(
            "the Microsoft identity platform refused the application's credentials ({status} {}): {description}{hint}",
            if err.error.is_empty() {
                "error".to_owned()
            } else {
                crate::http::server_text(&err.error)
            }
        ))
    }
}

/// When a token fetched at `fetched` living `lifetime` is replaced: five
/// minutes before it expires, or halfway for a short-lived one, so no
/// request or login goes out with a token about to die.
fn renew_at(fetched: Instant, lifetime: Duration) -> Instant {
    fetched + lifetime - EXPIRY_MARGIN.min(lifetime / 2)
}

/// What to do about a refusal, by the identity platform's error and its
/// `AADSTS` code (the first words of the description).
fn refusal_hint(error: &str, description: &str, permission: Permission) -> String {
    let code = |c: &str| description.contains(c);
    let hint = if code("AADSTS7000215") || code("AADSTS7000222") {
        "the client secret is wrong or expired: create a new one in the app registration and store it with `wechat-archiver login`".to_owned()
    } else if code("AADSTS700016") {
        "no application with this client id is in the tenant: check --client-id and the tenant"
            .to_owned()
    } else if code("AADSTS90002") || code("AADSTS90023") {
        "check the tenant id (and --cloud for a national cloud)".to_owned()
    } else if code("AADSTS500011") {
        format!(
            "the tenant has no {} service principal for this scope: check --cloud, and that the tenant has that service",
            permission.api
        )
    } else if code("AADSTS65001") || code("AADSTS7000112") {
        format!(
            "a tenant administrator must grant the application permission {} ({}) with admin consent",
            permission.role, permission.api
        )
    } else {
        match error {
            "invalid_client" | "unauthorized_client" => "check the client id and store the current client secret with `wechat-archiver login`".to_owned(),
            _ => return String::new(),
        }
    };
    format!("; {hint}")
}

/// When the token is a JWT that lists its application roles, refuses to
/// go on without the writer's permission (`Mail.ReadWrite` for Graph,
/// `IMAP.AccessAsApp` for Exchange's IMAP): otherwise every mailbox would
/// look invalid and every item would end up unmapped.
fn check_roles(token: &Secret, permission: Permission) -> Result<(), TokenError> {
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
    if roles.iter().any(|r| r.as_str() == Some(permission.role)) {
        Ok(())
    } else {
        Err(TokenError::Refused(format!(
            "the application's token does not carry the {} application permission ({}); a tenant administrator must grant it, with admin consent, in the app registration",
            permission.role, permission.api
        )))
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
    fn a_token_without_the_writers_permission_is_refused() {
        let graph = Permission {
            role: "Mail.ReadWrite",
            api: "Microsoft Graph",
        };
        assert!(check_roles(&jwt(r#"{"roles":["User.Read.All"]}"#), graph).is_err());
        let both = jwt(r#"{"roles":["Mail.ReadWrite","User.Read.All"]}"#);
        assert!(check_roles(&both, graph).is_ok());
        assert!(check_roles(&Secret::new("opaque"), graph).is_ok());
        assert!(check_roles(&jwt(r#"{"aud":"x"}"#), graph).is_ok());
        let imap = Permission {
            role: "IMAP.AccessAsApp",
            api: "Office 365 Exchange Online",
        };
        let e = check_roles(&both, imap).unwrap_err().to_string();
        assert!(e.contains("IMAP.AccessAsApp"), "{e}");
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let t = Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_at(t, hour), t + Duration::from_secs(3300));
        let minute = Duration::from_secs(60);
        assert_eq!(renew_at(t, minute), t + Duration::from_secs(30));
    }

    #[test]
    fn aadsts_codes_get_their_own_hints() {
        let p = Permission {
            role: "IMAP.AccessAsApp",
            api: "Office 365 Exchange Online",
        };
        let secret = refusal_hint(
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
            p,
        );
        assert!(
            secret.contains("client secret is wrong or expired"),
            "{secret}"
        );
        let consent = refusal_hint(
            "invalid_grant",
            "AADSTS65001: The user or administrator has not consented",
            p,
        );
        assert!(
            consent.contains("IMAP.AccessAsApp") && consent.contains("admin consent"),
            "{consent}"
        );
        assert_eq!(refusal_hint("other", "AADSTS1: x", p), "");
    }
}
