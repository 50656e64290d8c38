"""The results report: a run folder, a batch of repeated runs or several of either side by side
in; plots, summary.json (batch-summary.json, compare.json), runs.csv, report.md and a
self-contained report.html out."""
