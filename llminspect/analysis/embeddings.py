"""Embeddings as data: static vs contextual vectors, similarity, projection, neighbours, analogies.

A *static* vector is a row of the input embedding table: the same for a word wherever it
appears. A *contextual* vector is the hidden state at that word after some layers: it changes
with the sentence around it. Words the vocabulary splits into several tokens are pooled by the
mean of their tokens' vectors; every result lists the tokens it pooled (``pieces``).

Which stack gives the vectors: an encoder's or a decoder's own layers; for an encoder-decoder,
the encoder reads the text (its decoder's token table is the static table). Whisper's encoder
hears audio, so text vectors come from its decoder token table only.

Example:
    >>> import llminspect as li
    >>> m = li.load("encoder")
    >>> bank = word_in_contexts(m, "bank", ["He sat on the river bank.", "She opened a bank account."])
    >>> bank.layers.shape, round(float(bank.similarity()[0, 0, 1]), 3) < 1.0
    (torch.Size([2, 7, 384]), True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import choice, list_of_texts, whole_number
from llminspect.analysis.inputs import text_tokens
from llminspect.analysis.sites import check_stream, run, sites_of
from llminspect.analysis.tokens import Tokens, encode, word_positions
from llminspect.errors import EmptyInputError, FamilyError, InputError
from llminspect.models.registry import ASSETS

POOLINGS = ("mean", "cls", "last")


@dataclass(frozen=True)
class WordVectors:
    """One word's vectors in several contexts: its static vector and every layer's hidden state."""

    word: str
    contexts: list[str]
    pieces: list[list[str]]  # the tokens pooled for the word in each context
    static: torch.Tensor  # [hidden]: the mean of its tokens' rows in the input embedding table
    layers: torch.Tensor  # [contexts, layers + 1, hidden]; index 0: the embeddings, L + 1: after layer L

    def similarity(self) -> torch.Tensor:
        """Cosine similarity between contexts at every layer: [layers + 1, contexts, contexts]."""
        return torch.stack([cosine_matrix(self.layers[:, layer]) for layer in range(self.layers.shape[1])])


@dataclass(frozen=True)
class Neighbours:
    """The rows of the embedding table closest (by cosine) to a query vector."""

    query: str
    pieces: list[str]  # the tokens whose vectors made the query
    tokens: list[str]  # the neighbours, decoded
    ids: list[int]
    cosines: list[float]

    def rows(self) -> list[dict]:
        return [{"token": t, "id": i, "cosine": c} for t, i, c in zip(self.tokens, self.ids, self.cosines, strict=True)]


@dataclass(frozen=True)
class Projection:
    """Vectors projected on their first principal components (PCA fitted on these vectors only)."""

    labels: list[str]
    groups: list[str]
    coordinates: torch.Tensor  # [items, dims]
    explained_variance: list[float]  # share of the total variance on each component


@dataclass(frozen=True)
class Ranking:
    """How well sentence vectors find each sentence's paraphrase among all candidates."""

    pooling: str
    top1: float  # share of sentences whose paraphrase is the nearest candidate
    mean_reciprocal_rank: float
    ranks: list[int]  # 1 = the paraphrase came first


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """cos(a, b) = a·b / (|a| |b|) for every pair of rows: [n, n]."""
    unit = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return unit @ unit.T


def dot_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """a·b = sum_i a_i b_i for every pair of rows: [n, n] (grows with the vectors' lengths)."""
    vectors = vectors.float()
    return vectors @ vectors.T


def embedding_table(m, centred: bool = False) -> torch.Tensor:
    """The input embedding table [vocabulary, hidden] (for an encoder-decoder, the decoder's tokens).

    ``centred=True`` subtracts the table's mean row from every row. Trained tables share one direction
    that every row leans on (SmolLM2's mean row is two thirds as long as an average row), so raw
    cosines partly measure how much two tokens lean on it; centred cosines compare what is left.
    """
    table = m.model.get_input_embeddings().weight.detach().float().cpu()
    return table - table.mean(0) if centred else table


def word_pieces(m, word: str) -> list[int]:
    """Token ids of ``word`` as it appears inside a sentence (after a space), without special tokens."""
    if not isinstance(word, str) or not word.strip():
        raise EmptyInputError("The word is empty: give a word such as 'king'.")
    encoded = encode(m.tokenizer, " " + word.strip(), "word", add_special_tokens=False)
    pieces = [i for i in encoded if m.tokenizer.decode([i]).strip()]  # drop a bare space token
    if not pieces:
        raise InputError(f"{word!r} gives no tokens in {m.name}'s vocabulary.")
    return pieces


def static_vector(m, word: str, centred: bool = False) -> tuple[list[str], torch.Tensor]:
    """The tokens of ``word`` and the mean of their rows in the input embedding table (``centred``: see
    ``embedding_table``)."""
    ids = word_pieces(m, word)
    return m.tokenizer.convert_ids_to_tokens(ids), embedding_table(m, centred)[ids].mean(0)


def _require_text(m) -> None:
    if m.modality != "text":
        raise FamilyError(
            f"{m.name}'s encoder hears audio, so it has no contextual vectors for text. "
            "Use li.load('encoder'), 'decoder' or 'toy-seq2seq' (static vectors of Whisper's tokens still work)."
        )


def hidden_states(m, text: str) -> tuple[Tokens, torch.Tensor]:
    """The tokens of ``text`` and the hidden states [layers + 1, tokens, hidden] of the stack that reads it
    (an encoder-decoder's encoder: its decoder reads only its start token)."""
    _require_text(m)
    tokens = text_tokens(m, text)
    tensors = {"input_ids": torch.tensor([tokens.ids], device=m.device)}
    if m.family == "encoder-decoder":
        tensors["decoder_input_ids"] = torch.tensor([[m.config.decoder_start_token_id]], device=m.device)
    outputs = run(m, tensors, output_hidden_states=True).output
    states = outputs.encoder_hidden_states if m.family == "encoder-decoder" else outputs.hidden_states
    return tokens, torch.stack([h[0] for h in states]).float().cpu()


def word_in_contexts(m, word: str, contexts: list[str]) -> WordVectors:
    """The static vector of ``word`` and its contextual vector at every layer in each context."""
    contexts = list_of_texts(contexts, "contexts")
    pieces, static = static_vector(m, word)
    per_context, context_pieces = [], []
    for context in contexts:
        tokens, states = hidden_states(m, context)
        positions = word_positions(tokens, word)
        context_pieces.append([tokens.strings[i] for i in positions])
        per_context.append(states[:, positions].mean(1))
    return WordVectors(word, list(contexts), context_pieces, static, torch.stack(per_context))


def word_vectors(m, words: list[str], centred: bool = False) -> tuple[list[list[str]], torch.Tensor]:
    """Static vectors of several words: their pieces, and [words, hidden] (``centred``: see ``embedding_table``)."""
    words = list_of_texts(words, "words")
    results = [static_vector(m, word, centred) for word in words]
    return [pieces for pieces, _ in results], torch.stack([vector for _, vector in results])


def sentence_vectors(m, sentences: list[str], pooling: str = "mean", layer: int = -1) -> torch.Tensor:
    """One vector per sentence from a layer's hidden states: [sentences, hidden].

    ``layer`` indexes the hidden states, not the blocks: 0 is the embeddings, L + 1 the stream after
    layer L (site ``layer.L.output``), -1 (the default) the last layer's output.

    ``mean`` averages every token, special ones included (how all-MiniLM-L6-v2 was trained to be
    used); ``cls`` takes the first token (BERT's [CLS]); ``last`` the final token (what a decoder
    has seen everything by).
    """
    pooling = choice(pooling, "pooling", POOLINGS)
    layer = check_stream(m, layer, stack=sites_of(m).architecture.stacks[0].name or None)
    if pooling == "cls" and m.family == "decoder":
        raise FamilyError(
            "A decoder's first token sees only itself, so 'cls' pooling means nothing: use 'mean' or 'last'."
        )
    sentences = list_of_texts(sentences, "sentences")
    vectors = []
    for sentence in sentences:
        _, states = hidden_states(m, sentence)
        chosen = states[layer]
        vectors.append({"mean": chosen.mean(0), "cls": chosen[0], "last": chosen[-1]}[pooling])
    return torch.stack(vectors)


def project(vectors: torch.Tensor, labels: list[str], groups: list[str] | None = None, dims: int = 2) -> Projection:
    """PCA of ``vectors`` (centred, by SVD) onto ``dims`` components, fitted on these vectors only."""
    if dims not in (2, 3):
        raise InputError(f"dims={dims}: project to 2 or 3 dimensions.")
    if vectors.shape[0] <= dims:
        raise InputError(f"PCA to {dims} dimensions needs more than {dims} vectors; got {vectors.shape[0]}.")
    if len(labels) != vectors.shape[0]:
        raise InputError(f"{len(labels)} labels for {vectors.shape[0]} vectors.")
    centred = vectors.float() - vectors.float().mean(0)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return Projection(
        labels=list(labels),
        groups=list(groups) if groups is not None else [""] * len(labels),
        coordinates=centred @ right[:dims].T,
        explained_variance=(variance[:dims] / variance.sum()).tolist(),
    )


def nearest(m, vector: torch.Tensor, k: int = 10, exclude: list[int] = (), query: str = "", pieces=(),
            centred: bool = False) -> Neighbours:  # fmt: skip
    """The ``k`` rows of the embedding table (centred or not) with the highest cosine to ``vector``."""
    k = whole_number(k, "k")
    table = embedding_table(m, centred)
    cosines = torch.nn.functional.normalize(table, dim=-1) @ torch.nn.functional.normalize(vector.float(), dim=0)
    cosines[list(exclude)] = -2.0  # never return the query's own tokens
    values, indices = cosines.topk(k)
    return Neighbours(
        query=query,
        pieces=list(pieces),
        tokens=[m.tokenizer.decode([i]) for i in indices.tolist()],
        ids=indices.tolist(),
        cosines=values.tolist(),
    )


def nearest_tokens(m, word: str, k: int = 10, centred: bool = False) -> Neighbours:
    """Tokens whose static vectors are closest to ``word``'s (its own tokens left out; ``centred``: every
    vector minus the table's mean row)."""
    pieces, vector = static_vector(m, word, centred)
    return nearest(m, vector, k, word_pieces(m, word), word + (" (centred)" if centred else ""), pieces, centred)


def analogy(m, positive: list[str], negative: list[str], k: int = 10) -> Neighbours:
    """Nearest tokens to sum(positive) - sum(negative) of static vectors, e.g. king - man + woman.

    The input words' own tokens are left out of the answer, as is usual for this test.
    """
    positive, k = list_of_texts(positive, "positive"), whole_number(k, "k")
    negative = list_of_texts(negative, "negative") if negative else []  # king − man + woman; or no negatives
    words = positive + negative
    pieces, vectors = word_vectors(m, words)
    signs = torch.tensor([1.0] * len(positive) + [-1.0] * len(negative))
    target = (signs[:, None] * vectors).sum(0)
    own = sorted({i for word in words for i in word_pieces(m, word)})
    query = " + ".join(positive) + "".join(f" - {word}" for word in negative)
    return nearest(m, target, k, own, query, [p for group in pieces for p in group])


def paraphrase_ranking(m, pairs: list[tuple[str, str]], decoys: list[str] = (), pooling: str = "mean") -> Ranking:
    """For each pair (a, b): rank every b, and every decoy, by cosine to a; where does a's own b land?"""
    if len(pairs) < 2:
        raise InputError("Ranking needs at least two sentence pairs.")
    firsts = sentence_vectors(m, [a for a, _ in pairs], pooling)
    seconds = sentence_vectors(m, [b for _, b in pairs] + list(decoys), pooling)
    scores = torch.nn.functional.normalize(firsts, dim=-1) @ torch.nn.functional.normalize(seconds, dim=-1).T
    ranks = [int((row > row[i]).sum()) + 1 for i, row in enumerate(scores)]
    return Ranking(
        pooling=pooling,
        top1=sum(r == 1 for r in ranks) / len(ranks),
        mean_reciprocal_rank=sum(1 / r for r in ranks) / len(ranks),
        ranks=ranks,
    )


def sentence_pairs() -> tuple[list[tuple[str, str]], list[str]]:
    """The paraphrase pairs and decoys shipped in ``llminspect/assets/sentence_pairs.json``."""
    data = json.loads((ASSETS / "sentence_pairs.json").read_text(encoding="utf-8"))
    return [tuple(pair) for pair in data["pairs"]], list(data["decoys"])
