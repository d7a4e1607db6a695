"""The classical floor: MFCC frames → k-means codebook → a song's codeword histogram → a logistic
regression per tag, trained and evaluated by the same ``musictag fit`` / ``test`` as the networks.

The model is an ordinary :class:`~musictag.training.module.TaggingModule` whose four stages are

- representation ``mfcc``: 20 MFCCs + deltas + delta-deltas per 16 ms frame (60 values), on the device;
- front end ``codebook``: each frame standardised and replaced by its nearest codeword (one-hot);
- back end ``global_mean``: the mean of the one-hot frames, i.e. the normalised codeword histogram;
- head ``linear``: one logistic regression per tag (a row of the Linear layer and its bias).

so a checkpoint holds only tensors (codewords, standardisation, weights): it loads with
``weights_only=True`` as any musictag checkpoint, ``musictag tag`` / ``musictag.load`` rebuild it as a
plain ``TaggingModule``, and ``test --ckpt_path best`` writes the usual metrics, ``test_predictions.npz``
and ``test_per_tag.csv``, which ``compare`` reads like a network run's.

Why these choices:

- **Fitted in one pass, not by gradient.** :meth:`CodebookTaggingModule.on_train_start` reads every
  training song once (the DataModule's training dataset, keys of epoch 0: the same excerpt each time,
  no drop of the last batch) and fits: a seeded sample of frames (``frame_sample`` in all, the same
  number from each song) → per-dimension standardisation → scikit-learn ``MiniBatchKMeans``
  (``codebook_size`` codewords, seeded); then a second read gives each training song's histogram, and
  scikit-learn ``LogisticRegression`` (L2, ``C``, lbfgs) is fitted per tag on the standardised
  histograms. scikit-learn does that work; its results are copied into the buffers and the Linear layer
  (the histogram standardisation folded into the weights), and no sklearn object is kept. A tag without
  a positive (or a negative) among the training songs gets weight 0 and the bias of its smoothed prior.
  Lightning's epoch then only logs (manual optimisation; the one "step" is a no-op that lets
  Lightning's checkpointing, which saves only after a step, keep ``best.ckpt``): ``max_epochs: 1``, and
  ``limit_train_batches: 1`` spares reading the corpus a third time.
- **Song-level histograms.** The recipes make a chunk the whole clip (``input_len`` = clip length,
  ``train_crop: start``, ``n_chunks: 1``), the classic recipe's one histogram per song. With several
  evaluation chunks the song score is ``logit_mean`` (forced): because the head is linear, the sigmoid of
  the mean chunk logit *is* the logistic regression of the mean chunk histogram, the song's histogram
  when the chunks cover it evenly. So evaluation needs nothing of its own.
- Deterministic: the frame sample comes from a torch generator seeded by ``fit_seed`` and the songs are
  read in order; k-means takes ``random_state=fit_seed``; lbfgs is deterministic.

One process only: under DDP each process would fit its own codebook (refused).

References: the lecture's baseline "MFCC + K-means (VQ) + codebook histogram"; bag-of-frames tagging as in
D. Turnbull, L. Barrington, D. Torres, G. Lanckriet, 'Semantic annotation and retrieval of music and sound
effects', IEEE TASLP 2008 (a generative variant), and J. Nam, J. Herrera, M. Slaney, J. Smith, 'Learning
sparse feature representations for music annotation and retrieval', ISMIR 2012 (codebook histograms).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from musictag.audio import to_float
from musictag.guards import at_least
from musictag.stages.frontends.codebook import Codebook
from musictag.training.module import TaggingModule
from musictag.types import ConfigError


class CodebookTaggingModule(TaggingModule):
    """MFCC + k-means codebook histogram + a logistic regression per tag (module docstring).

    Args:
        n_mfcc: MFCCs per frame (frames hold 3·n_mfcc values with the deltas).
        n_mels: mel bands the MFCCs are computed from.
        codebook_size: k-means codewords (histogram bins), at least 2.
        frame_sample: training frames k-means is fitted on (the same number from every song, at random
            positions drawn with ``fit_seed``); at least ``codebook_size``.
        C: inverse L2 regularisation of each tag's logistic regression (scikit-learn's ``C``).
        fit_seed: seed of the frame sample and of k-means.
        **kwargs: :class:`TaggingModule` arguments. ``input_len`` is required (samples per chunk: the
            clip length for song-level histograms); the stages default to the ones above (a checkpoint's
            own are used when it is reloaded); ``aggregate`` is always ``logit_mean``; ``arch`` and the
            optimiser are unused.
    """

    def __init__(
        self,
        n_mfcc: int = 20,
        n_mels: int = 40,
        codebook_size: int = 128,
        frame_sample: int = 100_000,
        C: float = 1.0,
        fit_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        at_least("model.init_args.codebook_size", codebook_size, 2)
        at_least("model.init_args.frame_sample", frame_sample, codebook_size)
        at_least("model.init_args.n_mfcc", n_mfcc, 1)
        at_least("model.init_args.n_mels", n_mels, n_mfcc)
        if not (isinstance(C, (int, float)) and math.isfinite(C) and C > 0):
            raise ConfigError(f"model.init_args.C must be a number > 0, got {C!r}")
        if kwargs.get("input_len") is None:
            raise ConfigError(
                "model.init_args.input_len is not set: give the samples per chunk (the clip length, "
                "e.g. 96000 for 6 s at 16 kHz, for one histogram per song)"
            )
        if kwargs.get("aggregate", "mean") not in ("mean", "logit_mean"):
            raise ConfigError(
                f"model.init_args.aggregate {kwargs['aggregate']!r}: the codebook model scores a song by the "
                "logistic regression of its mean histogram (logit_mean); leave aggregate unset"
            )
        if kwargs.get("task", "multilabel") != "multilabel":
            raise ConfigError(
                "the codebook model fits one logistic regression per tag: task must be multilabel"
            )
        kwargs.update(arch=None, aggregate="logit_mean")
        if kwargs.get("representation") is None:
            kwargs["representation"] = {"name": "mfcc", "n_mfcc": n_mfcc, "n_mels": n_mels}
        if kwargs.get("frontend") is None:
            kwargs["frontend"] = {"name": "codebook", "size": codebook_size}
        for stage, name in (("backend", "global_mean"), ("head", "linear")):
            if kwargs.get(stage) not in (None, name):  # the histogram and the regressions are these
                raise ConfigError(
                    f"model.init_args.{stage}: the codebook model's {stage} is {name!r}; leave it unset"
                )
            kwargs[stage] = name
        super().__init__(**kwargs)
        # the hparams Lightning collected hold the arguments as given (jsonargparse passes the defaults
        # arch short_chunk, aggregate mean): keep what was built, for a plain TaggingModule to rebuild it
        self.hparams.update(arch=None, aggregate="logit_mean")
        if not isinstance(self.net.frontend, Codebook):
            raise ConfigError("the codebook model's front end must be the 'codebook' stage")
        self.automatic_optimization = False
        self.codebook_size, self.frame_sample, self.C, self.fit_seed = (
            codebook_size,
            frame_sample,
            C,
            fit_seed,
        )
        self.fit_loss: float | None = None

    @property
    def codebook(self) -> Codebook:
        return self.net.frontend  # type: ignore[return-value]  # checked in __init__

    @property
    def logistic(self) -> torch.nn.Linear:
        """The head's Linear layer: row ``j`` and ``bias[j]`` are tag ``j``'s logistic regression."""
        layer = getattr(self.net.head, "layers", [None])[-1]
        assert isinstance(layer, torch.nn.Linear)  # the "linear" head (__init__)
        return layer

    # --- the fit --------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        if bool(self.codebook.fitted):  # resumed from a checkpoint of a fitted model
            return
        if self.trainer.world_size > 1:
            raise ConfigError("the codebook model is fitted in one process: run fit on one device (no DDP)")
        data: Any = getattr(self.trainer, "datamodule", None)
        dataset = getattr(data, "datasets", {}).get("train")
        if dataset is None or not hasattr(dataset, "__getitems__"):
            raise ConfigError("the codebook model reads its training songs from a musictag DataModule")
        batch_size = int(getattr(data, "batch_size", 16))
        self.fit(dataset, batch_size)

    def _batches(self, dataset: Any, batch_size: int) -> Any:
        """Every training song once, in order: ``(float audio on the device, targets)`` per batch."""
        n_songs = len(dataset)
        for start in range(0, n_songs, batch_size):
            batch = dataset.__getitems__([(i, 0) for i in range(start, min(start + batch_size, n_songs))])
            yield to_float(batch["audio"].to(self.device)), batch["target"].float()

    @torch.no_grad()
    def fit(self, dataset: Any, batch_size: int = 16) -> None:
        """Fit the codebook and the per-tag logistic regressions on ``dataset`` (a dataset of training
        chunks whose ``__getitems__`` takes ``(index, epoch)`` keys, as :class:`datamodules.TrainChunks`)."""
        n_songs = len(dataset)
        if n_songs == 0:
            raise ConfigError("the training split is empty: nothing to fit the codebook on")
        was_training = self.net.training
        self.net.eval()
        try:
            per_song = math.ceil(self.frame_sample / n_songs)
            generator = torch.Generator().manual_seed(self.fit_seed)
            sample = []
            for audio, _ in self._batches(dataset, batch_size):
                frames = self.net.representation(audio).squeeze(1).transpose(1, 2)  # (B, T, D)
                picks = torch.randint(0, frames.shape[1], (frames.shape[0], per_song), generator=generator)
                chosen = torch.gather(
                    frames, 1, picks.to(frames.device).unsqueeze(-1).expand(-1, -1, frames.shape[2])
                )
                sample.append(chosen.reshape(-1, frames.shape[2]).double().cpu())
            frames_np = torch.cat(sample).numpy()
            with _one_thread():
                codewords, mean, scale = fit_codebook(frames_np, self.codebook_size, self.fit_seed)
            self.codebook.set_codebook(
                *(torch.from_numpy(a).float().to(self.device) for a in (codewords, mean, scale))
            )
            histograms, targets = [], []
            for audio, target in self._batches(dataset, batch_size):
                histograms.append(
                    self.net.backend(self.codebook(self.net.representation(audio))).double().cpu()
                )
                targets.append(target)
            hist, labels = torch.cat(histograms).numpy(), torch.cat(targets).numpy()
            with _one_thread():
                weight, bias = fit_logistic(hist, labels, self.C)
            self.logistic.weight.copy_(torch.from_numpy(weight).float())
            self.logistic.bias.copy_(torch.from_numpy(bias).float())
            logits = (
                torch.from_numpy(hist).float().to(self.device) @ self.logistic.weight.T + self.logistic.bias
            )
            self.fit_loss = float(self.loss(logits, torch.from_numpy(labels).to(self.device)))
        finally:
            self.net.train(was_training)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:  # type: ignore[override]
        """Nothing to train (fitted at the start): logs the fit's training loss (BCE on the training
        songs) and counts the fit as the run's step, since Lightning saves checkpoints only after one."""
        if self.fit_loss is not None:
            self.log("train/loss", self.fit_loss, on_step=False, on_epoch=True, batch_size=1)
        if batch_idx == 0:
            optimizer = self.optimizers()
            assert not isinstance(optimizer, list)
            optimizer.step()  # SGD at lr 0 over parameters without gradients: nothing changes

    def configure_optimizers(self) -> Any:
        # a stand-in so that the fit counts as a step (training_step); it never moves a weight
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def check_trained(self, stage: str) -> None:
        super().check_trained(stage)
        if not bool(self.codebook.fitted):
            raise ConfigError(
                f"{stage}: the codebook model is not fitted (its codewords are zeros): run musictag fit "
                "first, then give --ckpt_path best"
            )


def _sklearn() -> Any:
    try:
        import sklearn.cluster
        import sklearn.linear_model
    except ImportError:
        raise ConfigError(
            "the codebook model is fitted with scikit-learn, which is not installed: "
            "pip install 'musictag[classical]'"
        ) from None
    return sklearn


def _one_thread() -> Any:
    """scikit-learn's BLAS and OpenMP on one thread: these fits are small, and their threads cost more
    than they give (k-means of 100,000 frames: 4.0 s on one thread, 25.6 s on two, on a busy 2-core
    machine; the per-tag regressions 0.1 s against 5 s)."""
    _sklearn()
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    return threadpool_limits(limits=1)


def fit_codebook(frames: np.ndarray, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means of frames ``(N, D)``: ``(codewords (size, D) in standardised units, mean (D,), scale (D,))``."""
    if len(frames) < size:
        raise ConfigError(
            f"the codebook needs at least {size} training frames, got {len(frames)}: raise frame_sample "
            "or lower codebook_size"
        )
    mean = frames.mean(axis=0)
    scale = frames.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    kmeans = _sklearn().cluster.MiniBatchKMeans(
        n_clusters=size, random_state=seed, n_init=3, batch_size=min(4096, len(frames))
    )
    kmeans.fit((frames - mean) / scale)
    return kmeans.cluster_centers_, mean, scale


def fit_logistic(features: np.ndarray, labels: np.ndarray, C: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One L2 logistic regression per tag on standardised ``features`` ``(N, K)`` against ``labels``
    ``(N, n_tags)``; the standardisation is folded in: ``(weight (n_tags, K), bias (n_tags,))`` apply to
    the raw features. A tag with one class only: weight 0, bias the logit of its smoothed prior."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    standard = (features - mean) / scale
    weight = np.zeros((labels.shape[1], features.shape[1]))
    bias = np.zeros(labels.shape[1])
    for tag in range(labels.shape[1]):
        y = labels[:, tag] > 0.5
        if y.all() or not y.any():
            bias[tag] = math.log((y.sum() + 0.5) / ((~y).sum() + 0.5))
            continue
        model = _sklearn().linear_model.LogisticRegression(C=C, max_iter=1000)
        model.fit(standard, y)
        weight[tag] = model.coef_[0] / scale
        bias[tag] = model.intercept_[0] - float(np.dot(model.coef_[0], mean / scale))
    return weight, bias
