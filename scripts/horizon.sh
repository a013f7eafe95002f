#!/usr/bin/env bash
# Time and peak memory of one hypergradient as the horizon T grows, against the size a stored
# trajectory would need.
#
#   scripts/horizon.sh [CONFIG] [THREADS] [ROUNDS] [STEPS…]
#   scripts/horizon.sh configs/fashion-long.json 1 2 1000 6000 20000     # the defaults
#
# Builds the release binary, then runs `/usr/bin/time -v revgrad --threads THREADS hypergrad
# CONFIG --json` with `inner.steps` set to each T in STEPS, ROUNDS times, the horizons
# interleaved within each round (1000, 6000, 20000, 1000, 6000, …) so that they share the
# machine's state. Each run is its own process, so its peak RSS (`Maximum resident set
# size`, VmHWM: data, binary and information buffer included) is its own. It prints one line
# per run and then, per T, the medians: the hypergradient's seconds (forward + reverse, from
# the JSON; data loading excluded), the process's wall and user CPU seconds, the peak RSS, the
# information buffer, its bits per parameter-step, and `store_all_bytes` (the θ and v of every
# step, what a stored-trajectory reverse mode keeps). Last, the linearity ratio
# t(T_max) / ((T_max / T_mid) · t(T_mid)) for the last two horizons, per round (both from the
# same round) and from the medians: 1 is exactly linear.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/fashion-long.json}
threads=${2:-1}
rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(1000 6000 20000)
cargo build --release --quiet
bin=$PWD/target/release/revgrad
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One config per horizon: the same config with inner.steps = T, its relative paths made
# absolute so that it can live in the temporary folder.
for t in "${steps[@]}"; do
  python3 - "$config" "$t" "$tmp/T$t.json" <<'PY'
import json, os, sys
src, t, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
def absolute(section, key):
    p = c.get(section, {}).get(key)
    if isinstance(p, str) and not os.path.isabs(p):
        c[section][key] = os.path.join(base, p)
for key in ("train", "validation", "test"):
    absolute("data", key)
absolute("model", "init_file")
c.setdefault("inner", {})["steps"] = t
json.dump(c, open(dst, "w"))
PY
done
log=$tmp/runs.txt
echo "config $config, --threads $threads, $rounds round(s), T = ${steps[*]}"
echo "round T hypergrad_s forward_s reverse_s wall_s cpu_s peak_rss_MB info_buffer_MB bits/param-step store_all_GB val_loss"
for round in $(seq "$rounds"); do
  for t in "${steps[@]}"; do
    /usr/bin/time -v -o "$tmp/time.txt" "$bin" --threads "$threads" hypergrad "$tmp/T$t.json" --json \
      >"$tmp/out.json" 2>"$tmp/err.txt" || { cat "$tmp/err.txt" >&2; exit 1; }
    python3 - "$round" "$t" "$tmp/out.json" "$tmp/time.txt" <<'PY' | tee -a "$log"
import json, math, re, sys
round_, t, out, timing = sys.argv[1:]
j = json.load(open(out))
tv = open(timing).read()
def field(name):
    return re.search(re.escape(name) + r": (.*)", tv).group(1).strip()
wall = 0.0
for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
    wall = wall * 60 + float(part)
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
rss = int(field("Maximum resident set size (kbytes)")) * 1024
r, s = j["reversal"], j["seconds"]
finite = math.isfinite(j["val_loss"]) and "NaN" not in json.dumps(j["hypergradients"])
print(round_, t, f"{s['forward'] + s['reverse']:.2f}", f"{s['forward']:.2f}", f"{s['reverse']:.2f}",
      f"{wall:.2f}", f"{cpu:.2f}", f"{rss / 1e6:.1f}", f"{r['info_buffer_bytes'] / 1e6:.2f}",
      f"{r['info_bits_per_param_step']:.4f}", f"{r['store_all_bytes'] / 1e9:.2f}",
      f"{j['val_loss']:.4f}" + ("" if finite else " NON-FINITE"))
PY
  done
done
python3 - "$log" <<'PY'
import statistics as st, sys
rows = [line.split() for line in open(sys.argv[1])]
runs = {}
for r in rows:
    runs.setdefault(int(r[1]), []).append([float(x) for x in r[2:12]])
med = {t: [st.median(col) for col in zip(*v)] for t, v in runs.items()}
print("\nmedians per T (hypergrad = forward + reverse seconds, data loading excluded)")
print("T hypergrad_s forward_s reverse_s wall_s cpu_s peak_rss_MB info_buffer_MB bits/param-step store_all_GB store_all/peak_rss")
for t, m in sorted(med.items()):
    print(t, *(f"{x:g}" for x in m[:9]), f"{m[8] * 1e3 / m[5]:.0f}x")
ts = sorted(runs)
if len(ts) >= 2:
    lo, hi = ts[-2], ts[-1]
    k = hi / lo
    print(f"\nlinearity t({hi}) / ({hi}/{lo} · t({lo})), 1 = linear:")
    for name, col in [("hypergrad", 0), ("forward", 1), ("reverse", 2), ("wall", 3), ("cpu", 4)]:
        per_round = [b[col] / (k * a[col]) for a, b in zip(runs[lo], runs[hi])]
        print(f"  {name:9} per round {', '.join(f'{x:.3f}' for x in per_round)}; "
              f"medians {med[hi][col] / (k * med[lo][col]):.3f}")
PY
