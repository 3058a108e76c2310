"""Time of ``Inspector.trace`` against a raw transformers forward with attentions, per embedded model.

Both sides start from the same input (text, or audio for Whisper) and end with every layer's
hidden states and attention weights: the raw side runs the tokenizer (or feature extractor) and
``model(..., output_attentions=True, output_hidden_states=True)``; ``trace`` adds its input
checks and repacks the outputs into stacked CPU tensors. Encoder-decoders get a fixed target so
no generation is timed. Goal: ratio <= 1.2. Run: ``python benchmarks/trace_overhead.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from timing import median_seconds  # noqa: E402

import llminspect as li  # noqa: E402
from llminspect.analysis.audio import read_wav  # noqa: E402
from llminspect.models.registry import sample_audio  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. " * 4
CASES = {
    "encoder": (TEXT, None),
    "decoder": (TEXT, None),
    "encoder-decoder": (str(sample_audio("quick_brown_fox")), " The quick brown fox jumps over the lazy dog."),
    "toy-seq2seq": ("happy bird eats small mouse", "birdo gaja manghas muso eta"),
}


def raw_forward(m, source, target):
    """What a user would write with plain transformers to get the same tensors."""
    capture = {"output_attentions": True, "output_hidden_states": True}
    if m.family != "encoder-decoder":
        inputs = m.tokenizer(source, return_tensors="pt").to(m.device)
        return lambda: m.model(**inputs, **capture)
    decoder_ids = torch.tensor([m.trace(source, target).tokens.ids], device=m.device)
    if m.modality == "audio":
        waveform = read_wav(source).waveform

        def run():
            features = m.feature_extractor(waveform, sampling_rate=16000, return_tensors="pt").input_features
            return m.model(input_features=features.to(m.device), decoder_input_ids=decoder_ids, **capture)

        return run
    inputs = m.tokenizer(source, return_tensors="pt").to(m.device)
    return lambda: m.model(**inputs, decoder_input_ids=decoder_ids, **capture)


def main(repeats: int = 15) -> None:
    print(f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}, torch threads: {torch.get_num_threads()}")
    print(f"{'model':16s} {'raw forward':>12s} {'trace':>10s} {'ratio':>7s}")
    for name, (source, target) in CASES.items():
        m = li.load(name)
        raw = raw_forward(m, source, target)
        with torch.no_grad():
            raw_s = median_seconds(raw, repeats)
        trace_s = median_seconds(lambda m=m, source=source, target=target: m.trace(source, target), repeats)
        print(f"{name:16s} {raw_s * 1000:10.1f}ms {trace_s * 1000:8.1f}ms {trace_s / raw_s:6.2f}x")


if __name__ == "__main__":
    main()
