"""The logit lens: read every layer's residual stream as if it were the last.

Each layer's hidden state goes through *everything the model does after its last block* — the
final norm, and whatever else its forward pass applies: T5's rescaling before a tied head,
Gemma 2's final logit soft-capping, BERT's masked-LM transform, BART's logits bias — giving a
next-token distribution per layer and position: where does " Paris" first become the top guess?
Intermediate layers were never trained to be read this way, so early rows are often nonsense
and the lens can miss what a layer knows (nostalgebraist 2020; the "tuned lens" of Belrose et
al. 2023 trains a small translator per layer instead).

How every model's own tail is applied, without re-implementing it: one forward pass records the
stream entering the first block and leaving every block, and the last block hands on all of
them at once (a batch of layers) instead of its own output; the model's code then finishes each
row exactly as it finishes a real pass. Row L is therefore the model's own output, and row l
equals the model cut down to its first l blocks (tested against such cut models).

Example:
    >>> import llminspect as li
    >>> lens = li.load("decoder").logit_lens("The capital of France is", answer=" Paris")
    >>> lens.top_tokens[-1][-1], lens.first_layer_with_answer_on_top()
    ('␣Paris', 'layer 29')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run, sites_of
from llminspect.analysis.tokens import Tokens, single_token, token_labels
from llminspect.errors import FamilyError

LOGIT_BUDGET_BYTES = 256 * 2**20  # float32 logits held at once; longer texts take several passes


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


def every_layer_logits(m, inputs: Inputs, rows: list[int] | None = None) -> torch.Tensor:
    """Logits read off the stream before block 0 (row 0) and after every block (row l + 1): [rows, tokens, vocab].

    ``rows`` picks some of them (all by default). The model's own code after its last block
    (final norm, head, scaling, soft-capping) turns each row into logits.

    Example:
        >>> import llminspect as li
        >>> m = li.load("decoder")
        >>> every_layer_logits(m, m.inputs("The capital of France is"), rows=[0, 30]).shape
        torch.Size([2, 5, 49152])
    """
    stack = sites_of(m).architecture.writer  # the stack that writes (an encoder-decoder's decoder)
    prefix = f"{stack.name}." if stack.name else ""
    streams: list[torch.Tensor] = []

    def record(hidden: torch.Tensor) -> None:
        streams.append(hidden)

    def hand_on_every_layer(hidden: torch.Tensor) -> torch.Tensor:
        streams.append(hidden)
        chosen = range(len(streams)) if rows is None else rows
        return torch.cat([streams[row] for row in chosen])  # every chosen layer as one batch of rows

    edits = {f"{prefix}embeddings": record}
    edits.update({f"{prefix}layer.{layer}.output": record for layer in range(stack.layers - 1)})
    edits[f"{prefix}layer.{stack.layers - 1}.output"] = hand_on_every_layer
    try:
        logits = run(m, inputs, edit=edits).logits
    except (RuntimeError, ValueError) as error:
        raise FamilyError(
            f"{type(m.model).__name__} does not let its last block hand on several rows at once ({error}), which "
            "the logit lens needs to read every layer through the model's own head."
        ) from error
    expected = stack.layers + 1 if rows is None else len(rows)
    if logits.shape[0] != expected:
        raise FamilyError(
            f"{type(m.model).__name__} did not return one row of logits per layer: the lens cannot read it."
        )
    return logits.float().cpu()


def logit_lens(m, inputs: Inputs, answer: str | None = None) -> LogitLens:
    """Run the logit lens over the (decoder) stack of ``m`` on checked ``inputs``.

    ``answer`` is one token to follow through the layers (by default the model's own top guess at
    the last position). Works for every model with a language-model or masked-LM head.
    """
    m.require_lm_head("The logit lens")
    tokens = inputs.tokens
    layers = sites_of(m).architecture.writer.layers
    vocabulary = m.model.get_output_embeddings().weight.shape[0]
    per_pass = max(1, LOGIT_BUDGET_BYTES // (4 * len(tokens) * vocabulary))
    chunks = [list(range(start, min(start + per_pass, layers + 1))) for start in range(0, layers + 1, per_pass)]
    answer_id = single_token(m.tokenizer, answer) if answer else None
    rows = {"top_ids": [], "top_probs": [], "entropy": [], "answer_rank": [], "answer_prob": []}
    for chunk in reversed(chunks):  # the last row first: it names the default answer
        logits = every_layer_logits(m, inputs, None if len(chunks) == 1 else chunk)
        if answer_id is None:
            answer_id = int(logits[-1, -1].argmax())
        for row in reversed(range(logits.shape[0])):
            for name, value in _read(logits[row], answer_id).items():
                rows[name].insert(0, value)
    stacked = {name: torch.stack(values) for name, values in rows.items()}
    labels = [token_labels(m.tokenizer, row.tolist()) for row in stacked["top_ids"]]
    names = ["embeddings"] + [f"layer {i}" for i in range(layers)]
    answer_text = token_labels(m.tokenizer, [answer_id])[0]
    return LogitLens(tokens, names, top_tokens=labels, answer=answer_text, answer_id=answer_id, **stacked)


def _read(logits: torch.Tensor, answer_id: int) -> dict[str, torch.Tensor]:
    """One layer's row of the lens from its logits [tokens, vocab]."""
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    top_prob, top_id = probs.max(dim=-1)
    return {
        "top_ids": top_id,
        "top_probs": top_prob,
        "entropy": -(probs * logp).nan_to_num().sum(dim=-1) / math.log(2),
        "answer_prob": probs[:, answer_id],
        "answer_rank": (logits > logits[:, answer_id : answer_id + 1]).sum(dim=-1) + 1,
    }
