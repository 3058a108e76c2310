"""The logit lens: read every layer's residual stream as if it were the last.

Each layer's hidden state goes through the model's final norm and its unembedding (the LM
head), giving a next-token distribution per layer and position: where does " Paris" first
become the top guess? Intermediate layers were never trained to be read this way, so early
rows are often nonsense and the lens can miss what a layer knows (nostalgebraist 2020; the
"tuned lens" of Belrose et al. 2023 trains a small translator per layer instead).

transformers reports the last hidden state *after* the final norm, so the last row is the head
alone — exactly the model's own logits; every earlier row gets the norm first.

Example:
    >>> import llminspect as li
    >>> lens = logit_lens(li.load("decoder"), "The capital of France is", answer=" Paris")
    >>> lens.top_tokens[-1][-1], lens.first_layer_with_answer_on_top()
    ('␣Paris', 'layer 29')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import FamilyError, InputError
from .tokens import Tokens, token_labels
from .walk import block_lists

FINAL_NORM_NAMES = ("norm", "ln_f", "layer_norm", "final_layer_norm", "final_layernorm")


@dataclass
class LogitLens:
    """Per layer (rows) and position (columns): the top token, its probability, the entropy, the answer's rank."""

    tokens: Tokens  # what the (decoder) stack read; column t predicts the token after tokens[t]
    layers: list[str]  # "embeddings", "layer 0", ..., "layer L-1" (the last row is the model's output)
    top_ids: torch.Tensor  # [layers + 1, tokens]
    top_tokens: list[list[str]]
    top_probs: torch.Tensor  # [layers + 1, tokens]
    entropy: torch.Tensor  # [layers + 1, tokens], in bits
    answer: str  # the token whose rank is followed (the model's final top guess at the last position by default)
    answer_id: int
    answer_rank: torch.Tensor  # [layers + 1, tokens], 1 = top
    answer_prob: torch.Tensor  # [layers + 1, tokens]

    def first_layer_with_answer_on_top(self, position: int = -1) -> str | None:
        """The first row where the answer is the top token at ``position`` (and stays top after), or None."""
        ranks = self.answer_rank[:, position].tolist()
        for row in range(len(ranks)):
            if all(rank == 1 for rank in ranks[row:]):
                return self.layers[row]
        return None


def readout(model):
    """(final norm or None, unembedding, bias or None): what turns a hidden state into logits.

    Example:
        >>> import llminspect as li
        >>> norm, head, bias = readout(li.load("decoder").model)
        >>> type(norm).__name__, head.weight.shape[0], bias
        ('LlamaRMSNorm', 49152, None)
    """
    head = model.get_output_embeddings()
    if head is None:
        raise FamilyError(
            f"The logit lens reads hidden states through a language-model head, and {type(model).__name__} has "
            "none (an encoder without a head). Use a decoder (li.load('decoder')) or an encoder-decoder."
        )
    stack_path = block_lists(model)[-1][0]
    stack = model.get_submodule(stack_path.rsplit(".", 1)[0]) if "." in stack_path else model
    norms = [getattr(stack, name, None) for name in FINAL_NORM_NAMES]
    norm = next((module for module in norms if isinstance(module, torch.nn.Module)), None)
    return norm, head, getattr(model, "final_logits_bias", None)


def _answer_id(tokenizer, answer: str) -> int:
    ids = tokenizer(answer, add_special_tokens=False).input_ids
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise InputError(
            f"The answer {answer!r} is {len(ids)} tokens here ({pieces}); the lens follows one token. "
            f"Give a single token, e.g. {tokenizer.convert_tokens_to_string(pieces[:1])!r}."
        )
    return ids[0]


def logit_lens(inspector, text, target: str | None = None, answer: str | None = None) -> LogitLens:
    """Run the logit lens over the (decoder) stack of ``inspector`` on ``text``.

    For an encoder-decoder, ``text`` is the source and the lens reads the decoder on ``target``
    (the model's own output when None). ``answer`` is one token to follow through the layers.
    """
    norm, head, bias = readout(inspector.model)
    trace = inspector.trace(text, target)
    answer_id = _answer_id(inspector.tokenizer, answer) if answer else int(trace.logits[-1].argmax())
    rows = {"top_ids": [], "top_probs": [], "entropy": [], "answer_rank": [], "answer_prob": []}
    last = trace.hidden_states.shape[0] - 1
    parameter = next(head.parameters())
    for layer, hidden in enumerate(trace.hidden_states):
        if layer == last:
            logits = trace.logits  # already read through the final norm by the model itself
        else:
            with torch.no_grad():
                h = hidden.to(device=parameter.device, dtype=parameter.dtype)
                logits = head(norm(h) if norm is not None else h)
                logits = (logits + bias[0] if bias is not None else logits).float().cpu()
        logp = torch.log_softmax(logits, dim=-1)
        probs = logp.exp()
        top_prob, top_id = probs.max(dim=-1)
        rows["top_ids"].append(top_id)
        rows["top_probs"].append(top_prob)
        rows["entropy"].append(-(probs * logp).nan_to_num().sum(dim=-1) / torch.log(torch.tensor(2.0)))
        rows["answer_prob"].append(probs[:, answer_id])
        rows["answer_rank"].append((logits > logits[:, answer_id : answer_id + 1]).sum(dim=-1) + 1)
    stacked = {name: torch.stack(values) for name, values in rows.items()}
    labels = [token_labels(inspector.tokenizer, row.tolist()) for row in stacked["top_ids"]]
    layers = ["embeddings"] + [f"layer {i}" for i in range(last)]
    answer_text = token_labels(inspector.tokenizer, [answer_id])[0]
    return LogitLens(trace.tokens, layers, top_tokens=labels, answer=answer_text, answer_id=answer_id, **stacked)
