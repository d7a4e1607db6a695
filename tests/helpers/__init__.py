"""Test plumbing that is not a double: the reference data, the in-process command runner, SLURM's
environment. Doubles (tiny models, corpora, signals) live in :mod:`musictag.testing`."""
