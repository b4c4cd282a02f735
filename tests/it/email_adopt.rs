//! The e-mail source after the ledger is lost: a message delivered again
//! (an MTA retry, a re-sent batch) is adopted from the archive, never
//! written twice, as `sync` does.

use crate::email::{copies, deliver, email_connector, forwarded};
use crate::support::TestEnv;

const LI: &str = "li.wei@contoso.com";
const WANG: &str = "wang.fang@contoso.com";

fn remove_ledger(env: &TestEnv) {
    for name in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let path = env.home.join(name);
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn a_message_delivered_again_after_the_ledger_is_lost_is_adopted_not_duplicated() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let message = forwarded(Some("adopt-1@tm"), "first");
    deliver(&env, message.as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, LI).len(), 1);
    assert_eq!(copies(&archive, WANG).len(), 1);

    remove_ledger(&env);
    deliver(&env, message.as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, LI).len(), 1, "no second copy for Li");
    assert_eq!(copies(&archive, WANG).len(), 1, "no second copy for Wang");

    // A new message after that is written, once.
    deliver(
        &env,
        forwarded(Some("adopt-2@tm"), "second").as_bytes(),
        &[],
    )
    .assert_code(0);
    assert_eq!(copies(&archive, LI).len(), 2);
}

#[test]
fn a_new_home_on_the_same_archive_adopts_what_the_old_one_wrote() {
    let old = TestEnv::new();
    let archive = email_connector(&old, &[]);
    let message = forwarded(Some("adopt-3@tm"), "kept");
    deliver(&old, message.as_bytes(), &[]).assert_code(0);

    let new = TestEnv::new();
    let target = format!("maildir:{}", archive.display());
    new.run([
        "create",
        "tm",
        "--source",
        "email",
        "--target",
        &target,
        "--domain",
        "contoso.com",
        "--accept-terms",
    ])
    .assert_code(0);
    deliver(&new, message.as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, LI).len(), 1);
    assert_eq!(copies(&archive, WANG).len(), 1);
}
