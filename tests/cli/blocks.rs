//! Hyperparameter blocks (SPEC §2.3) end to end: `tune` with shaped blocks (§4.1 CSV and
//! §4.2 `--hypers-out`), `--best` with every entry, `hypergrad --json` shapes (§4.3),
//! `check-grad` on blocks, schedules of equal knots, and bad block specs (§5).
//!
//! The network of `small_config()` is 64-8-10: W0 is 64×8 (512 entries), b0 8, W1 8×10
//! (80), b1 10.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{
    Scratch, TUNE_HEADER, Table, assert_header, first_rejecting_tune, json_of, p, revgrad,
    same_f64, set, small_config, stdout_of,
};
use crate::errors::expect_exit_2;

/// SPEC §4.2 `--hypers-out` header.
const HYPERS_HEADER: &str = "iteration,name,group,knot,index,value,gradient";

/// Shape of W0 and W1 for hidden [8] on digits.
const W_SHAPES: [(usize, usize); 2] = [(64, 8), (8, 10)];
/// Entries per block of [`blocks_config`]: α per array × 3 knots, γ per layer, l2 per
/// weight, init_scale per array.
const ALPHA_ENTRIES: usize = 4 * 3;
const GAMMA_ENTRIES: usize = 2;
const L2_ENTRIES: usize = 64 * 8 + 8 * 10;
const INIT_SCALE_ENTRIES: usize = 4;
const ALL_ENTRIES: usize = ALPHA_ENTRIES + GAMMA_ENTRIES + L2_ENTRIES + INIT_SCALE_ENTRIES;

/// The small config with one block of each shape, all four tuned, 2 outer steps.
fn blocks_config() -> Value {
    let mut c = small_config();
    set(
        &mut c,
        "inner.alpha",
        json!({"per": "array", "knots": 3, "init": 0.3}),
    );
    set(&mut c, "inner.gamma", json!({"per": "layer", "init": 0.8}));
    set(&mut c, "inner.l2", json!({"per": "weight", "init": 1e-3}));
    set(
        &mut c,
        "model.init_scale",
        json!({"per": "array", "init": 1.0}),
    );
    set(
        &mut c,
        "outer.tune",
        json!(["alpha", "gamma", "l2", "init_scale"]),
    );
    set(&mut c, "outer.steps", json!(2));
    c
}

/// One `--hypers-out` row, parsed.
#[derive(Debug, Clone)]
struct Entry {
    iteration: usize,
    name: String,
    group: String,
    knot: usize,
    index: Option<usize>,
    value: f64,
    gradient: Option<f64>,
}

fn parse_hypers_out(bytes: &[u8]) -> Vec<Entry> {
    assert_header(bytes, HYPERS_HEADER);
    let t = Table::parse(bytes);
    let opt = |s: &str, what: &str| -> Option<f64> {
        (!s.is_empty()).then(|| {
            s.parse()
                .unwrap_or_else(|_| panic!("{what} {s:?} is not a number"))
        })
    };
    t.rows
        .iter()
        .map(|r| Entry {
            iteration: t.cell(r, "iteration").parse().expect("iteration"),
            name: t.cell(r, "name").to_owned(),
            group: t.cell(r, "group").to_owned(),
            knot: t.cell(r, "knot").parse().expect("knot"),
            index: (!t.cell(r, "index").is_empty())
                .then(|| t.cell(r, "index").parse().expect("index")),
            value: t.num(r, "value"),
            gradient: opt(t.cell(r, "gradient"), "gradient"),
        })
        .collect()
}

/// The `(name, group, knot, index)` of every entry of one iteration of [`blocks_config`],
/// sorted.
fn expected_entry_keys() -> Vec<(String, String, usize, Option<usize>)> {
    let mut keys = Vec::new();
    let arrays = ["W0", "b0", "W1", "b1"];
    for knot in 0..3 {
        for g in arrays {
            keys.push(("alpha".into(), g.into(), knot, None));
        }
    }
    for g in ["layer0", "layer1"] {
        keys.push(("gamma".into(), g.into(), 0, None));
    }
    for (l, (rows, cols)) in W_SHAPES.iter().enumerate() {
        for i in 0..rows * cols {
            keys.push(("l2".into(), format!("W{l}"), 0, Some(i)));
        }
    }
    for g in arrays {
        keys.push(("init_scale".into(), g.into(), 0, None));
    }
    keys.sort();
    keys
}

/// Lowest `val_loss` over `ok` rows (the first one on ties, as the tuner keeps it).
fn best_row(t: &Table) -> usize {
    t.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| t.cell(r, "status") == "ok")
        .min_by(|a, b| t.num(a.1, "val_loss").total_cmp(&t.num(b.1, "val_loss")))
        .map(|(i, _)| i)
        .expect("at least iteration 0 is ok")
}

#[test]
fn tune_with_blocks_logs_means_sums_and_every_entry() {
    let dir = Scratch::new();
    let cfg = dir.config("blocks.json", &blocks_config());
    let hypers = dir.path("hypers.csv");
    let out = stdout_of(["tune", p(&cfg), "--quiet", "--hypers-out", p(&hypers)]);

    // The four momentum blocks, whatever their shapes: the v1 header.
    assert_header(&out, TUNE_HEADER);
    let t = Table::parse(&out);
    assert_eq!(t.rows.len(), 3, "2 outer steps + the start");
    let entries = parse_hypers_out(&std::fs::read(&hypers).expect("--hypers-out written"));
    assert_eq!(
        entries.len(),
        ALL_ENTRIES * t.rows.len(),
        "one row per entry of every tuned block per iteration"
    );

    let expected_keys = expected_entry_keys();
    for (i, row) in t.rows.iter().enumerate() {
        assert_eq!(t.cell(row, "iteration"), i.to_string());
        let of_it: Vec<&Entry> = entries.iter().filter(|e| e.iteration == i).collect();
        let mut keys: Vec<_> = of_it
            .iter()
            .map(|e| (e.name.clone(), e.group.clone(), e.knot, e.index))
            .collect();
        keys.sort();
        assert_eq!(keys, expected_keys, "iteration {i}: groups, knots, indices");

        let ok = t.cell(row, "status") == "ok";
        for name in ["alpha", "gamma", "l2", "init_scale"] {
            let block: Vec<&&Entry> = of_it.iter().filter(|e| e.name == name).collect();
            let n = block.len() as f64;
            let values: Vec<f64> = block.iter().map(|e| e.value).collect();
            // The CSV's block column is the mean of the entries. The two means may sum in
            // different orders: n ≤ 592 additions of terms ≤ max|v| differ by at most
            // n·2⁻⁵³·max|v| ≈ 7e-14·max|v|.
            let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let mean = values.iter().sum::<f64>() / n;
            let col = t.num(row, name);
            assert!(
                (mean - col).abs() <= 1e-12 * max,
                "iteration {i}: {name} column {col} vs mean of --hypers-out {mean}"
            );
            if ok {
                // d_<name> is the sum of the entries' gradients (the all-ones direction);
                // summation order again: error ≤ n·2⁻⁵³·Σ|g|.
                let grads: Vec<f64> = block
                    .iter()
                    .map(|e| e.gradient.expect("gradient on an ok row"))
                    .collect();
                let sum: f64 = grads.iter().sum();
                let abs: f64 = grads.iter().map(|g| g.abs()).sum();
                let d = t.num(row, &format!("d_{name}"));
                assert!(
                    (sum - d).abs() <= 1e-12 * abs,
                    "iteration {i}: d_{name} {d} vs summed gradients {sum}"
                );
            } else {
                assert!(
                    block.iter().all(|e| e.gradient.is_none()),
                    "rejected iteration {i}: {name} gradients must be empty"
                );
            }
        }
    }

    // Iteration 0 is the config's starting point: every entry is its `init`.
    for e in entries.iter().filter(|e| e.iteration == 0) {
        let init = match e.name.as_str() {
            "alpha" => 0.3,
            "gamma" => 0.8,
            "l2" => 1e-3,
            _ => 1.0,
        };
        assert!(same_f64(e.value, init), "{e:?} at the start");
    }
    // The tuner moves entries separately: iteration 1 has different values within a block
    // (one Adam step moves each entry by ±learning rate in warped coordinates, by the sign
    // of its own gradient).
    for name in ["alpha", "l2"] {
        let vals: Vec<u64> = entries
            .iter()
            .filter(|e| e.iteration == 1 && e.name == name)
            .map(|e| e.value.to_bits())
            .collect();
        assert!(
            vals.iter().any(|&v| v != vals[0]),
            "{name}: every entry moved alike, so the block was tuned as one scalar"
        );
    }
}

/// Configs next to the fixed-point edge (every entry of a per-layer α schedule near 500;
/// 550 already overflows) at outer learning rate 0.5: the first Adam step moves each entry
/// by ×e^±0.5, and where a move goes upwards it overflows and the row is `rejected`. Which
/// config does is chaotic (see [`first_rejecting_tune`]).
fn rejecting_blocks_configs() -> Vec<Value> {
    [500.0, 450.0, 520.0, 400.0, 480.0, 350.0]
        .iter()
        .map(|&init| {
            let mut c = small_config();
            set(
                &mut c,
                "inner.alpha",
                json!({"per": "layer", "knots": 2, "init": init}),
            );
            set(&mut c, "outer.learning_rate", json!(0.5));
            set(&mut c, "outer.tune", json!(["alpha"]));
            set(&mut c, "outer.steps", json!(3));
            c
        })
        .collect()
}

#[test]
fn hypers_out_leaves_gradients_empty_on_rejected_rows() {
    let dir = Scratch::new();
    let hypers = dir.path("hypers.csv");
    let (_, out) = first_rejecting_tune(
        &dir,
        &rejecting_blocks_configs(),
        &["--hypers-out", p(&hypers)],
    );
    let t = Table::parse(&out);
    let entries = parse_hypers_out(&std::fs::read(&hypers).expect("--hypers-out written"));
    assert_eq!(
        entries.len(),
        4 * t.rows.len(),
        "α only: 2 layers × 2 knots"
    );
    let statuses: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "status")).collect();
    assert!(
        statuses.contains(&"rejected"),
        "this config should reject a step: {statuses:?}"
    );
    for (i, s) in statuses.iter().enumerate() {
        for e in entries.iter().filter(|e| e.iteration == i) {
            assert_eq!(
                e.gradient.is_some(),
                *s == "ok",
                "iteration {i} ({s}): {e:?}"
            );
        }
        if *s == "rejected" {
            let row = &t.rows[i];
            for c in ["val_loss", "d_alpha", "d_gamma", "d_l2", "d_init_scale"] {
                assert_eq!(t.cell(row, c), "", "rejected row {i}: {c}");
            }
        }
    }
}

#[test]
fn tune_best_writes_every_entry_and_reproduces_the_best_row() {
    let dir = Scratch::new();
    let cfg = dir.config("blocks.json", &blocks_config());
    let hypers = dir.path("hypers.csv");
    let best_path = dir.path("best.json");
    let out = stdout_of([
        "tune",
        p(&cfg),
        "--quiet",
        "--hypers-out",
        p(&hypers),
        "--best",
        p(&best_path),
    ]);
    let t = Table::parse(&out);
    let entries = parse_hypers_out(&std::fs::read(&hypers).expect("--hypers-out written"));
    let i = best_row(&t);
    assert!(i > 0, "the tune should improve on its start");
    let best_loss = t.num(&t.rows[i], "val_loss");
    let at_best: BTreeMap<(String, String, usize, Option<usize>), f64> = entries
        .iter()
        .filter(|e| e.iteration == i)
        .map(|e| ((e.name.clone(), e.group.clone(), e.knot, e.index), e.value))
        .collect();
    let value_of = |name: &str, group: &str, knot: usize, index: Option<usize>| -> f64 {
        at_best[&(name.to_owned(), group.to_owned(), knot, index)]
    };

    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(&best_path).expect("--best written"))
            .expect("--best is JSON");
    let arrays = ["W0", "b0", "W1", "b1"];

    // α: per array with 3 knots, `values` nested [knot][group].
    let alpha = &best["inner"]["alpha"];
    assert_eq!(alpha["per"], "array", "{alpha}");
    assert_eq!(alpha["knots"], 3, "{alpha}");
    assert!(alpha.get("init").is_none(), "--best writes values: {alpha}");
    let knots = alpha["values"].as_array().expect("[knot][group]");
    assert_eq!(knots.len(), 3);
    for (k, groups) in knots.iter().enumerate() {
        let groups = groups.as_array().expect("a list per knot");
        assert_eq!(groups.len(), 4);
        for (g, v) in groups.iter().enumerate() {
            let v = v.as_f64().expect("number");
            let want = value_of("alpha", arrays[g], k, None);
            assert!(
                same_f64(v, want),
                "α[{k}][{g}]: --best {v}, --hypers-out {want}"
            );
        }
    }
    // γ: per layer, `[group]`.
    let gamma = &best["inner"]["gamma"];
    assert_eq!(gamma["per"], "layer", "{gamma}");
    let g = gamma["values"].as_array().expect("[group]");
    assert_eq!(g.len(), 2);
    for (l, v) in g.iter().enumerate() {
        let v = v.as_f64().expect("number");
        assert!(same_f64(
            v,
            value_of("gamma", &format!("layer{l}"), 0, None)
        ));
    }
    // l2: per weight, {"W0": [[…]], "W1": [[…]]}; index = flat position row-major in W<l>.
    let l2 = &best["inner"]["l2"];
    assert_eq!(l2["per"], "weight");
    let m = l2["values"].as_object().expect("an object of matrices");
    assert_eq!(m.len(), 2, "W0 and W1 only (biases are not penalised)");
    for (l, (rows, cols)) in W_SHAPES.iter().enumerate() {
        let w = m[&format!("W{l}")].as_array().expect("rows");
        assert_eq!(w.len(), *rows, "W{l} rows");
        for (r, row) in w.iter().enumerate() {
            let row = row.as_array().expect("a row");
            assert_eq!(row.len(), *cols, "W{l} row {r}");
            for (c, v) in row.iter().enumerate() {
                let v = v.as_f64().expect("number");
                let want = value_of("l2", &format!("W{l}"), 0, Some(r * cols + c));
                assert!(same_f64(v, want), "l2 W{l}[{r}][{c}]: {v} vs {want}");
            }
        }
    }
    // init_scale: per array, `[group]`.
    let s = &best["model"]["init_scale"];
    assert_eq!(s["per"], "array");
    let s = s["values"].as_array().expect("[group]");
    assert_eq!(s.len(), 4);
    for (g, v) in s.iter().enumerate() {
        let v = v.as_f64().expect("number");
        assert!(same_f64(v, value_of("init_scale", arrays[g], 0, None)));
    }

    // The run is deterministic, so the best config reproduces the best row bit for bit,
    // through the exact forward run of hypergrad and of train --exact.
    let h = json_of(["hypergrad", p(&best_path), "--json"]);
    let hv = h["val_loss"].as_f64().expect("val_loss");
    assert!(
        same_f64(hv, best_loss),
        "hypergrad on --best: {hv}, best row: {best_loss}"
    );
    let tr = json_of(["train", p(&best_path), "--exact", "--json"]);
    let tv = tr["val_loss"].as_f64().expect("val_loss");
    assert!(
        same_f64(tv, best_loss),
        "train --exact on --best: {tv}, best row: {best_loss}"
    );
}

fn group_names(v: &Value) -> Vec<&str> {
    v["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {v}"))
        .iter()
        .map(|g| g.as_str().expect("group name"))
        .collect()
}

/// Every number of a nested `values`, in order.
fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Object(m) => m.values().for_each(|x| flatten(x, out)),
        other => out.push(other.as_f64().unwrap_or_else(|| panic!("{other}"))),
    }
}

fn shape_of(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(a) => {
            let mut s = vec![a.len()];
            if let Some(first) = a.first() {
                s.extend(shape_of(first));
            }
            s
        }
        _ => vec![],
    }
}

#[test]
fn hypergrad_json_reports_shaped_blocks_with_groups_and_nested_values() {
    let dir = Scratch::new();
    let mut c = blocks_config();
    // One scalar block among the shaped ones stays a plain number.
    set(&mut c, "model.init_scale", json!(0.9));
    let cfg = dir.config("blocks.json", &c);
    let j = json_of(["hypergrad", p(&cfg), "--json"]);
    let hp = &j["hyperparameters"];
    let hg = &j["hypergradients"];
    let arrays = vec!["W0", "b0", "W1", "b1"];

    assert!(same_f64(hp["init_scale"].as_f64().expect("scalar"), 0.9));
    assert!(hg["init_scale"].as_f64().expect("scalar").is_finite());

    let alpha = &hp["alpha"];
    assert_eq!(alpha["per"], "array");
    assert_eq!(alpha["knots"], 3);
    assert_eq!(group_names(alpha), arrays);
    assert_eq!(shape_of(&alpha["values"]), [3, 4], "[knot][group]");

    let gamma = &hp["gamma"];
    assert_eq!(gamma["per"], "layer");
    assert_eq!(gamma["knots"], 1);
    assert_eq!(group_names(gamma), ["layer0", "layer1"]);
    assert_eq!(
        shape_of(&gamma["values"]),
        [1, 2],
        "schedulable kinds nest [knot][group] (SPEC §4.3's example)"
    );

    let l2 = &hp["l2"];
    assert_eq!(l2["per"], "weight");
    assert!(l2.get("knots").is_none(), "l2 has no schedule: {l2}");
    assert_eq!(group_names(l2), ["W0", "W1"]);
    let lv = l2["values"].as_object().expect("matrices");
    assert_eq!(shape_of(&lv["W0"]), [64, 8]);
    assert_eq!(shape_of(&lv["W1"]), [8, 10]);

    for (name, init) in [("alpha", 0.3), ("gamma", 0.8), ("l2", 1e-3)] {
        let mut vals = Vec::new();
        flatten(&hp[name]["values"], &mut vals);
        assert!(vals.iter().all(|&v| same_f64(v, init)), "{name}: {vals:?}");
        // Hypergradients: same shape, groups and values, no `per`.
        let g = &hg[name];
        assert_eq!(group_names(g), group_names(&hp[name]), "{name}");
        assert!(g.get("per").is_none(), "{name}: {g}");
        assert_eq!(shape_of(&g["values"]), shape_of(&hp[name]["values"]));
        let mut grads = Vec::new();
        flatten(&g["values"], &mut grads);
        assert_eq!(grads.len(), vals.len(), "{name}");
        assert!(grads.iter().all(|v| v.is_finite()), "{name}: {grads:?}");
        assert!(grads.iter().any(|&v| v != 0.0), "{name}: all zero");
    }
    let (gw0, gw1) = (&hg["l2"]["values"]["W0"], &hg["l2"]["values"]["W1"]);
    assert_eq!(shape_of(gw0), [64, 8]);
    assert_eq!(shape_of(gw1), [8, 10]);

    // effective.gamma: γ's shape, each value a rational n/2^16 within one quantum of 0.8.
    let eff = &j["effective"]["gamma"];
    assert_eq!(group_names(eff), ["layer0", "layer1"]);
    assert_eq!(shape_of(&eff["values"]), [1, 2]);
    let mut ev = Vec::new();
    flatten(&eff["values"], &mut ev);
    for v in ev {
        let n = v * 65536.0;
        assert!(same_f64(n, n.round()), "effective γ {v} is not n/65536");
        assert!((v - 0.8).abs() <= 1.0 / 65536.0, "effective γ {v} vs 0.8");
    }
}

/// Runs `check-grad` on `config` and returns (exit code, stdout), checking the
/// stored-trajectory line: every one of `entries` hypergradient entries bit-identical.
fn check_grad_on(config: &Value, entries: usize) -> (Option<i32>, String) {
    let dir = Scratch::new();
    let cfg = dir.config("blocks.json", config);
    let output = revgrad()
        .args(["check-grad", p(&cfg)])
        .output()
        .expect("run revgrad");
    let out = String::from_utf8(output.stdout).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = out
        .lines()
        .find(|l| l.starts_with("stored trajectory:"))
        .unwrap_or_else(|| panic!("no stored-trajectory line:\n{out}\n{stderr}"));
    // "stored trajectory: S of N hypergradient entries bit-identical to the reversal"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[3], "of", "{line}");
    assert_eq!(words[2], words[4], "every entry bit-identical: {line}");
    assert_eq!(
        words[4],
        entries.to_string(),
        "every entry of every block: {line}"
    );
    for name in ["alpha", "gamma", "l2", "init_scale"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(name)),
            "no probe row for {name}:\n{out}"
        );
    }
    (output.status.code(), format!("{out}{stderr}"))
}

/// [`blocks_config`] over 20 inner steps.
fn check_grad_config() -> Value {
    let mut c = blocks_config();
    set(&mut c, "inner.steps", json!(20));
    c
}

#[test]
fn check_grad_on_blocks_passes_with_bit_identical_stored_trajectory() {
    // Every shape but per-weight l2 (see the next tests): α per array with 3 knots, γ per
    // layer, l2 per layer (W0, W1), init_scale per array.
    let mut c = check_grad_config();
    set(&mut c, "inner.l2", json!({"per": "layer", "init": 1e-3}));
    let (code, text) = check_grad_on(&c, ALPHA_ENTRIES + GAMMA_ENTRIES + 2 + INIT_SCALE_ENTRIES);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn check_grad_stored_trajectory_matches_every_per_weight_entry() {
    check_grad_on(&check_grad_config(), ALL_ENTRIES);
}

/// FAILS (program): check-grad's finite differences of a single per-weight l2 entry use a
/// step of 1e-6 (10⁻³ relative), where the fixed-point quantisation of the exact forward
/// run dominates; its Richardson error estimate (|R₁ − R₂| ≈ 1e-12) does not see that
/// noise, so `d_l2 entry 48 (W0, index 48)` is reported as FAIL (relative difference
/// 8.6e-3) and check-grad exits 1, although central differences with a 3e-4 step
/// (30%) agree with the reversal to 2e-5. Un-ignore when check-grad is fixed.
#[test]
fn check_grad_on_per_weight_l2_exits_0() {
    let (code, text) = check_grad_on(&check_grad_config(), ALL_ENTRIES);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn schedule_of_equal_entries_reproduces_the_scalar_run() {
    let dir = Scratch::new();
    let scalar = small_config();
    let mut sched = small_config();
    // α 0.5 as a 5-knot schedule, γ 0.9 as a per-layer 3-knot schedule: every entry equal.
    set(
        &mut sched,
        "inner.alpha",
        json!({"knots": 5, "values": [[0.5], [0.5], [0.5], [0.5], [0.5]]}),
    );
    set(
        &mut sched,
        "inner.gamma",
        json!({"per": "layer", "knots": 3, "values": [[0.9, 0.9], [0.9, 0.9], [0.9, 0.9]]}),
    );
    let a = dir.config("scalar.json", &scalar);
    let b = dir.config("sched.json", &sched);

    for flags in [&["--exact", "--json"][..], &["--json"][..]] {
        let ja = json_of(["train", p(&a)].iter().chain(flags));
        let jb = json_of(["train", p(&b)].iter().chain(flags));
        for k in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"] {
            let (x, y) = (ja[k].as_f64().expect(k), jb[k].as_f64().expect(k));
            assert!(
                same_f64(x, y),
                "train {flags:?} {k}: scalar {x}, schedule {y}"
            );
        }
    }

    let ha = json_of(["hypergrad", p(&a), "--json"]);
    let hb = json_of(["hypergrad", p(&b), "--json"]);
    let (x, y) = (
        ha["val_loss"].as_f64().expect("val_loss"),
        hb["val_loss"].as_f64().expect("val_loss"),
    );
    assert!(
        same_f64(x, y),
        "hypergrad val_loss: scalar {x}, schedule {y}"
    );
    // Chain rule: with equal knots, the knots' hypergradients add up to the scalar's. The
    // per-step terms are the same numbers added in another grouping: 50 steps of terms
    // bounded by Σ|term| differ by at most ~50·2⁻⁵³ relative; 1e-9 leaves room for the
    // Jacobian ratios J(h_t)/J(h_k) = 1 computed in floating point.
    for name in ["alpha", "gamma"] {
        let scalar_d = ha["hypergradients"][name].as_f64().expect("scalar");
        let mut parts = Vec::new();
        flatten(&hb["hypergradients"][name]["values"], &mut parts);
        let sum: f64 = parts.iter().sum();
        assert!(
            (sum - scalar_d).abs() <= 1e-9 * scalar_d.abs(),
            "d_{name}: scalar {scalar_d}, schedule sums to {sum} ({parts:?})"
        );
    }
}

/// A bad block entry exits 2 naming the file and the dotted field.
fn bad_block(field: &str, value: Value, needles: &[&str]) {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, field, value);
    let cfg = dir.config("bad.json", &c);
    let mut all = vec!["bad.json"];
    all.extend_from_slice(needles);
    expect_exit_2(&["train", p(&cfg)], &all);
}

#[test]
fn unknown_per_is_named_with_the_allowed_shapes() {
    bad_block(
        "inner.gamma",
        json!({"per": "row", "init": 0.5}),
        &["inner.gamma.per", "\"row\"", "\"layer\"", "\"array\""],
    );
}

#[test]
fn per_weight_is_for_l2_only() {
    bad_block(
        "inner.alpha",
        json!({"per": "weight", "init": 0.5}),
        &["inner.alpha.per", "weight"],
    );
    bad_block(
        "model.init_scale",
        json!({"per": "weight", "init": 1.0}),
        &["model.init_scale.per", "weight"],
    );
}

#[test]
fn knots_must_lie_in_one_to_inner_steps() {
    bad_block(
        "inner.alpha",
        json!({"knots": 0, "init": 0.5}),
        &["inner.alpha.knots", "50", "got 0"],
    );
    bad_block(
        "inner.gamma",
        json!({"knots": 51, "init": 0.5}),
        &["inner.gamma.knots", "50", "got 51"],
    );
}

#[test]
fn knots_are_refused_on_kinds_without_a_schedule() {
    bad_block(
        "inner.l2",
        json!({"per": "layer", "knots": 2, "init": 1e-3}),
        &["inner.l2.knots"],
    );
    bad_block(
        "model.init_scale",
        json!({"knots": 2, "init": 1.0}),
        &["model.init_scale.knots"],
    );
}

#[test]
fn values_of_the_wrong_shape_name_the_expected_shape_and_groups() {
    bad_block(
        "inner.gamma",
        json!({"per": "layer", "values": [0.9]}),
        &["inner.gamma.values", "2 values", "layer0, layer1"],
    );
    bad_block(
        "inner.alpha",
        json!({"per": "array", "knots": 2, "values": [[0.1, 0.1, 0.1, 0.1]]}),
        &[
            "inner.alpha.values",
            "2 knots",
            "4 values",
            "W0, b0, W1, b1",
        ],
    );
    bad_block(
        "inner.l2",
        json!({"per": "weight", "values": {"W0": [[0.1]]}}),
        &["inner.l2.values", "W0"],
    );
}

#[test]
fn a_value_out_of_range_is_named_by_its_position() {
    bad_block(
        "inner.gamma",
        json!({"per": "layer", "knots": 2, "values": [[0.9, 0.9], [1.2, 0.9]]}),
        &["inner.gamma.values[1][0] must be in [0, 0.9999], got 1.2"],
    );
}

#[test]
fn init_and_values_are_exclusive_and_one_is_required() {
    bad_block(
        "inner.gamma",
        json!({"per": "layer", "init": 0.9, "values": [0.9, 0.9]}),
        &["inner.gamma", "both", "init", "values"],
    );
    bad_block(
        "inner.gamma",
        json!({"per": "layer"}),
        &["inner.gamma", "init", "values"],
    );
}

#[test]
fn unknown_key_inside_a_block_is_named() {
    bad_block(
        "inner.alpha",
        json!({"per": "layer", "init": 0.5, "shape": "x"}),
        &["inner.alpha.shape", "per", "knots", "init", "values"],
    );
}
