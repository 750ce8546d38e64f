"""The subcommands every release must keep (the helpers: tests/cli_helpers.py)."""

from cli_helpers import steerfast


def test_every_subcommand_is_registered():
    res = steerfast("--help")
    assert res.returncode == 0, res.stderr
    for name in (
        "demo",
        "make",
        "convert",
        "inspect",
        "generate",
        "bench",
        "sadi-eval",
        "sadi-heatmap",
        "laai-eval",
    ):
        assert f"    {name}" in res.stdout, name
    for args in (
        ["make", "caa", "--help"],
        ["bench", "--help"],
        ["sadi-heatmap", "--help"],
        ["laai-eval", "--help"],
        ["demo", "--help"],
    ):
        res = steerfast(*args)
        assert res.returncode == 0 and "usage: steerfast" in res.stdout, (args, res.stderr)


def test_main_is_importable_with_argv():
    from steerfast.cli import build_parser, main

    args = build_parser().parse_args(["inspect", "p.safetensors", "--plot", "x.png"])
    assert args.func.__module__ == "steerfast.cli.inspect_plan" and args.plot == "x.png"
    assert main(["inspect", "/nonexistent/p.safetensors"]) == 2
