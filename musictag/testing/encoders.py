"""Tiny randomly initialised Hugging Face encoders of every supported family, for tests (no download).

``make_tiny_encoder(family, folder)`` writes what ``save_pretrained`` writes for a real checkpoint
(``config.json``, weights, ``preprocessor_config.json``) with widths of 32, two layers and feature
extractors shrunk to 1-second inputs, so that fitting a probe on them takes seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musictag.types import Pathlike

#: family → (model type, the encoder's sample rate); ``wav2vec2`` runs at 24 kHz like MERT, so the
#: tests resample.
TINY_ENCODERS = {
    "wav2vec2": ("wav2vec2", 24000),
    "hubert": ("hubert", 16000),
    "wavlm": ("wavlm", 16000),
    "ast": ("audio-spectrogram-transformer", 16000),
    "whisper": ("whisper", 16000),
    "clap": ("clap", 48000),
}
_TRANSFORMER: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def make_tiny_encoder(family: str, folder: Pathlike, seed: int = 0) -> Path:
    """Save a tiny random encoder of ``family`` (a key of :data:`TINY_ENCODERS`) into ``folder``."""
    import torch
    import transformers as tf

    folder = Path(folder)
    torch.manual_seed(seed)
    model: Any  # the family's transformers model and feature extractor
    extractor: Any
    if family in ("wav2vec2", "hubert", "wavlm"):
        config_class, model_class = {
            "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model),
            "hubert": (tf.HubertConfig, tf.HubertModel),
            "wavlm": (tf.WavLMConfig, tf.WavLMModel),
        }[family]
        config = config_class(
            **_TRANSFORMER,
            conv_dim=(32, 32, 32),
            conv_stride=(5, 4, 4),
            conv_kernel=(10, 4, 4),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        )
        model = model_class(config)
        extractor = tf.Wav2Vec2FeatureExtractor(sampling_rate=TINY_ENCODERS[family][1], do_normalize=True)
    elif family == "ast":
        model = tf.ASTModel(tf.ASTConfig(**_TRANSFORMER, max_length=100, num_mel_bins=32))
        extractor = tf.ASTFeatureExtractor(num_mel_bins=32, max_length=100)
    elif family == "whisper":
        config = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            num_mel_bins=16,
            max_source_positions=50,
            max_target_positions=8,
            vocab_size=64,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
            suppress_tokens=[],
            begin_suppress_tokens=[],
        )
        model = tf.WhisperModel(config)
        extractor = tf.WhisperFeatureExtractor(feature_size=16, chunk_length=1)
    elif family == "clap":
        audio = {
            "hidden_size": 32,
            "patch_embeds_hidden_size": 16,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
            "spec_size": 64,
            "window_size": 4,
            "num_mel_bins": 16,
            "patch_size": 4,
            "patch_stride": (4, 4),
            "intermediate_size": 64,
            "projection_hidden_size": 16,
            "enable_fusion": False,
        }
        text = {**_TRANSFORMER, "num_hidden_layers": 1, "vocab_size": 64, "max_position_embeddings": 40}
        config = tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=16)
        model = tf.ClapModel(config)
        extractor = tf.ClapFeatureExtractor(
            feature_size=16, sampling_rate=48000, max_length_s=1, truncation="rand_trunc"
        )
    else:
        raise ValueError(f"unknown tiny encoder family {family!r}; choose from {', '.join(TINY_ENCODERS)}")
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder
