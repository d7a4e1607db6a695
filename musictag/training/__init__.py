"""Training and evaluation: :class:`~musictag.training.module.TaggingModule` (the LightningModule of every
architecture), chunk-to-song aggregation and ROC-AUC / PR-AUC (:mod:`~musictag.training.metrics`),
evaluation and checkpointing callbacks, and the benchmark's learning-rate schedule. Never imports
``datamodules``: a model trains on any LightningDataModule that yields ``(audio, labels)``."""
