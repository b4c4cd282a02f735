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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_a_mailbox_look_it_up_once() {
    let sim = sim_with(SimConfig {
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await;
    let w = Arc::new(writer(&sim));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                let f = Fixture::new(&format!("itm_once_{i}"), vec![]);
                w.write(&mailbox(LI), &f.copy()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("write");
    }
    assert!(w.is_valid_user(&mailbox(LI)).await.unwrap());
    let log = sim.log();
    let lookups = log
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with(&format!("/users/{LI}")))
        .count();
    let probes = log
        .iter()
        .filter(|e| e.path.ends_with("/mailFolders/msgfolderroot"))
        .count();
    assert_eq!((lookups, probes), (1, 1), "one lookup and one probe");
    assert_eq!(sim.messages(LI, FOLDER).len(), 8);
}
