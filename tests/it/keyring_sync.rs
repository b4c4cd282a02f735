//! `sync` with its password from the real Secret Service and none in the
//! environment; the password appears in no file and no output.

use crate::login_support::{files_containing, require_secret_service, unique_connector};
use crate::support::TestEnv;
use crate::sync::{SINCE, UNTIL, expected_copies, read_archive, simulator};

#[test]
fn keyring_sync_reads_the_password_from_the_keyring_and_leaks_it_nowhere() {
    require_secret_service();
    let password = format!("Kanary-{}-pw", unique_connector("s"));
    let sim = simulator(40, |c| c.password = password.clone());
    let env = TestEnv::new();
    let name = unique_connector("sync");
    let archive = env.path("archive");
    let target = format!("maildir:{}", archive.display());
    let csv = env.path("mapping.csv");
    sim.dataset().write_mapping_csv(&csv).unwrap();
    let csv = csv.display().to_string();
    env.run([
        "create",
        &name,
        "--endpoint",
        &sim.url(),
        "--username",
        "admin@contoso.com",
        "--target",
        &target,
        "--mapping",
        &csv,
        "--accept-terms",
    ])
    .assert_code(0);

    let mut login = env.command(["login", "--connector", &name, "--password-stdin"]);
    login.stdin(std::process::Stdio::piped());
    let mut child = login
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let login: crate::support::Run = child.wait_with_output().unwrap().into();
    login.assert_code(0);

    let run = env.run([
        "sync",
        "--connector",
        &name,
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--json",
        "-vv",
    ]);
    run.assert_code(0);
    let items = sim
        .dataset()
        .items_in_window(crate::sync::t(SINCE), crate::sync::t(UNTIL));
    let expected = expected_copies(&sim, &items);
    assert_eq!(run.json()["written"], expected.len());
    let archived: std::collections::BTreeSet<_> = read_archive(&archive).into_keys().collect();
    assert_eq!(archived, expected);

    for output in [&login.stdout, &login.stderr, &run.stdout, &run.stderr] {
        assert!(
            !output.contains(&password),
            "the password leaked into output"
        );
    }
    assert!(
        files_containing(&env.home, &password).is_empty(),
        "the password is in a file under the home"
    );
    assert!(files_containing(&archive, &password).is_empty());

    env.run(["login", "--connector", &name, "--forget"])
        .assert_code(0);
    let again = env.run([
        "sync",
        "--connector",
        &name,
        "--since",
        SINCE,
        "--until",
        UNTIL,
    ]);
    again.assert_code(1);
    assert!(
        again.stderr.contains("WECHAT_ARCHIVER_PASSWORD_FILE"),
        "{}",
        again.stderr
    );
}
