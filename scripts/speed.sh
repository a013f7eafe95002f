#!/usr/bin/env bash
# Whole-process speed of `hypergrad` and `train` on 1 and 2 threads, interleaved, medians.
#
#   scripts/speed.sh configs/speed/digits.json [ROUNDS]
#
# Builds the release binary, then runs the four commands (hypergrad/train × 1/2 threads)
# ROUNDS times (default 3), interleaved so they share the machine's state, and prints each
# median with its runs, the hypergrad/train ratios and the 1 → 2 thread speed-ups. The
# README's "Measurements" section was made with it.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: scripts/speed.sh CONFIG [ROUNDS]}
rounds=${2:-3}
cargo build --release --quiet
bin=target/release/revgrad
out=$(mktemp)
trap 'rm -f "$out" "$out.t"' EXIT
for _ in $(seq "$rounds"); do
  for threads in 1 2; do
    for cmd in hypergrad train; do
      /usr/bin/time -o "$out.t" -f "%e" "$bin" --threads "$threads" "$cmd" "$config" >/dev/null 2>&1
      echo "$cmd $threads $(tail -1 "$out.t")" >>"$out"
    done
  done
done
python3 - "$out" <<'PY'
import statistics as st, sys
runs = {}
for line in open(sys.argv[1]):
    cmd, threads, secs = line.split()
    runs.setdefault((cmd, threads), []).append(float(secs))
med = {k: st.median(v) for k, v in runs.items()}
for (cmd, threads), v in sorted(runs.items()):
    print(f"{cmd:9} threads={threads}  median {med[(cmd, threads)]:.2f} s  runs {v}")
h1, h2, t1, t2 = (med[k] for k in [("hypergrad", "1"), ("hypergrad", "2"), ("train", "1"), ("train", "2")])
print(f"hypergrad/train: {h1 / t1:.2f}x on 1 thread, {h2 / t2:.2f}x on 2; "
      f"1 -> 2 threads: hypergrad {h1 / h2:.2f}x, train {t1 / t2:.2f}x")
PY
