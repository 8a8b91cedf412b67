"""``edgepose bench``: time the PoseEstimator users run, per stage, over models, persons, threads and providers.

Torch-free like the rest of the runtime. ``stats`` (percentiles), ``environment`` (what it ran on), ``runner``
(interleaved measurement), ``report`` (JSON lines, CSV, Markdown, plots), ``cli`` (the subcommand).
"""
