"""Turn benchmark records (the `extra_info` of each benchmark) into tables and ratios.

Used by the pytest terminal summary and by `make_table.py`, so the console and
the results page say the same thing.
"""

from collections import defaultdict

CONFIG_KEYS = ("backend", "image_size", "batch", "policy", "jit_compile")

# (kind, numerator variant, denominator variant, what the ratio means)
VARIANT_RATIOS = (
    (
        "train",
        "bare_fit",
        "diffusion_fit",
        "train overhead: bare step img/s ÷ DiffusionModel.fit img/s (1.00 = none; target ≤ 1.10)",
    ),
    (
        "sample",
        "bare_calls",
        "compiled",
        "sampling overhead: bare network calls ÷ compiled loop, in img/s (target ≤ 1.05)",
    ),
    (
        "sample",
        "compiled",
        "eager",
        "sampling speed-up: compiled loop ÷ eager Python loop, in img/s (target ≥ 3)",
    ),
)


def _config(record):
    return tuple(record[k] for k in CONFIG_KEYS)


def variant_ratios(records):
    """Rows `(description, config dict, ratio)` comparing variants in one configuration."""
    groups = defaultdict(dict)
    for r in records:
        groups[(r["kind"], _config(r))][r["variant"]] = r["images_per_s"]
    rows = []
    for kind, top, bottom, text in VARIANT_RATIOS:
        for (group_kind, config), speeds in sorted(groups.items(), key=str):
            if group_kind == kind and top in speeds and bottom in speeds:
                rows.append(
                    (text, dict(zip(CONFIG_KEYS, config)), speeds[top] / speeds[bottom])
                )
    return rows


# (kind, the library's variant, the peer's variant)
PEER_PAIRS = (
    ("train", "diffusion_fit", "diffusers_fit"),
    ("sample", "ddim", "diffusers_ddim"),
)
PEER_TARGETS = {"train": "target ≥ 1.0", "sample": "target ≥ 1.2"}


def peer_ratios(records):
    """Rows `(description, config dict, ratio)`: keras-ddpm's GFLOP/s over diffusers'.

    Each library record of `PEER_PAIRS` is paired with the peer's record of the
    same kind, image size, batch (and sampling steps) in the same run; the
    networks differ slightly, so GFLOP/s (each counted from its own layers)
    is compared, and img/s is given beside it.
    """
    rows = []
    for kind, ours, theirs in PEER_PAIRS:
        peers = {
            (r["image_size"], r["batch"], r.get("sampling_steps")): r
            for r in records
            if r["kind"] == kind and r["variant"] == theirs
        }
        for r in sorted(records, key=lambda r: str(_config(r))):
            if r["kind"] != kind or r["variant"] != ours:
                continue
            peer = peers.get((r["image_size"], r["batch"], r.get("sampling_steps")))
            if peer is None:
                continue
            text = (
                f"vs diffusers, {kind}: keras-ddpm {ours} GFLOP/s ÷ {peer['backend']} "
                f"{theirs} GFLOP/s ({PEER_TARGETS[kind]}; img/s ratio "
                f"{r['images_per_s'] / peer['images_per_s']:.2f})"
            )
            rows.append(
                (text, dict(zip(CONFIG_KEYS, _config(r))), r["gflops"] / peer["gflops"])
            )
    return rows


def policy_ratios(records):
    """Rows `(kind/variant, config dict without policy, bf16 ÷ fp32 img/s)`."""
    groups = defaultdict(dict)
    keys = tuple(k for k in CONFIG_KEYS if k != "policy")
    for r in records:
        key = (r["kind"], r["variant"]) + tuple(r[k] for k in keys)
        groups[key][r["policy"]] = r["images_per_s"]
    rows = []
    for key, speeds in sorted(groups.items(), key=str):
        if "float32" in speeds and "mixed_bfloat16" in speeds:
            rows.append(
                (
                    f"{key[0]}/{key[1]}",
                    dict(zip(keys, key[2:])),
                    speeds["mixed_bfloat16"] / speeds["float32"],
                )
            )
    return rows


def _describe(config):
    return ", ".join(f"{k}={v}" for k, v in config.items())


def _fmt(value, digits=1):
    return "–" if value is None else f"{value:,.{digits}f}"


def results_table(records):
    """A markdown table of every measurement."""
    lines = [
        "| backend | kind | variant | size | batch | policy | jit | img/s | GFLOP/img | GFLOP/s | peak GFLOP/s | utilisation |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {"diffusion_fit": 0, "bare_fit": 1, "compiled": 2, "bare_calls": 3}
    for r in sorted(
        records,
        key=lambda r: (
            r["backend"],
            r["kind"],
            r["image_size"],
            r["batch"],
            r["policy"],
            str(r["jit_compile"]),
            order.get(r["variant"], 9),
        ),
    ):
        utilisation = r.get("utilisation")
        lines.append(
            "| {backend} | {kind} | {variant} | {image_size} | {batch} | {policy} | "
            "{jit_compile} | {ips} | {gfi} | {gfs} | {peak} | {util} |".format(
                ips=_fmt(r["images_per_s"], 2),
                gfi=_fmt(r["flops_per_image"] / 1e9, 2),
                gfs=_fmt(r.get("gflops")),
                peak=_fmt(r.get("peak_gflops")),
                util="–" if utilisation is None else f"{100 * utilisation:.0f} %",
                **r,
            )
        )
    return "\n".join(lines)


def ratios_table(records):
    """A markdown table of the in-run ratios."""
    lines = ["| ratio | configuration | value |", "|---|---|---|"]
    for text, config, value in variant_ratios(records) + peer_ratios(records):
        lines.append(f"| {text} | {_describe(config)} | {value:.2f} |")
    for what, config, value in policy_ratios(records):
        lines.append(
            f"| mixed_bfloat16 ÷ float32 img/s, {what} | {_describe(config)} | {value:.2f} |"
        )
    return "\n".join(lines)


def summary_lines(records):
    """Plain-text ratios for the terminal."""
    lines = []
    for text, config, value in variant_ratios(records) + peer_ratios(records):
        lines.append(f"{value:6.2f}  {text}  [{_describe(config)}]")
    for what, config, value in policy_ratios(records):
        lines.append(
            f"{value:6.2f}  mixed_bfloat16 ÷ float32 img/s, {what}  [{_describe(config)}]"
        )
    return lines


def profile_table(records):
    """`profile_step.py`'s records as a Markdown table: ms per step by category, one column per side."""
    sides = records["sides"]
    names = list(sides)
    lines = [
        "| ms per training step | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    labels = list(next(iter(sides.values()))["op_ms_per_step"])
    for label in labels:
        cells = [f"{sides[name]['op_ms_per_step'][label]:.1f}" for name in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{sum(sides[name]['op_ms_per_step'].values()):.1f}" for name in names]
    lines.append("| all operators | " + " | ".join(cells) + " |")
    rows = [
        ("not in any operator (lower bound)", "outside_ops_ms_per_step", "{:.1f}"),
        ("wall time, without the profiler", "wall_ms_per_step", "{:.1f}"),
        ("convolution GFLOP/s", "conv_gflops", "{:.0f}"),
    ]
    for title, key, fmt in rows:
        cells = [fmt.format(sides[name][key]) for name in names]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
