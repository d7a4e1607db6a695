"""Published weights → musictag checkpoints: the sota-music-tagging-models checkpoints
(:mod:`~musictag.convert.sota`, ``musictag import-weights``), musicnn's TensorFlow checkpoints
(:mod:`~musictag.convert.musicnn`, read by :mod:`~musictag.convert.tf_checkpoint` without TensorFlow)
and the checks and atomic writing of the checkpoint a conversion makes (:mod:`~musictag.convert.writing`)."""
