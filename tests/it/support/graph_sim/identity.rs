//! The simulated tenant's identity platform: client-credentials tokens
//! (`{tenant}/oauth2/v2.0/token`) for Graph and for Exchange Online's
//! IMAP, and an RFC 7662 introspection endpoint (`/introspect`) a real
//! Dovecot's `oauth2` passdb checks IMAP bearer tokens against.

use std::time::Instant;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::Sim;
use super::api::{ok, query_map};
use super::model::State;

pub fn token(sim: &Sim, st: &mut State, tenant: &str, body: &[u8]) -> Response {
    st.stats.token_requests += 1;
    let form = query_map(&String::from_utf8_lossy(body));
    let cfg = &sim.config;
    let aad = |status: u16, err: &str, desc: &str| {
        (
            axum::http::StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"error": err, "error_description": desc})),
        )
            .into_response()
    };
    if tenant != cfg.tenant {
        return aad(400, "invalid_request", "AADSTS90002: Tenant not found.");
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad(
            400,
            "unsupported_grant_type",
            "AADSTS70003: grant_type must be client_credentials.",
        );
    }
    if form.get("client_id") != Some(&cfg.client_id) {
        return aad(
            400,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    if form.get("client_secret") != Some(&cfg.client_secret) {
        return aad(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return aad(
            400,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = st.id("");
    let scope = form.get("scope").cloned().unwrap_or_default();
    let audience = scope.trim_end_matches("/.default");
    // Exchange Online's own tokens (IMAP) carry its roles, Graph's Graph's.
    let roles = if audience.starts_with("https://outlook.") {
        &cfg.exchange_roles
    } else {
        &cfg.roles
    };
    let claims = json!({"aud": audience, "tid": cfg.tenant, "roles": roles, "n": n});
    let token = format!(
        "{}.{}.sig",
        e.encode(r#"{"alg":"none"}"#),
        e.encode(claims.to_string())
    );
    let lifetime = st.token_lifetime.unwrap_or(cfg.token_lifetime);
    st.tokens.insert(token.clone(), Instant::now() + lifetime);
    ok(json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "access_token": token}))
}

/// RFC 7662: whether a token this tenant issued is still good (none is
/// while [`State::imap_access_withheld`], as Exchange refuses every token
/// of an application it does not know), for whom
/// (an app-only token names the application, not a user) and for what
/// scope. Counts each check, and revokes every token once the number of
/// checks set by [`State::revoke_after_introspections`] is reached, as
/// Entra ID may end a token before its `expires_in`.
pub fn introspect(st: &mut State, body: &[u8]) -> Response {
    let form = query_map(&String::from_utf8_lossy(body));
    let token = form.get("token").cloned().unwrap_or_default();
    st.stats.introspections += 1;
    let live = st
        .tokens
        .get(&token)
        .is_some_and(|exp| *exp > Instant::now())
        && !st.imap_access_withheld;
    if !live {
        st.stats.rejected_tokens += 1;
        return ok(json!({"active": false}));
    }
    if st.revoke_after_introspections == Some(st.stats.introspections) {
        st.tokens.clear();
    }
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let audience = claims["aud"].as_str().unwrap_or("");
    ok(json!({
        "active": true,
        "username": format!("app@{}", claims["tid"].as_str().unwrap_or("")),
        "scope": format!("{audience}/.default"),
    }))
}
