"""Offline compression (torch): models, data, training, distillation, pruning, quantization, evaluation.

Filled in by the models/data/training, distillation and pruning/quantization work; depends on ``edgepose``.
"""
