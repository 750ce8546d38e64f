"""README.md's figures come from committed results files: the generated blocks equal what
scripts/readme_figures.py computes from benchmarks/results/ and docs/*.json today, every file a
block names is committed, and no speed figure (a ratio like 1.02× or x4.08) stands outside them."""

import re
import subprocess

from scripts import readme_figures as rf

# ratios written as speed figures: 1.025×, 4.08x, ×1.19, x5.37 (not "x86_64", not "2x2")
SPEED_FIGURE = re.compile(r"(?<![\w.])\d+\.\d+\s?[×x](?![\w.])|(?<![\w])[×x]\s?\d+\.\d+")
# a table row of measured ratios (| 1.001 | 0.994 |): only the generated speed table has them
RATIO_ROW = re.compile(r"^\|.*\|\s*\d\.\d{3}\s*\|.*$", re.M)


def _readme() -> str:
    return rf.README.read_text(encoding="utf-8")


def test_blocks_equal_what_the_results_files_give():
    text = _readme()
    got = rf.blocks_in(text)
    for name, make in rf.BLOCKS.items():
        assert got[name] == make(), f"README.md figures:{name} is stale: run python scripts/readme_figures.py"


def test_every_source_is_committed():
    tracked = set(
        subprocess.run(["git", "ls-files"], cwd=rf.ROOT, capture_output=True, text=True).stdout.split()
    )
    sources = {f"{rf.RESULTS}/{f}" for _, f, _, _ in rf.SPEED_ROWS} | {f"{rf.RESULTS}/{rf.BANK_FILE}"}
    sources |= {t for _, t, _ in rf.TUNED} | {p for _, _, p in rf.TUNED}
    assert sources <= tracked, sources - tracked
    for _, f, _, _ in rf.SPEED_ROWS:
        r = rf._bench(f)
        assert r["date"] and r["machine"] and r["command"], f  # each figure's date and machine


def test_no_speed_figure_outside_the_generated_blocks():
    stray = SPEED_FIGURE.findall(rf.outside_blocks(_readme()))
    assert not stray, f"speed figures with no source (move them into a generated block): {stray}"
    rows = RATIO_ROW.findall(rf.outside_blocks(_readme()))
    assert not rows, f"a table of ratios outside the generated blocks: {rows}"
    assert RATIO_ROW.findall("| decode b1 | 0.040 | 1.001 |")
    assert SPEED_FIGURE.findall("costs 1.025× an unsteered batch, x4.08 slower, 5.37x")  # the pattern bites


def test_a_hand_edited_figure_is_caught():
    text = _readme()
    body = rf.blocks_in(text)["speed"]
    first = re.search(r"\| (\d\.\d{3}) \|", body).group(1)
    edited = text.replace(body, body.replace(f"| {first} |", "| 0.500 |", 1))
    assert edited != text and rf.rendered(edited) != edited  # regenerating would change it back
    assert rf.rendered(edited) == rf.rendered(text)
