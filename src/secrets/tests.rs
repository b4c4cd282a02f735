use std::cell::RefCell;
use std::collections::HashMap;

use super::*;

/// An in-memory stand-in for the keyring, for the lookup order only; the
/// real Secret Service is exercised by the integration tests.
struct MemoryStore {
    entries: RefCell<HashMap<String, Secret>>,
    reachable: bool,
}

impl MemoryStore {
    fn new(reachable: bool) -> Self {
        MemoryStore {
            entries: RefCell::default(),
            reachable,
        }
    }

    fn check(&self) -> Result<(), KeyringError> {
        if self.reachable {
            Ok(())
        } else {
            Err(KeyringError::Unreachable("no session bus".into()))
        }
    }
}

impl KeyStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn probe(&self) -> Result<(), KeyringError> {
        self.check()
    }
    fn get(&self, account: &str) -> Result<Option<Secret>, KeyringError> {
        self.check()?;
        Ok(self.entries.borrow().get(account).cloned())
    }
    fn set(&self, account: &str, secret: &Secret) -> Result<(), KeyringError> {
        self.check()?;
        self.entries
            .borrow_mut()
            .insert(account.to_owned(), secret.clone());
        Ok(())
    }
    fn delete(&self, account: &str) -> Result<bool, KeyringError> {
        self.check()?;
        Ok(self.entries.borrow_mut().remove(account).is_some())
    }
}

fn places<'a>(store: &'a MemoryStore, file: Option<PathBuf>, env: Option<&str>) -> Places<'a> {
    Places {
        keyring: store,
        password_file: file,
        password_env: env.map(Secret::new),
    }
}

#[cfg(unix)]
fn password_file(dir: &std::path::Path, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("pw");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn debug_and_display_never_show_the_value() {
    let s = Secret::new("hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
    assert!(!format!("{s}").contains("hunter2"));
    let c = ConnectorSecrets {
        telemessage_password: s.clone(),
        target_secret: Some(s),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn keyring_wins_over_file_and_environment() {
    let store = MemoryStore::new(true);
    store
        .set("acme/telemessage", &Secret::new("from-keyring"))
        .unwrap();
    let found = places(&store, None, Some("from-env"))
        .load("acme", false)
        .unwrap();
    assert_eq!(found.telemessage_password.expose(), "from-keyring");
    assert!(found.target_secret.is_none());
}

#[cfg(unix)]
#[test]
fn unreachable_keyring_falls_back_to_the_file_then_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new(false);
    let file = password_file(dir.path(), "tm-file\nimap-file\n", 0o600);
    let found = places(&store, Some(file.clone()), Some("from-env"))
        .load("acme", true)
        .unwrap();
    assert_eq!(found.telemessage_password.expose(), "tm-file");
    assert_eq!(found.target_secret.unwrap().expose(), "imap-file");

    let found = places(&store, None, Some("from-env"))
        .load("acme", false)
        .unwrap();
    assert_eq!(found.telemessage_password.expose(), "from-env");

    let sources = places(&store, Some(file.clone()), None).sources("acme", true);
    assert_eq!(
        sources.telemessage_password.unwrap(),
        Source::PasswordFile {
            path: file,
            line: 1
        }
    );
}

#[cfg(unix)]
#[test]
fn open_file_is_skipped_and_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new(false);
    let file = password_file(dir.path(), "tm-file\n", 0o644);
    let err = places(&store, Some(file.clone()), None)
        .load("acme", false)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no session bus"), "{text}");
    assert!(
        text.contains("0644") && text.contains("chmod 600"),
        "{text}"
    );
    assert!(text.contains(&format!("{PASSWORD_ENV}: not set")), "{text}");
    assert!(!text.contains("tm-file"), "{text}");

    let found = places(&store, Some(file), Some("from-env"))
        .load("acme", false)
        .unwrap();
    assert_eq!(found.telemessage_password.expose(), "from-env");
}

#[test]
fn missing_target_secret_is_an_error_only_when_required() {
    let store = MemoryStore::new(true);
    let p = places(&store, None, Some("from-env"));
    assert!(p.load("acme", false).unwrap().target_secret.is_none());
    let err = p.load("acme", true).unwrap_err();
    assert_eq!(err.kind, SecretKind::TargetSecret);
    assert!(
        err.to_string().contains("TeleMessage password only"),
        "{err}"
    );
    assert!(p.sources("acme", false).target_secret.is_none());
    assert!(p.sources("acme", true).target_secret.unwrap().is_err());
}

#[test]
fn nothing_anywhere_names_every_place_and_the_cron_fix() {
    let store = MemoryStore::new(false);
    let err = places(&store, None, None).load("acme", false).unwrap_err();
    let text = err.to_string();
    for place in ["OS keyring", PASSWORD_FILE_ENV, PASSWORD_ENV] {
        assert!(text.contains(place), "{place} missing from: {text}");
    }
    let hint = err.hint();
    assert!(hint.contains("login --connector acme"), "{hint}");
    assert!(
        hint.contains("cron") && hint.contains(PASSWORD_FILE_ENV),
        "{hint}"
    );
}

#[test]
fn accounts_are_per_connector_and_per_secret() {
    assert_eq!(
        SecretKind::TelemessagePassword.account("acme"),
        "acme/telemessage"
    );
    assert_eq!(SecretKind::TargetSecret.account("acme"), "acme/target");
}
