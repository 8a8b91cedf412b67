"""Shell injection into the Jetson bundle (issue "Hostile input, round 2", class 2).

``build_engines.sh`` interpolates the card's input name (in the commented ``trtexec`` lines) and the model file
names (in the ``edgepose build-engine`` lines). The card refuses hostile names; as defence in depth the script
quotes every argument and escapes line breaks in comments. Here the card's validation is bypassed and the generated
script is run by the shell with stand-in ``edgepose`` and ``trtexec`` commands that record their arguments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.tensorrt.bundle import _build_script
from edgepose.card import ModelCard
from edgepose.errors import CardError

CARD = {"input_size": [96, 128], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "color": "rgb",
        "codec": "msra", "heatmap_size": [24, 32]}
RECORDER = """#!/bin/sh
# Stand-in for {name}: one line per call, its arguments separated by a unit separator.
printf '{name}' >> "$CALLS"
for arg in "$@"; do printf '\\037%s' "$arg" >> "$CALLS"; done
printf '\\n' >> "$CALLS"
"""


def hostile_card(marker: Path) -> ModelCard:
    """A valid card whose input name and name are then replaced, as if validation had been skipped."""
    card = ModelCard.from_dict(CARD)
    object.__setattr__(card, "input_name", f"input\ntouch {marker}_input\n#")
    object.__setattr__(card, "name", f"pose\ntouch {marker}_name")
    return card


def hostile_variants(marker: Path) -> dict[str, dict]:
    return {
        "fp32": {"onnx": f"pose$(touch {marker}_subst).onnx", "engine": "pose_fp32.engine",
                 "graph_precision": "fp32\ntouch " + f"{marker}_precision"},
        "fp16": {"onnx": f"pose_fp16.onnx; touch {marker}_semicolon", "engine": f"a`touch {marker}_tick`.engine",
                 "graph_precision": "fp16"},
    }


def run_script(script: str, tmp_path: Path, shell: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    bundle, bin_dir, calls = tmp_path / "bundle", tmp_path / "bin", tmp_path / "calls.log"
    bundle.mkdir()
    bin_dir.mkdir()
    for name in ("edgepose", "trtexec"):
        (bin_dir / name).write_text(RECORDER.format(name=name))
        (bin_dir / name).chmod(0o755)
    (bundle / "build_engines.sh").write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls), "DLA": "1"}
    env.pop("EDGEPOSE", None)
    done = subprocess.run([shell, str(bundle / "build_engines.sh")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done, [line.split("\x1f") for line in lines]


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_generated_script_runs_no_injected_command(tmp_path, shell):
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell}")
    marker = tmp_path / "pwned"
    variants = hostile_variants(marker)
    done, calls = run_script(_build_script(hostile_card(marker), variants), tmp_path, shell)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "bundle", "calls.log"]  # no pwned_* file
    assert [c[0] for c in calls] == ["edgepose"] * 3  # fp32, fp16, fp16 on DLA; trtexec lines stay comments
    # each hostile file name reached edgepose as one literal argument
    assert [c[1:5] for c in calls] == [
        ["build-engine", variants["fp32"]["onnx"], "--out", "pose_fp32.engine"],
        ["build-engine", variants["fp16"]["onnx"], "--out", variants["fp16"]["engine"]],
        ["build-engine", variants["fp16"]["onnx"], "--out", variants["fp16"]["engine"].replace(".engine",
                                                                                               "_dla0.engine")],
    ]


def test_comment_lines_keep_line_breaks_escaped(tmp_path):
    script = _build_script(hostile_card(tmp_path / "pwned"), hostile_variants(tmp_path / "pwned"))
    touching = [line for line in script.splitlines() if "touch" in line]
    assert touching and all(line.lstrip().startswith(("#", '"$EDGEPOSE"')) for line in touching), touching
    assert "'--minShapes=input\\ntouch " in script  # the trtexec line shows the name, escaped, in its quotes


@pytest.mark.parametrize(("field", "value"), [
    ("input_name", "input\ntouch X\n#"), ("input_name", "input;touch X"), ("input_name", "$(touch X)"),
    ("output_names", ["heatmaps`touch X`"]), ("name", "pose\ntouch X"),
])
def test_card_refuses_names_that_would_inject(field, value):
    with pytest.raises(CardError) as caught:
        ModelCard.from_dict({**CARD, field: value})
    message = str(caught.value)
    assert f"card field '{field}'" in message and "\n" not in message
