//! The progress bar, seen on a terminal: `script` (util-linux, essential on Debian) runs a
//! command on a pseudo-terminal and copies what it writes there. Every long-running
//! command shows the phase under way and its steps (`forward 4802/20000 · ETA 1s`), tune
//! its iterations as well; `--quiet` hides the bar; the result on stdout is unchanged.

use std::process::Command;

use serde_json::json;

use crate::common::{Scratch, p, revgrad_path, set, small_config};

/// What `revgrad ARGS` writes on a terminal (stdout and stderr together), and whether it
/// exited 0.
fn on_a_terminal(args: &[&str]) -> (String, bool) {
    let mut line = revgrad_path().to_string();
    for a in args {
        line += &format!(" '{a}'");
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("script runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// The small config at T = `steps` (at 20,000, about a second per exact pass: several
/// redraws).
fn long(dir: &Scratch, steps: usize) -> std::path::PathBuf {
    let mut c = small_config();
    set(&mut c, "inner.steps", json!(steps));
    set(&mut c, "inner.alpha", json!(0.1));
    dir.config("long.json", &c)
}

#[test]
fn long_commands_show_their_phases_on_a_terminal_and_quiet_hides_them() {
    let dir = Scratch::new();
    let cfg = long(&dir, 20_000);
    let cases: [(&[&str], &[&str], &str); 3] = [
        (
            &["hypergrad", p(&cfg)],
            &["forward ", "reverse ", "/20000", "ETA "],
            "reversal exact",
        ),
        (&["train", p(&cfg)], &["train ", "/20000"], "validation"),
        (
            &["tune", p(&cfg), "--outer-steps", "1"],
            &["/2 iterations", "forward ", "reverse ", "/20000"],
            "iteration,",
        ),
    ];
    for (args, parts, result) in cases {
        let (shown, ok) = on_a_terminal(args);
        assert!(ok, "{args:?}: {shown}");
        for part in parts {
            assert!(shown.contains(part), "{args:?} should show {part}: {shown}");
        }
        assert!(shown.contains(result), "{args:?}: {shown}");
        let mut quiet = args.to_vec();
        quiet.push("--quiet");
        let (shown, ok) = on_a_terminal(&quiet);
        assert!(ok, "{quiet:?}: {shown}");
        assert!(!shown.contains("/20000"), "{quiet:?} shows a bar: {shown}");
        assert!(shown.contains(result), "{quiet:?}: {shown}");
    }
}

#[test]
fn check_grad_shows_the_phases_of_all_its_runs() {
    let dir = Scratch::new();
    // Its many runs (reversals, stored trajectory, finite differences) at 4,000 steps each.
    let cfg = long(&dir, 4_000);
    let (shown, ok) = on_a_terminal(&["check-grad", p(&cfg)]);
    assert!(ok, "{shown}");
    for part in ["forward ", "reverse ", "/4000", "bit-identical"] {
        assert!(shown.contains(part), "should show {part}: {shown}");
    }
}
