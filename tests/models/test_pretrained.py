"""The published sota-music-tagging-models weights reproduce the original implementation's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.reference import SOTA_CHECKPOINTS
from musictag.chunks import chunk_starts, cut_chunks
from musictag.convert.sota import convert_sota_state_dict, load_state_dict_file, sota_preset
from musictag.models import build
from musictag.stages.registry import ConfigError


@pytest.fixture(scope="module")
def probe(reference) -> torch.Tensor:
    return torch.from_numpy(np.load(reference("sota/probe.npy")))


@pytest.fixture(scope="module")
def expected(reference) -> dict[str, np.ndarray]:
    return dict(np.load(reference("sota/expected_probe_outputs.npz")))


def test_all_eight_checkpoints_are_there(reference):
    found = sorted(
        str(p.parent.relative_to(reference("sota/models")))
        for p in reference("sota/models").glob("*/*/best_model.pth")
    )
    assert found == list(SOTA_CHECKPOINTS)


@pytest.mark.parametrize("checkpoint", SOTA_CHECKPOINTS)
def test_probe_outputs_are_reproduced(checkpoint, probe, expected, reference):
    dataset, arch = checkpoint.split("/")
    net = build(sota_preset(arch, dataset), n_tags=50).eval()
    state = load_state_dict_file(reference(f"sota/models/{checkpoint}/best_model.pth"))
    net.load_state_dict(convert_sota_state_dict(state, net))
    meta = json.loads(reference("sota/meta.json").read_text())[checkpoint]
    assert net.input_len == meta["input_len"] and net.n_params() == meta["params"]
    starts = chunk_starts(len(probe), net.input_len, 16, "sota")
    chunks = torch.from_numpy(cut_chunks(probe.numpy(), starts, net.input_len))
    with torch.no_grad():
        scores = torch.sigmoid(torch.cat([net(part) for part in chunks.split(4)])).numpy()
    np.testing.assert_allclose(scores[0], expected[f"{checkpoint}/probe_chunk"], atol=1e-4)
    np.testing.assert_allclose(scores.mean(axis=0), expected[f"{checkpoint}/probe_song"], atol=1e-4)


def test_wrong_architecture_is_refused(reference):
    state = load_state_dict_file(reference("sota/models/mtat/fcn/best_model.pth"))
    with pytest.raises(ConfigError, match="has 42 tensors but the network has"):
        convert_sota_state_dict(state, build("crnn", n_tags=50))
    with pytest.raises(ConfigError, match="does not fit head"):
        convert_sota_state_dict(state, build("fcn", n_tags=10))
