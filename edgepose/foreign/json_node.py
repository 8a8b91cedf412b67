"""Typed access to a JSON document that names the file and the key path of anything missing or malformed."""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any

from edgepose.errors import CardError

MISSING: Any = object()


class Node:
    """A value inside JSON file ``path`` at key path ``key`` (``pipeline.tasks[0].transforms``)."""

    def __init__(self, path: str, key: str, value: Any) -> None:
        self.path, self.key, self.value = path, key, value

    @property
    def present(self) -> bool:
        """Whether the key exists."""
        return self.value is not MISSING

    def error(self, problem: str) -> CardError:
        """A one-line CardError naming the file and this key."""
        return CardError(f"{self.path}: key '{self.key or '<top>'}' {problem}")

    def _shown(self) -> str:
        return "nothing (missing)" if not self.present else f"{json.dumps(self.value)[:80]}"

    def get(self, name: str, default: Any = MISSING) -> Node:
        """The child ``name`` of this mapping (a missing child holds ``default``)."""
        mapping = self.mapping()
        key = f"{self.key}.{name}" if self.key else name
        return Node(self.path, key, mapping.get(name, default))

    def mapping(self) -> dict:
        """This value as a JSON object."""
        if not isinstance(self.value, dict):
            raise self.error(f"must be a JSON object, got {self._shown()}")
        return self.value

    def items(self) -> list[Node]:
        """This value as a JSON list of nodes."""
        if not isinstance(self.value, list):
            raise self.error(f"must be a list, got {self._shown()}")
        return [Node(self.path, f"{self.key}[{i}]", v) for i, v in enumerate(self.value)]

    def text(self) -> str:
        """This value as a string."""
        if not isinstance(self.value, str):
            raise self.error(f"must be a string, got {self._shown()}")
        return self.value

    def flag(self) -> bool:
        """This value as a boolean."""
        if not isinstance(self.value, bool):
            raise self.error(f"must be true or false, got {self._shown()}")
        return self.value

    def number(self, positive: bool = False) -> float:
        """This value as a finite number (greater than zero when ``positive``)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise self.error(f"must be a number, got {self._shown()}")
        if positive and value <= 0:
            raise self.error(f"must be positive, got {self._shown()}")
        return float(value)

    def numbers(self, count: int, what: str, positive: bool = False) -> tuple[float, ...]:
        """This value as a list of ``count`` numbers (``what`` describes them in the error)."""
        if not isinstance(self.value, list) or len(self.value) != count:
            raise self.error(f"must be {what}, got {self._shown()}")
        return tuple(Node(self.path, self.key, v).number(positive) for v in self.value)

    def size(self) -> tuple[int, int]:
        """This value as a [width, height] pair of whole pixel counts."""
        pair = self.numbers(2, "[width, height]", positive=True)
        if not all(v.is_integer() for v in pair):
            raise self.error(f"must be whole pixel counts [width, height], got {self._shown()}")
        return int(pair[0]), int(pair[1])


def load_json(path: str, required: bool, hint: str = "") -> Node | None:
    """The JSON object in ``path`` as a Node; None when the file is absent and not ``required``."""
    if not os.path.isfile(path):
        if required:
            raise CardError(f"{path} not found{hint}")
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CardError(f"{path} is not valid JSON: {exc}") from exc
    node = Node(path, "", data)
    node.mapping()
    return node
