"""What each family explains, set up for captum: the input to perturb, its baseline, one function per target.

- decoder: the probability of each target token (the next token by default, or each token of a
  given continuation, teacher-forced) from the prompt's token embeddings. ``contrast=`` gives
  log p(target) - log p(contrast) instead: "why A and not B".
- encoder: the cosine similarity of the text's and ``other``'s mean-pooled vectors, from the
  text's token embeddings (a masked-LM head is not part of the sentence vector).
- encoder-decoder: the probability of each written token, from the *source*: its token
  embeddings (fed to the encoder ourselves — hooking a shared embedding layer would mix in the
  decoder's inputs, the mistake captum's tracker reports for T5), or for Whisper windows of audio
  frames, replaced by the features of silence.

Special tokens (BOS, [CLS], </s>) are never perturbed: they are not the text's words.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from llminspect.analysis.attention import head_mean, last_layer_heads
from llminspect.analysis.embeddings import sentence_vectors
from llminspect.analysis.inputs import Inputs, audio_features
from llminspect.analysis.tokens import encode
from llminspect.errors import FamilyError, InputError

BASELINES = ("pad", "unk", "zero")


@dataclass
class Problem:
    """A family's set-up: the input to perturb, its baseline, and one scalar function per target."""

    inputs: torch.Tensor  # [1, units..., features]
    baseline: torch.Tensor
    functions: list[Callable[[torch.Tensor], torch.Tensor]]  # batch of inputs -> [batch]
    positions: list[int]  # which entries of inputs' dim 1 are the sources
    sources: list[str]
    targets: list[str]
    quantity: str
    baseline_text: str
    feature_mask: torch.Tensor | None = None  # groups of inputs' entries (audio windows)
    windows: list[tuple[float, float]] | None = None
    waveform: np.ndarray | None = None
    attention: Callable[[int], torch.Tensor] | None = None


def baseline_token(m, baseline: str) -> tuple[int | None, str]:
    """The token that stands for "absent" (None: zeros), and the baseline in words."""
    tokenizer = m.tokenizer
    if baseline == "zero":
        return None, "each token's embedding replaced by zeros"
    if baseline == "pad":
        token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    elif baseline == "unk":
        token_id = tokenizer.unk_token_id
        if token_id is None:
            raise InputError(f"{m.name}'s vocabulary has no unknown token: use baseline='pad' or 'zero'.")
    else:
        raise InputError(f"baseline={baseline!r}: choose one of {', '.join(BASELINES)}.")
    return token_id, f"each token replaced by {tokenizer.convert_ids_to_tokens(token_id)!r} ({baseline} token)"


def _with_baseline(real: torch.Tensor, sources: list[int], fill: torch.Tensor) -> torch.Tensor:
    base = real.clone()
    base[0, sources] = fill.detach()
    return base


def _probability(logits: torch.Tensor, position: int, token: int, contrast: int | None, log: bool) -> torch.Tensor:
    log_probs = logits[:, position].float().log_softmax(-1)
    if contrast is not None:
        return log_probs[:, token] - log_probs[:, contrast]
    return log_probs[:, token] if log else log_probs[:, token].exp()


class CachedForward:
    """Memoizes a model call by the exact bytes of its input, when no gradient is needed.

    Perturbation methods evaluate the same perturbed inputs once per target; every target of a
    continuation reads the same logits, so each perturbed input runs once instead of once per target.
    """

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.run, self.store = run, {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.run(x)
        key = (tuple(x.shape), hashlib.sha1(x.detach().float().cpu().numpy().tobytes()).hexdigest())
        if key not in self.store:
            self.store[key] = self.run(x)
        return self.store[key]


def _token_ids(m, text: str, role: str) -> list[int]:
    ids = encode(m.tokenizer, text, role, add_special_tokens=False)
    if not ids:
        raise InputError(f"The {role} {text!r} gives no tokens.")
    return ids


def decoder_problem(m, inputs: Inputs, target: str | None, contrast: str | None, baseline: str, log: bool) -> Problem:
    """Explain a decoder's next token (or each token of ``target``) by its prompt's tokens."""
    m.require_lm_head("Importance for a next token")
    model, prompt = m.model, inputs.tokens
    if target is None:
        with torch.no_grad():
            target_ids = [int(model(**inputs.tensors).logits[0, -1].argmax())]
    else:
        target_ids = _token_ids(m, target, "target")
    contrast_id = None
    if contrast is not None:
        contrast_ids = _token_ids(m, contrast, "contrast")
        if len(contrast_ids) != 1 or len(target_ids) != 1:
            raise InputError("A contrast compares two single tokens: give a one-token target and contrast.")
        contrast_id = contrast_ids[0]
    ids = torch.tensor([prompt.ids + target_ids[:-1]], device=m.device)
    sources = [i for i, special in enumerate(prompt.special) if not special]  # a BOS token stays in place
    token_id, baseline_text = baseline_token(m, baseline)
    embed = model.get_input_embeddings()
    real = embed(ids).detach()
    fill = torch.zeros_like(real[0, 0]) if token_id is None else embed(torch.tensor([token_id], device=m.device))[0]
    logits = CachedForward(lambda e: model(inputs_embeds=e).logits)

    def make(k: int) -> Callable:
        position, token = len(prompt) - 1 + k, target_ids[k]
        return lambda e: _probability(logits(e), position, token, contrast_id, log)

    names = [m.tokenizer.decode([t]) for t in target_ids]
    if contrast is None:
        quantity = f"{'log-probability' if log else 'probability'} of each target token, given the prompt " \
                   "(and the target tokens before it)"  # fmt: skip
    else:
        quantity = f"log p({names[0]!r}) − log p({contrast!r}): why the target and not the contrast"

    def attention(k: int) -> torch.Tensor:
        with torch.no_grad():
            maps = torch.stack(model(input_ids=ids, output_attentions=True).attentions)[:, 0]
        return head_mean(maps, last_layer_heads(maps))[len(prompt) - 1 + k, sources]

    kept = " (special tokens kept)" if len(sources) < len(prompt) else ""
    return Problem(real, _with_baseline(real, sources, fill), [make(k) for k in range(len(target_ids))], sources,
                   [prompt.labels[i] for i in sources], names, quantity, baseline_text + kept,
                   attention=attention)  # fmt: skip


def encoder_problem(m, inputs: Inputs, other: str | None, baseline: str) -> Problem:
    """Explain an encoder's similarity between the text and ``other`` by the text's tokens."""
    if other is None:
        raise FamilyError(
            f"{m.name} is an encoder without an output head: give other= a second sentence, and the importance of "
            "each token of the first for the two sentences' similarity is computed."
        )
    model, tokens = m.model, inputs.tokens
    vector = sentence_vectors(m, [other])[0].to(m.device)
    ids = inputs.tensors["input_ids"]
    embed = model.get_input_embeddings()
    sources = [i for i, special in enumerate(tokens.special) if not special]
    token_id, baseline_text = baseline_token(m, baseline)
    backbone = model.base_model  # a masked-LM encoder's head is not part of its sentence vectors
    segments = {}
    if "token_type_ids" in inspect.signature(backbone.forward).parameters:
        segments["token_type_ids"] = torch.zeros_like(ids)

    def similarity(e: torch.Tensor) -> torch.Tensor:
        batch = {name: value.expand(e.shape[0], -1) for name, value in segments.items()}
        states = backbone(inputs_embeds=e, **batch).last_hidden_state
        return torch.nn.functional.cosine_similarity(states.mean(1), vector[None], dim=-1)

    real = embed(ids).detach()
    fill = torch.zeros_like(real[0, 0]) if token_id is None else embed(torch.tensor([token_id], device=m.device))[0]
    return Problem(real, _with_baseline(real, sources, fill), [similarity], sources,
                   [tokens.labels[i] for i in sources], [f"similarity to {other!r}"],
                   "cosine similarity of the mean-pooled sentence vectors",
                   baseline_text + " (special tokens kept)")  # fmt: skip


def _encoder_embeddings(model, ids: torch.Tensor) -> torch.Tensor:
    """The encoder's input embeddings such that ``model(inputs_embeds=...)`` equals ``model(input_ids=...)``."""
    encoder = model.get_encoder()
    embeds = encoder.embed_tokens(ids).detach()
    with torch.no_grad():
        expected = encoder(input_ids=ids).last_hidden_state
        if not torch.allclose(encoder(inputs_embeds=embeds).last_hidden_state, expected, atol=1e-5):
            embeds = embeds * getattr(encoder, "embed_scale", 1.0)  # e.g. Marian scales outside embed_tokens
            if not torch.allclose(encoder(inputs_embeds=embeds).last_hidden_state, expected, atol=1e-5):
                raise FamilyError(f"Cannot reproduce {type(model).__name__}'s encoder input from its embeddings.")
    return embeds


def seq2seq_problem(m, inputs: Inputs, baseline: str, window: float, log: bool) -> Problem:
    """Explain each token an encoder-decoder wrote by its source (tokens, or windows of audio)."""
    model, written_tokens = m.model, inputs.tokens
    decoder_ids = inputs.tensors["decoder_input_ids"]
    written = [i for i, special in enumerate(written_tokens.special) if not special]
    if not written:
        raise InputError("The model wrote no tokens to explain.")
    cached = {}

    def function(k: int, key: str) -> Callable:
        position, token = written[k] - 1, written_tokens.ids[written[k]]
        if key not in cached:
            cached[key] = CachedForward(
                lambda x: model(**{key: x}, decoder_input_ids=decoder_ids.expand(x.shape[0], -1)).logits
            )
        return lambda x: _probability(cached[key](x), position, token, None, log)

    quantity = f"{'log-probability' if log else 'probability'} of each written token, given the source and the " \
               "tokens written before it"  # fmt: skip
    names = [written_tokens.labels[i] for i in written]
    if m.modality == "audio":
        return _audio_problem(m, inputs, [function(k, "input_features") for k in range(len(written))], names,
                              quantity, window)  # fmt: skip
    source = inputs.source
    embeds = _encoder_embeddings(model, inputs.tensors["input_ids"])
    sources = [i for i, special in enumerate(source.special) if not special]
    token_id, baseline_text = baseline_token(m, baseline)
    fill = (torch.zeros_like(embeds[0, 0]) if token_id is None
            else _encoder_embeddings(model, torch.tensor([[token_id]], device=m.device))[0, 0])  # fmt: skip

    def attention(k: int) -> torch.Tensor:
        with torch.no_grad():
            cross = torch.stack(model(**inputs.tensors, output_attentions=True).cross_attentions)[:, 0]
        return head_mean(cross, last_layer_heads(cross))[written[k] - 1, sources]

    return Problem(embeds, _with_baseline(embeds, sources, fill), [function(k, "inputs_embeds") for k in range(len(
        written))], sources, [source.labels[i] for i in sources], names, quantity,
        baseline_text + " (special tokens kept)", attention=attention)  # fmt: skip


def _audio_problem(m, inputs: Inputs, functions: list[Callable], names: list[str], quantity: str, window: float):
    """Whisper: windows of ``window`` seconds of the real audio are the units, silence their baseline."""
    features = inputs.tensors["input_features"]  # [1, mels, frames]
    silence = audio_features(m, np.zeros(16000, dtype=np.float32))[1]["input_features"]
    extractor = m.feature_extractor
    frames_per_second = features.shape[-1] / (extractor.n_samples / extractor.sampling_rate)
    per_window = max(1, round(window * frames_per_second))
    real_frames = min(features.shape[-1], int(np.ceil(inputs.source.duration * frames_per_second)))
    count = int(np.ceil(real_frames / per_window))
    group = torch.clamp(torch.arange(features.shape[-1]) // per_window, max=count)  # padding: one last group
    frames = features.transpose(1, 2)  # [1, frames, mels]: frames are the units
    windows = [(i * per_window / frames_per_second, (i + 1) * per_window / frames_per_second) for i in range(count)]
    return Problem(
        inputs=frames,
        baseline=silence.transpose(1, 2),
        functions=[(lambda f: lambda x: f(x.transpose(1, 2)))(function) for function in functions],
        positions=list(range(count)),
        sources=[f"{start:.2f}s" for start, _ in windows],
        targets=names,
        quantity=quantity,
        baseline_text=f"{window:.2f} s windows replaced by silence",
        feature_mask=group[None, :, None].expand_as(frames).contiguous().to(m.device),
        windows=windows,
        waveform=inputs.source.waveform,
    )
