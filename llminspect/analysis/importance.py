"""Token importance through captum: which inputs mattered for an output, by several methods.

captum does the attribution; this module chooses, per family, *what* is attributed and *to
what*, then packages the result:

- decoder: the probability of each target token (the next token by default, or each token of a
  given continuation, teacher-forced) -> importance of every prompt token. ``contrast=`` attributes
  log p(target) - log p(contrast) instead: "why A and not B".
- encoder: the cosine similarity of two sentences' mean-pooled vectors -> importance of the first
  sentence's tokens (the encoder has no language-model head).
- encoder-decoder: the probability of each written token -> importance of each *source* unit: the
  source text's tokens, or for Whisper windows of audio time. Attributions are taken on the
  encoder's input only (we feed its embeddings ourselves; hooking a shared embedding layer would
  mix in the decoder's inputs, the mistake captum's tracker reports for T5).

Methods: ``integrated_gradients`` (reports its convergence delta: completeness says the scores
sum to f(input) - f(baseline)), ``gradient_x_input``, ``saliency`` (gradient norm, unsigned),
``feature_ablation`` and ``shapley`` (perturbation, run without gradients). ``attention`` is a
labelled comparison, not an attribution. Gradient methods attribute the probability (integrated
gradients converges on it; on the log-probability it does not at 50 steps); perturbation methods
attribute the log-probability (one missing token can drive a probability to ~0 whichever token it
is, which makes every token look equally vital). ``quantity=`` overrides either. Each source
unit is replaced by a baseline: the pad token's embedding by default ("pad"), the unknown
token's ("unk"), or zeros ("zero"); audio windows are replaced by the features of silence.

Example:
    >>> import llminspect as li
    >>> result = li.load("decoder").importance("The capital of France is", target=" Paris")
    >>> result.targets, abs(result.delta[0]) < 0.01
    ([' Paris'], True)
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from llminspect.analysis.tokens import encode
from llminspect.errors import FamilyError, InputError

METHODS = ("integrated_gradients", "gradient_x_input", "saliency", "feature_ablation", "shapley", "attention")
BASELINES = ("pad", "unk", "zero")
SIGNED = {
    "integrated_gradients": True,
    "gradient_x_input": True,
    "saliency": False,
    "feature_ablation": True,
    "shapley": True,
    "attention": False,
}


@dataclass(frozen=True)
class Attribution:
    """Importance scores: one row per target, one column per source unit."""

    family: str
    method: str
    sources: list[str]  # token labels, or time windows ("0.40–0.50 s")
    targets: list[str]  # what was explained, one per row
    scores: torch.Tensor  # [targets, sources]
    quantity: str  # the function attributed, in words
    baseline: str  # what "absent" meant
    f_input: list[float]  # the function at the real input, per target
    f_baseline: list[float] | None  # ... and at the baseline (IG and perturbation methods)
    delta: list[float] | None  # IG only: sum(scores) - (f_input - f_baseline)
    passes: int  # model passes spent (forward, or forward + backward)
    signed: bool  # False for saliency and attention: magnitudes only
    windows: list[tuple[float, float]] | None = None  # audio: (start, end) seconds of each source
    waveform: np.ndarray | None = None  # audio: the clip, for drawing under the scores


@dataclass
class _Problem:
    """A family-specific setup: input to perturb, its baseline, and one scalar function per target."""

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


def cost(method: str, sources: int, targets: int, n_steps: int = 50, n_samples: int = 25) -> int:
    """Model passes a method needs (gradient methods count a forward + backward as one pass).

    Example:
        >>> cost("integrated_gradients", sources=6, targets=2), cost("feature_ablation", 6, 2)
        (100, 14)
    """
    per_target = {
        "integrated_gradients": n_steps,
        "gradient_x_input": 1,
        "saliency": 1,
        "feature_ablation": sources + 1,
        "shapley": n_samples * (sources + 1),
        "attention": 1,
    }
    if method not in per_target:
        raise InputError(f"method={method!r}: choose one of {', '.join(METHODS)}.")
    return per_target[method] * targets


def _baseline_ids(inspector, baseline: str) -> tuple[int | None, str]:
    tokenizer = inspector.tokenizer
    if baseline == "zero":
        return None, "each token's embedding replaced by zeros"
    if baseline == "pad":
        token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    elif baseline == "unk":
        token_id = tokenizer.unk_token_id
        if token_id is None:
            raise InputError(f"{inspector.name}'s vocabulary has no unknown token: use baseline='pad' or 'zero'.")
    else:
        raise InputError(f"baseline={baseline!r}: choose one of {', '.join(BASELINES)}.")
    name = tokenizer.convert_ids_to_tokens(token_id)
    return token_id, f"each token replaced by {name!r} ({baseline} token)"


def _baseline_embeddings(embed, ids: torch.Tensor, sources: list[int], token_id: int | None) -> torch.Tensor:
    real = embed(ids).detach()
    base = real.clone()
    fill = torch.zeros_like(real[0, 0]) if token_id is None else embed(torch.tensor([token_id], device=ids.device))[0]
    base[0, sources] = fill.detach()
    return base


def _probability(logits: torch.Tensor, position: int, token: int, contrast: int | None, log: bool) -> torch.Tensor:
    log_probs = logits[:, position].float().log_softmax(-1)
    if contrast is not None:
        return log_probs[:, token] - log_probs[:, contrast]
    return log_probs[:, token] if log else log_probs[:, token].exp()


class _CachedForward:
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


def _target_ids(inspector, target: str) -> list[int]:
    ids = encode(inspector.tokenizer, target, "target", add_special_tokens=False)
    if not ids:
        raise InputError(f"The target {target!r} gives no tokens.")
    return ids


def _decoder_problem(
    inspector, text: str, target: str | None, contrast: str | None, baseline: str, log: bool
) -> _Problem:
    model = inspector.model
    inspector.require_lm_head("Importance for a next token")
    prompt = inspector.checked_tokens(text)
    if target is None:
        target_ids = [inspector.next_tokens(text, k=1).ids[0]]
    else:
        target_ids = _target_ids(inspector, target)
    contrast_id = None
    if contrast is not None:
        contrast_ids = _target_ids(inspector, contrast)
        if len(contrast_ids) != 1 or len(target_ids) != 1:
            raise InputError("A contrast compares two single tokens: give a one-token target and contrast.")
        contrast_id = contrast_ids[0]
    ids = torch.tensor([prompt.ids + target_ids[:-1]], device=inspector.device)
    sources = [i for i, special in enumerate(prompt.special) if not special]  # a BOS token stays in place
    token_id, baseline_text = _baseline_ids(inspector, baseline)
    embed = model.get_input_embeddings()

    logits = _CachedForward(lambda e: model(inputs_embeds=e).logits)

    def make(k: int) -> Callable:
        position, token = len(prompt) - 1 + k, target_ids[k]
        return lambda e: _probability(logits(e), position, token, contrast_id, log)

    names = [inspector.tokenizer.decode([t]) for t in target_ids]
    if contrast is None:
        what = "log-probability" if log else "probability"
        quantity = f"{what} of each target token, given the prompt (and the target tokens before it)"
    else:
        quantity = f"log p({names[0]!r}) − log p({contrast!r}): why the target and not the contrast"

    def attention(k: int) -> torch.Tensor:
        with torch.no_grad():
            out = model(input_ids=ids, output_attentions=True)
        return out.attentions[-1][0, :, len(prompt) - 1 + k, sources].mean(0)

    return _Problem(
        inputs=embed(ids).detach(),
        baseline=_baseline_embeddings(embed, ids, sources, token_id),
        functions=[make(k) for k in range(len(target_ids))],
        positions=sources,
        sources=[prompt.labels[i] for i in sources],
        targets=names,
        quantity=quantity,
        baseline_text=baseline_text + (" (special tokens kept)" if len(sources) < len(prompt) else ""),
        attention=attention,
    )


def _encoder_problem(inspector, text: str, target: str | None, baseline: str) -> _Problem:
    if target is None:
        raise FamilyError(
            f"{inspector.name} is an encoder without an output head: give target= a second sentence, and the "
            "importance of each token of the first for the two sentences' similarity is computed."
        )
    from llminspect.analysis.embeddings import sentence_vectors

    model = inspector.model
    tokens = inspector.checked_tokens(text)
    other = sentence_vectors(inspector, [target])[0].to(inspector.device)
    ids = torch.tensor([tokens.ids], device=inspector.device)
    embed = model.get_input_embeddings()
    sources = [i for i, special in enumerate(tokens.special) if not special]
    token_id, baseline_text = _baseline_ids(inspector, baseline)

    backbone = model.base_model  # a masked-LM encoder's head is not part of its sentence vectors
    segments = {}
    if "token_type_ids" in inspect.signature(backbone.forward).parameters:
        segments["token_type_ids"] = torch.zeros_like(ids)

    def similarity(e: torch.Tensor) -> torch.Tensor:
        batch = {name: value.expand(e.shape[0], -1) for name, value in segments.items()}
        states = backbone(inputs_embeds=e, **batch).last_hidden_state
        return torch.nn.functional.cosine_similarity(states.mean(1), other[None], dim=-1)

    return _Problem(
        inputs=embed(ids).detach(),
        baseline=_baseline_embeddings(embed, ids, sources, token_id),
        functions=[similarity],
        positions=sources,
        sources=[tokens.labels[i] for i in sources],
        targets=[f"similarity to {target!r}"],
        quantity="cosine similarity of the mean-pooled sentence vectors",
        baseline_text=baseline_text + " (special tokens kept)",
    )


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


def _seq2seq_problem(inspector, text, target: str | None, baseline: str, window: float, log: bool) -> _Problem:
    model = inspector.model
    # The target is generated when none is given; no traced forward pass is needed here.
    source, encoder_inputs, target_tokens, _ = inspector.encoder_decoder_inputs(text, target)
    decoder_ids = torch.tensor([target_tokens.ids], device=inspector.device)
    written = [i for i, special in enumerate(target_tokens.special) if not special]
    if not written:
        raise InputError("The model wrote no tokens to explain.")
    names = [target_tokens.labels[i] for i in written]
    what = "log-probability" if log else "probability"
    quantity = f"{what} of each written token, given the source and the tokens written before it"
    cached = {}

    def function(k: int, key: str) -> Callable:
        position, token = written[k] - 1, target_tokens.ids[written[k]]
        if key not in cached:
            cached[key] = _CachedForward(
                lambda x: model(**{key: x}, decoder_input_ids=decoder_ids.expand(x.shape[0], -1)).logits
            )
        return lambda x: _probability(cached[key](x), position, token, None, log)

    if inspector.modality == "audio":
        features = encoder_inputs["input_features"].to(inspector.device)  # [1, mels, frames]
        silence = inspector._audio_input(np.zeros(16000, dtype=np.float32))[1]["input_features"].to(inspector.device)
        frames_per_second = features.shape[-1] / (
            inspector.feature_extractor.n_samples / inspector.feature_extractor.sampling_rate
        )
        per_window = max(1, round(window * frames_per_second))
        real_frames = min(features.shape[-1], int(np.ceil(source.duration * frames_per_second)))
        count = int(np.ceil(real_frames / per_window))
        group = torch.clamp(torch.arange(features.shape[-1]) // per_window, max=count)  # padding: one last group
        inputs = features.transpose(1, 2)  # [1, frames, mels]: frames are the units
        return _Problem(
            inputs=inputs,
            baseline=silence.transpose(1, 2),
            positions=list(range(count)),
            functions=[
                (lambda f: lambda x: f(x.transpose(1, 2)))(function(k, "input_features")) for k in range(len(written))
            ],
            sources=[f"{i * per_window / frames_per_second:.2f}s" for i in range(count)],
            targets=names,
            quantity=quantity,
            baseline_text=f"{window:.2f} s windows replaced by silence",
            feature_mask=group[None, :, None].expand_as(inputs).contiguous().to(inspector.device),
            windows=[
                (i * per_window / frames_per_second, (i + 1) * per_window / frames_per_second) for i in range(count)
            ],
            waveform=source.waveform,
        )
    source_ids = torch.tensor([source.ids], device=inspector.device)
    embeds = _encoder_embeddings(model, source_ids)
    sources = [i for i, special in enumerate(source.special) if not special]
    token_id, baseline_text = _baseline_ids(inspector, baseline)
    base = embeds.clone()
    fill = (
        torch.zeros_like(embeds[0, 0])
        if token_id is None
        else _encoder_embeddings(model, torch.tensor([[token_id]], device=inspector.device))[0, 0]
    )
    base[0, sources] = fill

    def attention(k: int) -> torch.Tensor:
        with torch.no_grad():
            cross = model(input_ids=source_ids, decoder_input_ids=decoder_ids, output_attentions=True).cross_attentions
        return cross[-1][0, :, written[k] - 1, sources].mean(0)

    return _Problem(
        inputs=embeds,
        baseline=base,
        functions=[function(k, "inputs_embeds") for k in range(len(written))],
        positions=sources,
        sources=[source.labels[i] for i in sources],
        targets=names,
        quantity=quantity,
        baseline_text=baseline_text + " (special tokens kept)",
        attention=attention,
    )


def _reduce(attributions: torch.Tensor, problem: _Problem, method: str) -> torch.Tensor:
    """Per-unit scores from per-feature attributions [1, units, features]."""
    per_unit = attributions[0].norm(dim=-1) if method == "saliency" else attributions[0].sum(-1)
    if problem.feature_mask is None:
        return per_unit[problem.positions]
    groups = problem.feature_mask[0, :, 0]
    return torch.stack([per_unit[groups == g].sum() for g in problem.positions])


def _attribute(problem: _Problem, method: str, k: int, n_steps: int, batch: int, n_samples: int):
    """Scores for target k, with (f_input, f_baseline, delta) where the method defines them."""
    from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency, ShapleyValueSampling

    function = problem.functions[k]
    with torch.no_grad():  # one batched forward for both ends of the path
        f_input, f_base = function(torch.cat([problem.inputs, problem.baseline])).tolist()
    if method == "attention":
        return problem.attention(k).float().cpu(), f_input, None, None
    if method == "integrated_gradients":
        attributions, delta = IntegratedGradients(function).attribute(
            problem.inputs,
            baselines=problem.baseline,
            n_steps=n_steps,
            internal_batch_size=batch,
            return_convergence_delta=True,
        )
        return _reduce(attributions, problem, method), f_input, f_base, float(delta[0])
    if method in ("gradient_x_input", "saliency"):
        explainer = InputXGradient(function) if method == "gradient_x_input" else Saliency(function)
        options = {} if method == "gradient_x_input" else {"abs": False}
        inputs = problem.inputs.detach().clone().requires_grad_(True)  # captum warns when it must switch this on
        return _reduce(explainer.attribute(inputs, **options), problem, method), f_input, None, None
    mask = problem.feature_mask
    if mask is None:  # one group per position of the sequence
        mask = torch.arange(problem.inputs.shape[1], device=problem.inputs.device)[None, :, None]
        mask = mask.expand_as(problem.inputs).contiguous()
    with torch.no_grad():
        if method == "feature_ablation":
            attributions = FeatureAblation(function).attribute(
                problem.inputs, baselines=problem.baseline, feature_mask=mask, perturbations_per_eval=batch
            )
        else:
            attributions = ShapleyValueSampling(function).attribute(
                problem.inputs,
                baselines=problem.baseline,
                feature_mask=mask,
                n_samples=n_samples,
                perturbations_per_eval=batch,
            )
    # Perturbation methods give every feature of a group the group's score: read one per group.
    first = attributions[0, :, 0]
    if problem.feature_mask is None:
        return first[problem.positions].float().cpu(), f_input, f_base, None
    groups = problem.feature_mask[0, :, 0]
    return torch.stack([first[groups == g][0] for g in problem.positions]).float().cpu(), f_input, f_base, None


def attribute(
    inspector,
    text,
    target: str | None = None,
    method: str = "integrated_gradients",
    *,
    contrast: str | None = None,
    baseline: str = "pad",
    n_steps: int = 50,
    internal_batch_size: int = 25,
    n_samples: int = 25,
    window: float = 0.1,
    quantity: str | None = None,
    progress: bool | None = None,
) -> Attribution:
    """Importance of each source unit for each target; see the module docstring for the choices."""
    if method not in METHODS:
        raise InputError(f"method={method!r}: choose one of {', '.join(METHODS)}.")
    if quantity is None:  # what each family of methods reads best
        quantity = "log_probability" if method in ("feature_ablation", "shapley") else "probability"
    if quantity not in ("probability", "log_probability"):
        raise InputError(f"quantity={quantity!r}: choose 'probability' or 'log_probability'.")
    log = quantity == "log_probability"
    if inspector.family == "decoder":
        problem = _decoder_problem(inspector, text, target, contrast, baseline, log)
    elif contrast is not None:
        raise FamilyError("contrast= compares two next tokens of a decoder.")
    elif inspector.family == "encoder":
        problem = _encoder_problem(inspector, text, target, baseline)
    else:
        problem = _seq2seq_problem(inspector, text, target, baseline, window, log)
    if method == "attention" and problem.attention is None:
        raise FamilyError(f"No attention comparison for {inspector.name}: use an attribution method.")
    passes = cost(method, len(problem.sources), len(problem.targets), n_steps, n_samples)
    steps = range(len(problem.targets))
    if progress or (progress is None and passes > 200):
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{method} ({passes} passes)", leave=False)
    rows, f_in, f_base, deltas = [], [], [], []
    try:
        for k in steps:
            scores, value, base, delta = _attribute(problem, method, k, n_steps, internal_batch_size, n_samples)
            rows.append(scores.detach().float().cpu())
            f_in.append(value)
            f_base.append(base)
            deltas.append(delta)
    finally:  # also on KeyboardInterrupt (a cancelled cell): leave no gradients behind
        inspector.model.zero_grad(set_to_none=True)
    return Attribution(
        family=inspector.family,
        method=method,
        sources=problem.sources,
        targets=problem.targets,
        scores=torch.stack(rows),
        quantity=problem.quantity,
        baseline="none (attention weights are not an attribution)" if method == "attention" else problem.baseline_text,
        f_input=f_in,
        f_baseline=None if f_base[0] is None else f_base,
        delta=None if deltas[0] is None else deltas,
        passes=passes,
        signed=SIGNED[method],
        windows=problem.windows,
        waveform=problem.waveform,
    )
