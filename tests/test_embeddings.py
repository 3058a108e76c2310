"""Embedding computations against independent torch / numpy / raw transformers computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from llminspect import errors
from llminspect.analysis import embeddings as emb
from llminspect.models.registry import EMBEDDED, source_path

CONTEXTS = ["He sat on the river bank.", "She opened a bank account.", "I deposited money at the bank."]


def test_cosine_and_dot_match_torch():
    vectors = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.cosine_similarity(vectors[:, None], vectors[None], dim=-1)
    torch.testing.assert_close(emb.cosine_matrix(vectors), expected)
    torch.testing.assert_close(emb.dot_matrix(vectors), torch.einsum("id,jd->ij", vectors, vectors))


def test_word_in_contexts_reads_the_right_hidden_states(encoder):
    bank = emb.word_in_contexts(encoder, "bank", CONTEXTS)
    folder = source_path(EMBEDDED["encoder"])
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    for row, sentence in enumerate(CONTEXTS):
        encoded = tokenizer(sentence, return_tensors="pt")
        position = tokenizer.convert_ids_to_tokens(encoded.input_ids[0]).index("bank")
        with torch.no_grad():
            states = model(**encoded, output_hidden_states=True).hidden_states
        for layer, state in enumerate(states):
            torch.testing.assert_close(bank.layers[row, layer], state[0, position], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(bank.static, model.embeddings.word_embeddings.weight[tokenizer.vocab["bank"]])
    assert bank.pieces == [["bank"]] * 3
    similarity = bank.similarity()
    assert similarity.shape == (7, 3, 3)
    # the money senses stay closer to each other than to the river bank, at every layer after 0
    assert torch.all(similarity[1:, 1, 2] > similarity[1:, 0, 1])


def test_decoder_layer_zero_is_the_static_vector(decoder):
    bank = emb.word_in_contexts(decoder, "bank", CONTEXTS)
    for row in range(3):
        torch.testing.assert_close(bank.layers[row, 0], bank.static)


def test_a_word_split_into_pieces_is_pooled_by_the_mean(decoder):
    pieces, vector = emb.static_vector(decoder, "Llanfairpwllgwyngyll")
    ids = decoder.tokenizer(" Llanfairpwllgwyngyll", add_special_tokens=False).input_ids
    assert len(pieces) == len(ids) > 1
    table = decoder.model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(vector, table[ids].mean(0))


def test_nearest_tokens_match_brute_force(decoder):
    result = emb.nearest_tokens(decoder, "king", k=5)
    table = decoder.model.get_input_embeddings().weight.detach().numpy()
    query = table[decoder.tokenizer(" king", add_special_tokens=False).input_ids[0]]
    cosines = table @ query / (np.linalg.norm(table, axis=1) * np.linalg.norm(query))
    own = decoder.tokenizer.convert_tokens_to_ids("Ġking")
    expected = [int(i) for i in np.argsort(-cosines) if i != own][:5]
    assert result.ids == expected
    assert result.cosines == pytest.approx(cosines[expected].tolist(), abs=1e-5)


def test_a_centred_table_is_the_table_minus_its_mean_row(decoder):
    table = decoder.model.get_input_embeddings().weight.detach().numpy().astype(np.float64)
    centred_table = table - table.mean(0)
    _, vectors = emb.word_vectors(decoder, ["kitten", "cat"], centred=True)
    ids = [decoder.tokenizer(" " + w, add_special_tokens=False).input_ids[0] for w in ("kitten", "cat")]
    np.testing.assert_allclose(vectors.numpy(), centred_table[ids], atol=1e-5)
    neighbours = emb.nearest_tokens(decoder, "kitten", k=5, centred=True)
    query = centred_table[ids[0]]
    cosines = centred_table @ query / (np.linalg.norm(centred_table, axis=1) * np.linalg.norm(query))
    assert neighbours.ids == [int(i) for i in np.argsort(-cosines) if i != ids[0]][:5]
    assert neighbours.cosines == pytest.approx(cosines[neighbours.ids].tolist(), abs=1e-5)
    assert neighbours.query == "kitten (centred)"


def test_analogy_is_vector_arithmetic_and_honest(decoder):
    result = emb.analogy(decoder, positive=["king", "woman"], negative=["man"], k=8)
    table = decoder.model.get_input_embeddings().weight.detach()
    ids = {w: decoder.tokenizer(" " + w, add_special_tokens=False).input_ids[0] for w in ("king", "man", "woman")}
    target = table[ids["king"]] - table[ids["man"]] + table[ids["woman"]]
    cosines = torch.nn.functional.cosine_similarity(table, target[None], dim=-1)
    cosines[list(ids.values())] = -2
    assert result.ids == cosines.topk(8).indices.tolist()
    assert result.query == "king + woman - man" and not set(ids.values()) & set(result.ids)
    assert result.tokens[0] == " queen" and 0.6 < result.cosines[0] < 0.8  # first, but far from identical


def test_pca_matches_numpy(decoder):
    words = ["cat", "dog", "horse", "France", "Japan", "Italy", "one", "two"]
    _, vectors = emb.word_vectors(decoder, words)
    projected = emb.project(vectors, words, ["x"] * len(words), dims=3)
    data = vectors.numpy().astype(np.float64)
    centred = data - data.mean(0)
    eigenvalues = np.linalg.eigvalsh(np.cov(centred, rowvar=False))[::-1]
    assert projected.explained_variance == pytest.approx((eigenvalues[:3] / eigenvalues.sum()).tolist(), abs=1e-4)
    _, _, right = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ right[:3].T
    got = projected.coordinates.numpy()
    for axis in range(3):  # a principal axis is defined up to its sign
        sign = np.sign(np.dot(expected[:, axis], got[:, axis]))
        np.testing.assert_allclose(got[:, axis], sign * expected[:, axis], atol=1e-3)


def test_mean_pooling_matches_sentence_transformers_recipe(encoder):
    sentences = ["She plays the guitar every evening.", "Every night she practises her guitar.", "Stocks fell."]
    folder = source_path(EMBEDDED["encoder"])
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        last = model(**batch).last_hidden_state
    mask = batch.attention_mask[..., None].float()
    expected = (last * mask).sum(1) / mask.sum(1)  # what sentence-transformers' mean pooling computes
    torch.testing.assert_close(emb.sentence_vectors(encoder, sentences), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(emb.sentence_vectors(encoder, sentences, "cls"), last[:, 0], atol=1e-5, rtol=1e-4)


def test_paraphrase_ranking_counts_ranks_like_argsort(encoder):
    pairs, decoys = emb.sentence_pairs()
    result = emb.paraphrase_ranking(encoder, pairs, decoys, "mean")
    firsts = emb.sentence_vectors(encoder, [a for a, _ in pairs]).numpy()
    candidates = emb.sentence_vectors(encoder, [b for _, b in pairs] + decoys).numpy()
    scores = (firsts / np.linalg.norm(firsts, axis=1, keepdims=True)) @ (
        candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    ).T
    ranks = [int(np.where(np.argsort(-row) == i)[0][0]) + 1 for i, row in enumerate(scores)]
    assert result.ranks == ranks
    assert result.top1 == pytest.approx(np.mean(np.array(ranks) == 1))
    assert result.mean_reciprocal_rank == pytest.approx(np.mean(1 / np.array(ranks)))
    cls = emb.paraphrase_ranking(encoder, pairs, decoys, "cls")
    assert result.mean_reciprocal_rank > cls.mean_reciprocal_rank  # the lesson's claim: mean pooling wins


def test_encoder_decoder_text_vectors_come_from_the_encoder(toy):
    _, states = emb.hidden_states(toy, "happy bird eats mouse")
    with torch.no_grad():
        reference = toy.model.get_encoder()(
            input_ids=torch.tensor([toy.tokenize("happy bird eats mouse").ids]), output_hidden_states=True
        ).hidden_states
    assert states.shape == (3, 5, 128)
    torch.testing.assert_close(states[-1], reference[-1][0])


def test_clear_errors(decoder, whisper, encoder):
    with pytest.raises(errors.EmptyInputError, match="word list is empty"):
        emb.word_vectors(decoder, [])
    with pytest.raises(errors.EmptyInputError, match="word is empty"):
        emb.static_vector(decoder, "  ")
    with pytest.raises(errors.InputError, match="does not occur"):
        emb.word_in_contexts(encoder, "bank", ["No money here."])
    with pytest.raises(errors.FamilyError, match="hears audio"):
        emb.word_in_contexts(whisper, "bank", CONTEXTS)
    with pytest.raises(errors.FamilyError, match="'cls' pooling means nothing"):
        emb.sentence_vectors(decoder, ["a b"], "cls")
    with pytest.raises(errors.InputError, match="choose one of"):
        emb.sentence_vectors(encoder, ["a b"], "max")
    with pytest.raises(errors.InputError, match="more than 2 vectors"):
        emb.project(torch.randn(2, 4), ["a", "b"])
    with pytest.raises(errors.InputError, match="2 or 3"):
        emb.project(torch.randn(5, 4), list("abcde"), dims=4)
    # Whisper's token table still gives static vectors
    assert emb.static_vector(whisper, "hello")[1].shape == (384,)
