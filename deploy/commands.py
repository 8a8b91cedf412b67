"""The ``edgepose`` verbs this package adds (registered under the ``edgepose.commands`` entry point group).

verb -> (module with add_arguments(parser) and run(args), one-line help); modules are imported only when run.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "quantize": ("deploy.quantize.cli", "INT8 (calibrated QDQ) or FP16 copy of an ONNX pose model, card kept"),
    "export": ("deploy.export_cli", "export a checkpoint to ONNX (card embedded, parity-checked) or a bundle"),
    "verify": ("deploy.verify_cli", "check that two forms of a model (checkpoint / ONNX / engine) agree"),
    "build-engine": ("deploy.tensorrt.cli", "build a TensorRT engine from an ONNX model (profiles, cache, DLA)"),
}
