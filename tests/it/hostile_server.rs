//! The TeleMessage client against a hostile API on loopback: redirects,
//! absurd numbers, endless bodies and pages, dripping answers, and text
//! meant for the admin's terminal. Each must end in a clear error, never
//! a panic, a hang, unbounded memory or a password sent elsewhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use wechat_archiver::secrets::Secret;
use wechat_archiver::telemessage::{Client, ClientError, ClientOptions};

use crate::support::TestEnv;

const PASSWORD: &str = "hunter2-Sup3rSecret";

/// Serves `app` on a loopback port; returns its URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A token endpoint that works, for servers hostile elsewhere.
fn with_token(app: Router) -> Router {
    app.route(
        "/v1/auth/token",
        post(|| async {
            axum::Json(serde_json::json!({
                "access_token": "t", "account": {"id": "a", "name": "A"},
            }))
        }),
    )
}

fn client(url: &str, options: ClientOptions) -> Client {
    Client::new(url, "admin@contoso.com", Secret::new(PASSWORD), options).unwrap()
}

/// Options that give up quickly on anything retried.
fn quick() -> ClientOptions {
    let mut options = ClientOptions::default();
    options.retry.max_attempts = 2;
    options.retry.base_delay = Duration::from_millis(10);
    options
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        "2026-11-21T00:00:00Z".parse().unwrap(),
        "2026-11-22T00:00:00Z".parse().unwrap(),
    )
}

fn item(n: usize, participants: usize) -> serde_json::Value {
    let someone = serde_json::json!({"name": "p", "mobile": null, "email": null, "wechat_id": "w"});
    serde_json::json!({
        "id": format!("itm_{n}"), "platform": "wechat", "type": "chat",
        "conversation": {"id": "c", "kind": "group", "title": ""},
        "sent_at": "2026-11-21T08:15:00Z", "archived_at": "2026-11-21T08:15:03Z",
        "sender": someone.clone(), "participants": vec![someone; participants],
        "size": 1, "sha256": "00",
    })
}

/// A body that never ends: 64 KiB chunks for as long as anyone reads.
fn endless_body() -> Body {
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    Body::from_stream(futures_util::stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

/// Fails the test instead of hanging it: the old client read endless
/// bodies and pages for ever.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within 2 minutes"))
}

/// Records the bodies of requests that reach it.
fn recorder(seen: Arc<Mutex<Vec<String>>>) -> Router {
    let handler = move |body: String| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(body);
            StatusCode::NOT_FOUND
        }
    };
    Router::new().fallback(handler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_sign_in_never_sends_the_password_elsewhere() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let elsewhere = serve(recorder(seen.clone())).await;
    let target = format!("{elsewhere}/steal");
    for status in [
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let target = target.clone();
        let app = Router::new().route(
            "/v1/auth/token",
            post(move || async move { (status, [(header::LOCATION, target)]) }),
        );
        let url = serve(app).await;
        let result = client(&url, quick()).authenticate().await;
        match result {
            Err(e @ ClientError::Redirected { .. }) => {
                assert!(e.to_string().contains("/steal"), "{e}")
            }
            other => panic!("{status}: expected a refused redirect, got {other:?}"),
        }
    }
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_api_call_never_sends_the_token_elsewhere() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let headers_seen = seen.clone();
    let elsewhere = serve(Router::new().fallback(move |headers: HeaderMap| {
        let seen = headers_seen.clone();
        async move {
            seen.lock().unwrap().push(format!("{headers:?}"));
            StatusCode::NOT_FOUND
        }
    }))
    .await;
    let target = format!("{elsewhere}/steal");
    let app = with_token(Router::new().route(
        "/v1/account",
        get(move || async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }),
    ));
    let url = serve(app).await;
    let result = client(&url, quick()).account().await;
    assert!(
        matches!(result, Err(ClientError::Redirected { .. })),
        "{result:?}"
    );
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_retry_after_values_end_the_call_without_a_panic() {
    for value in ["1e20", "18446744073709551616", "-5", "NaN"] {
        let app = with_token(Router::new().route(
            "/v1/account",
            get(move || async move {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, value)],
                    "{}",
                )
            }),
        ));
        let url = serve(app).await;
        let result = within(value, client(&url, quick()).account()).await;
        match value {
            "1e20" | "18446744073709551616" => assert!(
                matches!(result, Err(ClientError::RetryAfterTooLong(_))),
                "{value}: {result:?}"
            ),
            _ => assert!(
                matches!(result, Err(ClientError::GaveUp { .. })),
                "{value}: {result:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_body_is_not_read_into_memory() {
    let app = with_token(Router::new().route(
        "/v1/account",
        get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, endless_body()) }),
    ));
    let url = serve(app).await;
    let result = within(
        "the 500 with an endless body",
        client(&url, quick()).account(),
    )
    .await;
    assert!(
        matches!(result, Err(ClientError::GaveUp { .. })),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_listing_page_is_refused() {
    let app = with_token(Router::new().route(
        "/v1/archive/items",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], endless_body()) }),
    ));
    let url = serve(app).await;
    let (since, until) = window();
    let mut options = quick();
    options.page_limit = 10;
    let mut listing = client(&url, options).list(since, until);
    let result = within("the endless page", listing.next_page()).await;
    match result {
        Err(e @ ClientError::Misbehaving { .. }) => {
            assert!(e.to_string().contains("larger than"), "{e}")
        }
        other => panic!("expected a refused page, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_more_items_than_asked_or_too_many_participants_is_refused() {
    let app = with_token(Router::new().route(
        "/v1/archive/items",
        get(|query: axum::extract::RawQuery| async move {
            let query = query.0.unwrap_or_default();
            let items = if query.contains("limit=2") {
                (0..3).map(|n| item(n, 1)).collect::<Vec<_>>()
            } else {
                vec![item(0, 20_000)]
            };
            axum::Json(serde_json::json!({"items": items, "next_cursor": null}))
        }),
    ));
    let url = serve(app).await;
    let (since, until) = window();
    let mut options = quick();
    options.page_limit = 2;
    let result = client(&url, options).list(since, until).next_page().await;
    let message = result.expect_err("3 items for a limit of 2").to_string();
    assert!(
        message.contains("holds 3 items, 2 were asked for"),
        "{message}"
    );

    let result = client(&url, quick()).list(since, until).next_page().await;
    let message = result.expect_err("20,000 participants").to_string();
    assert!(
        message.contains("itm_0") && message.contains("20000 participants"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeating_cursor_and_endless_pages_end_the_listing() {
    let app = with_token(Router::new().route(
        "/v1/archive/items",
        get(|query: axum::extract::RawQuery| async move {
            let query = query.0.unwrap_or_default();
            let cursor = query.split("cursor=").nth(1).unwrap_or("");
            // The first window pages a, b, a, b...; any other a new
            // cursor every page, for ever.
            let next = if query.contains("since=2026-11-21") {
                if cursor == "a" { "b" } else { "a" }.to_owned()
            } else {
                (cursor.parse::<u64>().unwrap_or(0) + 1).to_string()
            };
            axum::Json(serde_json::json!({"items": [], "next_cursor": next}))
        }),
    ));
    let url = serve(app).await;
    let (since, until) = window();
    let mut listing = client(&url, quick()).list(since, until);
    let error = within("the repeating cursor", async {
        loop {
            if let Err(e) = listing.next_page().await {
                return e;
            }
        }
    })
    .await;
    assert!(
        error.to_string().contains("next_cursor it had sent before"),
        "{error}"
    );

    let mut options = quick();
    options.max_pages = 50;
    let mut listing = client(&url, options).list(until, until + chrono::Duration::days(1));
    let mut pages = 0;
    let error = within("the endless pages", async {
        loop {
            match listing.next_page().await {
                Err(e) => return e,
                Ok(_) => pages += 1,
            }
        }
    })
    .await;
    assert!(error.to_string().contains("after 50 pages"), "{error}");
    assert_eq!(pages, 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cursors_that_get_nowhere_end_the_listing() {
    let app = with_token(Router::new().route(
        "/v1/archive/items",
        get(|query: axum::extract::RawQuery| async move {
            if query.0.unwrap_or_default().contains("cursor=") {
                return StatusCode::GONE.into_response();
            }
            axum::Json(serde_json::json!({"items": [item(0, 1)], "next_cursor": "c"}))
                .into_response()
        }),
    ));
    let url = serve(app).await;
    let (since, until) = window();
    let mut listing = client(&url, quick()).list(since, until);
    let error = within("the 410 cycle", async {
        loop {
            if let Err(e) = listing.next_page().await {
                return e;
            }
        }
    })
    .await;
    assert!(error.to_string().contains("expired (410)"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_dripping_slower_than_its_deadline_fails() {
    let app = with_token(Router::new().route(
        "/v1/account",
        get(|| async {
            let drip = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b" ")), ()))
            });
            Body::from_stream(drip)
        }),
    ));
    let url = serve(app).await;
    let mut options = quick();
    options.request_deadline = Duration::from_secs(2);
    let result = within("the dripping answer", client(&url, options).account()).await;
    match result {
        Err(e @ ClientError::GaveUp { .. }) => {
            assert!(e.to_string().contains("deadline"), "{e}")
        }
        other => panic!("expected a deadline, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_never_repeats_server_text_and_other_text_is_escaped() {
    let echo = |body: String| async move {
        let json = serde_json::json!({"error": "bad_request", "message": body});
        (StatusCode::BAD_REQUEST, axum::Json(json))
    };
    let url = serve(Router::new().route("/v1/auth/token", post(echo))).await;
    let error = client(&url, quick()).authenticate().await.unwrap_err();
    let message = format!("{error} {error:?}");
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(message.contains("bad_request"), "{message}");

    let app = with_token(Router::new().route(
        "/v1/account",
        get(|| async {
            let json =
                serde_json::json!({"error": "no\u{1b}[2J", "message": "x\u{1b}]52;c;aGk=\u{7}y"});
            (StatusCode::BAD_REQUEST, axum::Json(json))
        }),
    ));
    let url = serve(app).await;
    let message = client(&url, quick())
        .account()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !message.contains('\u{1b}') && !message.contains('\u{7}'),
        "{message:?}"
    );
    assert!(message.contains("]52;c;aGk="), "{message:?}");
}

/// The whole binary against a listing that repeats its cursor: the run
/// ends with exit 1 naming the cause, and the next run is not locked out.
#[test]
fn a_sync_against_a_repeating_cursor_ends_and_releases_the_lock() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = with_token(Router::new().route(
        "/v1/archive/items",
        get(|| async { axum::Json(serde_json::json!({"items": [], "next_cursor": "same"})) }),
    ));
    let url = runtime.block_on(serve(app));
    let env = TestEnv::new();
    env.create_maildir_connector("c", &url, &[]);
    for _ in 0..2 {
        let run = env.run_with_password(
            PASSWORD,
            [
                "sync",
                "--since",
                "2026-11-21T00:00:00Z",
                "--until",
                "2026-11-22T00:00:00Z",
            ],
        );
        run.assert_code(1);
        assert!(
            run.stderr.contains("next_cursor it had sent before"),
            "{}",
            run.stderr
        );
    }
}
