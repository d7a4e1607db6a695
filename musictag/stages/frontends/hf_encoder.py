"""Pretrained Hugging Face audio encoders as front ends, and the layer mixing of their hidden states.

``pretrained`` loads an encoder with ``transformers`` from a local folder (or the user's Hugging Face
cache), resamples the chunk to the encoder's rate, applies the encoder's own feature extraction on the
device (:mod:`musictag.stages.frontends.hf_features`), runs it (frozen and in eval mode unless ``finetune``),
keeps the chosen hidden layers and mixes them (:class:`LayerMix`) into ``(B, D, T)`` features for a
pooling back end. ``layer_mix`` is the same mixing over hidden states cached by ``musictag embed``
(read by the ``embedding`` representation), so a probe trains from the cache exactly as it would live.

``transformers`` is imported only when an encoder is built (``pip install musictag[probe]``).

References: A. Baevski et al., 'wav2vec 2.0', NeurIPS 2020; W.-N. Hsu et al., 'HuBERT', TASLP 2021;
S. Chen et al., 'WavLM', JSTSP 2022; Y. Li et al., 'MERT', ICLR 2024; Y. Gong et al., 'AST: Audio
Spectrogram Transformer', Interspeech 2021; Y. Wu et al., 'Large-scale contrastive language-audio
pretraining (CLAP)', ICASSP 2023; A. Radford et al., 'Whisper', ICML 2023; probing protocol: R. Yuan et
al., 'MARBLE: Music Audio Representation Benchmark for Universal Evaluation', NeurIPS 2023.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from musictag.stages.registry import FRONTENDS, ConfigError

#: ``config.json``'s ``model_type`` → encoder family.
MODEL_TYPES = {
    "wav2vec2": "wav2vec2",
    "wav2vec2-conformer": "wav2vec2",
    "hubert": "wav2vec2",
    "wavlm": "wav2vec2",
    "data2vec-audio": "wav2vec2",
    "audio-spectrogram-transformer": "ast",
    "clap": "clap",
    "clap_audio_model": "clap",
    "whisper": "whisper",
}
SUPPORTED = (
    "wav2vec2, wav2vec2-conformer, hubert, wavlm, data2vec-audio (and MERT-style models of this family "
    "with trust_remote_code: true), audio-spectrogram-transformer, clap, whisper"
)
FLOAT16_MAX = 65504.0
Layers = int | Sequence[int] | str


def require_transformers() -> Any:
    """The ``transformers`` module, or a one-line error saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            "pretrained encoders need the transformers package: pip install musictag[probe]"
        ) from None
    return transformers


def to_float16(hidden: torch.Tensor) -> torch.Tensor:
    """Hidden states as the embedding cache stores them: clamped to the float16 range, rounded to float16."""
    return hidden.clamp(-FLOAT16_MAX, FLOAT16_MAX).to(torch.float16)


def encoder_folder(path: str, download: bool = False) -> Path:
    """A local model folder, or the snapshot of ``path`` (a Hub id) in the Hugging Face cache."""
    folder = Path(os.path.expanduser(path))
    if folder.is_dir():
        return folder
    if folder.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise ConfigError(f"no encoder folder at {path}: give a folder holding config.json")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path, local_files_only=not download))
    except Exception as err:  # noqa: BLE001  (the hub raises many kinds for a missing or bad id)
        hint = "" if download else " (download it first, e.g. `hf download ID`, or set download: true)"
        raise ConfigError(
            f"no encoder {path!r}: not a folder and not in the Hugging Face cache{hint}: "
            f"{str(err).splitlines()[0]}"
        ) from None


def encoder_family(folder: Path, trust_remote_code: bool = False) -> tuple[str, dict[str, Any]]:
    """The family of the encoder in ``folder`` and its ``config.json``; one line naming what was found."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConfigError(
            f"{folder} holds no config.json: not a Hugging Face model folder; supported encoders: {SUPPORTED}"
        )
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type")
    if model_type in MODEL_TYPES:
        return MODEL_TYPES[model_type], config
    found = f"model_type {model_type!r}, architectures {config.get('architectures')}"
    preprocessor = folder / "preprocessor_config.json"
    extractor = (
        json.loads(preprocessor.read_text()).get("feature_extractor_type") if preprocessor.is_file() else None
    )
    remote = "auto_map" in config
    if remote and extractor == "Wav2Vec2FeatureExtractor":
        if not trust_remote_code:
            raise ConfigError(
                f"{folder} holds a remote-code model ({found}) of the wav2vec 2.0 family: set "
                "trust_remote_code: true to run the Python code in that folder (only for code you trust)"
            )
        return "wav2vec2", config
    raise ConfigError(f"{folder} holds no supported encoder (found {found}); supported: {SUPPORTED}")


def load_encoder(
    path: str, trust_remote_code: bool = False, download: bool = False
) -> tuple[str, nn.Module, Any, dict[str, Any]]:
    """(family, encoder module, feature extractor, config dict) of the encoder at ``path``."""
    folder = encoder_folder(path, download)
    family, config = encoder_family(folder, trust_remote_code)
    transformers = require_transformers()
    if trust_remote_code:
        warnings.warn(
            f"trust_remote_code: running the model code in {folder}; use it only for code you trust",
            stacklevel=2,
        )
    extractor = _feature_extractor(transformers, folder, family, trust_remote_code)
    kwargs = {"trust_remote_code": trust_remote_code} if trust_remote_code else {}
    hf_logging = transformers.utils.logging
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in every process that builds a model
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(were not used|newly initialized|not initialized).*")
            if family == "clap" and config.get("model_type") == "clap":
                model = transformers.ClapModel.from_pretrained(folder).audio_model
            else:
                model = transformers.AutoModel.from_pretrained(folder, **kwargs)
                if family == "whisper":
                    model = model.get_encoder()
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot load the {family} encoder in {folder}: {str(err).splitlines()[0]}"
        ) from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return family, model.float(), extractor, config


def _feature_extractor(transformers: Any, folder: Path, family: str, trust_remote_code: bool) -> Any:
    """The folder's feature extractor, else the family's default one (and say so)."""
    if (folder / "preprocessor_config.json").is_file():
        return transformers.AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=trust_remote_code)
    default = {
        "wav2vec2": "Wav2Vec2FeatureExtractor",
        "ast": "ASTFeatureExtractor",
        "clap": "ClapFeatureExtractor",
        "whisper": "WhisperFeatureExtractor",
    }[family]
    warnings.warn(f"{folder} has no preprocessor_config.json: using {default}'s defaults", stacklevel=3)
    return getattr(transformers, default)()


class LayerMix(nn.Module):
    """Hidden states ``(B, L, T, D)`` → ``(B, D', T)``.

    ``mix="concat"``: the layers side by side, ``D' = L·D`` (one layer: that layer). ``mix="weighted"``:
    a learned softmax-weighted sum, ``D' = D``; the weights start equal and are logged in training
    (``train/layer_weights/<i>``, ``i`` the position in the chosen layers).
    """

    def __init__(self, n_layers: int, mix: str = "concat") -> None:
        super().__init__()
        if mix not in ("concat", "weighted"):
            raise ConfigError(f"unknown layer mix {mix!r}; use 'concat' or 'weighted'")
        self.mix = mix
        self.n_layers = n_layers
        if mix == "weighted":
            self.layer_weights = nn.Parameter(torch.zeros(n_layers))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_weights, dim=0)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mix == "weighted":
            mixed = torch.einsum("bltd,l->btd", hidden, self.weights())
        else:
            mixed = hidden.permute(0, 2, 1, 3).flatten(2)
        return mixed.transpose(1, 2)

    def logged_values(self) -> dict[str, float]:
        """What the training loop logs (``TaggingModule.on_train_epoch_end``)."""
        if self.mix != "weighted":
            return {}
        return {f"layer_weights/{i}": float(w) for i, w in enumerate(self.weights().detach().cpu())}


@FRONTENDS.register("layer_mix")
class LayerMixFrontEnd(nn.Module):
    """Cached hidden states ``(B, L, T, D)`` (the ``embedding`` representation) → ``(B, D', T)``.

    Its weights are named as in :class:`PretrainedEncoder` (``frontend.mix.layer_weights``), so a probe
    trained from an embedding cache loads into the live model (``pretrained: probe.ckpt``) to tag audio."""

    input_ndim = 3

    def __init__(self, in_shape: Sequence[int], mix: str = "concat") -> None:
        super().__init__()
        self.mix = LayerMix(int(in_shape[0]), mix)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.mix(hidden)


@FRONTENDS.register("hf_encoder")
class PretrainedEncoder(nn.Module):
    """A Hugging Face audio encoder: waveform ``(B, 1, S)`` at ``sample_rate`` → ``(B, D', T)``.

    Args:
        path: a folder saved by ``save_pretrained`` (``config.json``, weights, ``preprocessor_config.json``)
            or a Hub id already in the Hugging Face cache.
        layers: the hidden states to use: an index (``-1``: the last layer, ``0``: the input
            embeddings), a list of indices, or ``"all"``.
        mix: ``concat`` or ``weighted`` (a learned softmax-weighted sum; see :class:`LayerMix`).
        finetune: train the encoder too; by default it is frozen, in eval mode (no dropout) and run
            without gradients.
        time_pool: ``none`` keeps every frame; ``mean`` averages each layer over time first (MARBLE's
            probes see time-averaged features; the embedding cache then holds one frame per chunk).
        float16: round the hidden states to float16 as ``musictag embed`` stores them, so that a probe
            trained live and one trained from the embedding cache see the same numbers.
        encoder_batch: chunks per encoder forward (default: the whole batch). Float32 kernels (CPU and
            GPU) may round a chunk's hidden states differently with other batch sizes, and float16
            rounding turns that into 1-ulp differences; ``1`` makes each chunk's features independent
            of its batch, bit for bit the same as ``musictag embed --encoder-batch 1``.
        trust_remote_code: allow a folder's own model code (MERT); off unless asked for.
        download: let ``transformers`` fetch a Hub id that is not in the cache.
        architecture: the ``model_type`` the folder must hold (``config.json``). A model records the one
            it was built on in its checkpoint, so that a folder since replaced by another encoder is
            named as such when the model is loaded, not met as a tensor size mismatch.

    The encoder's hidden states are ``(B, T, D)`` token sequences: frames for wav2vec 2.0-style models
    and Whisper (cut to the frames that cover the chunk), patches for AST (the two class tokens first),
    the final-stage patches for CLAP's HTS-AT (whose stages differ in width: ``weighted`` needs layers
    of one width).
    """

    input_ndim = 2

    features: (
        Any  # the family's input module (musictag.stages.frontends.hf_features), typed for the type checker
    )

    def __init__(
        self,
        in_shape: Sequence[int],
        sample_rate: int,
        path: str,
        layers: Layers = -1,
        mix: str = "concat",
        finetune: bool = False,
        time_pool: str = "none",
        float16: bool = True,
        encoder_batch: int | None = None,
        trust_remote_code: bool = False,
        download: bool = False,
        architecture: str | None = None,
    ) -> None:
        super().__init__()
        from musictag.stages.frontends import hf_features

        self.path = path
        self.finetune = finetune
        self.float16 = float16
        if time_pool not in ("none", "mean"):
            raise ConfigError(f"unknown time_pool {time_pool!r}; use 'none' or 'mean'")
        if encoder_batch is not None and encoder_batch < 1:
            raise ConfigError(f"encoder_batch must be at least 1, got {encoder_batch}")
        self.time_pool = time_pool
        self.encoder_batch = encoder_batch
        # Loading must not move the global RNG (transformers may initialise weights before loading them):
        # the probe's initialisation is then the same whether the encoder runs live or from a cache.
        with torch.random.fork_rng(devices=[]):
            self.family, self.encoder, extractor, config = load_encoder(path, trust_remote_code, download)
        self.architecture = str(config.get("model_type"))
        if architecture is not None and architecture != self.architecture:
            raise ConfigError(
                f"the encoder folder {path} holds a {self.architecture} model, but this model was built on "
                f"a {architecture} one: put that {architecture} encoder back at {path} (or retrain on this one)"
            )
        self.encoder_rate = int(extractor.sampling_rate)
        self.sample_rate = int(sample_rate)
        self.features = {
            "wav2vec2": lambda: hf_features.Wav2Vec2Input(extractor),
            "ast": lambda: hf_features.ASTInput(extractor),
            "whisper": lambda: hf_features.WhisperInput(extractor),
            "clap": lambda: hf_features.ClapInput(
                extractor, bool(getattr(self.encoder.config, "enable_fusion", False))
            ),
        }[self.family]()
        if not finetune:
            self.encoder.requires_grad_(False)
        self.encoder.train(finetune)
        n_samples = int(in_shape[-1])
        try:
            with torch.no_grad():
                hidden = self._hidden_states(torch.zeros(1, n_samples))
        except (ValueError, RuntimeError) as err:
            raise ConfigError(
                f"the encoder {path} ({self.family}) cannot take chunks of {n_samples} samples at "
                f"{self.sample_rate} Hz: {str(err).splitlines()[0]}"
            ) from None
        self.n_layers_total = len(hidden)
        self.layers = self._layer_indices(layers, self.n_layers_total)
        widths = sorted({hidden[i].shape[-1] for i in self.layers})
        if mix == "weighted" and len(widths) > 1:
            raise ConfigError(
                f"pretrained {path}: layers {self.layers} have widths {widths}; a weighted sum needs one width"
            )
        if mix == "concat" and len({hidden[i].shape[1] for i in self.layers}) > 1:
            raise ConfigError(f"pretrained {path}: layers {self.layers} have different numbers of frames")
        frames, width = hidden[self.layers[0]].shape[1:]
        self.frame_shape = (1 if time_pool == "mean" else frames, width)
        self.mix = LayerMix(len(self.layers), mix)

    @staticmethod
    def _layer_indices(layers: Layers, total: int) -> list[int]:
        if layers == "all":
            chosen = list(range(total))
        elif isinstance(layers, int):
            chosen = [layers]
        elif isinstance(layers, str):
            raise ConfigError(f"layers must be an index, a list of indices or 'all', got {layers!r}")
        else:
            chosen = [int(i) for i in layers]
        bad = [i for i in chosen if not -total <= i < total]
        if bad or not chosen:
            raise ConfigError(
                f"layer(s) {bad or chosen} out of range: this encoder has {total} hidden states (0 … {total - 1})"
            )
        indices = [i % total for i in chosen]
        twice = sorted({chosen[k] for k, i in enumerate(indices) if indices.index(i) != k})
        if twice:  # 0,0 (or 2,-1 of 3) would store one hidden state twice and call it two layers
            raise ConfigError(f"layer(s) {twice} named twice in {chosen}: give each hidden state once")
        return indices

    def train(self, mode: bool = True) -> PretrainedEncoder:
        super().train(mode)
        self.encoder.train(mode and self.finetune)  # a frozen encoder stays in eval mode (no dropout)
        return self

    def _hidden_states(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """Waveform ``(B, S)`` at ``sample_rate`` → every hidden state, each ``(B, T, D)``."""
        if self.sample_rate != self.encoder_rate:
            import torchaudio.functional as AF

            wave = AF.resample(wave, self.sample_rate, self.encoder_rate)
        features = self.features(wave.float())
        output = self.encoder(**self.features.model_inputs(features), output_hidden_states=True)
        hidden = list(output.hidden_states)
        if self.family == "clap":  # (B, C, H, W) stage maps → (B, H·W, C) tokens
            hidden = [h.flatten(2).transpose(1, 2) for h in hidden]
        elif self.family == "whisper":
            frames = self.features.frames(wave.shape[-1], hidden[0].shape[1])
            hidden = [h[:, :frames] for h in hidden]
        return hidden

    def hidden_states(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, S)`` → the chosen layers ``(B, L, T, D)`` (float16 when ``float16``).

        This is what ``musictag embed`` stores."""
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            parts = wave.split(self.encoder_batch) if self.encoder_batch else [wave]
            chosen = []
            for part in parts:
                hidden = self._hidden_states(part)
                chosen.append(torch.stack([hidden[i] for i in self.layers], dim=1))
            stacked = torch.cat(chosen) if len(chosen) > 1 else chosen[0]
            if self.time_pool == "mean":
                stacked = stacked.mean(dim=2, keepdim=True)
        return to_float16(stacked) if self.float16 else stacked

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim == 3:
            wave = wave.squeeze(1)
        return self.mix(self.hidden_states(wave).float())


# its name until 2026-12, when "pretrained" came to mean only the checkpoint a model starts from
FRONTENDS.alias("pretrained", "hf_encoder")
