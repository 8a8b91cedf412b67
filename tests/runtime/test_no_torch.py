"""The runtime imports nothing heavy: ``import edgepose`` and ``edgepose --help`` work where torch cannot load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent(
    """
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {'torch', 'torchvision', 'compress', 'deploy', 'tensorrt', 'pycuda', 'scipy'}:
                raise ImportError(f'{name} is blocked: the runtime must not import it')
    sys.meta_path.insert(0, Block())
    """
)


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True)


def test_import_without_torch():
    out = run(
        "import edgepose, edgepose.pipeline, edgepose.detector, edgepose.draw, edgepose.cli, edgepose.coco.evaluate\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'compress', 'deploy', 'scipy'})\n"
        "print('heavy:', heavy)"
    )
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout


def test_cli_help_without_torch():
    out = run("from edgepose.cli import main\nsys.argv = ['edgepose', '--help']\nmain()")
    assert out.returncode == 0, out.stderr
    for command in ("predict", "eval", "card"):
        assert command in out.stdout


def test_console_script_help():
    import shutil

    exe = shutil.which("edgepose") or str(__import__("pathlib").Path(sys.executable).with_name("edgepose"))
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "predict" in out.stdout, out.stderr
    # the workstation verbs come from the packages' `edgepose.commands` entry points, not from names in the runtime
    for verb in ("train", "distill", "evaluate", "data", "prune", "quantize", "export", "verify", "build-engine",
                 "quickstart"):
        assert f"    {verb} " in out.stdout or f"    {verb}\n" in out.stdout, verb


def test_runtime_names_no_workstation_module():
    """edgepose/cli knows the workstation verbs only through entry points (no 'compress.'/'deploy.' strings)."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "edgepose" / "cli" / "__init__.py").read_text()
    assert "compress." not in source and "deploy." not in source and "quickstart." not in source
