//! `verify` of an archive in a real Dovecot over IMAP: every copy read
//! back by its UID and hashed; a copy deleted, replaced by an altered one,
//! or moved to another folder is each named; a server that cannot be
//! reached makes the verify unchecked.

use std::path::PathBuf;

use wechat_archiver::simulator::Simulator;

use super::findings;
use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot};
use crate::support::imap_reader::Fetched;
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator};

const FOLDER: &str = "WeChat Archiver";

/// The simulator, Dovecot with every registered user, and connector `c`
/// synced into it.
struct Case {
    _source: Simulator,
    dovecot: Dovecot,
    env: TestEnv,
    secrets: PathBuf,
    users: Vec<String>,
}

impl Case {
    fn synced(items: usize) -> Case {
        let source = simulator(items, |_| {});
        let users = crate::imap_sync::registered(&source);
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let dovecot = Dovecot::start(&refs);
        let env = TestEnv::new();
        let secrets = env.password_file(PASSWORD, ADMIN_PASSWORD);
        let csv = env.path("mapping.csv");
        source.dataset().write_mapping_csv(&csv).unwrap();
        let (url, target) = (source.url(), format!("imap://127.0.0.1:{}", dovecot.port));
        let csv = csv.display().to_string();
        env.run([
            "create",
            "c",
            "--endpoint",
            &url,
            "--username",
            "admin@contoso.com",
            "--target",
            &target,
            "--target-user",
            ADMIN,
            "--mapping",
            &csv,
            "--accept-terms",
        ])
        .assert_code(0);
        let case = Case {
            _source: source,
            dovecot,
            env,
            secrets,
            users,
        };
        case.run(&["sync", "--since", SINCE, "--until", UNTIL])
            .assert_code(0);
        case
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut command = self.env.command(args);
        command.env("WECHAT_ARCHIVER_PASSWORD_FILE", &self.secrets);
        command.output().unwrap().into()
    }

    fn verify(&self) -> Run {
        self.run(&["verify", "--json"])
    }

    /// Every copy in the archive folders: (user, message).
    fn copies(&self) -> Vec<(String, Fetched)> {
        self.users
            .iter()
            .flat_map(|user| {
                let fetched = self.dovecot.fetch_all(user, FOLDER).unwrap_or_default();
                fetched.into_iter().map(move |m| (user.clone(), m))
            })
            .collect()
    }
}

#[test]
fn on_dovecot_a_deleted_a_replaced_and_a_moved_copy_are_each_named() {
    let case = Case::synced(40);
    let copies = case.copies();
    assert!(copies.len() > 10, "{} copies", copies.len());
    let clean = case.verify();
    clean.assert_code(0);
    let report = clean.json();
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(report["integrity"]["checked"], copies.len());
    assert_eq!(report["integrity"]["intact"], copies.len());

    let (deleted, replaced, moved) = (&copies[0], &copies[1], &copies[2]);
    let mut session = case.dovecot.session(&deleted.0);
    assert!(session.command(&format!("SELECT \"{FOLDER}\"")).ok);
    let expunge = |session: &mut crate::support::imap_reader::RawImap, uid: u32| {
        let stored = session.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"));
        assert!(stored.ok, "{}", stored.status);
        assert!(session.command(&format!("UID EXPUNGE {uid}")).ok);
    };
    expunge(&mut session, deleted.1.uid);

    // A message cannot be edited over IMAP: it is replaced by a copy with
    // one byte changed (its trace header intact), as a tamperer would.
    let mut session = case.dovecot.session(&replaced.0);
    assert!(session.command(&format!("SELECT \"{FOLDER}\"")).ok);
    let mut body = replaced.1.body.clone();
    let last = body.len() - 3;
    body[last] ^= 0x20;
    let appended = session.append(FOLDER, &body);
    assert!(appended.ok, "{}", appended.status);
    expunge(&mut session, replaced.1.uid);

    let mut session = case.dovecot.session(&moved.0);
    let _ = session.command("CREATE \"Old stuff\"");
    assert!(session.command(&format!("SELECT \"{FOLDER}\"")).ok);
    let done = session.command(&format!("UID MOVE {} \"Old stuff\"", moved.1.uid));
    assert!(done.ok, "{}", done.status);

    let run = case.verify();
    run.assert_code(3);
    let report = run.json();
    let mut found = findings(&report);
    found.sort();
    let named = |kind: &str, (user, message): &(String, Fetched)| {
        (
            kind.to_owned(),
            message.item_id().unwrap(),
            user.to_lowercase(),
        )
    };
    let mut expected = vec![
        named("copy_gone", deleted),
        named("copy_altered", replaced),
        named("copy_moved", moved),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report:#}");
    let details = report["findings"].to_string();
    assert!(details.contains("Old stuff"), "{details}");
    assert_eq!(report["integrity"]["intact"], copies.len() - 3);
}

#[test]
fn on_dovecot_a_server_that_cannot_be_reached_leaves_the_copies_unchecked() {
    let mut case = Case::synced(10);
    case.dovecot.stop();
    let run = case.verify();
    run.assert_code(1);
    let report = run.json();
    assert_eq!(report["outcome"], "unchecked", "{report:#}");
    assert!(
        findings(&report)
            .iter()
            .all(|(kind, _, _)| kind == "unchecked"),
        "{report:#}"
    );
}
