"""The invented language the toy text-to-text model (``toy-seq2seq``) translates into.

No text encoder-decoder (T5, BART, Marian) ships offline, so this repository trains a tiny BART
on a task whose structure you can see: English sentences are translated word for word into an
invented language in which an adjective comes *after* its noun ("happy bird eats mouse" ->
"birdo gaja manghas muso"). A well-trained model's cross-attention therefore follows a known
alignment with visible crossings, which is what the lessons show and the tests check.

Example:
    >>> translate("happy bird eats mouse")
    'birdo gaja manghas muso'
    >>> alignment("happy bird eats mouse")
    [1, 0, 2, 3]
"""

from __future__ import annotations

import random

NOUNS = {
    "bird": "birdo",
    "mouse": "muso",
    "cat": "kato",
    "dog": "hundo",
    "fish": "fisko",
    "child": "kido",
    "king": "rego",
    "farmer": "bauro",
    "horse": "ekvo",
    "frog": "rano",
    "snake": "sneko",
    "teacher": "lernigo",
}
ADJECTIVES = {
    "happy": "gaja",
    "small": "eta",
    "big": "granda",
    "red": "ruga",
    "old": "olda",
    "young": "juna",
    "green": "verda",
    "lazy": "pigra",
    "quick": "rapida",
    "brave": "kuraga",
}
VERBS = {
    "eats": "manghas",
    "sees": "vidas",
    "likes": "satas",
    "chases": "chasas",
    "helps": "helpas",
    "finds": "trovas",
    "follows": "sekvas",
    "calls": "vokas",
}
LEXICON = {**NOUNS, **ADJECTIVES, **VERBS}


def _noun_phrase(words: list[str], start: int) -> tuple[list[str], list[int], int]:
    """Translate the noun phrase at ``words[start]``: its words, their source positions, its end."""
    if words[start] in ADJECTIVES:
        noun = start + 1
        return [LEXICON[words[noun]], LEXICON[words[start]]], [noun, start], noun + 1
    return [LEXICON[words[start]]], [start], start + 1


def _translate_with_alignment(sentence: str) -> tuple[list[str], list[int]]:
    words = sentence.split()
    subject, subject_src, verb = _noun_phrase(words, 0)
    obj, obj_src, end = _noun_phrase(words, verb + 1)
    if end != len(words) or words[verb] not in VERBS:
        raise ValueError(f"Not a sentence of the toy language: {sentence!r}")
    return subject + [LEXICON[words[verb]]] + obj, subject_src + [verb] + obj_src


def translate(sentence: str) -> str:
    """The invented-language translation of an English toy sentence."""
    return " ".join(_translate_with_alignment(sentence)[0])


def alignment(sentence: str) -> list[int]:
    """For each translated word, the position of the English word it translates."""
    return _translate_with_alignment(sentence)[1]


def random_sentence(rng: random.Random) -> str:
    """A random toy sentence: [adjective] noun verb [adjective] noun."""

    def noun_phrase() -> list[str]:
        noun = [rng.choice(sorted(NOUNS))]
        return [rng.choice(sorted(ADJECTIVES))] + noun if rng.random() < 0.5 else noun

    return " ".join(noun_phrase() + [rng.choice(sorted(VERBS))] + noun_phrase())


def held_out(sentence: str) -> bool:
    """Whether a sentence belongs to the held-out set the model never trains on (a fixed ~10%)."""
    return sum(map(ord, sentence)) % 10 == 0
