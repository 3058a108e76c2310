"""Linear probes: is a property of the text readable from the residual stream, layer by layer — and does that mean much?

A *probe* is a small classifier (here scikit-learn's logistic regression, on standardised
features) trained to read a label from a model's hidden vectors at one position, one per layer.
High test accuracy says the label is *linearly decodable* there. It does not say the model uses it,
nor that the probe found it rather than memorised something else: a strong enough probe learns
almost any labelling of a few dozen words. Hewitt & Liang (2019, "Designing and interpreting probes
with control tasks") therefore train the same probe on a **control task**: the same inputs with
random labels tied to word identity (each word gets its label once, at random). **Selectivity** =
task accuracy − control accuracy: how much of the accuracy the property itself explains.

``number_sentences()`` builds the lesson's data: "The dogs near the tree" — the subject's number
(singular 0, plural 1) read at the *last* token, which is never the subject (the noun after the
preposition is singular or plural independently, so the last word's own number says nothing).
The control labels are tied to the subject word, the word the task's label depends on.

Example:
    >>> data = number_sentences()
    >>> len(data.texts), data.texts[0], data.labels[0], data.words[0]
    (240, 'The dog near the tree', 0, 'dog')
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from llminspect.analysis.arguments import list_of_texts, whole_number
from llminspect.analysis.sites import run, sites_of
from llminspect.analysis.tokens import single_token
from llminspect.errors import InputError

SUBJECTS = [("dog", "dogs"), ("cat", "cats"), ("key", "keys"), ("teacher", "teachers"), ("car", "cars"),
            ("bird", "birds"), ("doctor", "doctors"), ("book", "books"), ("student", "students"),
            ("girl", "girls"), ("boy", "boys"), ("player", "players")]  # fmt: skip
PLACES = [("tree", "trees"), ("house", "houses"), ("door", "doors"), ("table", "tables"), ("window", "windows")]


@dataclass(frozen=True)
class ProbeData:
    """Texts with a label each, and the word each label is tied to (for the control task)."""

    texts: list[str]
    labels: list[int]
    words: list[str]  # the word each label is tied to (the control task gives each its own random label)
    label_names: tuple[str, ...]
    groups: list[str]  # texts of one group go to the same side when words are held out (a word's forms)


def number_sentences(preposition: str = "near") -> ProbeData:
    """"The {subject} {preposition} the {place}": 12 subjects x singular/plural x 5 places x singular/plural."""
    texts, labels, words, groups = [], [], [], []
    for (one, many), places in itertools.product(SUBJECTS, PLACES):
        for label, subject in enumerate((one, many)):
            for place in places:
                texts.append(f"The {subject} {preposition} the {place}")
                labels.append(label)
                words.append(subject)
                groups.append(one)
    return ProbeData(texts, labels, words, ("singular", "plural"), groups)


def control_labels(words: list[str], labels: list[int], seed: int = 0) -> list[int]:
    """Hewitt & Liang's control task: each distinct word gets a random label of its own (kept in every text).

    The random labels are balanced *within* each task label (half the singular words get 0, half 1; the
    same for the plural words), so the control cannot be learned through the property itself: what a
    probe learns of it, it learns by telling the words apart.
    """
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    given: dict[str, int] = {}
    for task_label in sorted(set(labels)):
        kinds = sorted({w for w, lab in zip(words, labels, strict=True) if lab == task_label} - set(given))
        pool = np.resize(np.array(classes), len(kinds))
        given.update(zip(kinds, rng.permutation(pool).tolist(), strict=True))
    return [int(given[word]) for word in words]


def streams_at(m, texts: list[str], position: int = -1) -> torch.Tensor:
    """The stream before block 0 and after every block at ``position`` of each text: [texts, layers + 1, hidden].

    Texts of the same length run together in one batch (no padding, so nothing to mask).
    """
    m.require_family("A probe", "encoder", "decoder")
    texts = list_of_texts(texts, "texts")
    stack = sites_of(m).architecture.writer
    prefix = f"{stack.name}." if stack.name else ""
    names = [f"{prefix}embeddings"] + [f"{prefix}layer.{i}.output" for i in range(stack.layers)]
    inputs = [m.inputs(text) for text in texts]
    if not all(-len(i.tokens) <= position < len(i.tokens) for i in inputs):
        raise InputError(f"position={position} is outside a text of {min(len(i.tokens) for i in inputs)} tokens.")
    rows: dict[int, torch.Tensor] = {}
    for indices in _by_length(inputs).values():
        tensors = {name: torch.cat([inputs[i].tensors[name] for i in indices]) for name in inputs[indices[0]].tensors}
        cache = run(m, tensors, keep=names, last_only=True)
        block = torch.stack([cache[name][:, position] for name in names], 1).float().cpu()
        rows.update(zip(indices, block, strict=True))
    return torch.stack([rows[index] for index in range(len(texts))])


def next_word_probabilities(m, texts: list[str], words: list[str]) -> np.ndarray:
    """p(each one-token word) next after each text: [texts, words] (texts of one length in one batch) — the
    behaviour a probe's property should show up in (a plural subject: " are" over " is")."""
    m.require_decoder("Next-word probabilities")
    ids = [single_token(m.tokenizer, word, "word") for word in list_of_texts(words, "words")]
    inputs = [m.inputs(text) for text in list_of_texts(texts, "texts")]
    found = np.zeros((len(inputs), len(ids)))
    for indices in _by_length(inputs).values():
        tensors = {name: torch.cat([inputs[i].tensors[name] for i in indices]) for name in inputs[indices[0]].tensors}
        probabilities = run(m, tensors, last_only=True).logits[:, -1].double().softmax(-1)[:, ids].cpu().numpy()
        found[indices] = probabilities
    return found


def _by_length(inputs: list) -> dict[int, list[int]]:
    """Indices of the inputs grouped by token count (one batch each, no padding)."""
    groups: dict[int, list[int]] = {}
    for index, one in enumerate(inputs):
        groups.setdefault(len(one.tokens), []).append(index)
    return groups


@dataclass(frozen=True)
class Probe:
    """A logistic-regression probe per layer: test accuracy on the task and on the control task."""

    layers: list[str]  # "embeddings", "layer 0", ...
    accuracy: np.ndarray  # [layers + 1]: the task, on the test texts
    control: np.ndarray  # [layers + 1]: the control task (random labels tied to words), same probe, same split
    chance: float  # the share of the commonest label among the test texts
    train: list[int]  # indices of the training texts
    test: list[int]
    label_names: tuple[str, ...]
    features: torch.Tensor | None = None  # [texts, layers + 1, hidden]: what was probed (for another split)

    @property
    def selectivity(self) -> np.ndarray:
        """Accuracy minus control accuracy, per layer (Hewitt & Liang 2019)."""
        return self.accuracy - self.control

    def best(self) -> str:
        """The layer of the highest selectivity."""
        return self.layers[int(np.argmax(self.selectivity))]


def split(labels: list[int], test_share: float, seed: int, groups: list[str] | None = None) -> tuple[list, list]:
    """Train and test indices: a stratified random split, or (``groups``) whole groups held out for the test."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    indices = np.arange(len(labels))
    if groups is None:
        train, test = train_test_split(indices, test_size=test_share, random_state=seed, stratify=labels)
    else:
        train, test = next(GroupShuffleSplit(1, test_size=test_share, random_state=seed).split(indices, labels, groups))
    return sorted(train.tolist()), sorted(test.tolist())


def fit_accuracy(features: np.ndarray, labels: np.ndarray, train: list[int], test: list[int], strength: float) -> float:
    """Test accuracy of a logistic regression on standardised features (``strength``: sklearn's C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000))
    probe.fit(features[train], labels[train])
    return float(probe.score(features[test], labels[test]))


def probe(m, data: ProbeData, position: int = -1, seed: int = 0, test_share: float = 0.3, strength: float = 1.0,
          hold_out_words: bool = False, features: torch.Tensor | None = None) -> Probe:  # fmt: skip
    """Train a probe per layer on ``data`` read at ``position``, and the same probe on the control task.

    ``hold_out_words`` tests on words the probe never saw (a whole group's texts — dog and dogs — go to one side):
    the control task then has nothing to learn (chance), and the task shows whether the probe found a
    direction that carries to new words. ``features`` reuses the streams of an earlier probe of the same texts
    (its ``.features``) instead of running the model again.
    """
    m.require_family("A probe", "encoder", "decoder")
    if len(set(data.labels)) < 2:
        raise InputError("The texts need at least two different labels for a probe to tell apart.")
    whole_number(seed, "seed", minimum=0)
    if features is None:
        features = streams_at(m, data.texts, position)
    elif features.shape[0] != len(data.texts):
        raise InputError(f"features= holds {features.shape[0]} texts' streams; the data has {len(data.texts)} texts.")
    streams, features = features, features.numpy()
    labels, control = np.array(data.labels), np.array(control_labels(data.words, data.labels, seed))
    train, test = split(data.labels, test_share, seed, data.groups if hold_out_words else None)
    names = ["embeddings"] + [f"layer {i}" for i in range(features.shape[1] - 1)]
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    with threadpool_limits(1):  # a few hundred rows: a second BLAS thread only waits (5x slower on a busy machine)
        accuracy = [fit_accuracy(features[:, layer], labels, train, test, strength) for layer in range(len(names))]
        controls = [fit_accuracy(features[:, layer], control, train, test, strength) for layer in range(len(names))]
    chance = float(np.bincount(labels[test]).max() / len(test))
    return Probe(names, np.array(accuracy), np.array(controls), chance, train, test, data.label_names, streams)
