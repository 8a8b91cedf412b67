"""Typed errors raised by the runtime. Each message names the problem and the fix.

Library code raises these; only the command line turns them into a one-line message and an exit code.
"""

from __future__ import annotations


class EdgePoseError(Exception):
    """Base class of every error edgepose raises on purpose."""


class CardError(EdgePoseError, ValueError):
    """A model card is missing, malformed, or contradicts the model it describes."""


class ModelError(EdgePoseError):
    """A model file cannot be read, or its inputs/outputs are not what the runtime needs."""


class InputError(EdgePoseError, ValueError):
    """A frame, box array, tensor or file given by the caller is not usable."""


class OutputError(EdgePoseError):
    """A model produced outputs that cannot be decoded (NaN/Inf, wrong shape)."""


class MissingDependencyError(EdgePoseError, ImportError):
    """An optional dependency is needed for this feature; the message says which extra installs it."""


def require(module: str, extra: str, feature: str):
    """Import an optional module or raise MissingDependencyError naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package: pip install 'edgepose[{extra}]'"
        ) from exc


class DeviceError(EdgePoseError, RuntimeError):
    """A GPU is absent or a CUDA call (context, copy, kernel launch, compile) failed; the message names the call."""


class ConfigError(EdgePoseError, ValueError):
    """A configuration file has unknown keys, wrong types or missing values."""


class CheckpointError(EdgePoseError):
    """A checkpoint cannot be read, or does not match the architecture it is loaded into."""


class WriteError(EdgePoseError, OSError):
    """An output cannot be written: a read-only or full disk, a file where a folder should be (or the other way), or
    another run holding the output folder."""
