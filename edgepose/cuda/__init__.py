"""CUDA paths of the runtime: the cuda-python session, the fused crop kernel, GPU argmax (imported lazily)."""
