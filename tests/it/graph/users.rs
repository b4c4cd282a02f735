//! Which addresses are valid users: only those with a reachable mailbox.

use super::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_addresses_with_a_reachable_mailbox_are_valid_users() {
    let sim = sim_with(SimConfig::default()).await;
    sim.add_user("no.license@contoso.com", &[], MailboxKind::NoMailbox);
    sim.add_user("ceo@contoso.com", &[], MailboxKind::Denied);
    let w = writer(&sim);
    assert!(w.is_valid_user(&mailbox(LI)).await.unwrap());
    assert!(
        w.is_valid_user(&mailbox("Wei.Li@Contoso.com"))
            .await
            .unwrap(),
        "an alias is found through proxyAddresses"
    );
    assert!(
        !w.is_valid_user(&mailbox("nobody@contoso.com"))
            .await
            .unwrap()
    );
    assert!(
        !w.is_valid_user(&mailbox("no.license@contoso.com"))
            .await
            .unwrap()
    );
    assert!(!w.is_valid_user(&mailbox("ceo@contoso.com")).await.unwrap());
    match w
        .write(
            &mailbox("nobody@contoso.com"),
            &Fixture::new("itm_x", vec![]).copy(),
        )
        .await
    {
        Err(WriteError::Mailbox { mailbox, .. }) => assert_eq!(mailbox, "nobody@contoso.com"),
        other => panic!("expected a mailbox error, got {other:?}"),
    }
    // Written through the alias, the copy is in the primary mailbox.
    w.write(
        &mailbox("wei.li@contoso.com"),
        &Fixture::new("itm_alias", vec![]).copy(),
    )
    .await
    .expect("write");
    only(sim.messages(LI, FOLDER), "itm_alias");

    let denied = sim_with(SimConfig {
        directory_forbidden: true,
        ..SimConfig::default()
    })
    .await;
    let w = writer(&denied);
    assert!(
        w.is_valid_user(&mailbox(LI)).await.unwrap(),
        "without directory rights the mailbox itself answers"
    );
    assert!(
        !w.is_valid_user(&mailbox("nobody@contoso.com"))
            .await
            .unwrap()
    );
}
