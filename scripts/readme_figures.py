"""Every figure in README.md's generated blocks, from committed results files.

    python scripts/readme_figures.py          # rewrite the marked blocks of README.md
    python scripts/readme_figures.py --check  # exit 1 when a block differs from what the files give

A block sits between `<!-- figures:NAME begin ... -->` and `<!-- figures:NAME end -->`. Each
figure names the file it comes from, with that run's date and machine; change a figure by
committing a new results file and pointing the spec below at it, never by editing README.md
(tests/test_readme_figures.py recomputes the blocks and rejects speed figures outside them).
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = "benchmarks/results"

# (label, results file, group id, sites): the speed table's rows, newest run of each cell
SPEED_ROWS = [
    ("decode b1, 1 layer add", "full.json", "default/decode/b1/64tok/eager", "1layer"),
    ("decode b1, all 30 layers add", "full.json", "default/decode/b1/64tok/eager", "all-add"),
    (
        "decode b1, all layers SADI (120 sites)",
        "full.json",
        "default/decode/b1/64tok/eager",
        "all-sadi",
    ),
    ("decode b8, all layers SADI", "full.json", "default/decode/b8/64tok/eager", "all-sadi"),
    (
        "decode b1, all-layer ablation, run 1",
        "ablation-lane128-run1.json",
        "default/decode/b1/128tok/eager",
        "all-ablate",
    ),
    (
        "decode b1, all-layer ablation, run 2",
        "ablation-lane128-run2.json",
        "default/decode/b1/128tok/eager",
        "all-ablate",
    ),
    (
        "decode b8, all-layer ablation, run 1",
        "ablation-lane128-run1.json",
        "default/decode/b8/128tok/eager",
        "all-ablate",
    ),
    (
        "decode b8, all-layer ablation, run 2",
        "ablation-lane128-run2.json",
        "default/decode/b8/128tok/eager",
        "all-ablate",
    ),
    (
        "decode b1, all layers SADI, `torch.compile`",
        "full.json",
        "default/decode/b1/32tok/compile",
        "all-sadi",
    ),
    (
        "decode b8, all layers SADI, `torch.compile`",
        "full.json",
        "default/decode/b8/32tok/compile",
        "all-sadi",
    ),
    ("prefill 128 b1, all layers SADI", "full.json", "default/prefill/b1/t128/eager", "all-sadi"),
    ("prefill 512 b8, all layers SADI", "full.json", "default/prefill/b8/t512/eager", "all-sadi"),
]
SPEED_COLUMNS = ("hooks", "fused", "bank", "steering-vectors")
BANK_FILE = "bank.json"
# (label, tuning table in docs/, shipped plan): the tuned plans' figures
TUNED = [
    (
        "CAA sentiment",
        "docs/tuning_smollm2_caa_loops_pos.json",
        "steerfast/data/tuned/smollm2_caa_sentiment.safetensors",
    ),
    (
        'ActAdd "Love"−"Hate"',
        "docs/tuning_smollm2_actadd_loops.json",
        "steerfast/data/tuned/smollm2_actadd_love_hate.safetensors",
    ),
]


def _load(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text(encoding="utf-8"))


def _bench(name: str) -> dict:
    return _load(f"{RESULTS}/{name}")


def machine_text(m: dict) -> str:
    """One line naming the machine of a results file (bench runner's or bench_bank's format)."""
    if "lscpu" in m:
        c = m["lscpu"]
        cpu = f"{c.get('Model name', '?')}, {c.get('CPU(s)', '?')} CPUs"
        if c.get("Hypervisor vendor"):
            cpu += f" ({c['Hypervisor vendor']} guest)"
        load = " ".join(m.get("loadavg_start", [])) or "?"
    else:
        cpu = f"{m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs"
        load = " ".join(f"{x:.2f}" for x in m.get("loadavg", [])) or "?"
    when = "at start" if "lscpu" in m else "when written"
    return (
        f"{cpu}; torch {m.get('torch', '?')}, transformers {m.get('transformers', '?')}, "
        f"{m.get('threads', '?')} torch thread; load average {when} {load}"
    )


def _group(res: dict, gid: str) -> dict:
    for g in res["groups"]:
        if g["id"] == gid:
            return g
    raise KeyError(f"no group {gid!r}")


def _ratio(group: dict, kind: str, sites: str) -> str:
    v = group["variants"].get(f"{kind}[{sites}]")
    return f"{v['ratio']:.3f}" if v and v.get("status") == "ok" else "—"


def speed_block() -> str:
    files = list(dict.fromkeys(f for _, f, _, _ in SPEED_ROWS))
    ref = {f: i + 1 for i, f in enumerate(files)}
    lines = [
        "| cell | noise | " + " | ".join(SPEED_COLUMNS) + " | run |",
        "| --- | --- | " + " | ".join("---" for _ in SPEED_COLUMNS) + " | --- |",
    ]
    for label, f, gid, sites in SPEED_ROWS:
        g = _group(_bench(f), gid)
        cells = [_ratio(g, k, sites) for k in SPEED_COLUMNS]
        lines.append(f"| {label} | {g['noise']:.3f} | " + " | ".join(cells) + f" | [{ref[f]}] |")
    lines.append("")
    lines.append("Runs (each figure above is that file's `ratio` for the cell):")
    lines.append("")
    for f in files:
        r = _bench(f)
        lines.append(
            f"[{ref[f]}] `{RESULTS}/{f}`: {r['date']}, `{r['command']}`; {machine_text(r['machine'])}"
        )
    lines += ["", bank_text()]
    return "\n".join(lines)


def bank_text() -> str:
    b = _bench(BANK_FILE)
    p, d = b["prefill"], b["decode"]
    return (
        f"Per-request steering (`{RESULTS}/{BANK_FILE}`: {b['date']}, `{b['command']}`, "
        f"{b['rounds']} interleaved rounds, CPU time; {machine_text(b['machine'])}): one batch of 8 rows "
        f"with 8 different configurations costs {p['bank / unsteered']:.3f}× (prefill) and "
        f"{d['bank / unsteered']:.3f}× (decode) an unsteered batch of 8, and running the 8 requests as 8 "
        f"batch-1 calls instead is {p['8 x batch 1 / bank']:.2f}× (prefill) and "
        f"{d['8 x batch 1 / bank']:.2f}× (decode) slower."
    )


def plan_header(rel: str) -> dict:
    """A plan file's steerfast header, read from the safetensors header (no torch needed)."""
    raw = (ROOT / rel).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["steerfast"])


def _iv(e: dict, fmt: str = "+.3f") -> str:
    return f"{e['mean']:{fmt}} [{e['lo']:{fmt}}, {e['hi']:{fmt}}]"


def tuned_block() -> str:
    lines = []
    for label, table, plan in TUNED:
        t = plan_header(plan)["meta"]["tuned"]
        rows = [
            r
            for r in _load(table)
            if (r["layer"], r["strength"]) == (t["layer"], t["strength"])
            and r.get("signs") == ("both" if t["both_signs"] else None)
        ]
        if len(rows) != 1:
            raise KeyError(f"{table} has {len(rows)} rows for the chosen cell of {plan}")
        r = rows[0]
        sign = "±" if t["both_signs"] else "+"
        what = "VADER shift" if t["effect_metric"] == "scorer" else "log-odds shift"
        lines.append(
            f"- **{label}** (`{plan}`, table `{table}`): layer {t['layer']}, c = {sign}{t['strength']:g}, "
            f"chosen on {t['eval_prompts']} prompts of {t['max_new_tokens']} tokens: {what} "
            f"{_iv(r['effect'])}, KL {_iv(r['kl'])} nats/token, perplexity ×{_iv(r['ppl_ratio'], '.3f')}, "
            f"repeated 3-grams {_iv(r['rep'])}, looping completions {_iv(r['loops'])}"
        )
    return "\n".join(lines)


BLOCKS = {"speed": speed_block, "tuned": tuned_block}


def _marks(name: str) -> tuple[str, str]:
    return (
        f"<!-- figures:{name} begin (python scripts/readme_figures.py; do not edit by hand) -->",
        f"<!-- figures:{name} end -->",
    )


def blocks_in(text: str) -> dict[str, str]:
    """{name: body} of every generated block in `text`."""
    out = {}
    for name in BLOCKS:
        begin, end = _marks(name)
        m = re.search(re.escape(begin) + r"\n(?:(.*?)\n)?" + re.escape(end), text, re.S)
        if m is None:
            raise ValueError(f"README.md has no figures:{name} block")
        out[name] = m.group(1) or ""
    return out


def outside_blocks(text: str) -> str:
    for name in BLOCKS:
        begin, end = _marks(name)
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), "", text, flags=re.S)
    return text


def rendered(text: str) -> str:
    for name, make in BLOCKS.items():
        begin, end = _marks(name)
        body = make()
        text = re.sub(
            re.escape(begin) + r"\n(?:.*?\n)?" + re.escape(end),
            lambda _m, b=body, s=begin, e=end: f"{s}\n{b}\n{e}",
            text,
            flags=re.S,
        )
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when README.md's blocks are stale")
    args = p.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    blocks_in(text)  # every block present
    new = rendered(text)
    if args.check:
        if new != text:
            print("README.md figures differ from the results files: run python scripts/readme_figures.py")
            return 1
        print("README.md figures match the results files")
        return 0
    README.write_text(new, encoding="utf-8")
    print("README.md figures regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
