//! The archive tree under attack and in sharing: a link planted inside the
//! archive fails the copies that would go through it (naming it) and
//! nothing lands outside; new directories and files take the permissions
//! of the directory above them, and a new archive root is private.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use crate::support::{TestEnv, files_under};
use crate::sync::{SINCE, UNTIL, connector, expected_copies, read_archive, simulator, sync, t};

#[test]
fn a_link_planted_in_the_archive_fails_its_copies_and_nothing_lands_outside() {
    let sim = simulator(40, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    let expected = expected_copies(&sim, &items);
    let (victim, _) = expected.iter().next().expect("copies").clone();
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&root).unwrap();
    let link = root.join(&victim);
    symlink(&outside, &link).unwrap();

    let run = sync(&env, &["--since", SINCE, "--until", UNTIL]);
    run.assert_code(3);
    let named = format!("{} is a symbolic link", link.display());
    assert!(run.stderr.contains(&named), "{}", run.stderr);
    assert!(
        files_under(&outside).is_empty(),
        "written outside the archive"
    );
    let log = fs::read_to_string(env.home.join("logs/sync.log")).unwrap();
    assert!(log.contains(&named), "{log}");

    fs::remove_file(&link).unwrap();
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    let archived: std::collections::BTreeSet<_> = read_archive(&root).into_keys().collect();
    assert_eq!(archived, expected, "the next run writes what was refused");
}

/// Every directory below `root` has `dir_mode`, every file `file_mode`.
#[track_caller]
fn assert_modes(root: &Path, dir_mode: u32, file_mode: u32) {
    let mut dirs = vec![root.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let mode = meta.mode() & 0o7777;
            if meta.is_dir() {
                assert_eq!(mode, dir_mode, "{:o} on {}", mode, entry.path().display());
                dirs.push(entry.path());
            } else {
                assert_eq!(mode, file_mode, "{:o} on {}", mode, entry.path().display());
                files += 1;
            }
        }
    }
    assert!(files > 10, "only {files} files under {}", root.display());
}

#[test]
fn a_new_archive_is_private_and_a_shared_one_stays_shared() {
    let sim = simulator(30, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o700);
    assert_modes(&root, 0o700, 0o600);

    let env = TestEnv::new();
    let shared = env.path("archive");
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o2770)).unwrap();
    connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    assert_modes(&shared, 0o2770, 0o660);
}
