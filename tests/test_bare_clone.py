"""A bare clone tests: the checkout carries every fixture it needs (no fixtures folder beside it, no download).

The project's files are copied to a temporary folder with no fixtures folder above it, and tests that use
the real COCO samples, the packaged detector and the packaged pose model run there, on the copy's own files.
(``.ci/run`` goes further: it clones the repository to a temporary folder and runs the whole suite and the
quickstart there.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", "runs",
                              "out", "build", "dist", "edgepose_out", "edgepose_eval", "data")
FOLDER = "".join(("sha", "red"))  # the CI machine's fixtures folder beside the checkout, which users do not have
SHARED_REFERENCE = re.compile(rf'\.\./{FOLDER}|"{FOLDER}"|/{FOLDER}/')


def test_no_file_reads_the_shared_folder():
    """Nothing the tests, CI, setup or the packages run refers to the CI machine's fixtures folder."""
    suffixes = ("", ".py", ".cfg", ".toml", ".yaml", ".sh")
    files = [p for folder in ("tests", ".ci", "edgepose", "compress", "deploy", "quickstart", "benchmarks")
             for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in suffixes and p != Path(__file__)]
    files += [ROOT / "setup.cfg", ROOT / "pyproject.toml"]
    offenders = [str(p.relative_to(ROOT)) for p in files if SHARED_REFERENCE.search(p.read_text(errors="replace"))]
    assert offenders == []


def test_fixture_tests_pass_in_a_copy_with_no_shared_folder(tmp_path):
    copy = tmp_path / "clone" / "edgepose"
    shutil.copytree(ROOT, copy, ignore=lambda d, names: SKIP(d, names) if Path(d) == ROOT else
                    shutil.ignore_patterns("__pycache__")(d, names))
    assert not any((parent / FOLDER).exists() for parent in copy.parents)
    probe = ("import tests.conftest as c, edgepose.assets as a; "
             "print(c.COCO_DIR.is_dir(), a.DEFAULT_POSE_MODEL.is_file(), a.DEFAULT_DETECTOR.is_file(), "
             "c.COCO_DIR.resolve().is_relative_to(__import__('pathlib').Path.cwd()))")
    where = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True)
    assert where.stdout.split() == ["True"] * 4, where.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                          "tests/runtime/test_detector.py", "tests/runtime/test_end_to_end_coco.py::"
                          "test_yolox_detector_chain_reaches_known_ap"],
                         cwd=copy, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout.splitlines()[-1]
