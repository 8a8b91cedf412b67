"""TensorRT: engine building, the engine cache, the Jetson target and deployment bundles."""
