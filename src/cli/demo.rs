//! `wechat-archiver demo`: the main job on an embedded default. Starts the
//! bundled simulator on loopback, sets up a connector `demo` with a local
//! Maildir target, runs a full sync and shows the status.

use std::path::Path;

use wechat_archiver::config::{Config, ConnectorConfig, DEFAULT_FOLDER, Home};
use wechat_archiver::lock::ConnectorLock;
use wechat_archiver::secrets::{ConnectorSecrets, Secret};
use wechat_archiver::simulator::{SimConfig, Simulator, serve_forever};
use wechat_archiver::types::Mailbox;

use super::args::{DemoArgs, SimulateArgs, StatusArgs, SyncArgs};
use super::{CliError, CommandResult, Context, ExitStatus};

const CONNECTOR: &str = "demo";
const FALLBACK: &str = "wechat-unmapped@contoso.com";

pub async fn run(args: &DemoArgs) -> CommandResult {
    let dir = std::path::absolute(&args.dir).unwrap_or(args.dir.clone());
    let ctx = Context {
        home: Home::at(&dir.join("home")),
    };
    let archive = dir.join("archive");
    let config = SimConfig {
        seed: args.seed,
        items: args.items,
        ..SimConfig::default()
    }
    .ending_now();
    let password = config.password.clone();
    let sim = Simulator::start(config)
        .map_err(|e| CliError::failure(format!("cannot start the simulator: {e}")))?;
    eprintln!("TeleMessage simulator listening on {}", sim.url());
    let mapping = dir.join("mapping.csv");
    std::fs::create_dir_all(&dir)
        .and_then(|()| sim.dataset().write_mapping_csv(&mapping))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", mapping.display())))?;
    let connector = demo_connector(&sim.url(), &archive, &mapping)?;
    save_connector(&ctx.home, &connector)?;
    let secrets = ConnectorSecrets {
        telemessage_password: Secret::new(password),
        target_secret: None,
    };
    let sync_args = SyncArgs {
        connector: Some(CONNECTOR.into()),
        since: None,
        until: None,
        dry_run: false,
        retry_unmapped: false,
        json: false,
    };
    let report = {
        let _lock = ConnectorLock::acquire(&ctx.home.lock_file(CONNECTOR), CONNECTOR)
            .map_err(|e| CliError::new(ExitStatus::Locked, e))?;
        super::sync::sync_connector(&ctx, CONNECTOR, &connector, &secrets, &sync_args).await?
    };
    super::sync::print_summary(&report);
    println!();
    let status_args = StatusArgs {
        connector: Some(CONNECTOR.into()),
        mailboxes: false,
        json: false,
    };
    super::status::run(&ctx, &status_args).await?;
    print_where(&archive, &ctx.home);
    sim.shutdown().await;
    Ok(if report.failed > 0 {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Ok
    })
}

fn demo_connector(
    endpoint: &str,
    archive: &Path,
    mapping: &Path,
) -> Result<ConnectorConfig, CliError> {
    Ok(ConnectorConfig {
        source: Default::default(),
        domains: Vec::new(),
        mailbox_from_recipient: false,
        endpoint: endpoint.to_owned(),
        username: SimConfig::default().username,
        target: format!("maildir:{}", archive.display()),
        mapping: Some(mapping.to_path_buf()),
        auto_mapping: true,
        default_region: Some("CN".into()),
        folder: DEFAULT_FOLDER.into(),
        fallback_mailbox: Some(Mailbox::parse(FALLBACK).map_err(CliError::failure)?),
        target_user: None,
        client_id: None,
        cloud: Default::default(),
        graph_endpoint: None,
        login_endpoint: None,
        auth: Default::default(),
        tenant: None,
        large_item_fallback: None,
        terms_accepted_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// Saves the demo connector; a re-run only updates its endpoint (the
/// simulator's port changes), so the ledger carries over.
fn save_connector(home: &Home, connector: &ConnectorConfig) -> Result<(), CliError> {
    let mut config: Config = home.load()?;
    let entry = config
        .connectors
        .entry(CONNECTOR.into())
        .or_insert_with(|| connector.clone());
    entry.endpoint = connector.endpoint.clone();
    home.save(&config)?;
    Ok(())
}

fn print_where(archive: &Path, home: &Home) {
    println!("The archive is in {}", archive.display());
    println!(
        "  one Maildir++ root per mailbox; the archive folder is \".{DEFAULT_FOLDER}\" inside each."
    );
    let example = std::fs::read_dir(archive)
        .ok()
        .and_then(|mut entries| entries.find_map(|e| e.ok()))
        .map(|e| e.path().join(format!(".{DEFAULT_FOLDER}")));
    if let Some(folder) = example {
        println!("  open one with:  mutt -f \"{}\"", folder.display());
    }
    println!("Configuration, ledger and logs: {}", home.root().display());
    println!("Run the demo again: nothing new is written (the ledger knows every copy).");
}

/// The hidden `simulate` command: the simulator as a server of its own.
pub async fn simulate(args: &SimulateArgs) -> CommandResult {
    let mut config = SimConfig::default();
    config.apply_overrides(&args.set).map_err(|e| {
        CliError::usage(e).hint("see the simulator's options in src/simulator/config.rs")
    })?;
    if args.ending_now {
        config = config.ending_now();
    }
    serve_forever(config, args.listen)
        .await
        .map_err(|e| CliError::failure(format!("the simulator stopped: {e}")))?;
    Ok(ExitStatus::Ok)
}
