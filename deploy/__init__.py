"""Deployment (workstation): ONNX export with the card embedded, parity checks, TensorRT engines, Jetson bundles."""
