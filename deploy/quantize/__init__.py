"""ONNX quantization (no torch): INT8 post-training with calibration, FP16, the sub-pixel deconv rewrite."""
