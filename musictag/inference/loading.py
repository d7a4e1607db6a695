"""Loading a checkpoint to tag audio with (``musictag tag``, :func:`musictag.load`).

Two kinds of checkpoint need more than loading:

- A probe trained from an embedding cache (``embedding`` representation + ``layer_mix`` front end)
  takes cached hidden states, not audio. Fed waveform chunks it would print plausible, meaningless
  scores. It is rebuilt as the live model instead: the cache's ``index.json`` records the encoder
  folder, the layers and the time pooling it was embedded with, so the encoder is put back in front of
  the probe's own weights (as ``--model.init_args.pretrained`` does for a live fit), and its scores are
  those of the probe on the embeddings of the same audio. Without the cache the rebuild is refused.
- A model on a pretrained encoder folder that now holds another architecture is refused when built
  (``PretrainedEncoder(architecture=...)``); an older checkpoint without that record, by its tensors.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from musictag.guards import InputError, check_input_file
from musictag.stages.registry import spec_name
from musictag.types import ConfigError


def _spec_args(spec: Any) -> dict[str, Any]:
    """A stage spec's own arguments (``{name: ..., **args}`` or ``{class_path, init_args}``)."""
    if not isinstance(spec, dict):
        return {}
    if "class_path" in spec:
        return dict(spec.get("init_args") or {})
    return {k: v for k, v in spec.items() if k != "name"}


def _is_embedding(spec: Any) -> bool:
    name = spec_name(spec) if spec is not None else ""
    return name in ("embedding", "musictag.stages.representations.embedding.EmbeddingInput")


def live_probe_settings(ckpt: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The stage settings that turn a probe trained from an embedding cache into the live model.

    Raises:
        InputError: the cache (which records the encoder) is gone, or the probe's front end is not
            the ``layer_mix`` a live encoder can replace; the message says how to get a live model.
    """
    from musictag.files import EMBEDDINGS_INDEX as INDEX
    from musictag.files import read_embeddings_index as read_index

    how = (
        "to tag audio, fit a live model from it: musictag fit ... --model.init_args.representation=waveform "
        f"--model.init_args.frontend='{{name: hf_encoder, path: ENCODER, layers: ...}}' "
        f"--model.init_args.pretrained={ckpt} --trainer.max_epochs=0"
    )
    args = _spec_args(hparams.get("representation"))
    cache = args.get("cache")
    if cache is None or not (Path(cache) / INDEX).is_file():
        raise InputError(
            f"{ckpt} is a probe trained from the embedding cache {cache}, which is gone: musictag tag "
            f"needs the encoder it was embedded with, recorded there; {how}"
        )
    frontend = hparams.get("frontend") or ""
    if spec_name(frontend) != "layer_mix":
        raise InputError(
            f"{ckpt} is a probe on cached embeddings whose front end is {spec_name(frontend)!r}, not "
            f"layer_mix, so no encoder can take its place; {how}"
        )
    index = read_index(cache)
    layers = args.get("layers")
    wanted = (
        index["layers"] if layers is None else [layers] if isinstance(layers, (int, str)) else list(layers)
    )
    settings_path = Path(cache) / "settings.json"
    encoder_batch = None
    if settings_path.is_file():
        encoder_batch = json.loads(settings_path.read_text()).get("encoder_batch")
    shared = {
        "mix": _spec_args(frontend).get("mix", "concat"),
        "time_pool": index.get("time_pool", "none"),
        "float16": True,  # the cache holds float16: the live encoder rounds as it was stored
        "encoder_batch": encoder_batch,
    }
    if index["encoder"].get("family") == "checkpoint":  # musictag embed --ckpt: layers by name
        live_frontend = {
            "name": "checkpoint_encoder",
            "ckpt": index["encoder"]["path"],
            "layers": [str(name) for name in wanted],
            **shared,
        }
    else:
        live_frontend = {
            "name": "hf_encoder",
            "path": index["encoder"]["path"],
            "layers": [int(i) for i in wanted],
            **shared,
        }
    return {
        "representation": "waveform",
        "frontend": live_frontend,
        "input_len": int(index["chunk_len"]),
        "sample_rate": int(index["sample_rate"]),
        "_index": index,
    }


def _check_live_encoder(module: Any, index: dict[str, Any], cache: str) -> None:
    """The rebuilt encoder is the one the cache was embedded with: same family, same frame shape."""
    encoder = module.net.frontend
    recorded = index["encoder"]
    if recorded.get("family") == "checkpoint" and list(encoder.frame_shape) != list(index["frame_shape"]):
        raise InputError(
            f"the checkpoint {recorded['path']} gives frames {list(encoder.frame_shape)}, but the embedding "
            f"cache {cache} was made with one giving {index['frame_shape']}: put that checkpoint back"
        )
    if recorded.get("family") == "checkpoint":
        return
    if encoder.family != recorded.get("family") or list(encoder.frame_shape) != list(index["frame_shape"]):
        raise InputError(
            f"the encoder folder {recorded['path']} holds a {encoder.architecture} ({encoder.family}) model "
            f"giving frames {list(encoder.frame_shape)}, but the embedding cache {cache} was made with a "
            f"{recorded.get('family')} encoder giving {index['frame_shape']}: put that encoder back"
        )


def load_model(ckpt: str, device: torch.device) -> Any:
    """The ``TaggingModule`` of ``ckpt`` on ``device`` in eval mode, ready to take waveform chunks."""
    from musictag.training.module import TaggingModule, load_checkpoint

    check_input_file(ckpt, "checkpoint")  # by stat: a named pipe is refused, not read forever
    checkpoint = load_checkpoint(ckpt)  # a clear error for a missing or foreign file
    hparams = checkpoint.get("hyper_parameters") or {}
    overrides: dict[str, Any] = {}
    index = None
    if _is_embedding(hparams.get("representation")):
        overrides = live_probe_settings(ckpt, hparams)
        index = overrides.pop("_index")
    try:
        with warnings.catch_warnings():  # a rebuilt probe's encoder weights come from its folder
            warnings.filterwarnings("ignore", message="Found keys that are in the model state dict")
            module = TaggingModule.load_from_checkpoint(
                ckpt, map_location="cpu", weights_only=True, strict=not overrides, **overrides
            )
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise
        where = _spec_args(hparams.get("frontend")).get("path")
        hint = f" (is the encoder folder {where} still the one it was trained on?)" if where else ""
        raise ConfigError(
            f"{ckpt}: its weights do not fit the model its settings build{hint}: "
            f"{str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err}"
        ) from None
    if index is not None:
        _check_live_encoder(module, index, _spec_args(hparams.get("representation"))["cache"])
        own = set(module.state_dict())
        stray = sorted(k for k in checkpoint["state_dict"] if k not in own)
        if stray:
            raise InputError(f"{ckpt}: the live model has no place for the probe's {', '.join(stray[:3])}")
    return module.to(device).eval()
