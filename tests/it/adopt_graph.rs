//! Adoption against the Graph simulator: a lost or older ledger finds the
//! copies with one paged listing per archive folder (pages of three, so a
//! client that does not follow `@odata.nextLink` misses copies) and writes
//! none twice; a second connector on the same mailboxes adopts and status
//! names the connector that wrote them; `ledger rebuild` and
//! `ledger check` over Graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wechat_archiver::simulator::Simulator;

use crate::graph_sync::{register_users, run, strings};
use crate::support::TestEnv;
use crate::support::graph_sim::{GraphSim, SimConfig as GraphConfig};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

const MIDDLE: &str = "2026-11-22T00:00:00Z";
const FOLDER: &str = "WeChat Archiver";
const ITEM_ID_PROPERTY: &str = "String {b8f2c0d4-5e1a-4f7b-9c3d-776563686174} Name ItemId";

struct Case {
    source: Simulator,
    graph: GraphSim,
    config: GraphConfig,
    env: TestEnv,
    secrets: PathBuf,
}

impl Case {
    async fn new(items: usize) -> Case {
        let source = simulator(items, |_| {});
        let config = GraphConfig::default();
        let graph = GraphSim::start(config.clone()).await;
        register_users(&graph, &source);
        let env = TestEnv::new();
        let secrets = env.password_file(PASSWORD, &config.client_secret);
        let case = Case {
            source,
            graph,
            config,
            env,
            secrets,
        };
        case.create("c").await;
        case
    }

    async fn create(&self, name: &str) {
        let csv = self.env.path("mapping.csv");
        self.source.dataset().write_mapping_csv(&csv).unwrap();
        let target = format!("graph:{}", self.config.tenant);
        let url = self.source.url();
        let args = strings(&[
            "create",
            name,
            "--endpoint",
            &url,
            "--username",
            "admin@contoso.com",
            "--target",
            &target,
            "--client-id",
            &self.config.client_id,
            "--graph-endpoint",
            &self.graph.url,
            "--login-endpoint",
            &self.graph.url,
            "--mapping",
            csv.to_str().unwrap(),
            "--accept-terms",
        ]);
        run(&self.env, args, &self.secrets).await.assert_code(0);
    }

    async fn cmd(&self, args: &[&str]) -> crate::support::Run {
        run(&self.env, strings(args), &self.secrets).await
    }

    async fn sync(&self, connector: &str, since: &str, until: &str) -> serde_json::Value {
        let run = self
            .cmd(&[
                "sync",
                "--connector",
                connector,
                "--since",
                since,
                "--until",
                until,
                "--json",
            ])
            .await;
        run.assert_code(0);
        run.json()
    }

    /// How many copies of each (mailbox, item) the archive folders hold.
    fn archive(&self) -> BTreeMap<(String, String), usize> {
        let mut copies = BTreeMap::new();
        let dataset = self.source.dataset();
        for user in dataset.users() {
            let Some(address) = &user.email else { continue };
            for m in self.graph.messages(address, FOLDER) {
                let id = m
                    .extended(ITEM_ID_PROPERTY)
                    .expect("a copy with its item id");
                *copies
                    .entry((address.to_lowercase(), id.to_owned()))
                    .or_insert(0) += 1;
            }
        }
        copies
    }

    /// Each copy the window should hold is there exactly once.
    fn assert_exact(&self) {
        let dataset = self.source.dataset();
        let expected: std::collections::BTreeSet<_> = dataset
            .items_in_window(t(SINCE), t(UNTIL))
            .iter()
            .flat_map(|item| {
                dataset
                    .expected_mailboxes(item, true, true)
                    .into_iter()
                    .map(|m| (m, item.id.to_string()))
            })
            .collect();
        let archive = self.archive();
        assert!(archive.values().all(|n| *n == 1), "duplicates: {archive:?}");
        assert_eq!(
            archive
                .into_keys()
                .collect::<std::collections::BTreeSet<_>>(),
            expected
        );
    }
}

fn ledger_files(home: &Path) -> Vec<PathBuf> {
    ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"]
        .iter()
        .map(|f| home.join(f))
        .filter(|p| p.exists())
        .collect()
}

fn replace_ledger(home: &Path, with: Option<&Path>) {
    for f in ledger_files(home) {
        std::fs::remove_file(f).unwrap();
    }
    if let Some(from) = with {
        for f in ledger_files(from) {
            std::fs::copy(&f, home.join(f.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_an_older_or_deleted_ledger_adopts_the_archive_and_never_duplicates() {
    let case = Case::new(60).await;
    let home = &case.env.home;
    case.sync("c", SINCE, MIDDLE).await;
    let backup = case.env.path("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for f in ledger_files(home) {
        std::fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
    }
    let newer = case.sync("c", MIDDLE, UNTIL).await;
    assert!(newer["written"].as_u64().unwrap() > 0, "{newer}");
    case.assert_exact();
    let total = case.archive().len() as u64;

    replace_ledger(home, Some(&backup));
    let restored = case.sync("c", SINCE, UNTIL).await;
    assert_eq!(restored["written"], 0, "{restored}");
    assert_eq!(restored["adopted"], newer["written"], "{restored}");
    case.assert_exact();

    replace_ledger(home, None);
    let lost = case.sync("c", SINCE, UNTIL).await;
    assert_eq!(lost["written"], 0, "{lost}");
    assert_eq!(lost["adopted"], total, "{lost}");
    case.assert_exact();

    // A normal run after that only reads each folder's mark.
    let before = case.graph.log().len();
    let normal = case.sync("c", SINCE, UNTIL).await;
    assert_eq!(normal["written"], 0);
    assert_eq!(normal["adopted"], 0);
    let listings = case.graph.log()[before..]
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/messages"))
        .count();
    let mailboxes = normal["mailboxes"].as_object().unwrap().len();
    assert!(
        listings <= 2 * mailboxes,
        "{listings} listings for {mailboxes} mailboxes"
    );

    let check = case.cmd(&["ledger", "check", "--json"]).await;
    check.assert_code(0);
    assert_eq!(check.json()["target_copies"], total);
}

/// A second connector on the same mailboxes adopts every copy and status
/// names the connector that wrote them; after losing its ledger,
/// `ledger rebuild` records the copies without writing and
/// `ledger check` agrees.
#[tokio::test(flavor = "multi_thread")]
async fn graph_a_second_connector_adopts_warns_and_rebuilds() {
    let case = Case::new(50).await;
    let first = case.sync("c", SINCE, UNTIL).await;
    let written = first["written"].as_u64().unwrap();

    case.create("c2").await;
    let second = case.sync("c2", SINCE, UNTIL).await;
    assert_eq!(second["written"], 0, "{second}");
    assert_eq!(second["adopted"], written, "{second}");
    case.assert_exact();
    let status = case.cmd(&["status", "--connector", "c2", "--json"]).await;
    status.assert_code(0);
    let foreign = &status.json()["connectors"][0]["foreign_copies"];
    let adopted: u64 = foreign
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["written_by"], "c");
            f["copies"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(adopted, written);

    replace_ledger(&case.env.home, None);
    let rebuilt = case
        .cmd(&[
            "ledger",
            "rebuild",
            "--connector",
            "c",
            "--since",
            SINCE,
            "--json",
        ])
        .await;
    rebuilt.assert_code(0);
    let rebuilt = rebuilt.json();
    assert_eq!(rebuilt["written"], 0, "{rebuilt}");
    assert_eq!(rebuilt["adopted"], written, "{rebuilt}");
    case.assert_exact();
    let check = case.cmd(&["ledger", "check", "--connector", "c"]).await;
    check.assert_code(0);
    assert!(
        check.stdout.contains("the ledger and the target agree"),
        "{}",
        check.stdout
    );
}
