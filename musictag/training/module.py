"""``TaggingModule``: one LightningModule for every tagging architecture.

Batches (from :mod:`datamodules`; audio int16 from the loaders, float32 once on the device):
    train: ``{"audio": (B, chunk_len), "target": (B, n_tags)}``, one chunk per song, plus the
    augmentation's per-item ``"gain"`` and ``"noise_snr_db"`` when it is on.
    val/test/predict: ``{"audio": (B, n_chunks, chunk_len), "target": (B, n_tags), "index": (B,)}``,
    one whole song per item, already cut into chunks; with sliding windows songs have different
    numbers of chunks and ``"chunk_mask": (B, n_chunks)`` marks the real ones. The module scores every chunk, turns the logits
    into probabilities and aggregates them to one score vector per song (``aggregate``).

Evaluation steps log ``val|test/loss`` and return the batch's songs (``scores``, ``targets``, ``index``);
the metrics, per-tag tables and output files are Lightning callbacks (:mod:`musictag.training.callbacks`), which
``musictag`` installs by default and a plain ``Trainer`` takes as ``callbacks=[TaggingMetrics(), ...]``.
"""

from __future__ import annotations

import hashlib
import os
import random
import warnings
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from musictag.audio import apply_wave_augment, to_float
from musictag.chunks import ChunkMode
from musictag.models import STAGE_KEYS, Tagger, resolve_architecture
from musictag.stages.registry import StageSpec
from musictag.training.augment import DeviceAugment, LabelRules, mixup, mixup_config
from musictag.training.checkpoints import load_checkpoint as load_checkpoint
from musictag.training.checkpoints import load_matching_weights as load_matching_weights
from musictag.training.checkpoints import read_torch_file as read_torch_file
from musictag.training.metrics import Aggregation, WeightedMean, aggregate_chunks
from musictag.training.standardize import fit_band_statistics
from musictag.types import ConfigError

Task = Literal["multilabel", "multiclass"]

# The module, not the DataModule, turns int16 batches into float on the device (any DataModule may ship
# int16); Lightning says so on every run where a DataModule is passed.
warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer` in `LightningModule`")
# Predictions carry their songs' indices ("index"), so Lightning's batch-index tracking, which only knows
# torch's DataLoader, is not needed with the BatchLoader.
warnings.filterwarnings("ignore", message="Couldn't infer the batch indices fetched from your dataloader")


class TaggingModule(pl.LightningModule):
    """Multi-label music tagging with any registered architecture.

    Args:
        n_tags: number of tags; linked from the DataModule by the CLI.
        arch: a named architecture (``musictag.models.available()``); the stage arguments below replace
            its stages one by one. Without ``arch`` every stage and ``input_len`` must be given.
        arch_args: arguments of an architecture that takes them (``{param_budget: 250000}`` for the
            ``choi_*`` designs).
        representation: the representation's stage spec (a registered name, or a mapping with ``name``
            and the stage's arguments).
        frontend: the front end's stage spec.
        backend: the back end's stage spec.
        head: the head's stage spec.
        input_len: samples per chunk the network sees; also the DataModule's chunk length.
        sample_rate: the audio rate the network expects.
        tag_names: tag of each output, in order (linked from the DataModule, kept in checkpoints).
        aggregate: how chunk probabilities become a song score: ``mean``, ``max``, ``vote`` (with
            ``multiclass``: the majority vote of the chunks' top classes) or ``logit_mean`` (the sigmoid
            of the mean chunk logit, as MARBLE's probes score a song).
        task: ``multilabel`` (tagging: sigmoid per tag, binary cross-entropy) or ``multiclass`` (one
            class per song, e.g. genre: softmax, cross-entropy, and ``accuracy`` logged too).
        eval_chunk_batch: at most this many chunks go through the network at once in evaluation (memory
            only: results do not depend on it).
        tag_chunks: chunks per file ``musictag tag`` scores by default (with ``tag_chunk_mode`` and
            ``tag_chunk_hop``: how it cuts a file, and the evaluation chunk mode of a DataModule that sets
            none). Unset, ``fit`` stores its DataModule's
            evaluation setting (``n_chunks``, ``chunk_mode``, ``chunk_hop``) in the checkpoint, so a
            checkpoint tags as its run was evaluated. An imported published model carries its original
            setting (16 chunks placed by the ``sota`` rule, the musicnn library's ``patches``); unset
            otherwise: the ``pretrained`` checkpoint's mode, else 16 ``even`` chunks.
        tag_chunk_mode: ``even``, ``sota``, ``sliding``, ``patches`` or ``centre`` (see ``tag_chunks``). The
            three settings become a :class:`~musictag.chunks.ChunkPlan` (``ChunkPlan.for_model``).
        tag_chunk_hop: the hop of the ``sliding`` mode, in samples (``patches`` take the spectrogram's).
        compile: run the network through ``torch.compile`` (inductor) in Trainer runs (fit, validate,
            test, predict); the weights and checkpoints are the same as without it.
        pretrained: a musictag checkpoint whose weights start this model (fine-tuning). Its architecture
            is used unless stages are given here; tensors that do not fit (the output layer of another
            tag set) start fresh: ``fit`` trains them, but ``validate``, ``test`` and ``predict`` refuse
            to evaluate such untrained layers (random scores) unless a ``ckpt_path`` gives trained ones,
            or ``allow_untrained`` is set.
        allow_untrained: evaluate (validate / test / predict) although some layers are untrained (not
            in ``pretrained``: a new output layer); warned, and kept in the run's ``config.yaml``.
        optimizer: a callable taking the parameters (YAML: ``class_path: torch.optim.Adam`` ...).
        lr_scheduler: an optional callable taking the optimizer; stepped each epoch, and given
            ``lr_scheduler_monitor`` to monitor (for ``ReduceLROnPlateau``).
        lr_scheduler_monitor: the logged value a ``ReduceLROnPlateau`` watches: ``val/loss`` (default), or
            e.g. ``val/roc_auc`` (then give the scheduler ``mode: max``), as MARBLE's probes do.
        mp3_decoder_delay: samples at an MP3's own rate that tagging (``tag``, ``features``, the API)
            drops from the start of MP3 input, keeping its length (:func:`musictag.audio.load_audio`):
            the original decoder dropped the MP3 decoder delay (529 samples). 0 (the default, and
            every checkpoint written without it): MP3s decoded as they are. Only the Choi import sets
            it; ``pretrained`` passes its setting on unless given.
        augment: waveform augmentation on the training device (:mod:`musictag.training.augment`):
            ``default`` (the documented set) or ``{transform: {p: ..., <range>: [low, high]}, ...}``, plus
            ``mixup: {p, alpha, target: mix | max}`` and ``labels: {transform: {tags: [...], action: drop
            | set, value}}``, the tags a transform changes. Training only: evaluation never sees it.
    """

    def __init__(
        self,
        n_tags: int = 50,
        arch: str | None = "short_chunk",
        arch_args: dict[str, Any] | None = None,
        representation: StageSpec | None = None,
        frontend: StageSpec | None = None,
        backend: StageSpec | None = None,
        head: StageSpec | None = None,
        input_len: int | None = None,
        sample_rate: int | None = None,
        tag_names: list[str] | None = None,
        aggregate: Aggregation = "mean",
        task: Task = "multilabel",
        eval_chunk_batch: int = 64,
        tag_chunks: int | None = None,
        tag_chunk_mode: ChunkMode | None = None,
        tag_chunk_hop: int | None = None,
        compile: bool = False,
        pretrained: str | None = None,
        allow_untrained: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_monitor: str = "val/loss",
        mp3_decoder_delay: int | None = None,
        augment: dict[str, Any] | str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        overrides = {
            "representation": representation,
            "frontend": frontend,
            "backend": backend,
            "head": head,
            "input_len": input_len,
            "sample_rate": sample_rate,
        }
        source = load_checkpoint(pretrained) if pretrained else None
        if source is not None:  # the checkpoint's architecture, stage by stage replaced by what is given
            saved = source.get("hyper_parameters", {})
            architecture = {k: saved[k] for k in STAGE_KEYS if k in saved}
            architecture.update({k: v for k, v in overrides.items() if v is not None})
            self.hparams.update(arch=saved.get("arch"), pretrained=None)
        else:
            architecture = resolve_architecture(arch, arch_args, **overrides)
        # Checkpoints carry the resolved stages, so they rebuild the same network even if a preset changes.
        self.hparams.update(architecture)
        if tag_names is not None and len(tag_names) != n_tags:
            raise ConfigError(f"{len(tag_names)} tag_names for n_tags={n_tags}; they must agree")
        if task not in ("multilabel", "multiclass"):
            raise ConfigError(f"unknown task {task!r}; use 'multilabel' or 'multiclass'")
        if aggregate == "logit_mean" and task != "multilabel":
            raise ConfigError(
                "aggregate 'logit_mean' is for multilabel tagging; use 'mean' with task multiclass"
            )
        for name, value in (
            ("eval_chunk_batch", eval_chunk_batch),
            ("tag_chunks", tag_chunks),
            ("tag_chunk_hop", tag_chunk_hop),
        ):  # 0 is not "the default": it is refused like -1
            if value is not None and not value >= 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if mp3_decoder_delay is not None and not mp3_decoder_delay >= 0:
            raise ConfigError(f"mp3_decoder_delay must be at least 0 samples, got {mp3_decoder_delay}")
        self.net = Tagger(n_tags=n_tags, **architecture)
        _record_encoder_architecture(self.net, self.hparams)
        #: layers that hold no trained weights (not in ``pretrained``); emptied by a checkpoint's weights
        self.untrained_layers: list[str] = []
        self.allow_untrained = allow_untrained
        if source is not None:
            self.untrained_layers = load_matching_weights(self, source["state_dict"], str(pretrained))
        self._pretrained_source = str(pretrained) if pretrained else None
        if tag_chunk_mode is None:  # the original's setting travels with its weights
            tag_chunk_mode = source.get("hyper_parameters", {}).get("tag_chunk_mode") if source else None
        self.tag_chunks: int = tag_chunks or 16
        self.tag_chunk_mode: ChunkMode = tag_chunk_mode or "even"
        self.tag_chunk_hop = tag_chunk_hop
        if mp3_decoder_delay is None:  # a preprocessing setting: it travels with the weights too
            mp3_decoder_delay = (
                source.get("hyper_parameters", {}).get("mp3_decoder_delay") if source else None
            )
        self.mp3_decoder_delay: int = int(mp3_decoder_delay or 0)
        self.tag_names = list(tag_names) if tag_names is not None else [f"tag_{i}" for i in range(n_tags)]
        self.aggregate = aggregate
        self.task = task
        self.eval_chunk_batch = eval_chunk_batch
        self.compile_net = compile  # (not `self.compile`: that is nn.Module.compile)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.lr_scheduler_monitor = lr_scheduler_monitor
        # Weighted by chunks and synced as sums and counts: exact whatever songs each process holds.
        # No NaN check: it would make every evaluation step wait for the device.
        self.eval_loss = torch.nn.ModuleDict({stage: WeightedMean() for stage in ("val", "test")})
        self.device_augment = DeviceAugment(augment, self.net.sample_rate)
        self.mixup = mixup_config(augment, task)
        self.label_rules = LabelRules(
            augment.get("labels") if isinstance(augment, dict) else None,
            self.tag_names,
            list(self.device_augment.transforms),
        )
        if self.label_rules and task == "multiclass":
            raise ConfigError("augment.labels: label rules are for multilabel tagging, not task multiclass")

    @property
    def input_len(self) -> int:
        return self.net.input_len

    @property
    def sample_rate(self) -> int:
        return self.net.sample_rate

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform chunks ``(B, input_len)`` → logits ``(B, n_tags)``."""
        return self.net(audio)

    def chunk_logits(self, audio: torch.Tensor) -> torch.Tensor:
        """Songs cut into chunks ``(B, n_chunks, L)`` → logits ``(B, n_chunks, n_tags)``."""
        songs, n_chunks, length = audio.shape
        flat = audio.reshape(songs * n_chunks, length)
        logits = torch.cat([self.net(part) for part in flat.split(self.eval_chunk_batch)])
        return logits.reshape(songs, n_chunks, -1)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits → per-tag probabilities (sigmoid), or class probabilities (softmax) for ``multiclass``."""
        logits = logits.float()
        return torch.softmax(logits, dim=-1) if self.task == "multiclass" else torch.sigmoid(logits)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """BCE-with-logits over tags, or cross-entropy against the (one-hot) class for ``multiclass``."""
        logits = logits.float()
        if self.task == "multiclass":
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1, target.shape[-1]))
        return F.binary_cross_entropy_with_logits(logits, target)

    def song_scores(self, audio: torch.Tensor, chunk_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Songs ``(B, n_chunks, L)`` → aggregated tag probabilities ``(B, n_tags)``; ``chunk_mask``
        ``(B, n_chunks)`` marks real chunks when songs have different numbers of them."""
        logits = self.chunk_logits(audio)
        return aggregate_chunks(
            self.probabilities(logits), self.aggregate, chunk_mask, logits, self.task == "multiclass"
        )

    def setup(self, stage: str) -> None:
        if self.compile_net and self.net._compiled_call_impl is None:
            # in place: parameter names, state_dict and checkpoints stay those of the eager network
            self.net.compile()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device: int16 audio → float32 in [-1, 1), then the waveform augmentation whose
        per-item parameters came with the batch (no host round trip, nothing waits for the host)."""
        if not isinstance(batch, dict) or "audio" not in batch:
            return batch
        trainer = self._trainer
        if trainer is not None and trainer.training and not trainer.sanity_checking:
            # the step's randomness starts here (the augmentation noise below is its first draw)
            self._seed_step(trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1)
        audio = to_float(batch["audio"])
        if "gain" in batch:
            audio = apply_wave_augment(audio, batch["gain"], batch["noise_snr_db"])
        training = trainer is not None and trainer.training and not trainer.sanity_checking
        if training and audio.dim() == 2 and (self.device_augment or self.mixup or self.label_rules):
            return {**batch, **self.augment_batch(audio, batch["target"], batch.get("gain"))}
        return {**batch, "audio": audio}

    def augment_batch(
        self, audio: torch.Tensor, target: torch.Tensor, gain: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The device augmentation, the label rules and mixup of a float training batch: ``audio``,
        ``target`` and, when a rule drops tags, ``loss_weight`` ``(B, n_tags)`` (0: out of the loss)."""
        applied: dict[str, torch.Tensor] = {}
        if self.device_augment:
            audio, applied = self.device_augment(audio)
        if gain is not None:
            applied["gain"] = gain != 1
        target, weight = self.label_rules.apply(target.float(), applied)
        if self.mixup:
            audio, target, weight, _, _ = mixup(audio, target, weight, **self.mixup)
        out = {"audio": audio, "target": target}
        if weight is not None:
            out["loss_weight"] = weight
        return out

    # --- training -------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Keep the run's evaluation chunking in the checkpoint (``hparams``) for ``musictag tag``, unless
        the tagging setting was given."""
        data: Any = getattr(self.trainer, "datamodule", None)
        if self.hparams.get("tag_chunks") is None and getattr(data, "n_chunks", None) is not None:
            mode = getattr(data, "chunk_mode", None) or self.tag_chunk_mode
            hop = getattr(data, "chunk_hop", None)
            self.hparams.update(tag_chunks=int(data.n_chunks), tag_chunk_mode=mode, tag_chunk_hop=hop)
            self.tag_chunks, self.tag_chunk_mode, self.tag_chunk_hop = int(data.n_chunks), mode, hop
        self.device_augment.prepare()  # the folders of impulse responses and backgrounds, if named
        fit_band_statistics(self)  # representations with standardize: true, once (Pons et al. 2016)

    def _seed_step(self, batch_idx: int) -> None:
        """With a global seed (``seed_everything``), seed torch, numpy and ``random`` from (seed, epoch,
        batch, rank) as a training batch reaches the device: the device augmentation's noise, dropout,
        SpecAugment and anything else a step draws are then the same whether the run was resumed before
        it or not, whatever drew from the global generators in between (a fresh run's DataLoader iterator
        takes its base seed from torch's generator after the epoch started; a resumed run's does so
        before). Lightning does not restore random states from checkpoints. The data's own randomness
        (order, crops, augmentation parameters) is drawn from (seed, epoch, index) by the sampler and
        dataset."""
        seed = step_seed(self.current_epoch, batch_idx, self.global_rank)
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)  # every device's generator too

    def training_loss(
        self, audio: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The training step's math: chunks ``(B, input_len)`` → float in [-1, 1) (int16 is divided by
        ``INT16_SCALE``; float audio, as :meth:`on_after_batch_transfer` hands it over, is taken as it is)
        → logits ``(B, n_tags)`` → :meth:`loss` against ``target`` ``(B, n_tags)``. :meth:`training_step`
        and ``musictag bench`` (:mod:`musictag.bench.throughput`) both run this, so the benchmark times
        the step that trains. ``weight`` ``(B, n_tags)``: 0 leaves a (song, tag) out of the loss (the
        augmentation's label rules), the mean is over the rest."""
        if weight is None:
            return self.loss(self.net(to_float(audio)), target)
        logits = self.net(to_float(audio)).float()
        losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (losses * weight).sum() / weight.sum().clamp(min=1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Forward, loss and logging, all queued on the device: no ``.item()``, no host copy, no Python
        decision on a tensor's value (tested), so a GPU never waits for the Python loop."""
        loss = self.training_loss(batch["audio"], batch["target"], batch.get("loss_weight"))
        # sync_dist: the epoch value is the mean over every process's batches (one scalar all-reduce)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["audio"]),
            sync_dist=True,
        )
        return loss

    def on_train_epoch_end(self) -> None:
        """Values stages report about themselves (a learned layer weighting: ``train/layer_weights/<i>``)."""
        for stage in self.net.modules():
            logged_values = getattr(stage, "logged_values", None)
            if logged_values is not None:
                for name, value in logged_values().items():
                    self.log(f"train/{name}", value)

    # --- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Scores a batch of songs; logs ``<stage>/loss`` and returns the songs for the evaluation
        callbacks (:mod:`musictag.training.callbacks`): ``scores`` ``(B, n_tags)``, ``targets``, ``index``."""
        logits = self.chunk_logits(batch["audio"]).float()
        target = batch["target"]
        mask = batch.get("chunk_mask")
        # The loss of every real chunk against its song's tags: the training objective on evaluation
        # songs, weighted rather than indexed by the mask so that nothing waits for the host.
        per_chunk = self.chunk_losses(logits, target.unsqueeze(1).expand_as(logits).float())
        weights = mask.to(per_chunk.dtype) if mask is not None else torch.ones_like(per_chunk)
        n_real = weights.sum()
        eval_loss: WeightedMean = self.eval_loss[stage]  # type: ignore[assignment]  # a ModuleDict of them
        eval_loss.update((per_chunk * weights).sum() / n_real.clamp(min=1), weight=n_real)
        self.log(f"{stage}/loss", eval_loss, on_epoch=True, batch_size=per_chunk.numel())
        scores = aggregate_chunks(
            self.probabilities(logits), self.aggregate, mask, logits, self.task == "multiclass"
        )
        songs = {"scores": scores, "targets": target}
        if "index" in batch:
            songs["index"] = batch["index"]
        return songs

    def chunk_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """:meth:`loss` of each chunk: logits and targets ``(B, n_chunks, n_tags)`` → ``(B, n_chunks)``."""
        logits = logits.float()
        if self.task == "multiclass":
            return F.cross_entropy(logits.transpose(1, 2), target.transpose(1, 2), reduction="none")
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=-1)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        audio = batch["audio"]
        scores = self.song_scores(audio if audio.ndim == 3 else audio.unsqueeze(1), batch.get("chunk_mask"))
        return {"index": batch["index"], "scores": scores}

    # --- untrained layers -----------------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint's weights (``ckpt_path``) replace every layer, the fresh ones included."""
        self.untrained_layers = []

    def check_trained(self, stage: str) -> None:
        """Refuse to evaluate layers that were never trained (``pretrained`` of another tag set, no
        ``ckpt_path``): their scores would be those of random weights, reported as a model's."""
        if not self.untrained_layers:
            return
        layers = sorted({name.rsplit(".", 1)[0] for name in self.untrained_layers})
        shown = ", ".join(layers[:4]) + (", ..." if len(layers) > 4 else "")
        if self.allow_untrained:
            if getattr(self, "_warned_untrained", False):
                return
            self._warned_untrained = True
            warnings.warn(
                f"{stage} evaluates untrained layers ({shown}: not in the pretrained checkpoint); "
                "its scores are those of randomly initialised weights (allow_untrained: true)",
                stacklevel=2,
            )
            return
        raise ConfigError(
            f"{stage} would evaluate untrained layers ({shown}: not in pretrained "
            f"{self._pretrained_source}), so its scores would be random: fit "
            "them first and give --ckpt_path, or set --model.init_args.allow_untrained=true to evaluate anyway"
        )

    def on_validation_start(self) -> None:
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == "validate":  # fit validates what it trains
            self.check_trained("validate")

    def on_test_start(self) -> None:
        self.check_trained("test")

    def on_predict_start(self) -> None:
        self.check_trained("predict")

    # --- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        # torch checks its settings only here, after the data is ready: a negative learning rate or
        # momentum is the user's number, said in one line, not a traceback from deep in fit
        try:
            optimizer = self.optimizer(self.parameters())
        except (ValueError, TypeError) as err:
            raise ConfigError(f"model.init_args.optimizer: {err}") from None
        if self.lr_scheduler is None:
            return optimizer
        try:
            scheduler = self.lr_scheduler(optimizer)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"model.init_args.lr_scheduler: {err}") from None
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": "epoch",
                "monitor": self.lr_scheduler_monitor,
            },
        }


def step_seed(epoch: int, batch_idx: int, rank: int = 0) -> int | None:
    """The seed of one training step: a hash of (the ``seed_everything`` seed, epoch, batch, rank), or
    ``None`` without a global seed. ``PL_GLOBAL_SEED`` is only read, never rewritten, so the seed of a
    step does not depend on the steps run before it in this process."""
    base = os.environ.get("PL_GLOBAL_SEED")
    if base is None:
        return None
    key = f"{int(base)}:{epoch}:{batch_idx}:{rank}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % 2**63


def _record_encoder_architecture(net: torch.nn.Module, hparams: Any) -> None:
    """Write a pretrained encoder's ``model_type`` into the front end's spec in ``hparams``, so the
    checkpoint's model is rebuilt only on an encoder of that architecture (see ``PretrainedEncoder``)."""
    architecture = getattr(getattr(net, "frontend", None), "architecture", None)
    spec = hparams.get("frontend")
    if architecture is None or not isinstance(spec, dict):
        return
    if "class_path" in spec:
        hparams["frontend"] = {
            **spec,
            "init_args": {**(spec.get("init_args") or {}), "architecture": architecture},
        }
    else:
        hparams["frontend"] = {**spec, "architecture": architecture}
