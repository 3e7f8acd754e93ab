//! The man page and the shell completions of `bittorrent-tracker`, both
//! generated from the clap definitions in [`crate::cli`], so they list
//! exactly the flags the binary takes (`--man-page`, `--completions SHELL`).

use crate::cli::Cli;
use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use std::io::{self, Write};

/// The sections after the options: what the flags alone do not say.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "SIGNALS",
        &[
            "SIGHUP reads the allow and deny lists and the TLS certificate and key again; the old ones stay in force if the new ones fail to load.",
            "SIGINT and SIGTERM stop the tracker; with --state, the swarms are saved first, and a failed last save makes the exit code 1.",
        ],
    ),
    (
        "EXIT STATUS",
        &[
            "The tracker: 0 when stopped by a signal with everything saved; 1 when it could not start (the one line it prints says why and what to do) or could not save its state at the end; 2 for a mistake on the command line or in the configuration file.",
            "The announce and scrape commands: 0 when the tracker answered; 1 when it refused, timed out or was not there; 2 for bad input, such as a hash that is not 40 hex digits.",
        ],
    ),
    (
        "FILES",
        &[
            "The configuration file is whatever --config names; --print-config writes one with every key documented. A systemd unit is in the source at contrib/systemd/bittorrent-tracker.service; it keeps the state file in /var/lib/bittorrent-tracker.",
        ],
    ),
    (
        "SEE ALSO",
        &[
            "In the source tree: README.md; docs/operating.md (running it as a service, metrics, lists, TLS, state, limits, logs); docs/configuration.md (every key of the file); docs/scaling.md; tuning.md (kernel, NIC and CPU settings).",
        ],
    ),
];

/// The man page, in roff: name, synopsis, description and options of the
/// tracker, then each client command with its own options, then signals,
/// exit status, files and where the rest of the documentation is.
pub fn write_man_page(out: &mut dyn Write) -> io::Result<()> {
    let cmd = Cli::command();
    let man = Man::new(cmd.clone());
    man.render_title(out)?;
    for render in [
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        out.write_all(&section(&man, render, true)?)?;
    }
    for sub in cmd.get_subcommands() {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        let page = Man::new(sub.clone().display_name(name.clone()).bin_name(name));
        let mut roff = Roff::new();
        let heading = format!("COMMAND: {}", sub.get_name().to_uppercase());
        roff.control("SH", [heading.as_str()]);
        if let Some(about) = sub.get_about() {
            roff.text([roman(about.to_string())]);
        }
        roff.control("PP", []);
        out.write_all(strip(&roff.render(), true).as_bytes())?;
        for render in [Man::render_synopsis_section, Man::render_options_section] {
            out.write_all(&section(&page, render, false)?)?;
        }
    }
    let mut roff = Roff::new();
    for (heading, paragraphs) in SECTIONS {
        roff.control("SH", [*heading]);
        for (i, p) in paragraphs.iter().enumerate() {
            if i > 0 {
                roff.control("PP", []);
            }
            roff.text([roman(*p)]);
        }
    }
    roff.control("SH", ["VERSION"]);
    roff.text([bold(env!("CARGO_PKG_VERSION"))]);
    out.write_all(strip(&roff.render(), true).as_bytes())
}

/// The lines every render starts with (a definition the title's render
/// has already made).
fn preamble(line: &str) -> bool {
    line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")
}

/// One section of `man` as roff, without the preamble and, unless
/// `heading`, without its `.SH` line: a client command's synopsis and
/// options then sit under that command's own heading.
fn section(
    man: &Man,
    render: fn(&Man, &mut dyn Write) -> io::Result<()>,
    heading: bool,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    render(man, &mut buf)?;
    Ok(strip(&String::from_utf8_lossy(&buf), heading).into_bytes())
}

/// Roff without the preamble lines and, unless `heading`, without its
/// first `.SH` line.
fn strip(roff: &str, heading: bool) -> String {
    let mut out = String::new();
    let mut dropped = heading;
    for line in roff.lines() {
        if preamble(line) || (!dropped && line.starts_with(".SH ")) {
            dropped |= line.starts_with(".SH ");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The completion script of `shell` for `bittorrent-tracker` and its
/// client commands.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "bittorrent-tracker", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_loses_its_preamble_and_if_asked_its_heading() {
        let render = |_: &Man, w: &mut dyn Write| -> io::Result<()> {
            w.write_all(b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH OPTIONS\n.TP\nx\n")
        };
        let man = Man::new(Cli::command());
        assert_eq!(section(&man, render, false).unwrap(), b".TP\nx\n");
        assert_eq!(
            section(&man, render, true).unwrap(),
            b".SH OPTIONS\n.TP\nx\n"
        );
    }
}
