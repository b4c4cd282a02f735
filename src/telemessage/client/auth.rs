//! Tokens: signing in, sending each call with the current token, and one
//! transparent re-auth when a token expires.

use std::time::Instant;

use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::retrying::{Attempt, FreeText, describe_reqwest_error, error_body, retry_now};
use super::{Client, ClientError, TOKEN_ANSWER_CAP, misbehaving};
use crate::http::BodyError;
use crate::telemessage::model::Account;

/// What the sign-in is called in messages.
const SIGNING_IN: &str = "signing in to TeleMessage";

impl Client {
    /// Exchanges the credentials for a token; the check `login` runs
    /// before it stores a password.
    pub async fn authenticate(&self) -> Result<Account, ClientError> {
        let (token, account) = self.fetch_token().await?;
        *self.inner.token.lock().await = Some(token);
        Ok(account)
    }

    /// Sends a request with the current token; on `token_expired` fetches
    /// a new token and repeats. Tasks share tokens, so a token fetched for
    /// this call may have served others and expired before this call got
    /// to it: only a fresh token refused on its only use is "rejected"
    /// (fatal); a churn of expiries is retried like any transient error.
    /// Network errors become retries.
    pub(super) async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Attempt> {
        let mut token = self.current_token().await.map_err(Attempt::Fatal)?;
        let mut fetched_here = false;
        for _ in 0..4 {
            let response = self.send_once(&build, &token).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let body = error_body(response).await;
            if body.error != "token_expired" || (fetched_here && self.uses_of(&token) <= 1) {
                return Err(Attempt::Fatal(ClientError::TokenRejected));
            }
            (token, fetched_here) = self.refresh_token(&token).await.map_err(Attempt::Fatal)?;
        }
        Err(retry_now("TeleMessage expired several tokens in a row"))
    }

    async fn send_once(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        token: &str,
    ) -> Result<Response, Attempt> {
        self.keep_quiet().await;
        self.count_use(token);
        build(&self.inner.http)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| retry_now(&describe_reqwest_error(&e)))
    }

    fn count_use(&self, token: &str) {
        let mut uses = self.inner.uses.lock().unwrap_or_else(|p| p.into_inner());
        if !uses.contains_key(token) && uses.len() >= 16 {
            uses.clear();
        }
        *uses.entry(token.to_owned()).or_default() += 1;
    }

    fn uses_of(&self, token: &str) -> u64 {
        let uses = self.inner.uses.lock().unwrap_or_else(|p| p.into_inner());
        uses.get(token).copied().unwrap_or(0)
    }

    async fn current_token(&self) -> Result<String, ClientError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(token) = guard.as_ref() {
            return Ok(token.clone());
        }
        let (token, _) = self.fetch_token().await?;
        *guard = Some(token.clone());
        Ok(token)
    }

    /// Replaces `stale` with a new token, unless another task already did;
    /// says whether the token was fetched by this call.
    async fn refresh_token(&self, stale: &str) -> Result<(String, bool), ClientError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(current) = guard.as_ref().filter(|t| t.as_str() != stale) {
            return Ok((current.clone(), false));
        }
        let (token, _) = self.fetch_token().await?;
        *guard = Some(token.clone());
        Ok((token, true))
    }

    async fn fetch_token(&self) -> Result<(String, Account), ClientError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            account: Account,
        }
        let url = self.url("/v1/auth/token", &[]);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.token_attempt::<TokenAnswer>(&url).await {
                Ok(answer) => return Ok((answer.access_token, answer.account)),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.wait_or_give_up(SIGNING_IN, attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    async fn token_attempt<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, Attempt> {
        let body = serde_json::json!({
            "username": self.inner.username,
            "password": self.inner.password.expose(),
        });
        self.keep_quiet().await;
        let response = self
            .inner
            .http
            .request(Method::POST, url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| retry_now(&describe_reqwest_error(&e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(Attempt::Fatal(ClientError::InvalidCredentials));
        }
        if !status.is_success() {
            return Err(self
                .classify_answer(response, status, SIGNING_IN, FreeText::Hidden)
                .await);
        }
        let bytes = crate::http::read_capped(response, TOKEN_ANSWER_CAP)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(_) => Attempt::Fatal(misbehaving(SIGNING_IN, e.to_string())),
                BodyError::Broken(_) => retry_now(&e.to_string()),
            })?;
        // serde's message may quote the answer, which may echo the request.
        serde_json::from_slice(&bytes).map_err(|e| {
            retry_now(&format!(
                "the token answer is not the promised JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use crate::telemessage::ClientOptions;

    /// A server whose tokens never work: one fresh token, then the run stops.
    #[tokio::test]
    async fn a_fresh_token_refused_on_its_first_use_stops_the_run() {
        use axum::routing::{get, post};
        use std::sync::atomic::{AtomicU32, Ordering};
        static TOKENS: AtomicU32 = AtomicU32::new(0);
        let app = axum::Router::new()
            .route(
                "/v1/auth/token",
                post(|| async {
                    let n = TOKENS.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({
                        "access_token": format!("t{n}"),
                        "account": {"id": "a", "name": "A"},
                    }))
                }),
            )
            .route(
                "/v1/account",
                get(|| async {
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"error": "token_expired"})),
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(&url, "u", Secret::new("p"), ClientOptions::default()).unwrap();
        let result = client.account().await;
        assert!(
            matches!(result, Err(ClientError::TokenRejected)),
            "{:?}",
            result.err()
        );
        assert_eq!(
            TOKENS.load(Ordering::SeqCst),
            2,
            "one token, then one fresh token"
        );
    }
}
