//! What an installed binary tells about itself: `--help` points to the man
//! page, `--man-page` is roff that groff reads without a warning and that
//! shows every flag, and `--completions SHELL` completes every flag.

mod common;

use clap::CommandFactory;
use common::tool;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
        .args(args)
        .output()
        .expect("run bittorrent-tracker");
    assert!(
        out.status.success(),
        "bittorrent-tracker {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with `input` on its standard input; its output.
fn pipe(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Every long flag a user can type, the client commands' too, as
/// `--name`; hidden ones are left out.
fn long_flags() -> Vec<String> {
    let cmd = bittorrent_tracker::cli::Cli::command();
    let mut flags = Vec::new();
    for c in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            flags.extend(a.get_long().map(|l| format!("--{l}")));
        }
    }
    flags.push("--help".into());
    flags.sort();
    flags.dedup();
    assert!(flags.len() > 40, "the command has its flags: {flags:?}");
    flags
}

/// The flags of `flags` that `text` does not show as whole words.
fn missing<'a>(flags: &'a [String], text: &str) -> Vec<&'a str> {
    flags
        .iter()
        .filter(|f| {
            !text.match_indices(f.as_str()).any(|(i, _)| {
                let next = text[i + f.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        })
        .map(String::as_str)
        .collect()
}

#[test]
fn help_points_to_the_man_page_not_to_files_of_the_source() {
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("man bittorrent-tracker"),
        "--help names the man page:\n{help}"
    );
    assert!(help.contains("--completions bash"), "{help}");
    // The flags that write the documentation are not listed among the
    // options to run with, only named at the end.
    for hidden in ["--man-page", "--completions"] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(hidden)),
            "{hidden} is not among the options:\n{help}"
        );
    }
}

#[test]
fn the_man_page_is_roff_that_shows_every_flag() {
    let page = run(&["--man-page"]).stdout;
    let text = String::from_utf8(page.clone()).unwrap();
    assert!(text.contains(".TH bittorrent-tracker 1"), "{text}");
    // groff warns about anything it cannot read (-ww: every warning).
    let check = pipe(
        Command::new(tool("groff", "groff-base")).args(["-man", "-Tascii", "-ww", "-z"]),
        &page,
    );
    let warnings = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && warnings.trim().is_empty(),
        "groff -man -ww found the man page wrong ({}):\n{warnings}",
        check.status
    );
    // What `man` shows: wide lines and no hyphenation, so no flag is split.
    let shown = pipe(
        Command::new(tool("groff", "groff-base")).args([
            "-man",
            "-Tascii",
            "-rLL=400n",
            "-rHY=0",
            "-P-c",
            "-P-b",
            "-P-u",
        ]),
        &page,
    );
    assert!(shown.status.success());
    let shown = String::from_utf8(shown.stdout).unwrap();
    // Each flag opens an entry of its own (`--port <PORT>` or
    // `-p, --port <PORT>`), not only a place in the synopsis.
    let entries: String = shown
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let l = l
                .split_once(", ")
                .map_or(l, |(short, long)| match short.len() {
                    2 => long,
                    _ => l,
                });
            format!("{}\n", l.split(' ').next().unwrap())
        })
        .collect();
    let flags = long_flags();
    let lost = missing(&flags, &entries);
    assert!(
        lost.is_empty(),
        "the man page, as man shows it, describes no {lost:?}:\n{shown}"
    );
    for section in [
        "COMMAND: ANNOUNCE",
        "COMMAND: SCRAPE",
        "SIGNALS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(shown.contains(section), "no {section} in\n{shown}");
    }
    assert!(shown.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_cover_every_flag() {
    let flags = long_flags();
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(run(&["--completions", shell]).stdout).unwrap();
        // fish names a long flag `-l port`.
        let lost = match shell {
            "fish" => missing(&flags, &script.replace(" -l ", " --")),
            _ => missing(&flags, &script),
        };
        assert!(
            lost.is_empty(),
            "{shell} completions lack {lost:?}:\n{script}"
        );
        for command in ["announce", "scrape"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
    // The bash script is one bash reads.
    let bash = run(&["--completions", "bash"]).stdout;
    let check = pipe(Command::new("bash").arg("-n"), &bash);
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // An unknown shell is a usage error that lists the known ones.
    let out = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
        .args(["--completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}
