"""Refuse a ``.pt2`` (torch.export) archive that could run code when ``torch.export.load`` reads it.

``torch.export.load`` is not a safe loader: it unpickles weights and constants marked ``use_pickle`` with
``weights_only=False``, ``pickle.loads`` opaque objects, loads AOTInductor shared libraries, falls back to full
unpickling of sample inputs, resolves call targets by walking ``getattr`` from ``torch`` (``torch.os.system``),
parses shape expressions with ``sympy.sympify`` (``eval``) and ``exec``s the program's guard code. Before loading,
``check_pt2_archive`` reads the archive as a zip and JSON (nothing is unpickled or run) and allows only what
``deploy.export_torch`` writes: raw tensor payloads, ``torch.ops`` call targets, plain symbolic shape expressions
and guards, sample inputs of tensors. Anything else raises ModelError naming it.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import zipfile
from collections.abc import Iterator

from edgepose.errors import ModelError

# Archive members (below the archive's root folder) that torch.export.save writes for a program without
# AOTInductor, ExecuTorch, torchbind or opaque objects.
MEMBERS = re.compile(
    r"archive_format|archive_version|byteorder|\.data/[\w.]+|models/\w+\.json|extra/[\w.-]+"
    r"|data/weights/(weight_\d+|\w+_weights_config\.json)|data/constants/(tensor_\w+|\w+_constants_config\.json)"
    r"|data/sample_inputs/\w+\.pt"
)
TARGETS = re.compile(
    r"torch\.ops\.(?!__)\w+\.(?!__)\w+(\.(?!__)\w+)?|torch\.sym_[a-z_]+|math\.[a-z]+\d*"
    r"|_operator\.(getitem|add|sub|mul|floordiv|truediv|mod|pow|neg|pos|abs|eq|ne|lt|le|gt|ge|and_|or_|xor|not_"
    r"|invert|lshift|rshift)"
)
SYMBOL = re.compile(r"[a-z]+\d+")  # s0, u12, zuf3: torch's shape symbols
# Functions a serialized shape expression may call (sympy's and torch.utils._sympy.functions').
SYMPY_NAMES = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Abs", "floor", "ceiling", "sqrt", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "oo", "zoo", "nan", "true", "false", "True", "False",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat",
    "Identity", "Pow",
})
GUARD_ATTRIBUTES = frozenset({"size", "stride", "storage_offset", "dim"})
GUARD_TEXT = re.compile(r"[\w\s\[\]'().,<>=!+\-*/%]*")
_OPERATORS = (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)


def check_pt2_archive(path: str | os.PathLike) -> None:
    """Raise ModelError when the ``.pt2`` at ``path`` holds anything that could run code when loaded."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path)
            for name, full in members.items():
                if name.startswith("models/"):
                    _check_program(json.loads(archive.read(full)), path)
                elif name.endswith("_config.json"):
                    _check_payload_config(json.loads(archive.read(full)), name, path)
                elif name.startswith("data/sample_inputs/"):
                    _check_pickle(archive.read(full), name, path)
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise ModelError(f"torch cannot load {path} as export (corrupt, truncated, or not a .pt2 archive): "
                         f"{_first_line(exc)}") from exc


def _refuse(path: str, what: str) -> ModelError:
    return ModelError(f"{path} holds {what}, which could run code when loaded: refusing to load it")


def _members(archive: zipfile.ZipFile, path: str) -> dict[str, str]:
    """Member name below the root folder -> full name; any member torch.export.save would not write is refused."""
    out = {}
    for full in archive.namelist():
        root, _, name = full.partition("/")
        if not root or not MEMBERS.fullmatch(name):
            raise _refuse(path, f"the archive member {full!r} (not a plain torch.export program)")
        out[name] = full
    return out


def _check_payload_config(config: dict, name: str, path: str) -> None:
    """Weights and constants must be raw tensor payloads: nothing pickled, no torchbind or opaque objects."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise _refuse(path, f"a malformed {name}")
    for fqn, entry in entries.items():
        if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
            raise _refuse(path, f"a pickled payload ({fqn!r} in {name})")
        member = entry.get("path_name")
        if not isinstance(member, str) or not re.fullmatch(r"(weight|tensor)_\w+", member):
            raise _refuse(path, f"the payload {member!r} ({fqn!r} in {name})")


def _check_pickle(data: bytes, name: str, path: str) -> None:
    """A torch.save archive inside the .pt2 (sample inputs) may hold tensors and containers only."""
    import torch

    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception as exc:  # not a torch.save zip: torch would fall back to full unpickling
        raise _refuse(path, f"{name}, which is not a plain torch.save archive") from exc
    if unsafe:
        raise _refuse(path, f"Python objects that are not allowed in {name} ({', '.join(sorted(unsafe))})")


def _check_program(program: dict, path: str) -> None:
    """Call targets, shape expressions and guard code of a serialized ExportedProgram."""
    guards = program.get("guards_code", []) if isinstance(program, dict) else None
    if not isinstance(guards, list):
        raise _refuse(path, "malformed guard code")
    for guard in guards:
        if not _safe_guard(guard):
            raise _refuse(path, f"the guard code {_short(guard)}")
    for key, value in _items(program):
        if key == "target" and isinstance(value, str) and not TARGETS.fullmatch(value):
            raise _refuse(path, f"the call target {_short(value)}")
        if key == "expr_str" and not _safe_expression(value):
            raise _refuse(path, f"the shape expression {_short(value)}")
        if key in ("as_custom_obj", "custom_obj_values") and value:
            raise _refuse(path, "torchbind objects")


def _items(value) -> Iterator[tuple[str, object]]:
    """Every (key, value) of every mapping nested in ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            yield from item.items()
        elif isinstance(item, list):
            stack.extend(item)


def _parse(text: object) -> ast.Expression | None:
    if not isinstance(text, str) or len(text) > 10_000:
        return None
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return None


def _safe_expression(text: object) -> bool:
    """A sympy expression over shape symbols: numbers, operators, calls of SYMPY_NAMES, no attributes."""
    tree = _parse(text)
    return tree is not None and all(_expression_node(node) for node in ast.walk(tree))


def _expression_node(node: ast.AST) -> bool:
    if isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, *_OPERATORS)):
        return True
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in SYMPY_NAMES
    if isinstance(node, ast.Name):
        return node.id in SYMPY_NAMES or bool(SYMBOL.fullmatch(node.id))
    if isinstance(node, ast.keyword):
        return node.arg is not None and node.arg.isalpha() and node.arg.islower()
    return _plain_constant(node)


def _safe_guard(text: object) -> bool:
    """A guard such as ``L['x'].size()[0] <= 64``: comparisons of sizes and strides of the inputs ``L[...]``."""
    tree = _parse(text)
    return (tree is not None and bool(GUARD_TEXT.fullmatch(text)) and "#" not in text
            and all(_guard_node(node) for node in ast.walk(tree)))


def _guard_node(node: ast.AST) -> bool:
    if isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Subscript,
                         *_OPERATORS)):
        return True
    if isinstance(node, ast.Attribute):
        return node.attr in GUARD_ATTRIBUTES
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Attribute) and node.func.attr in GUARD_ATTRIBUTES) or (
            isinstance(node.func, ast.Name) and node.func.id in SYMPY_NAMES)
    if isinstance(node, ast.Name):
        return node.id == "L" or node.id in SYMPY_NAMES
    return _plain_constant(node)


def _plain_constant(node: ast.AST) -> bool:
    """A number, a boolean, None, or a string of word characters only."""
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    return value is None or isinstance(value, (bool, int, float)) or (
        isinstance(value, str) and re.fullmatch(r"\w*", value) is not None)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
