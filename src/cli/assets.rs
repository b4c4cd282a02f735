//! `completions/` and `man/`, generated from the clap definition. The test
//! below fails when the committed files are stale; run it with
//! `UPDATE_ASSETS=1` to regenerate them.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;
use super::manual;

/// Every generated file: its path under the crate root and its content.
pub fn generate() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "wechat-archiver", &mut out);
        let name = match shell {
            Shell::Bash => "wechat-archiver.bash".to_owned(),
            Shell::Zsh => "_wechat-archiver".to_owned(),
            Shell::Fish => "wechat-archiver.fish".to_owned(),
            Shell::PowerShell => "_wechat-archiver.ps1".to_owned(),
            _ => "wechat-archiver.elv".to_owned(),
        };
        files.push((Path::new("completions").join(name), out));
    }
    let mut pages = Vec::new();
    man_pages(&Cli::command(), "wechat-archiver", &mut pages);
    let names: Vec<String> = pages.iter().map(|(name, _)| name.clone()).collect();
    for (name, cmd) in pages {
        let mut out = Vec::new();
        if clap_mangen::Man::new(cmd).render(&mut out).is_ok() {
            let page = with_admin_sections(&out, &manual::render(&name, &names));
            files.push((Path::new("man").join(format!("{name}.1")), page));
        }
    }
    files
}

/// Every visible command with its page name (`wechat-archiver-map-validate`).
fn man_pages(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, clap::Command)>) {
    let cmd = cmd.clone().name(name.to_owned());
    pages.push((name.to_owned(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// clap's page with the admin sections before VERSION (or at the end).
fn with_admin_sections(page: &[u8], extra: &str) -> Vec<u8> {
    let at = page
        .windows(12)
        .position(|w| w == b"\n.SH VERSION")
        .map_or(page.len(), |i| i + 1);
    [&page[..at], extra.as_bytes(), &page[at..]].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_are_up_to_date() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let update = std::env::var_os("UPDATE_ASSETS").is_some();
        let mut stale = Vec::new();
        for (path, content) in generate() {
            let full = root.join(&path);
            if update {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, &content).unwrap();
            } else if std::fs::read(&full).ok().as_deref() != Some(content.as_slice()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated files: {stale:?}; run `UPDATE_ASSETS=1 cargo test --bin wechat-archiver assets` and commit them"
        );
    }
}
