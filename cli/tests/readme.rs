//! README's `daf` commands, as a reader types them (issue #15 §3):
//! * every `daf …` the README shows (code blocks and inline code) parses with
//!   the real command line, placeholders (`REPO`, `FILES…`) filled in;
//! * the commands of "Opening a legacy (Gen2) repository" run as written,
//!   from the repository root, on the obs_test fixture.

use std::path::Path;
use std::process::Command;

use clap::Parser;
use daf_cli::cli::Cli;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// Shell-like words: whitespace separated, single and double quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every `daf …` command of the README: lines of ```sh blocks (with `\`
/// continuations joined and `#` comments dropped) and inline code spans.
fn commands(text: &str, inline: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let l = line.split(" #").next().unwrap_or_default().trim_end();
            if let Some(cont) = l.strip_suffix('\\') {
                pending.push_str(cont);
                continue;
            }
            pending.push_str(l);
            let full = std::mem::take(&mut pending);
            if full.trim_start().starts_with("daf ") {
                out.push(full.trim().to_string());
            }
            continue;
        }
        if !inline {
            continue;
        }
        // inline code spans
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && span.starts_with("daf ") {
                out.push(span.to_string());
            }
        }
    }
    out
}

/// Fills placeholders: `REPO`, `FILE` … → a path, `AREA` → an area, `…` → a
/// value; `[--opt V]` loses its brackets; `a|b` gives one command per choice.
fn concrete(cmd: &str) -> Vec<Vec<String>> {
    let mut variants: Vec<Vec<String>> = vec![vec![]];
    for w in words(cmd) {
        if w == "|" {
            break; // a shell pipe: the rest is another program
        }
        let w = w.trim_start_matches('[').trim_end_matches(']').to_string();
        let w = if w == "…" {
            "x".to_string()
        } else {
            w.trim_end_matches('…').to_string()
        };
        let placeholder = !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            && w.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        let choices: Vec<String> = if w == "AREA" {
            vec!["foundation".into()]
        } else if placeholder {
            vec!["x".into()]
        } else if w.contains('|') && !w.contains('=') {
            w.split('|').map(str::to_string).collect()
        } else {
            vec![w]
        };
        variants = variants
            .into_iter()
            .flat_map(|v| {
                choices.iter().map(move |c| {
                    let mut v = v.clone();
                    v.push(c.clone());
                    v
                })
            })
            .collect();
    }
    variants
}

#[test]
fn every_daf_command_in_the_readme_matches_the_cli() {
    let cmds = commands(&readme(), true);
    assert!(cmds.len() > 20, "{cmds:?}");
    let mut bad = Vec::new();
    for cmd in &cmds {
        for args in concrete(cmd) {
            // A span naming a command without arguments (`daf get`) is a
            // name: it must exist (its --help shows).
            let name_only = args
                .iter()
                .skip(1)
                .all(|a| a.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            let mut argv = args.clone();
            if name_only {
                // `daf ingest --run` names an option: check its command
                argv.truncate(
                    argv.iter()
                        .position(|a| a.starts_with("--"))
                        .unwrap_or(argv.len()),
                );
                argv.push("--help".into());
            }
            match Cli::try_parse_from(&argv) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ) => {}
                Err(e) => bad.push(format!("{cmd:?} as {argv:?}: {}", e.kind())),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "README commands the CLI refuses:\n{}",
        bad.join("\n")
    );
}

#[test]
fn readme_legacy_repository_commands_run_as_written() {
    let text = readme();
    let start = text
        .find("### Opening a legacy (Gen2) repository")
        .expect("README has the legacy section");
    let section = &text[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
    let cmds = commands(section, false);
    assert_eq!(cmds.len(), 7, "{cmds:?}");
    let mut outputs = Vec::new();
    for cmd in &cmds {
        let w = words(cmd);
        let o = Command::new(env!("CARGO_BIN_EXE_daf"))
            .args(&w[1..])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        outputs.push(String::from_utf8(o.stdout).unwrap());
    }
    assert_eq!(outputs[0], "visit\tfilter\n1\tg\n2\tg\n3\tr\n");
    let listed: Vec<&str> = outputs[1].lines().collect();
    assert_eq!(listed.len(), 3, "{}", outputs[1]);
    assert!(
        listed[2].starts_with("raw\t{filter: \"r\", visit: 3}\t\t"),
        "{}",
        outputs[1]
    );
    assert!(
        listed[2].ends_with("tests/data/obs_test/input/raw/raw_v3_fr.fits.gz"),
        "{}",
        outputs[1]
    );
    assert!(outputs[2].contains("- 1026\n- 2000"), "{}", outputs[2]);
    assert!(outputs[3].contains("EXPTIME: 15.0"), "{}", outputs[3]);
    assert!(outputs[4].contains("- 8\n- 3"), "{}", outputs[4]);
    assert!(outputs[5].contains("ccdExposureId: 1"), "{}", outputs[5]);
    assert!(outputs[6].contains("rows: 504"), "{}", outputs[6]);
}
