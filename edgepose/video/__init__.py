"""Video: the threaded stream, frame sources, per-frame records, tracking and smoothing."""
