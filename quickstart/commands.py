"""The ``edgepose quickstart`` verb (registered under the ``edgepose.commands`` entry point group)."""

COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("quickstart.cli", "the whole job on the synthetic set: train, distil, prune, quantize, report"),
}
