//! XOAUTH2 against a stand-in for Exchange Online.

use std::sync::Arc;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::*;

/// A stand-in for Exchange Online's IMAP login, which cannot run here: it
/// speaks just enough IMAP (XOAUTH2 with SASL-IR, the error challenge and
/// the bare `NO AUTHENTICATE failed.` Exchange sends, then CREATE, SELECT
/// and APPEND with APPENDUID) to drive the writer's XOAUTH2 path.
async fn fake_exchange(valid_token: Arc<std::sync::Mutex<String>>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let valid_token = valid_token.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                let hello =
                    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 LITERAL+ UIDPLUS] ready\r\n";
                write.write_all(hello.as_bytes()).await.expect("greet");
                let mut uid = 0;
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let words: Vec<&str> = line.trim_end().split(' ').collect();
                    let (tag, command) = (words[0], words.get(1).copied().unwrap_or(""));
                    let answer = match command {
                        "AUTHENTICATE" => {
                            use base64::Engine;
                            let raw = base64::engine::general_purpose::STANDARD
                                .decode(words.get(3).copied().unwrap_or(""))
                                .unwrap_or_default();
                            let token = valid_token.lock().expect("token").clone();
                            let good = format!("user={LI}\x01auth=Bearer {token}\x01\x01");
                            if raw == good.as_bytes() {
                                format!(
                                    "{tag} OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] AUTHENTICATE completed.\r\n"
                                )
                            } else {
                                write
                                    .write_all(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
                                    .await
                                    .expect("challenge");
                                let mut empty = String::new();
                                read.read_line(&mut empty)
                                    .await
                                    .expect("answer to challenge");
                                assert_eq!(
                                    empty, "\r\n",
                                    "XOAUTH2 error challenges take an empty answer"
                                );
                                format!("{tag} NO AUTHENTICATE failed.\r\n")
                            }
                        }
                        "APPEND" => {
                            let len: usize = line
                                .trim_end()
                                .rsplit('{')
                                .next()
                                .and_then(|n| n.trim_end_matches("+}").parse().ok())
                                .expect("literal length");
                            let mut message = vec![0; len + 2];
                            read.read_exact(&mut message).await.expect("literal");
                            uid += 1;
                            format!("{tag} OK [APPENDUID 77 {uid}] APPEND completed.\r\n")
                        }
                        _ => format!("{tag} OK {command} completed.\r\n"),
                    };
                    write.write_all(answer.as_bytes()).await.expect("answer");
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_logs_in_as_the_mailbox_and_reads_refusals_as_exchange_means_them() {
    use wechat_archiver::mailbox::imap::ImapAuth;
    let valid_token = Arc::new(std::sync::Mutex::new("token-1".to_owned()));
    let port = fake_exchange(valid_token.clone()).await;
    let mut config = ImapConfig::new(false, "127.0.0.1", port, "", FOLDER);
    config.auth = ImapAuth::XOAuth2;
    config.max_connections = 1;
    let writer = ImapWriter::new(config, Secret::new("token-1")).expect("writer");
    let li = mailbox(LI);
    assert!(writer.is_valid_user(&li).await.expect("login"));
    let it = item("itm_x", "2026-11-22T08:15:00Z", 1_000);
    let content = Content::Memory(message("itm_x", 1_000));
    let copy = Copy {
        item: &it,
        connector: "contoso",
        content: &content,
        in_reply_to: None,
    };
    assert_eq!(
        writer.write(&li, &copy).await.expect("write").location,
        "77:1"
    );

    // The token expires; the only connection goes to a mailbox Exchange
    // refuses (no code), so Li's next write must log in again.
    *valid_token.lock().expect("token") = "token-2".to_owned();
    assert!(
        !writer
            .is_valid_user(&mailbox(ZHANG))
            .await
            .expect("refused"),
        "a refusal without a code, for a mailbox never seen, means no such mailbox"
    );
    let err = writer.write(&li, &copy).await.expect_err("stale token");
    assert!(
        matches!(&err, WriteError::Target(t) if t.contains("accepted earlier")),
        "a mailbox that logged in before is not suddenly unknown: {err:?}"
    );
    assert!(
        !format!("{err}").contains("token-1"),
        "the token leaked: {err}"
    );
    writer.replace_secret(Secret::new("token-2"));
    assert_eq!(
        writer
            .write(&li, &copy)
            .await
            .expect("fresh token")
            .location,
        "77:1"
    );
}

/// End to end: connector `c` created with `--auth xoauth2`, from the
/// TeleMessage simulator into a real Dovecot whose `oauth2` passdb checks
/// every XOAUTH2 bearer token against the Graph simulator's identity
/// platform (token endpoint and RFC 7662 introspection, on loopback).
mod end_to_end {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use wechat_archiver::simulator::Simulator;

    use crate::support::dovecot::Dovecot;
    use crate::support::graph_sim::{GraphSim, SimConfig as GraphConfig};
    use crate::support::{Run, TestEnv};
    use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

    pub(crate) struct Case {
        pub source: Simulator,
        pub graph: GraphSim,
        pub dovecot: Dovecot,
        pub env: TestEnv,
        pub secrets: PathBuf,
        pub users: Vec<String>,
    }

    /// The registered users' addresses: each has a Dovecot mailbox.
    fn registered(source: &Simulator) -> Vec<String> {
        source
            .dataset()
            .users()
            .iter()
            .filter_map(|u| u.email.clone())
            .collect()
    }

    impl Case {
        /// `client_secret` goes on line 2 of the password file.
        pub async fn start(items: usize, client_secret: Option<&str>) -> Case {
            Case::start_named("c", items, client_secret).await
        }

        /// [`Case::start`] with connector `name` (the keyring's accounts
        /// are named after it).
        pub async fn start_named(name: &str, items: usize, client_secret: Option<&str>) -> Case {
            let source = simulator(items, |_| {});
            let config = GraphConfig::default();
            let graph = GraphSim::start(config.clone()).await;
            let users = registered(&source);
            let refs: Vec<&str> = users.iter().map(String::as_str).collect();
            let dovecot = Dovecot::start_oauth2(&refs, &format!("{}/introspect", graph.url));
            let env = TestEnv::new();
            let secret = client_secret.unwrap_or(&config.client_secret);
            let secrets = env.password_file(PASSWORD, secret);
            let csv = env.path("mapping.csv");
            source.dataset().write_mapping_csv(&csv).unwrap();
            let target = format!("imap://127.0.0.1:{}", dovecot.port);
            let url = source.url();
            let login = graph.url.clone();
            let args = [
                "create",
                name,
                "--endpoint",
                &url,
                "--username",
                "admin@contoso.com",
                "--target",
                &target,
                "--auth",
                "xoauth2",
                "--tenant",
                &config.tenant,
                "--client-id",
                &config.client_id,
                "--login-endpoint",
                &login,
                "--mapping",
                csv.to_str().unwrap(),
                "--accept-terms",
            ];
            let case = Case {
                source,
                graph,
                dovecot,
                env,
                secrets,
                users,
            };
            case.run(&args).await.assert_code(0);
            case
        }

        pub async fn run(&self, args: &[&str]) -> Run {
            let mut command = self.env.command(args);
            command.env("WECHAT_ARCHIVER_PASSWORD_FILE", &self.secrets);
            tokio::task::spawn_blocking(move || command.output().unwrap().into())
                .await
                .unwrap()
        }

        pub async fn sync(&self) -> Run {
            self.run(&["sync", "--since", SINCE, "--until", UNTIL, "--json"])
                .await
        }

        /// A sync that must succeed; otherwise the failures the ledger
        /// kept and Dovecot's log say why.
        pub async fn sync_ok(&self) -> Run {
            let run = self.sync().await;
            if run.code != 0 {
                let status = self.run(&["status", "--json"]).await;
                panic!(
                    "sync exited {}:\n{}\nproblems: {}\ndovecot:\n{}",
                    run.code,
                    run.stderr,
                    status.json()["connectors"][0]["problems"],
                    self.dovecot.logs()
                );
            }
            run
        }

        /// Every expected copy is in its user's archive folder once, intact.
        pub fn assert_every_copy_once(&self) -> usize {
            let dataset = self.source.dataset();
            let items = dataset.items_in_window(t(SINCE), t(UNTIL));
            let mut total = 0;
            for user in &self.users {
                let wanted: BTreeSet<String> = items
                    .iter()
                    .filter(|i| {
                        dataset
                            .expected_mailboxes(i, true, true)
                            .contains(&user.to_lowercase())
                    })
                    .map(|i| i.id.to_string())
                    .collect();
                let fetched = self
                    .dovecot
                    .fetch_all(user, "WeChat Archiver")
                    .unwrap_or_default();
                let found: Vec<String> = fetched.iter().filter_map(|m| m.item_id()).collect();
                assert_eq!(found.len(), wanted.len(), "{user}: {found:?}");
                assert_eq!(found.into_iter().collect::<BTreeSet<_>>(), wanted, "{user}");
                for message in &fetched {
                    let id = message.item_id().unwrap();
                    assert!(
                        message.body.ends_with(&dataset.content(&id).unwrap()),
                        "{id} in {user} is not intact"
                    );
                }
                total += wanted.len();
            }
            total
        }
    }

    /// Every file under the home (config, ledger, logs), as text.
    pub(crate) fn home_text(home: &Path) -> String {
        crate::support::files_under(home)
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_connector_created_with_xoauth2_lands_every_copy_once_and_renews_a_token_that_dies_mid_run()
     {
        let case = Case::start(60, None).await;
        // The token dies once Dovecot has checked it for two logins: the
        // other mailboxes' logins are refused until a new one is fetched.
        case.graph.revoke_tokens_after_introspections(2);
        let first = case.sync_ok().await;
        let copies = case.assert_every_copy_once();
        assert!(copies > 0 && case.users.len() > 2, "{copies} copies");
        let stats = case.graph.stats();
        assert_eq!(
            stats.token_requests, 2,
            "one token, cached for every login, and one after it died: {stats:?}"
        );
        assert!(
            stats.rejected_tokens >= 1,
            "Dovecot was never refused the dead token: {stats:?}"
        );

        let again = case.sync_ok().await;
        assert_eq!(
            case.assert_every_copy_once(),
            copies,
            "the rerun wrote again"
        );

        let status = case.run(&["status", "--json"]).await;
        status.assert_code(0);
        let login = status.json()["connectors"][0]["target_login"].clone();
        assert!(
            login.as_str().is_some_and(
                |l| l.contains("XOAUTH2") && l.contains(&GraphConfig::default().client_id)
            ),
            "{login}"
        );
        let secret = GraphConfig::default().client_secret;
        for (what, text) in [
            ("the home (config, ledger, logs)", home_text(&case.env.home)),
            ("the output", format!("{first:?}{again:?}{status:?}")),
        ] {
            assert!(!text.contains(&secret), "the client secret is in {what}");
        }
        let config = std::fs::read_to_string(case.env.home.join("config.toml")).unwrap();
        assert!(config.contains("auth = \"xoauth2\""), "{config}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_wrong_client_secret_fails_the_run_saying_so_and_writes_nothing() {
        let case = Case::start(10, Some("not-the-secret")).await;
        let run = case.sync().await;
        assert_ne!(run.code, 0, "{run:?}");
        let reason = run.json()["failures"][0]["reason"].clone();
        assert!(
            reason.as_str().is_some_and(|r| r.contains("AADSTS7000215")
                && r.contains("client secret is wrong or expired")
                && r.contains("wechat-archiver login")),
            "{reason}"
        );
        assert!(!format!("{run:?}").contains("not-the-secret"), "{run:?}");
        assert_eq!(case.graph.stats().introspections, 0);
        for user in &case.users {
            assert!(
                case.dovecot
                    .fetch_all(user, "WeChat Archiver")
                    .unwrap_or_default()
                    .is_empty()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_server_refusing_even_a_fresh_token_fails_the_run_with_what_the_admin_must_grant() {
        let case = Case::start(10, None).await;
        case.graph.withhold_imap_access();
        let run = case.sync().await;
        assert_ne!(run.code, 0, "{run:?}");
        let reason = run.json()["failures"][0]["reason"].clone();
        assert!(
            reason
                .as_str()
                .is_some_and(|r| r.contains("IMAP.AccessAsApp")
                    && r.contains("New-ServicePrincipal")
                    && r.contains("Add-MailboxPermission")),
            "{reason}"
        );
        assert_eq!(
            case.graph.stats().token_requests,
            2,
            "the refused token was replaced once, not again and again"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn keyring_the_client_secret_login_stores_drives_the_xoauth2_sync() {
        use crate::login_support::{require_secret_service, unique_connector};
        require_secret_service();
        let name = unique_connector("xoauth");
        let case = Case::start_named(&name, 10, None).await;
        let secret = GraphConfig::default().client_secret;
        let mut login =
            case.env
                .command(["login", "--connector", &name, "--password-stdin", "--json"]);
        login.stdin(std::process::Stdio::piped());
        let mut child = login
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        write!(child.stdin.take().unwrap(), "{PASSWORD}\n{secret}\n").unwrap();
        let login: Run = child.wait_with_output().unwrap().into();
        login.assert_code(0);
        assert_eq!(
            login.json()["stored"][1]["secret"],
            "target_secret",
            "{login:?}"
        );

        // No password file: both secrets come from the keyring.
        let mut command = case
            .env
            .command(["sync", "--since", SINCE, "--until", UNTIL, "--json"]);
        let run: Run = tokio::task::spawn_blocking(move || command.output().unwrap().into())
            .await
            .unwrap();
        run.assert_code(0);
        assert!(case.assert_every_copy_once() > 0);
        assert!(!format!("{login:?}{run:?}").contains(&secret));
        case.run(&["login", "--connector", &name, "--forget"])
            .await
            .assert_code(0);
    }
}

#[test]
fn create_checks_what_xoauth2_needs_and_keeps_it_in_the_connector() {
    let env = crate::support::TestEnv::new();
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            name,
            "--endpoint",
            "https://archive.example.net",
            "--username",
            "admin@contoso.com",
            "--target",
            "imaps://outlook.office365.com:993",
            "--accept-terms",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let refusals = [
        (&["--auth", "xoauth2", "--client-id", "app"][..], "--tenant"),
        (
            &["--auth", "xoauth2", "--tenant", "contoso.onmicrosoft.com"][..],
            "--client-id",
        ),
        (
            &[
                "--auth",
                "xoauth2",
                "--tenant",
                "t",
                "--client-id",
                "a",
                "--target-user",
                "x",
            ][..],
            "--target-user",
        ),
        (
            &["--tenant", "t", "--target-user", "x"][..],
            "--auth xoauth2",
        ),
    ];
    for (extra, named) in refusals {
        let run = create("bad", extra);
        assert_eq!(run.code, 2, "{extra:?}: {run:?}");
        assert!(run.stderr.contains(named), "{extra:?}: {}", run.stderr);
    }
    create(
        "exo",
        &[
            "--auth",
            "xoauth2",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--client-id",
            "app-id",
            "--cloud",
            "usgov",
        ],
    )
    .assert_code(0);
    let config = std::fs::read_to_string(env.home.join("config.toml")).unwrap();
    for wanted in [
        "auth = \"xoauth2\"",
        "tenant = \"contoso.onmicrosoft.com\"",
        "client_id = \"app-id\"",
        "cloud = \"usgov\"",
    ] {
        assert!(config.contains(wanted), "{wanted} missing:\n{config}");
    }
    assert!(!config.contains("target_user"), "{config}");
}
