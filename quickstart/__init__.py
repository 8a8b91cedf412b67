"""The one-command pipeline on the synthetic set: train, distil, prune, quantize, benchmark, report."""
