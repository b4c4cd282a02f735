//! `sync` end to end into a real Dovecot: every copy read back over IMAP.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use crate::support::TestEnv;
use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

#[test]
fn sync_into_dovecot_lands_every_copy_once_intact_and_a_rerun_writes_nothing() {
    let source = simulator(60, |c| c.large_fraction = 0.03);
    let users: Vec<String> = source
        .dataset()
        .users()
        .iter()
        .filter_map(|u| u.email.clone())
        .collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let dovecot = Dovecot::start(&user_refs);
    let env = TestEnv::new();
    let secrets = env.path("secrets");
    std::fs::write(&secrets, format!("{PASSWORD}\n{ADMIN_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let csv = env.path("mapping.csv");
    source.dataset().write_mapping_csv(&csv).unwrap();
    let target = format!("imap://127.0.0.1:{}", dovecot.port);
    env.run([
        "create",
        "c",
        "--endpoint",
        &source.url(),
        "--username",
        "admin@contoso.com",
        "--target",
        &target,
        "--target-user",
        ADMIN,
        "--mapping",
        csv.to_str().unwrap(),
        "--accept-terms",
    ])
    .assert_code(0);
    let sync = || {
        let run: crate::support::Run = env
            .command(["sync", "--since", SINCE, "--until", UNTIL, "--json"])
            .env("WECHAT_ARCHIVER_PASSWORD_FILE", &secrets)
            .output()
            .unwrap()
            .into();
        run
    };
    let first = sync();
    first.assert_code(0);

    let items = source.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert!(
        items.iter().any(|i| i.size > 10_000_000),
        "no item over 10 MB"
    );
    let mut expected = 0;
    for user in &users {
        let wanted: BTreeSet<String> = items
            .iter()
            .filter(|i| {
                source
                    .dataset()
                    .expected_mailboxes(i, true, true)
                    .contains(&user.to_lowercase())
            })
            .map(|i| i.id.to_string())
            .collect();
        expected += wanted.len();
        let fetched = dovecot
            .fetch_all(user, "WeChat Archiver")
            .unwrap_or_default();
        let found: Vec<String> = fetched.iter().filter_map(|m| m.item_id()).collect();
        assert_eq!(
            found.len(),
            wanted.len(),
            "{user}: copies {found:?}, wanted {wanted:?}"
        );
        assert_eq!(
            found.iter().cloned().collect::<BTreeSet<_>>(),
            wanted,
            "{user}"
        );
        for message in &fetched {
            let id = message.item_id().unwrap();
            let original = source.dataset().content(&id).unwrap();
            assert!(
                message.body.ends_with(&original),
                "{id} in {user} is not intact"
            );
            assert!(
                message.flags.iter().any(|f| f == "\\Seen"),
                "{id} not \\Seen"
            );
        }
    }
    assert_eq!(first.json()["written"], expected);

    let second = sync();
    second.assert_code(0);
    assert_eq!(second.json()["written"], 0);
    assert_eq!(second.json()["already_archived"], expected);
}

#[test]
fn map_validate_check_target_asks_dovecot_which_mailboxes_exist() {
    let source = simulator(5, |_| {});
    let dovecot = Dovecot::start(&["li.wei@contoso.com"]);
    let env = TestEnv::new();
    let secrets = env.path("secrets");
    std::fs::write(&secrets, format!("{PASSWORD}\n{ADMIN_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = format!("imap://127.0.0.1:{}", dovecot.port);
    env.run([
        "create",
        "c",
        "--endpoint",
        &source.url(),
        "--username",
        "admin@contoso.com",
        "--target",
        &target,
        "--target-user",
        ADMIN,
        "--accept-terms",
    ])
    .assert_code(0);
    let csv = env.path("map.csv");
    std::fs::write(
        &csv,
        "mobile_number,mailbox\n+8613800138000,li.wei@contoso.com\n+8613800138001,nobody@contoso.com\n",
    )
    .unwrap();
    let run: crate::support::Run = env
        .command([
            "map",
            "validate",
            csv.to_str().unwrap(),
            "--check-target",
            "--json",
        ])
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &secrets)
        .output()
        .unwrap()
        .into();
    run.assert_code(3);
    let json = run.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["value"], "nobody@contoso.com");
}
