"""Using a trained model: tagging files (:mod:`~musictag.inference.tagging`: chunk planning, batching
across files, song-level scores), the Python API (``musictag.load``), the stat-only audio file search
(:mod:`~musictag.inference.search`), checkpoint loading for tagging (:mod:`~musictag.inference.loading`)
and taggram plots."""
