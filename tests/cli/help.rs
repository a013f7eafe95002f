//! `--help` on the binary and every subcommand (SPEC §1: it explains the flags).

use predicates::prelude::*;

use crate::common::{COMMANDS, revgrad};

#[test]
fn top_level_help_lists_every_command() {
    let assert = revgrad().arg("--help").assert().success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout);
    for cmd in COMMANDS {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}

#[test]
fn every_subcommand_help_exits_0_and_names_its_flags() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "tune",
            &[
                "--output",
                "--outer-steps",
                "--best",
                "--hypers-out",
                "--inputs-out",
                "--images-out",
                "--quiet",
            ],
        ),
        (
            "search",
            &["--trials", "--seconds", "--output", "--best", "--quiet"],
        ),
        ("hypergrad", &["--json", "--quiet"]),
        (
            "train",
            &["--exact", "--save", "--json", "--seeds", "--quiet"],
        ),
        (
            "verify-reversal",
            &["--alphas", "--gammas", "--steps", "--per-step", "--output"],
        ),
        ("check-grad", &["--tolerance", "--quiet"]),
    ];
    for (cmd, flags) in cases {
        let assert = revgrad().args([cmd, "--help"]).assert().success();
        let out = String::from_utf8_lossy(&assert.get_output().stdout);
        assert!(out.contains("Usage"), "{cmd} --help:\n{out}");
        assert!(out.contains("CONFIG"), "{cmd} --help:\n{out}");
        for flag in flags {
            assert!(out.contains(flag), "{cmd} --help lacks {flag}:\n{out}");
        }
    }
}

#[test]
fn version_exits_0() {
    revgrad()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn no_command_is_a_usage_error() {
    revgrad()
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("Usage"));
}
