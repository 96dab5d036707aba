"""Reports of an evaluation: report.json/md/html, plots, the gallery, answer sheets and printed tables."""
