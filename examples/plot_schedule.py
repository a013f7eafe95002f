#!/usr/bin/env python3
"""Heatmap of a learned α schedule (step × array), like Maclaurin et al. (2015), Fig. 2.

Reads the `--hypers-out` CSV of `revgrad tune` (columns iteration,name,group,knot,index,value,
gradient) from a path or stdin, takes one outer iteration, and expands each group's α knots to
one value per inner step with SPEC §2.3's interpolation in the warped coordinate (log α):
p = t·(K−1)/(T−1), k = min(⌊p⌋, K−2), w = p − k, log α_t = (1−w)·log α_k + w·log α_{k+1}.

    revgrad tune configs/digits-schedules.json -o s.csv --hypers-out sh.csv --quiet
    python3 examples/plot_schedule.py sh.csv --steps 300 --tune s.csv -o /tmp/schedule.png
    python3 examples/plot_schedule.py --steps 300 < sh.csv          # last iteration

The iteration is `--iteration N`, else the row with the lowest validation loss of `--tune`
(the tune CSV), else the last iteration in the file.
"""

import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def expand(log_knots, steps):
    """Per-step values of a schedule given its K knots in the warped coordinate."""
    k_count = len(log_knots)
    if k_count == 1 or steps == 1:
        return np.full(steps, log_knots[0])
    t = np.arange(steps)
    p = t * (k_count - 1) / (steps - 1)
    k = np.minimum(np.floor(p).astype(int), k_count - 2)
    w = p - k
    return (1 - w) * log_knots[k] + w * log_knots[k + 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hypers", nargs="?", default="-", help="--hypers-out CSV [stdin]")
    ap.add_argument("--steps", "-T", type=int, required=True, help="inner steps T")
    ap.add_argument("--tune", help="tune CSV: plot the iteration with the lowest val_loss")
    ap.add_argument("--iteration", type=int, help="plot this outer iteration")
    ap.add_argument("--block", default="alpha", help="schedule block [alpha]")
    ap.add_argument("-o", "--out", default="schedule.png", help="PNG path [schedule.png]")
    args = ap.parse_args()

    df = pd.read_csv(sys.stdin if args.hypers == "-" else args.hypers)
    if args.iteration is not None:
        it = args.iteration
    elif args.tune:
        tune = pd.read_csv(args.tune)
        ok = tune[tune.status == "ok"]
        it = int(ok.loc[ok.val_loss.idxmin(), "iteration"])
    else:
        it = int(df.iteration.max())
    sel = df[(df.iteration == it) & (df.name == args.block)]
    if sel.empty:
        sys.exit(f"no '{args.block}' rows at iteration {it}")
    groups = list(dict.fromkeys(sel.group))  # file order: W0, b0, W1, b1, …
    knots = sel.assign(knot=sel.knot.fillna(0).astype(int))
    rows = []
    for g in groups:
        v = knots[knots.group == g].sort_values("knot").value.to_numpy()
        rows.append(expand(np.log10(v), args.steps))
    grid = np.vstack(rows)

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(groups) + 1.6))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest",
                   extent=(-0.5, args.steps - 0.5, len(groups) - 0.5, -0.5))
    ax.set_yticks(range(len(groups)), groups)
    ax.set(xlabel="inner step t", ylabel="array",
           title=f"learned {args.block} schedule, outer iteration {it}")
    fig.colorbar(im, ax=ax, label=f"log10 {args.block}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"iteration {it}: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
