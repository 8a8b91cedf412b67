"""Training: the loop and its config, losses, logs, DDP, evaluation, distillation and the teacher cache."""
