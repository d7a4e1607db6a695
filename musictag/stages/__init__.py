"""The stages a tagger is composed of, each registered under a short name: representations (wave →
spectrogram-like input), front ends (local features), back ends (one vector per chunk) and heads
(logits), with :mod:`~musictag.stages.registry` and the fast convolution gradients of
:mod:`~musictag.stages.ops`. Imports only the base modules (``types``, ``files``, ``audio``)."""
