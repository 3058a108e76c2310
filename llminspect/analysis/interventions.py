"""Interventions: switch attention heads off, patch activations, and watch the output move.

An attention picture or an attribution is a hypothesis about what a model uses. An intervention
tests it: change one thing inside the model, run it again, compare.

- ``heads_off(m, heads)``: inside the ``with`` block, each chosen head's output is zero (*zero
  ablation*) or its mean over a reference text (*mean ablation*, ``means=head_means(m, text)``).
  A head's output is its slice of what the attention's output projection reads (``o_proj`` in a
  Llama, ``out_proj`` in BART, ``attention.output.dense`` in BERT): heads are joined there, each
  ``head_dim`` numbers wide, so the slice is exactly that head's ``weights · v``.
- ``ablation``: a decoder's probability of an answer, and its top tokens, with and without heads.
- ``head_effects``: every head switched off alone: how much log p(answer) moves.
- ``patching``: *activation patching*. Run the corrupted prompt, but after block ``l`` put back the
  clean prompt's residual stream at one position: where p(answer) comes back, that position at
  that depth carries what the corruption removed.

Everything runs through forward hooks on the model's own modules; the tests compare each with the
same edit written as plain torch (weights edited, blocks re-run by hand).

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> result = ablation(m, m.inputs("The capital of France is"), " Paris", [(0, 0)])
    >>> 0 < result.p_after < 1
    True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from llminspect.analysis.hooks import hooked
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.lens import _answer_id
from llminspect.analysis.next_token import NextTokens, _require_decoder, _top
from llminspect.analysis.tokens import token_labels
from llminspect.errors import FamilyError, InputError
from llminspect.models.structure import block_lists

OUTPUT_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "o", "out_lin")
CROSS_WORDS = ("encoder_attn", "crossattention", "cross_attn", "encdecattention")


def _is_output_projection(name: str) -> bool:
    """``self_attn.o_proj``, ``attention.output.dense``, ``layer.0.SelfAttention.o`` — never a cross-attention's."""
    parts = name.lower().split(".")
    if len(parts) < 2 or parts[-1] not in OUTPUT_NAMES or any(word in name.lower() for word in CROSS_WORDS):
        return False
    return any("attn" in part or "attention" in part for part in parts[:-1])


def _stack(m, stack: str | None) -> tuple[int, list]:
    """(index, blocks) of the stack named ``stack``: "encoder" or "decoder" in an encoder-decoder, else None."""
    stacks = block_lists(m.model)
    if stack is None:
        return len(stacks) - 1, list(stacks[-1][1])
    if m.family != "encoder-decoder" or stack not in ("encoder", "decoder"):
        raise InputError(f"stack={stack!r}: only an encoder-decoder has stacks to choose ('encoder' or 'decoder').")
    index = 0 if stack == "encoder" else len(stacks) - 1
    return index, list(stacks[index][1])


def _head_count(m, index: int) -> int:
    config = m.config
    if m.family == "encoder-decoder":
        name = "encoder_attention_heads" if index == 0 else "decoder_attention_heads"
        if hasattr(config, name):
            return getattr(config, name)
    return config.num_attention_heads


def output_projections(m, stack: str | None = None) -> tuple[list[torch.nn.Module], int]:
    """Each block's self-attention output projection, and the number of heads joined in its input."""
    index, blocks = _stack(m, stack)
    layers = getattr(m.config, "num_hidden_layers", len(blocks))
    found = []
    for block in blocks:
        hits = [module for name, module in block.named_modules() if _is_output_projection(name)]
        if len(hits) != 1:
            raise FamilyError(
                f"{type(block).__name__} has no single self-attention output projection (o_proj, out_proj, "
                "attention.output.dense, ...) that llminspect can find, so its heads cannot be switched off."
            )
        found.append(hits[0])
    if len({id(module) for module in found}) != len(found) or (m.family != "encoder-decoder" and len(found) != layers):
        raise FamilyError(
            f"{type(m.model).__name__} runs one shared block several times, so switching a head off in one "
            "layer would switch it off in all of them; head ablation needs a model with one block per layer."
        )
    return found, _head_count(m, index)


def _chosen(heads: Iterable[tuple[int, int]], layers: int, count: int) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for pair in heads:
        layer, head = (int(x) for x in pair)
        if not (0 <= layer < layers and 0 <= head < count):
            raise InputError(f"Head ({layer}, {head}) does not exist: layers go 0–{layers - 1}, heads 0–{count - 1}.")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


def head_means(m, inputs: Inputs, stack: str | None = None) -> list[torch.Tensor]:
    """Each layer's input to the output projection averaged over ``inputs``'s positions: [layers] x [width]."""
    projections, _ = output_projections(m, stack)
    means: list[torch.Tensor] = [torch.empty(0)] * len(projections)

    def recorder(layer: int):
        def record(module, args):
            means[layer] = args[0][0].mean(0).detach()

        return record

    with hooked([p.register_forward_pre_hook(recorder(i)) for i, p in enumerate(projections)]), torch.no_grad():
        m.model(**inputs.tensors)
    return means


@contextmanager
def heads_off(m, heads: Iterable[tuple[int, int]], means: list[torch.Tensor] | None = None, stack: str | None = None):
    """Inside this block, the chosen (layer, head) pairs give zeros (or their ``means``) instead of their output.

    Example:
        >>> import llminspect as li
        >>> m = li.load("decoder")
        >>> with heads_off(m, [(3, 1), (3, 2)]):
        ...     changed = m.next_tokens("The capital of France is", k=1)
    """
    projections, count = output_projections(m, stack)
    by_layer = _chosen(heads, len(projections), count)

    def replacer(layer: int, chosen: list[int]):
        def replace(module, args):
            joined = args[0].clone()
            width = joined.shape[-1] // count
            for head in chosen:
                part = slice(head * width, (head + 1) * width)
                joined[..., part] = 0.0 if means is None else means[layer][part].to(joined.dtype)
            return (joined, *args[1:])

        return replace

    with hooked([projections[layer].register_forward_pre_hook(replacer(layer, chosen))
                  for layer, chosen in by_layer.items()]):  # fmt: skip
        yield


def _last_logits(m, tensors: dict) -> torch.Tensor:
    """The last position's logits for each row of the batch (the LM head runs on that position only)."""
    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(m.model.forward).parameters else {}
    with torch.no_grad():
        return m.model(**tensors, **keep).logits[:, -1]


def _probabilities(m, inputs: Inputs) -> torch.Tensor:
    return _last_logits(m, inputs.tensors)[0].double().softmax(-1).cpu()


@dataclass(frozen=True)
class Ablation:
    """A decoder's next-token guesses with some heads switched off."""

    prompt: str
    answer: str
    heads: list[tuple[int, int]]
    how: str  # "zero" or "mean"
    p_before: float  # p(answer) with every head
    p_after: float  # ... with the chosen heads off
    before: NextTokens
    after: NextTokens


def means_for(m, inputs: Inputs | None, how: str) -> list[torch.Tensor] | None:
    """What switched-off heads give: None (zeros) for ``how="zero"``, their mean over ``inputs`` for "mean"."""
    if how not in ("zero", "mean"):
        raise InputError(f"how={how!r}: a head is switched off to 'zero' or to its 'mean' over a text.")
    if how == "zero":
        return None
    if inputs is None:
        raise InputError('how="mean" needs reference= (a text whose mean head outputs replace the heads).')
    return head_means(m, inputs)


def ablation(m, inputs: Inputs, answer: str, heads: Iterable[tuple[int, int]], how: str = "zero", k: int = 5):
    """p(``answer``) and the top ``k`` next tokens with all heads, then with ``heads`` switched off."""
    _require_decoder(m, "Head ablation")
    heads = [tuple(int(x) for x in pair) for pair in heads]
    answer_id = _answer_id(m.tokenizer, answer)
    means = means_for(m, inputs, how)
    before = _probabilities(m, inputs)
    with heads_off(m, heads, means):
        after = _probabilities(m, inputs)
    prompt = inputs.tokens.text
    return Ablation(prompt, token_labels(m.tokenizer, [answer_id])[0], heads, how, float(before[answer_id]),
                    float(after[answer_id]), _top(m, prompt, before, k), _top(m, prompt, after, k))  # fmt: skip


@dataclass(frozen=True)
class HeadEffects:
    """log p(answer) with each head switched off alone, minus log p(answer) with every head."""

    prompt: str
    answer: str
    how: str
    p_answer: float  # with every head
    change: torch.Tensor  # [layers, heads]: negative = the answer got less likely without that head

    def strongest(self, top: int = 5) -> list[tuple[int, int, float]]:
        """The ``top`` heads whose removal lowers the answer most: (layer, head, change)."""
        order = self.change.flatten().argsort()[:top]
        heads = self.change.shape[1]
        return [(int(i) // heads, int(i) % heads, float(self.change.flatten()[i])) for i in order]


def _batch(inputs: Inputs, rows: int) -> dict[str, torch.Tensor]:
    """The prompt's tensors repeated ``rows`` times: one forward pass tries ``rows`` interventions."""
    return {name: value.expand(rows, *value.shape[1:]) for name, value in inputs.tensors.items()}


def _log_answer(m, tensors: dict, answer_id: int) -> torch.Tensor:
    return _last_logits(m, tensors).double().log_softmax(-1)[:, answer_id].cpu()


def head_effects(m, inputs: Inputs, answer: str, how: str = "zero") -> HeadEffects:
    """Switch every head off alone and record the change of log p(``answer``): one batched pass per layer."""
    _require_decoder(m, "Head ablation")
    projections, count = output_projections(m)
    answer_id = _answer_id(m.tokenizer, answer)
    means = means_for(m, inputs, how)
    p_answer = float(_probabilities(m, inputs)[answer_id])
    change = torch.zeros(len(projections), count, dtype=torch.float64)
    for layer, projection in enumerate(projections):

        def each_row_one_head(module, args, layer=layer):  # row h of the batch loses head h
            joined = args[0].clone()
            width = joined.shape[-1] // count
            for head in range(count):
                part = slice(head * width, (head + 1) * width)
                joined[head, :, part] = 0.0 if means is None else means[layer][part].to(joined.dtype)
            return (joined, *args[1:])

        with hooked([projection.register_forward_pre_hook(each_row_one_head)]):
            change[layer] = _log_answer(m, _batch(inputs, count), answer_id) - math.log(p_answer)
    return HeadEffects(inputs.tokens.text, token_labels(m.tokenizer, [answer_id])[0], how, p_answer, change)


@dataclass(frozen=True)
class Patching:
    """p(answer) of the corrupted prompt with the clean stream put back after block ``layer`` at one position."""

    clean: list[str]  # the clean prompt's tokens
    corrupt: list[str]
    answer: str
    p_clean: float
    p_corrupt: float
    p_patched: torch.Tensor  # [layers, positions]

    @property
    def restored(self) -> torch.Tensor:
        """How much of the gap each patch closes: 0 = still corrupt, 1 = back to clean."""
        return (self.p_patched - self.p_corrupt) / (self.p_clean - self.p_corrupt)

    def blocks_restoring(self, position: int, share: float = 0.9) -> list[int]:
        """Blocks after which the clean vector put back at ``position`` restores at least ``share`` of the gap."""
        return [int(b) for b in (self.restored[:, position] >= share).nonzero().flatten()]


def _block_output(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _block_outputs(m, inputs: Inputs, blocks) -> list[torch.Tensor]:
    """What each block hands on (the stream after it, before any final norm): [layers] x [tokens, hidden]."""
    outputs: list[torch.Tensor] = []
    keep = [b.register_forward_hook(lambda module, args, out: outputs.append(_block_output(out)[0])) for b in blocks]
    with hooked(keep), torch.no_grad():
        m.model(**inputs.tensors)
    return outputs


def patching(m, clean: Inputs, corrupt: Inputs, answer: str) -> Patching:
    """Activation patching of every (layer, position): one forward pass each, on the corrupted prompt."""
    _require_decoder(m, "Activation patching")
    if len(clean.tokens.ids) != len(corrupt.tokens.ids):
        raise InputError(
            f"Activation patching puts the clean stream back position by position, so both prompts need the same "
            f"number of tokens: {len(clean.tokens.ids)} ({clean.tokens.text!r}) vs {len(corrupt.tokens.ids)} "
            f"({corrupt.tokens.text!r}). Change one word for another word of one token."
        )
    answer_id = _answer_id(m.tokenizer, answer)
    _, blocks = _stack(m, None)
    states = _block_outputs(m, clean, blocks)
    p_clean, p_corrupt = (float(_probabilities(m, x)[answer_id]) for x in (clean, corrupt))
    positions = len(corrupt.tokens.ids)
    patched = torch.zeros(len(blocks), positions, dtype=torch.float64)
    for layer, block in enumerate(blocks):

        def each_row_one_position(module, args, output, layer=layer):  # row p of the batch: position p put back
            hidden = _block_output(output).clone()
            for position in range(positions):
                hidden[position, position] = states[layer][position]
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        with hooked([block.register_forward_hook(each_row_one_position)]):
            patched[layer] = _log_answer(m, _batch(corrupt, positions), answer_id).exp()
    labels = token_labels(m.tokenizer, [answer_id])[0]
    return Patching(clean.tokens.labels, corrupt.tokens.labels, labels, p_clean, p_corrupt, patched)
