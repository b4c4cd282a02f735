//! The e-mail source into the other targets: TeleMessage's SMTP
//! forwarding through a real Postfix and `receive` into a real Dovecot
//! over IMAP, and an SFTP batch through `import` into the Graph
//! simulator. The connector has no TeleMessage password: its password
//! file's first line stays empty.

use std::path::Path;

use crate::email::{Receiver, email_connector_to, forwarded, zip_batch};
use crate::support::dovecot::{self, Dovecot};
use crate::support::graph_sim::{GraphSim, MailboxKind, SimConfig as GraphConfig};
use crate::support::postfix::Postfix;
use crate::support::{Run, TestEnv};

const MAPPED: [&str; 2] = ["li.wei@contoso.com", "wang.fang@contoso.com"];
const FOLDER: &str = "WeChat Archiver";
const ITEM_ID_PROPERTY: &str = "String {b8f2c0d4-5e1a-4f7b-9c3d-776563686174} Name ItemId";

#[test]
fn smtp_through_postfix_and_receive_lands_once_in_dovecot_over_imap() {
    let dovecot = Dovecot::start(&MAPPED);
    let env = TestEnv::new();
    let target = format!("imap://127.0.0.1:{}", dovecot.port);
    email_connector_to(&env, &target, &["--target-user", dovecot::ADMIN]);
    let secrets = env.password_file("", dovecot::ADMIN_PASSWORD);
    let receiver = Receiver::start_with_secrets(&env, Some(&secrets));
    let postfix = Postfix::start("contoso.com", receiver.port);
    let message = forwarded(Some("imap1@tm"), "into Dovecot");
    let queued = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &message,
    );
    postfix.wait_for(&queued, "status=sent", 1);
    // The same message again, as TeleMessage's retry would send it.
    let again = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &message,
    );
    postfix.wait_for(&again, "status=sent", 1);
    for user in MAPPED {
        let found = dovecot.fetch_all(user, FOLDER).expect("the archive folder");
        assert_eq!(found.len(), 1, "{user}");
        let body = String::from_utf8_lossy(&found[0].body);
        assert!(
            body.contains("X-WeChat-Archiver-Item-Id: <imap1@tm>"),
            "{body}"
        );
        assert!(body.ends_with(&message), "{body}");
    }
    assert_eq!(receiver.stop(), 0);
}

fn import(env: &TestEnv, secrets: &Path, batch: &Path) -> Run {
    env.command(["import".as_ref(), "--json".as_ref(), batch.as_os_str()])
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", secrets)
        .output()
        .unwrap()
        .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sftp_batch_imports_once_into_graph() {
    let config = GraphConfig::default();
    let graph = GraphSim::start(config.clone()).await;
    for user in MAPPED {
        graph.add_user(user, &[], MailboxKind::Enabled);
    }
    let env = TestEnv::new();
    let target = format!("graph:{}", config.tenant);
    email_connector_to(
        &env,
        &target,
        &[
            "--client-id",
            &config.client_id,
            "--graph-endpoint",
            &graph.url,
            "--login-endpoint",
            &graph.url,
        ],
    );
    let secrets = env.password_file("", &config.client_secret);
    let (a, b) = (
        forwarded(Some("g1@tm"), "one"),
        forwarded(Some("g2@tm"), "two"),
    );
    let batch = env.path("202611220000-TeleMessage_1_0100.zip");
    zip_batch(
        &batch,
        &[
            ("a.eml", a.as_bytes()),
            ("b.eml", b.as_bytes()),
            ("batch.mf", b"Count: 2\r\na.eml\r\nb.eml\r\n"),
        ],
    );
    let (env, secrets_path, batch_path) =
        (std::sync::Arc::new(env), secrets.clone(), batch.clone());
    let first = {
        let env = env.clone();
        tokio::task::spawn_blocking(move || import(&env, &secrets_path, &batch_path))
            .await
            .unwrap()
    };
    first.assert_code(0);
    assert_eq!(
        first.json()["written"],
        4,
        "two messages, two mailboxes each"
    );
    for user in MAPPED {
        let messages = graph.messages(user, FOLDER);
        for id in ["<g1@tm>", "<g2@tm>"] {
            let copies = messages
                .iter()
                .filter(|m| m.extended(ITEM_ID_PROPERTY) == Some(id))
                .count();
            assert_eq!(copies, 1, "{id} in {user}: {messages:?}");
        }
        assert!(messages.iter().all(|m| !m.is_draft), "{user}");
    }
    let again = tokio::task::spawn_blocking(move || import(&env, &secrets, &batch))
        .await
        .unwrap();
    again.assert_code(0);
    assert_eq!(again.json()["written"], 0);
    assert_eq!(again.json()["already_archived"], 4);
    for user in MAPPED {
        assert_eq!(graph.messages(user, FOLDER).len(), 2, "{user}");
    }
}
