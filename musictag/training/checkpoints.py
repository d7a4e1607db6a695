"""Reading checkpoints and weight files safely (``weights_only=True``), with one-line errors."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from musictag.types import ConfigError


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """Load a PyTorch file with ``weights_only=True``; every way it can fail is one :class:`ConfigError`.

    torch's own message for a file a safe load refuses advises an unsafe load instead; that would run
    whatever code the file holds, so it is never passed on.
    """
    import pickle

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a folder, not a {what} file")
    if not os.path.exists(path):
        raise ConfigError(f"no {what} at {path}")
    if not os.path.isfile(path):  # a named pipe or a device: torch.load would wait on it forever
        from musictag.guards import file_type_problem

        raise ConfigError(f"{what} {path} {file_type_problem(path) or 'is not a regular file'}")
    if os.path.getsize(path) == 0:
        raise ConfigError(
            f"{path} is empty (0 bytes), not a {what}; was it cut short while written or copied?"
        )
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises several kinds for a truncated or foreign file)
        unsupported = [line.strip() for line in str(err).splitlines() if "unsupported global" in line.lower()]
        if isinstance(err, pickle.UnpicklingError) and unsupported:
            raise ConfigError(
                f"{path} holds Python objects besides tensors and plain data ({unsupported[0]}); musictag "
                f"does not load such a {what}: loading it could run code it contains"
            ) from None
        raise ConfigError(
            f"{path} is not a readable PyTorch {what} (truncated, or another kind of file)"
        ) from None


def load_checkpoint(path: str) -> dict[str, Any]:
    """A musictag (Lightning) checkpoint, loaded with ``weights_only=True``."""
    checkpoint = read_torch_file(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"{path} is not a musictag checkpoint (no state_dict); import published weights first"
        )
    return checkpoint


def load_matching_weights(
    module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str
) -> list[str]:
    """Copy every tensor of ``state_dict`` whose name and shape fit ``module``; report the rest, and
    return the names of the module's tensors that were not given (they keep their fresh values)."""
    own = module.state_dict()
    fitting = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(fitting, strict=False)
    fresh = sorted(k for k in own if k not in fitting and not k.endswith("num_batches_tracked"))
    rank_zero_info(
        f"initial weights from {source}: {len(fitting)} tensors; new: {', '.join(fresh) or 'none'}"
    )
    return fresh
