"""Predict, then reveal: short exercises at the end of each lesson, checked without showing the answer.

``exercises("06")`` lists a lesson's questions; ``quiz.check(1, guess)`` says right or not yet
(with a hint, never the answer); ``quiz.reveal(1)`` shows the answer and why. Answers that
depend on a model are computed from the model when first checked, so they stay true if a model
or a library changes.

Example:
    >>> quiz = exercises("03")
    >>> quiz.check(3, 4).verdict, quiz.check(3, 3).verdict
    ('right', 'not yet')
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from llminspect.analysis import embeddings
from llminspect.analysis.anatomy import anatomy, kv_cache_bytes, weight_bytes
from llminspect.analysis.sampling import Knobs
from llminspect.errors import LLMInspectError
from llminspect.inspector import load
from llminspect.teaching import exercises_circuits as circuits
from llminspect.teaching import progress
from llminspect.views.exercises import feedback, questions


@dataclass
class Exercise:
    question: str
    answer: Callable[[], object]  # computed on first use
    why: str
    hint: str
    choices: list[str] = field(default_factory=list)  # multiple choice: the answer is a letter
    tolerance: float | None = None  # numbers: how far a guess may be (default: within 2 %)
    accept: tuple[str, ...] = ()  # other ways to write a right text answer ("LM head" for "lm_head")
    _value: object = None

    def value(self) -> object:
        if self._value is None:
            self._value = self.answer()
        return self._value

    def matches(self, guess) -> bool:
        expected = self.value()
        if isinstance(expected, bool) or isinstance(guess, bool):
            return str(guess).strip().lower() in {str(expected).lower(), {True: "yes", False: "no"}[bool(expected)]}
        if isinstance(expected, (int, float)):
            number = _number(guess)
            if number is None:
                return False
            if self.tolerance is not None:
                return abs(number - float(expected)) <= self.tolerance
            return math.isclose(number, float(expected), rel_tol=0.02, abs_tol=1e-9)
        return _normal(guess) in {_normal(expected), *(_normal(a) for a in self.accept)}


def _number(guess) -> float | None:
    """A guess as a number: 28, "28", "layer 28", "3.4 bits", "12,000" all count."""
    if isinstance(guess, (int, float)):
        return float(guess)
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", str(guess))
    return float(found.group().replace(",", "")) if found else None


def _normal(text) -> str:
    text = str(text).strip().strip("'\"").strip().lower().rstrip(")").lstrip("(")
    return re.sub(r"[\s_]+", " ", text).removeprefix("the ").strip()


@dataclass
class Feedback:
    """What ``check`` or ``reveal`` says; displays itself (``views.exercises``)."""

    verdict: str  # "right", "not yet", "no answer", "answer"
    text: str

    def _repr_html_(self) -> str:
        return feedback(self)


class Quiz:
    """A lesson's exercises; displays its questions in JupyterLab (``views.exercises``)."""

    def __init__(self, lesson: str, items: list[Exercise]) -> None:
        self.lesson, self.items = lesson, items

    def _item(self, number: int) -> Exercise:
        if not 1 <= number <= len(self.items):
            raise LLMInspectError(f"Lesson {self.lesson} has exercises 1 to {len(self.items)}; there is no {number}.")
        return self.items[number - 1]

    def _repr_html_(self) -> str:
        return questions(self)

    def check(self, number: int, guess) -> Feedback:
        """Right or not yet (with a hint); never shows the answer."""
        item = self._item(number)
        if guess is None:
            said = Feedback("no answer", f"Exercise {number}: replace None with your prediction. {item.question}")
        elif item.matches(guess):
            said = Feedback("right", f"✔ Exercise {number}: right. quiz.reveal({number}) says why.")
        else:
            said = Feedback("not yet", f"✘ Exercise {number}: not yet. Hint: {item.hint}")
        progress.record(self.lesson, number, "predict", said.verdict)
        return said

    def reveal(self, number: int) -> Feedback:
        """The answer and the reason."""
        item = self._item(number)
        return Feedback("answer", f"Answer {number}: {item.value()} — {item.why}")


@functools.lru_cache(maxsize=4)
def _model(name: str):
    """An embedded model for computing answers, loaded once per kernel (a check never waits for a reload)."""
    return load(name, device="cpu")


IT_SENTENCE = "The animal didn't cross the street because it was too {}"
RECEIVER_PROMPT = "When Mary and John went to the store, John gave a drink to"


def _lesson_00() -> list[Exercise]:
    def vocabulary_numbers() -> int:
        trip = _model("decoder").journey("The capital of France is")
        shape = next(stage.shape for stage in trip.stages if stage.name == "vocabulary")
        return shape[0] * shape[1]

    def cached_positions() -> int:
        return _model("decoder").kv_cache("The capital of France is", steps=4).key_shapes[3][-2]

    return [
        Exercise("How many numbers does the vocabulary stage hold for the 5 tokens of 'The capital of France is'?",
                 vocabulary_numbers, "one score for each of the 49,152 vocabulary tokens at each of the 5 positions; "
                 "only the last position's row chooses the next token.", "positions × vocabulary size."),
        Exercise("After reading the 5-token prompt and 3 written tokens, how many positions does each layer's "
                 "key/value cache hold?", cached_positions,
                 "every token read so far — 5 + 3 — keeps its key and value; the next token is read against them.",
                 "one position per token the model has read."),
        Exercise("Does the text written with the key/value cache differ from the text written without it?",
                 lambda: not _model("decoder").kv_cache("The capital of France is", steps=20).same_tokens,
                 "no: the cache keeps keys and values that would be computed again anyway; only the time changes.",
                 "what would change in a token's key if the model read the text again?"),
    ]  # fmt: skip


def _lesson_01() -> list[Exercise]:
    def without_specials(name: str, text: str) -> int:
        return sum(not special for special in _model(name).tokenize(text).special)

    return [
        Exercise("How many tokens does the encoder (WordPiece) make of \"The child's coloring book.\", "
                 "its [CLS] and [SEP] included?", lambda: len(_model("encoder").tokenize("The child's coloring book.")),
                 "WordPiece cuts off the apostrophe, the s and the full stop; the encoder adds [CLS] and [SEP].",
                 "count the chips of the encoder's row, dashed special tokens too."),
        Exercise("How many tokens does the decoder (SmolLM2) split ' unbelievably' into?",
                 lambda: without_specials("decoder", " unbelievably"),
                 "byte-level BPE keeps frequent words whole and cuts rarer ones into a few frequent pieces.",
                 "try decoder.tokenize(' unbelievably') after predicting; count the chips."),
        Exercise("The parrot 🦜 is 4 bytes in UTF-8. How many tokens does the decoder make of it?",
                 lambda: without_specials("decoder", "🦜"),
                 "SmolLM2 has no token for the whole emoji; its vocabulary holds a piece of its first bytes, so "
                 "fewer tokens than bytes. Whisper's GPT-2 BPE also falls back to pieces of bytes.",
                 "look at the orange-bordered chips: each shows the bytes it holds."),
    ]  # fmt: skip


def _lesson_02() -> list[Exercise]:
    def nearer_to_kitten() -> str:
        _, vectors = embeddings.word_vectors(_model("decoder"), ["kitten", "cat", "truck"], centred=True)
        cosines = embeddings.cosine_matrix(vectors)[0]
        return "cat" if cosines[1] > cosines[2] else "truck"

    def queen_rank() -> int:
        found = embeddings.nearest_tokens(_model("decoder"), "king", k=20)
        return [t.strip().lower() for t in found.tokens].index("queen") + 1

    return [
        Exercise("With the decoder's embedding table centred (its mean row subtracted from every row), which is "
                 "nearer to ' kitten' (cosine): ' cat' or ' truck'?", nearer_to_kitten,
                 "centred, kitten–cat 0.13 and kitten–truck −0.05. Raw cosines said truck (0.52 vs 0.43) because "
                 "kitten and truck both lean on the direction every row shares; without it, cat is nearer.",
                 "centring removes what all tokens share: which of the two has more left in common with kitten?"),
        Exercise("Among the decoder's nearest tokens to ' king' (itself left out), at which rank is ' queen'?",
                 queen_rank, "spellings of king come first (' King', 'King', ' kings'); queen follows — before "
                 "any arithmetic.", "read the neighbours table of king."),
    ]  # fmt: skip


def _lesson_03() -> list[Exercise]:
    def same_row() -> bool:
        from llminspect.analysis.tokens import word_positions

        m = _model("decoder")
        tired, wide = (m.trace(IT_SENTENCE.format(end)) for end in ("tired", "wide"))
        it = word_positions(tired.tokens, "it")
        return bool(torch.equal(tired.attentions[13, 8, it], wide.attentions[13, 8, it]))

    def still_strong_under_mean() -> bool:
        effects = _model("decoder").head_effects(RECEIVER_PROMPT, " Mary", how="mean")
        return (1, 5) in [(layer, head) for layer, head, _ in effects.strongest(5)]

    return [
        Exercise("In the decoder, is the attention row of 'it' in head 13.8 the same for '…it was too tired' and "
                 "'…it was too wide'?", same_row,
                 "a decoder reads left to right: when it reads 'it', 'tired' and 'wide' have not come yet, so "
                 "nothing before 'it' differs and its row cannot differ.", "which words can 'it' see in a decoder?"),
        Exercise("Head 1.5 is the strongest head under zero ablation for the receiver prompt (' Mary'). Is it still "
                 "among the five strongest under mean ablation?", still_strong_under_mean,
                 "no: under mean ablation no layer-1 head is in the top five. Zeroing 1.5 removes its average output, "
                 "which later layers need whatever the names are; its mean keeps that, and what is left carries "
                 "nothing about which name.", "compare the two tables of strongest heads."),
        Exercise("With a sliding window of 4, how many keys does query 10 attend to?", lambda: 4,
                 "a window of w keeps keys i − w < j ≤ i: exactly w keys once i ≥ w − 1.",
                 "count the dark squares of row 10 in the sliding-window mask."),
    ]  # fmt: skip


def _lesson_04() -> list[Exercise]:
    def top_with_zero_baseline() -> str:
        result = _model("decoder").importance("The capital of France is", " Paris", baseline="zero")
        return result.sources[int(result.scores[0].argmax())].replace("␣", "").strip()

    def paris_after_italy() -> float:
        m = _model("decoder")
        probabilities = m.sampling("The capital of Italy is").stages(Knobs())[0].probabilities
        return round(100 * float(probabilities[m.tokenizer(" Paris").input_ids[0]]), 2)

    return [
        Exercise("With a zero baseline instead of the pad token, which token does integrated gradients rank first "
                 "for ' Paris'?", top_with_zero_baseline,
                 "the baseline is part of the question: from all-zero vectors, 'capital' carries most of the rise; "
                 "from '<|im_end|>' tokens, the first token does.", "run decoder.importance(..., baseline='zero')."),
        Exercise("After 'The capital of Italy is', what is p(' Paris'), in percent? (within 1 point)",
                 paris_after_italy, "change France to Italy and Paris all but vanishes: the plainest counterfactual.",
                 "it was 77 % after France.", tolerance=1.0),
    ]  # fmt: skip


AI = "The best thing about AI is its ability to"


def _lesson_05() -> list[Exercise]:
    def entropy_at(temperature: float) -> float:
        return round(_model("decoder").sampling(AI).stages(Knobs(temperature=temperature))[-1].entropy, 2)

    def generate_keeps() -> int:
        m = _model("decoder")
        return m.sampling(AI).stages(Knobs.from_generate(m.model, temperature=0.7, top_p=0.9))[-1].kept

    def beam_wins() -> bool:
        greedy, beam = _model("decoder").greedy_and_beam(AI, steps=8, beams=4)
        return beam.total > greedy.total

    return [
        Exercise("The model's next-token entropy after the prompt is 5.2 bits. After temperature 0.7 alone, how many "
                 "bits? (within 0.5)", lambda: entropy_at(0.7),
                 "dividing the scores by 0.7 sharpens the distribution: the likely tokens gain, the long tail loses.",
                 "below 1 sharpens, above 1 flattens.", tolerance=0.5),
        Exercise("generate(do_sample=True, temperature=0.7, top_p=0.9): how many tokens can it still draw?",
                 generate_keeps, "transformers adds top_k=50 unless told otherwise, then top-p keeps the smallest set "
                 "reaching 0.9 — 12 here, where the same knobs without the hidden top-k keep 13.",
                 "Knobs.from_generate(decoder.model, temperature=0.7, top_p=0.9) shows every knob generate uses."),
        Exercise("Over 8 tokens, does beam search (4 beams) find a likelier continuation than greedy decoding?",
                 beam_wins, "greedy takes the best next token; beam search keeps 4 partial texts and can pass a "
                 "weaker token to reach a likelier whole.", "compare the totals of decoder.greedy_and_beam(...)."),
    ]  # fmt: skip


def _lesson_06() -> list[Exercise]:
    def first_layer_with_paris() -> int:
        lens = _model("decoder").logit_lens("The Eiffel Tower is in the city of", answer=" Paris")
        found = lens.first_layer_with_answer_on_top()
        return int(found.split()[-1]) if found else -1

    def rank_band_at_layer_15() -> str:
        lens = _model("decoder").logit_lens("The capital of France is", answer=" Paris")
        rank = int(lens.answer_rank[lens.layers.index("layer 15"), -1])
        return "a" if rank <= 10 else "b" if rank <= 100 else "c" if rank <= 1000 else "d"

    return [
        Exercise("Which step of the by-hand walk outputs the most numbers?",
                 lambda: max(_model("decoder").walk("The quick brown fox", how="by hand"),
                             key=lambda s: s.output.numel()).name,
                 "the LM head scores every one of the 49,152 vocabulary entries at every position.",
                 "which step's output has a vocabulary-sized dimension?", accept=("LM head", "the LM head", "head")),
        Exercise("Through the logit lens, where does ' Paris' rank after 'The capital of France is' at layer 15?",
                 rank_band_at_layer_15, "halfway up, the lens does not see Paris at all: this small model commits "
                 "in its last few layers.", "read the answer-rank chart at layer 15.",
                 ["a) top 10", "b) 11 to 100", "c) 101 to 1,000", "d) beyond 1,000"]),
        Exercise("For 'The Eiffel Tower is in the city of', from which layer on is ' Paris' the lens's top token?",
                 first_layer_with_paris, "small models commit late: the answer surfaces only in the last layers.",
                 "run decoder.logit_lens(text, answer=' Paris') and read the rank chart.", tolerance=0),
    ]  # fmt: skip


def _lesson_07() -> list[Exercise]:
    def gpus_for_llama_3_70b() -> int:
        a = anatomy("llama-3-70b")
        return math.ceil((weight_bytes(a, "int4") + kv_cache_bytes(a, 8192)) / (24 * 2**30 * 0.9))

    def mlp_share(name: str) -> float:
        a = anatomy(name)
        return round(100 * a.parts["MLP"] / a.total, 1)

    return [
        Exercise("What share of Mistral-7B's parameters sit in its MLPs, in percent? (within 5 points)",
                 lambda: mlp_share("mistral-7b"), "grouped-query attention shrinks k and v to a quarter, and the MLP "
                 "is 14,336 wide: about 78 %, where Llama-2-7B (full attention) has 64 %.",
                 "parameters.parts['MLP'] / total; the parameters chart shows it.", tolerance=5.0),
        Exercise("Llama-3-8B has the same blocks as Mistral-7B. Why is it 0.8B bigger?", lambda: "b",
                 "its vocabulary grew from 32,000 to 128,256 tokens: 4x the embedding matrix and LM head.",
                 "compare models['llama-3-8b'].parts with models['mistral-7b'].parts.",
                 ["a) more layers", "b) a bigger vocabulary (embeddings and head)", "c) experts"]),
        Exercise("How many 24 GiB GPUs (10 % kept free) would Llama-3-70B need in int4 with 8,192 tokens of cache?",
                 gpus_for_llama_3_70b, "33 GiB of int4 weights plus 2.5 GiB of cache, over GPUs with 21.6 GiB usable.",
                 "weight_bytes(a, 'int4') + kv_cache_bytes(a, 8192), divided by 0.9 x 24 GiB, rounded up."),
    ]  # fmt: skip


def _lesson_08() -> list[Exercise]:
    def shipped_bits() -> float:
        from llminspect.analysis.precision import shipped_matrix
        from llminspect.models.registry import EMBEDDED, source_path

        _, values, size = shipped_matrix(source_path(EMBEDDED["decoder"]), "blk.3.ffn_down.weight")
        return round(8 * size / values.numel(), 2)

    def bfloat16_agreement() -> float:
        texts = ["The capital of France is", "The quick brown fox jumps over the lazy dog",
                 "The best thing about AI is its ability to", "Once upon a time, there was a"]  # fmt: skip
        found = {e.name: e for e in _model("decoder").precisions(texts)}
        return round(100 * found["bfloat16"].agreement, 1)

    def outliers() -> object:
        return _model("decoder").activation_outliers("The quick brown fox jumps over the lazy dog", layer=15)

    def others_lose_half() -> bool:
        result = outliers()
        return min(e for i, e in enumerate(result.error_all) if i != result.outlier) > 0.5

    def top_dimension_times_median() -> float:
        largest = sorted(outliers().dimension_largest)
        return round(largest[-1] / largest[len(largest) // 2], 1)

    return [
        Exercise("Q4_1 stores 32 weights in 16 bytes of 4-bit numbers plus two float16 numbers. Bits per weight?",
                 shipped_bits, "(16 + 2 + 2) bytes × 8 / 32 weights = 5 bits: the scale and minimum cost one bit each.",
                 "count the bytes of one block, then divide its bits by 32."),
        Exercise("With every block matrix in bfloat16, what share of positions keep float32's top token, in percent? "
                 "(within 5 points)", bfloat16_agreement,
                 "bfloat16 rounds to 8 bits of mantissa: the top token changes only where two tokens were nearly "
                 "tied.", "bfloat16 errs by a few thousandths per weight.", tolerance=5.0),
        Exercise("After layer 15, one 8-bit scale for the whole tensor: do the tokens other than the sink lose more "
                 "than half of their vector?", others_lose_half,
                 "the scale is set by a value of about 22,000, so a grid step is about 177 and most of their numbers "
                 "round to 0.", "compare a grid step (largest / 127) with the other tokens' largest values."),
        Exercise("After layer 15, on the tokens but the sink: how many times the median dimension's largest |value| "
                 "does the top dimension reach? (within 4)", top_dimension_times_median,
                 "dimension 507 reaches about 125 and the median dimension 6.5: about 19 times. A per-token scale is "
                 "set by it, so the other numbers of every token get a coarse grid.",
                 "read the tallest bar and the median in the title, then divide.", tolerance=4.0),
    ]  # fmt: skip


LESSONS = {"00": _lesson_00, "01": _lesson_01, "02": _lesson_02, "03": _lesson_03, "04": _lesson_04, "05": _lesson_05,
           "06": _lesson_06, "07": _lesson_07, "08": _lesson_08,
           "09": lambda: [Exercise(**entry) for entry in circuits.lesson_09(_model)],
           "10": lambda: [Exercise(**entry) for entry in circuits.lesson_10(_model)]}  # fmt: skip


def exercises(lesson: str) -> Quiz:
    """The exercises of lesson ``lesson`` ("00" … "10"; "00" is the whole journey)."""
    if lesson not in LESSONS:
        raise LLMInspectError(f"No exercises for lesson {lesson!r}; lessons with exercises: {', '.join(LESSONS)}.")
    return Quiz(lesson, LESSONS[lesson]())
