"""A checkpoint as one ONNX file, waveform to tag probabilities (``musictag export``).

The graph holds the whole network, the spectrogram included: input ``waveform`` float32 ``(batch,
samples)`` in [-1, 1) at the checkpoint's sample rate, output ``scores`` ``(batch, n_tags)``, the
probabilities of each chunk (sigmoid per tag, or softmax for a ``multiclass`` model), what ``musictag
tag --timeline`` reports per chunk. The batch is dynamic; so is the length when the network takes any
length (``dynamic_length`` in the metadata: from one chunk up), else it is the chunk length. The
``metadata_props`` say how ``musictag tag`` cuts and averages (:data:`METADATA_KEYS`), so a program
without musictag tags as it does (:mod:`musictag.inference.onnx_runtime`).

The exporter is ``torch.onnx.export(dynamo=True)``: it writes ``torch.stft`` as ONNX's own ``STFT``
operator (onnxruntime runs it, equal to PyTorch to float rounding), where the TorchScript-based
exporter refuses the complex STFT. An operator no exporter can write is refused in one line naming it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from musictag.files import atomic_write
from musictag.guards import InputError, check_output_file
from musictag.inference.loading import load_model

#: The opset written by default (the ONNX ``STFT`` operator needs 17 or later).
DEFAULT_OPSET = 18
#: The lowest opset :func:`export_onnx` accepts.
MIN_OPSET = 17
#: The ``metadata_props`` keys of an exported model (every value a string; lists are JSON).
METADATA_KEYS = (
    "musictag_version",
    "tag_names",
    "sample_rate",
    "chunk_len",
    "chunk_mode",
    "n_chunks",
    "chunk_hop",
    "n_fft",
    "aggregate",
    "task",
    "dynamic_length",
    "mp3_decoder_delay",
)


class ChunkScores(nn.Module):
    """A ``TaggingModule``'s network and output activation: waveform chunks → chunk probabilities."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.net = module.net
        self.multiclass = module.task == "multiclass"

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        logits = self.net(waveform)
        return torch.softmax(logits, dim=-1) if self.multiclass else torch.sigmoid(logits)


def metadata(module: Any) -> dict[str, str]:
    """The ``metadata_props`` of ``module``'s export: how ``musictag tag`` cuts, scores and averages."""
    import musictag
    from musictag.chunks import ChunkPlan

    plan = ChunkPlan.for_model(module)
    return {
        "musictag_version": musictag.__version__,
        "tag_names": json.dumps(list(module.tag_names)),
        "sample_rate": str(int(module.sample_rate)),
        "chunk_len": str(int(module.input_len)),
        "chunk_mode": plan.mode,
        "n_chunks": str(plan.n_chunks),
        "chunk_hop": "" if plan.hop is None else str(plan.hop),
        "n_fft": "" if plan.n_fft is None else str(plan.n_fft),
        "aggregate": str(module.aggregate),
        "task": str(module.task),
        "dynamic_length": "true" if module.net.variable_length else "false",
        "mp3_decoder_delay": str(int(getattr(module, "mp3_decoder_delay", 0) or 0)),
    }


def operator_of(err: BaseException) -> str | None:
    """The operator an exporter error names (``aten::stft``, ``aten.fft_rfftn.default``), if any."""
    text = "\n".join(str(e) for e in _chain(err))
    found = re.search(r"\baten(?:::|\.)[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?", text)
    return found.group(0) if found else None


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return seen


def _program(scores: ChunkScores, example: torch.Tensor, dynamic_length: bool, opset: int) -> Any:
    """The ``ONNXProgram`` of ``scores``, the exporter's chatter kept off the terminal."""
    batch = torch.export.Dim("batch", min=1)
    dims: dict[int, Any] = {0: batch}
    if dynamic_length:
        dims[1] = torch.export.Dim("samples", min=example.shape[1])
    chatter = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                scores,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=["waveform"],
                output_names=["scores"],
                dynamic_shapes=(dims,),
                verbose=False,
                report=False,
            )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_model(module: Any, out: str | Path, opset: int = DEFAULT_OPSET, what: str = "the model") -> Path:
    """Write ``module`` (a ``TaggingModule``, moved to the CPU in eval mode) as an ONNX file at ``out``
    (atomically: a temporary sibling renamed when complete), checked by ``onnx.checker``, with
    :func:`metadata`.

    Raises:
        InputError: an opset below :data:`MIN_OPSET`, the ``export`` extra missing, or an operator the
            exporter cannot write (named); nothing is written then.
    """
    if opset < MIN_OPSET:
        raise InputError(f"--opset {opset}: the STFT inside the graph needs opset {MIN_OPSET} or later")
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise InputError(
            "musictag export needs onnx and onnxscript: pip install 'musictag[export]'"
        ) from None
    module = module.cpu().eval()
    scores = ChunkScores(module).eval()
    example = torch.zeros(2, int(module.input_len))
    dynamic_length = bool(module.net.variable_length)
    try:
        with torch.no_grad():
            program = _program(scores, example, dynamic_length, opset)
    except Exception as err:  # noqa: BLE001  (the exporter's errors have no common type)
        if dynamic_length:  # a length the network takes, but not as a symbol: export one chunk's length
            try:
                with torch.no_grad():
                    program = _program(scores, example, False, opset)
                dynamic_length = False
            except Exception:  # noqa: BLE001
                raise _refusal(err, what) from None
        else:
            raise _refusal(err, what) from None
    model = program.model_proto
    batch_dim, length_dim = model.graph.input[0].type.tensor_type.shape.dim
    if not batch_dim.dim_param:  # the exporter falls back to a fixed shape where the code ties it to one
        raise InputError(
            f"{what} cannot be exported to ONNX with a dynamic batch: its code fixes the batch to "
            f"{batch_dim.dim_value} (a len() or .item() of a batch-sized tensor?)"
        )
    dynamic_length = dynamic_length and bool(length_dim.dim_param)
    props = metadata(module) | {"dynamic_length": "true" if dynamic_length else "false"}
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    with atomic_write(out) as tmp:
        onnx.save_model(model, str(tmp))
    return out


def _refusal(err: BaseException, what: str) -> InputError:
    op = operator_of(err)
    if op is not None:
        return InputError(f"{what} cannot be exported to ONNX: the exporter cannot write the operator {op}")
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return InputError(f"{what} cannot be exported to ONNX: {first}")


def export_onnx(ckpt: str, out: str | Path, opset: int = DEFAULT_OPSET, force: bool = False) -> Path:
    """``musictag export``: the checkpoint ``ckpt`` as an ONNX file at ``out`` (see the module docstring).

    Raises:
        InputError: ``out`` exists (without ``force``), is a folder or cannot be written; ``ckpt`` is
            not a usable checkpoint; or the model cannot be exported (the operator named).
    """
    check_output_file(out, "--out", inputs=[ckpt], overwrite=force, hint="pass --force to replace it")
    module = load_model(ckpt, torch.device("cpu"))  # a probe on cached embeddings comes back live
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return export_model(module, out, opset, what=ckpt)
