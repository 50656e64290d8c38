"""The results report: run folder in, plots, `summary.json` and `report.md` out."""
