"""What ``musictag bench`` measures: training throughput of every architecture (:mod:`~musictag.bench.throughput`),
cache preparation and loading (:mod:`~musictag.bench.data`) and the comparison of saved figures
(:mod:`~musictag.bench.report`); the command's flags and printing are :mod:`musictag.cli.bench`."""
