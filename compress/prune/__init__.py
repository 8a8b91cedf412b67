"""Structured pruning: the pruner, the prune job, Lite-HRNet rules and pruned-shape records."""
