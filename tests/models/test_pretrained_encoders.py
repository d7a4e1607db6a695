"""Pretrained Hugging Face encoders as front ends: feature extraction equal to the encoders' own, layer
selection and mixing, freezing, and the errors for folders that hold no supported encoder."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from musictag.stages.frontends.hf_encoder import (
    LayerMix,
    PretrainedEncoder,
    encoder_family,
    require_transformers,
)
from musictag.stages.registry import ConfigError
from musictag.testing.encoders import TINY_ENCODERS, make_tiny_encoder

#: Largest |ours - extractor's| allowed, per family: float32 torch against the extractors' float64
#: numpy (CLAP's features are dB of magnitude ~100; AST and wav2vec2 run the same float32 code).
TOLERANCE = {"wav2vec2": 1e-6, "hubert": 1e-6, "wavlm": 1e-6, "ast": 1e-5, "whisper": 1e-5, "clap": 1e-3}


@pytest.fixture(scope="module")
def encoder_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {family: make_tiny_encoder(family, root / family) for family in TINY_ENCODERS}


@pytest.mark.parametrize("family", list(TINY_ENCODERS))
def test_feature_extraction_equals_the_encoders_extractor(family, encoder_dirs):
    from transformers import AutoFeatureExtractor

    folder = encoder_dirs[family]
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    rate = extractor.sampling_rate
    assert rate == TINY_ENCODERS[family][1]
    stage = PretrainedEncoder((1, 16000), rate, str(folder), layers=-1)
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(0.9 * rate))).astype(np.float32)
    reference = extractor(wave, sampling_rate=rate, return_tensors="np")
    key = "input_values" if "input_values" in reference else "input_features"
    ours = stage.features(torch.from_numpy(wave)[None]).numpy()
    assert ours.shape == reference[key].shape
    np.testing.assert_allclose(ours, reference[key], rtol=0, atol=TOLERANCE[family])


def test_clap_fusion_features_equal_the_extractor():
    from transformers import ClapFeatureExtractor

    from musictag.stages.frontends.hf_features import ClapInput

    extractor = ClapFeatureExtractor(
        feature_size=16, sampling_rate=48000, max_length_s=1, truncation="fusion"
    )
    wave = (0.1 * np.random.default_rng(1).standard_normal(30000)).astype(np.float32)
    reference = extractor(wave, sampling_rate=48000, return_tensors="np")["input_features"]
    ours = ClapInput(extractor, fusion=True)(torch.from_numpy(wave)[None]).numpy()
    assert ours.shape == reference.shape == (1, 4, 101, 16)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-3)


def test_layers_mix_and_shapes(encoder_dirs):
    folder = str(encoder_dirs["hubert"])
    wave = torch.randn(2, 1, 16000)
    one = PretrainedEncoder((1, 16000), 16000, folder, layers=-1)
    both = PretrainedEncoder((1, 16000), 16000, folder, layers=[0, 2])
    mixed = PretrainedEncoder((1, 16000), 16000, folder, layers="all", mix="weighted")
    assert one.layers == [2] and both.layers == [0, 2] and mixed.layers == [0, 1, 2]
    hidden = mixed.hidden_states(wave.squeeze(1))
    assert hidden.shape == (2, 3, 199, 32) and hidden.dtype == torch.float16
    assert one(wave).shape == (2, 32, 199)
    torch.testing.assert_close(one(wave), hidden[:, 2].float().transpose(1, 2))
    assert torch.equal(both(wave), torch.cat([hidden[:, 0], hidden[:, 2]], dim=-1).float().transpose(1, 2))
    # equal weights at the start: the mean of the layers
    torch.testing.assert_close(mixed(wave), hidden.float().mean(dim=1).transpose(1, 2))
    with pytest.raises(ConfigError, match=r"layer\(s\) \[3\] out of range: this encoder has 3 hidden states"):
        PretrainedEncoder((1, 16000), 16000, folder, layers=[0, 3])
    for twice, named in (([0, 0], "[0]"), ([2, -1], "[-1]")):  # -1 of 3 hidden states is 2
        with pytest.raises(ConfigError, match=rf"layer\(s\) {re.escape(named)} named twice in"):
            PretrainedEncoder((1, 16000), 16000, folder, layers=twice)


def test_frozen_by_default_and_finetune_unfreezes(encoder_dirs):
    folder = str(encoder_dirs["wav2vec2"])
    frozen = PretrainedEncoder((1, 16000), 16000, folder).train()
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert not frozen.encoder.training  # eval mode: no dropout, no SpecAugment masking
    tuned = PretrainedEncoder((1, 16000), 16000, folder, finetune=True).train()
    assert all(p.requires_grad for p in tuned.encoder.parameters()) and tuned.encoder.training
    tuned(torch.randn(2, 1, 16000)).sum().backward()
    assert tuned.encoder.encoder.layers[0].attention.q_proj.weight.grad is not None


def test_layer_mix_weights_are_a_softmax():
    mix = LayerMix(3, "weighted")
    with torch.no_grad():
        mix.layer_weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
    hidden = torch.randn(2, 3, 5, 4)
    expected = (hidden * torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)[None, :, None, None]).sum(1)
    torch.testing.assert_close(mix(hidden), expected.transpose(1, 2))
    assert mix.logged_values() == pytest.approx(
        {f"layer_weights/{i}": float(w) for i, w in enumerate(torch.softmax(torch.arange(3.0), 0))}
    )


def test_a_folder_without_a_supported_encoder_says_what_it_found(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ConfigError) as err:
        PretrainedEncoder((1, 16000), 16000, str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{tmp_path} holds no supported encoder (found model_type 'bert', architectures ['BertModel']); supported: wav2vec2"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ConfigError, match="holds no config.json: not a Hugging Face model folder; supported encoders"
    ):
        encoder_family(empty)
    with pytest.raises(ConfigError, match="no encoder folder at ./nowhere"):
        PretrainedEncoder((1, 16000), 16000, "./nowhere")


def test_remote_code_only_when_asked_for(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mert_model",
                "architectures": ["MERTModel"],
                "auto_map": {"AutoModel": "x.MERTModel"},
            }
        )
    )
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"feature_extractor_type": "Wav2Vec2FeatureExtractor"})
    )
    with pytest.raises(
        ConfigError, match="set trust_remote_code: true to run the Python code in that folder"
    ):
        encoder_family(tmp_path)
    assert encoder_family(tmp_path, trust_remote_code=True)[0] == "wav2vec2"


def test_missing_transformers_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(
        ConfigError,
        match=r"^pretrained encoders need the transformers package: pip install musictag\[probe\]$",
    ):
        require_transformers()


def test_building_the_model_code_does_not_import_transformers():
    """Only building an encoder imports it (torchmetrics, loaded by the training code, may import it)."""
    import subprocess

    code = "import sys, musictag.models, musictag.stages.frontends.hf_encoder; print('transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_chunk_longer_than_the_encoder_takes_is_refused(encoder_dirs):
    with pytest.raises(
        ConfigError,
        match=r"\(whisper\) cannot take chunks of 32000 samples at 16000 Hz: Whisper takes at most 16000 samples",
    ):
        PretrainedEncoder((1, 32000), 16000, str(encoder_dirs["whisper"]))
    with pytest.raises(
        ConfigError, match=r"\(ast\) cannot take chunks of 32000 samples .*AST takes at most 100 frames"
    ):
        PretrainedEncoder((1, 32000), 16000, str(encoder_dirs["ast"]))
