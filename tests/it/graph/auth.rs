//! The app-only token: reused, renewed, and clear errors when it fails.

use super::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_reused_until_it_expires() {
    // An hour-long token serves every write however slow the machine.
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    for i in 0..4 {
        w.write(
            &mailbox(LI),
            &Fixture::new(&format!("itm_tok_{i}"), vec![]).copy(),
        )
        .await
        .expect("write");
    }
    assert_eq!(sim.stats().token_requests, 1);
    // A token revoked early: one refusal, a new token, and the write goes on.
    sim.revoke_tokens();
    w.write(
        &mailbox(LI),
        &Fixture::new("itm_tok_revoked", vec![]).copy(),
    )
    .await
    .expect("write");
    assert_eq!(sim.stats().token_requests, 2);
    assert_eq!(sim.stats().rejected_tokens, 1);
    // A 4-second token: once it has expired (time is the behaviour here),
    // the writer fetches a new one instead of offering the old one.
    sim.set_token_lifetime(Duration::from_secs(4));
    sim.revoke_tokens();
    w.write(&mailbox(LI), &Fixture::new("itm_tok_short", vec![]).copy())
        .await
        .expect("write");
    let before = sim.stats().token_requests;
    tokio::time::sleep(Duration::from_millis(4100)).await;
    w.write(&mailbox(LI), &Fixture::new("itm_tok_late", vec![]).copy())
        .await
        .expect("write");
    assert!(
        sim.stats().token_requests > before,
        "a new token was fetched"
    );
    assert_eq!(
        sim.stats().rejected_tokens,
        2,
        "only the revocations were refused: the writer renews before expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_target_error_that_does_not_show_the_secret() {
    let sim = sim_with(SimConfig::default()).await;
    let w = GraphWriter::new(config(&sim), Secret::new("wrong-secret-value")).expect("writer");
    match w.is_valid_user(&mailbox(LI)).await {
        Err(WriteError::Target(reason)) => {
            assert!(reason.contains("invalid_client"), "{reason}");
            assert!(!reason.contains("wrong-secret-value"));
        }
        other => panic!("expected a target error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_mail_readwrite_is_a_target_error() {
    let sim = sim_with(SimConfig {
        roles: vec!["User.Read.All".into()],
        ..SimConfig::default()
    })
    .await;
    let w = writer(&sim);
    assert!(matches!(
        w.write(&mailbox(LI), &Fixture::new("itm_r", vec![]).copy()).await,
        Err(WriteError::Target(r)) if r.contains("Mail.ReadWrite")
    ));
}

#[test]
fn plain_http_is_refused_unless_the_host_is_loopback() {
    let secret = || Secret::new("x");
    let mut c = GraphConfig::new("contoso.onmicrosoft.com", "client");
    c.graph_endpoint = Some("http://graph.example.net".into());
    assert!(
        matches!(GraphWriter::new(c.clone(), secret()), Err(WriteError::Target(r)) if r.contains("http://"))
    );
    c.graph_endpoint = None;
    c.login_endpoint = Some("http://login.example.net".into());
    assert!(matches!(
        GraphWriter::new(c.clone(), secret()),
        Err(WriteError::Target(_))
    ));
    c.login_endpoint = Some("http://127.0.0.1:1".into());
    c.graph_endpoint = Some("http://[::1]:1".into());
    assert!(GraphWriter::new(c.clone(), secret()).is_ok());
    assert_eq!(
        GraphWriter::new(c, secret()).unwrap().describe(),
        "graph:contoso.onmicrosoft.com"
    );
}
