"""Every lesson runs top to bottom, offline, without an error output, and shows the numbers its prose states.

The outputs checked are those of the lesson's browser run (test_browser.py) when there was one this session,
else of a headless run made here: each lesson runs once.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import EXECUTED_LESSONS, LESSON_SECONDS
from nbclient import NotebookClient

from llminspect.analysis import attention as att
from llminspect.analysis import embeddings as emb

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# What each lesson's prose says, and the pattern its outputs must show for the prose to be true.
CLAIMS = {
    "00_start_here": [
        ("SmolLM2 puts 77 % on Paris", r"Paris\s+0\.77\d\d"),
    ],
    "00_whole_journey": [
        ("the same text with and without the cache", r"with the cache: +(\S.*?) without the cache: +\1 layer 0"),
        ("the cache grows one position a step", r"\(1, 3, 5, 64\), \(1, 3, 6, 64\), \(1, 3, 7, 64\)"),
        ("birdo looks at bird, gaja at happy", r"<s> bird \(1\.00\) birdo .*? birdo happy \(0\.7\d\) gaja"),
    ],
    "01_tokenization": [
        ("without healing, // gets only a few percent", r"// [1-9]\.\d%"),
        ("after backing up, :// takes nearly all the probability", r":// 9\d\.\d%"),
        ("Llama 3's 128,256 pieces", r"llama-3-8b 128,256"),
        ("the first merge joins h and e", r"\[\('h', 'e'\), \('e', 'r'\)"),
        ("readers falls into fewer pieces", r"0 merges r e a d e r s .*?200 merges read ers"),
        ("WordPiece: colour ##ing, color ##ization, rec ##olo ##ring; both BPEs: col ouring, ␣color ization, ␣recol "
         "oring", r"WordPiece \d+ tokens \[CLS\] colour ##ing , color ##ization , rec ##olo ##ring \[SEP\] "
         r"decoder · byte-level BPE \d+ tokens col ouring , ␣color ization , ␣recol oring "
         r"Whisper · GPT-2 BPE \d+ tokens .*?col ouring , ␣color ization , ␣recol oring"),
    ],
    "02_embeddings": [
        ("queen comes first, cosine about 0.7", r"king \+ woman - man .*?1 ␣queen 0\.7\d\d"),
        ("queen is 4th nearest to king, 0.62", r"4 ␣queen 0\.6[12]\d"),
        ("raw, kitten nearer truck (0.52) than cat (0.43)", r"raw: kitten–cat 0\.4[234] \| kitten–truck 0\.5[123]"),
        ("kitten and truck lean on the mean row far more than cat",
         r"mean row: cat 0\.[23]\d \| kitten 0\.[78]\d \| truck 0\.6\d"),
        ("centred, cat 0.13 and truck -0.05", r"centred: kitten–cat 0\.1[234] \| kitten–truck -0\.0[456]"),
        ("kitten's neighbours raw and centred: kittens, puppy, puppies, toddler, feline",
         r"(1 ␣kittens 0\.\d+ 2 ␣puppy 0\.\d+ 3 ␣puppies 0\.\d+ 4 ␣toddler 0\.\d+ 5 ␣feline .*?){2}"),
        ("mean pooling 8 of 12, CLS 6", r"mean: paraphrase first for 8 of 12 \| cls: paraphrase first for 6 of 12"),
    ],
    "03_attention": [
        ("its 9 query heads share 3 key/value heads", r"9 query heads read 3 key/value heads"),
        (
            "the decoder's row of 'it' is identical",
            r"head 13\.8: 'it' puts 0\.7\d on 'animal'; row identical for tired and wide: True",
        ),
        ("encoder head 3.1: 0.64 (tired) to 0.27 (wide)", r"3\.1 0\.6[34]\d 0\.2[67]\d"),
        ("3.1 moves on the animal only; 0.58 and 0.60 on the trophy", r"tired / wide 0\.6[34] → 0\.2[67] 3\.1: .*?"
         r"big / small 0\.5[78] → 0\.6[01] "),
        ("the decoder answers animal about 11 % either way", r"too tired: p\(animal\) 1[01]\.\d% p\(street\) 0\.\d% "
         r"top: ' answer' .*?too wide: p\(animal\) 1[01]\.\d% p\(street\) 0\.\d% top: ' answer'"),
        ("the receiver follows the names", r"John gives: p\(Mary\) 9\d\.\d% p\(John\) 0\.\d% "
         r".*?Mary gives: p\(Mary\) 0\.\d% p\(John\) [5-9]\d\.\d%"),
        ("zero: 1.5, 1.3, 29.1, 0.0 first; mean: 0.0, 29.1 first",
         r"0 1\.5 \(-0\.\d\d\) 0\.0 \(-0\.\d\d\) 1 1\.3 \(-0\.\d\d\) 29\.1 \(-0\.\d\d\) 2 29\.1 \(-0\.\d\d\) \S+ "
         r"\(-0\.\d\d\) 3 0\.0 \(-0\.\d\d\)"),
    ],
    "04_token_importance": [
        ("the decoder says Paris with probability 0.77", r"target Paris .*?f\(input\) = 0\.77\d"),
        ("The gets 0.61, France 0.03 from <|im_end|>", r"\(pad token\) +The \+0\.6[01] .*?␣France \+0\.0[23]"),
        ("from zeros capital 0.77, The 0.06", r"zeros +The \+0\.0[56] +␣capital \+0\.7[678]"),
        (
            "from <|endoftext|> capital 0.50, France 0.19",
            r"\(unk token\) The -0\.0\d +␣capital \+0\.[45]\d .*?␣France \+0\.1[89]",
        ),
        ("Paris all but vanishes after Italy", r"77\.\d% after France, 0\.0\d% after Italy"),
        ("France's own position through block 22", r"'␣France': its clean vector brings Paris back after blocks 0–22"),
        ("then the last token from block 23", r"'␣is': its clean vector brings Paris back after blocks 23–29"),
    ],
    "05_sampling": [
        ("make about 17 %, automate 16 %", r"make 1[67]\.\d% .*?automate 16\.\d%"),
        ("5.2 bits, 3.4 after temperature 0.7", r"model 5\.2\d 49,152 temperature 0\.7 3\.4\d 49,152"),
        (
            "generate's hidden top-k keeps 12, 13 without",
            r"top_k=50, top_p=0\.9.*?without the hidden top-k: 13 tokens kept .*?top-p 0\.9 2\.\d\d 12",
        ),
        ("the beam's whole text about 14 times likelier", r"greedy .*? -10\.0\d .*?beam search, 4 beams .*? -7\.4\d"),
        ("without the template the model ends the turn", r"no template +'<\|im_end\|>' 6\d%"),
        ("a French system prompt lifts La and Le", r"own system prompt .*?'La' 2\d% +'Le' 1\d%"),
    ],
    "06_layer_by_layer": [
        ("the model's 134.5M parameters", r"134\.5M params"),
        (
            "the lens's bottom row reads <filename> after France",
            r"bottom row: \['The', '␣capital', '␣of', '<filename>', '␣is'\]",
        ),
        (
            "thousands through layer 22, 396th after 23, first after 29",
            r"after layers 15, 22, 23, 29: \[2\d\d\d, 2\d\d\d, 39\d, 1\]",
        ),
        ("every opened step equals the model", r"(= .*?largest gap \d\.\de-0[5-9].*?){6}"),
        ("MLP 23 silenced: Paris 77 -> 73 %, Berlin 80 -> 71 %, Tokyo 70 -> 62 %; attention 23 silenced: 5-13 %",
         r"p\(Paris\): as it is 77% \| MLP 23 silenced 7[34]% \| attention 23 silenced (9|1[0-3])% \| MLP 29 "
         r"silenced \d+%.*?p\(Berlin\): as it is 80% \| MLP 23 silenced 7[01]% \| attention 23 silenced "
         r"([5-9]|1[0-3])% \| MLP 29 silenced \d+%.*?p\(Tokyo\): as it is 70% \| MLP 23 silenced 6[12]% \| "
         r"attention 23 silenced ([5-9]|1[0-3])%"),
    ],
    "07_model_anatomy": [
        ("Mixtral 46.7B, 12.9B active", r"Mixtral-8x7B .*? 46\.70B .*?12\.88B"),
        (
            "two thirds for full attention, 78-82 % with GQA",
            r"llama-2-7b: MLP 64 % \| llama-2-13b: MLP 65 % \| mistral-7b: MLP 78 % \| llama-2-70b: MLP 82 %",
        ),
        ("a window's reach grows 4,095 a layer", r"32 layers: 131,040 tokens back"),
    ],
    "08_precision": [
        (
            "the shipped Q4_1 blocks are the float32 weights, 5 bits",
            r"Q4_1 +540 KiB +5\.0 bits/weight +largest error 0 ",
        ),
        (
            "bfloat16 errs up to 3e-3, float16 5e-4",
            r"bfloat16 .*?largest error 0\.00[23]\d .*?float16 .*?largest error 0\.000[45]",
        ),
        ("Q4_0 errs 16 times Q8_0", r"Q8_0 .*?rms 0\.001\b.*?Q4_0 .*?rms 0\.01[5-7]"),
        (
            "float16 keeps every top token, Q4_0 about 58 %",
            r"float16 \d+ MiB 0\.000\d 100% .*?Q4_0 \d+ MiB 1\.\d+ 5\d%",
        ),
        ("the sink reaches 22,500", r"largest \|activation\|: 22,\d\d\d for 'The'"),
        ("others lose 83-97 % with one scale, about 3 % per token, 0.7-2 % with two dims kept",
         r"one scale 8\d\.\d%–9\d\.\d% per token 2\.\d%–3\.\d% per token, dims kept 0\.\d%–[12]\.\d%"),
        ("dimensions 507 and 247 reach about 125 and 109, the median 6.5",
         r"dimension 507 reaches 12\d, dimension 247 reaches 10\d; the median dimension 6\.[45]"),
    ],
    "09_circuits": [
        ("from about 14 to about 3", r"mean loss: first copy 14\.\d\d, second copy 3\.\d\d"),
        ("18.6, 17.3, 17.4 lead the induction scores", r"top induction heads: 18\.6 \(0\.8\d\), 17\.3 \(0\.7\d\), "
         r"17\.4 \(0\.[67]\d\)"),
        ("the previous-token heads sit earlier: 16.0, 11.1, 2.1",
         r"top previous-token heads: 16\.0 \(0\.9\d\), 11\.1 \(0\.8\d\), 2\.1 \(0\.7\d\)"),
        ("3.2 to 11.0 zeroed, 9.6 at their means", r"every head on: second copy 3\.1\d top 5 induction heads zero "
         r"1[01]\.\d\d mean 9\.[5-7]\d"),
        ("the previous-token heads off break copying as much",
         r"top 5 previous-token heads zero 11\.\d\d mean 1[01]\.\d\d"),
        ("each random set moves it by less than a nat", r"(random heads \d zero [234]\.\d\d mean [34]\.\d\d .*?){3}"),
        ("the shares add up to the difference, 7.31", r"logit difference 7\.31 = sum of the shares 7\.31 \(final norm: "
         r"RMSNorm, scale 25\.8 held fixed\)"),
        ("attention 23 +3.5, MLP 29 -2.1, MLP 24 adds", r"largest parts: attention 23 \+3\.4\d, MLP 29 -2\.1\d, MLP 24 "
         r"\+1\.8\d"),
        ("head 23.4 +3.0", r"largest heads: 23\.4 \+3\.0\d"),
        ("blocks 0-22 write +0.7 of 7.3", r"blocks 0–22 together: \+0\.7\d; blocks 23–29: \+6\.\d\d"),
        ("the lens is larger up to block 27, a little smaller after 28, equal at the last layer",
         r"after block 15: lens \+3\.\d\d = running sum \+0\.9\d .*?after block 28: lens \+\d\.\d\d = running sum "
         r"\+\d\.\d\d x 25\.8 / 2[6-9]\.\d after block 29: lens \+7\.31 = running sum \+7\.31 x 25\.8 / 25\.8"),
    ],
    "10_probes_and_steering": [
        ("the model's verb agrees every time",
         r"(subjects near the trees: the model's verb agrees for 12 of 12 .*?){2}"),
        ("chance at the embeddings, 0.92 after block 0, 1.00 from block 1", r"task: embeddings 0\.[34]\d layer 0 "
         r"0\.9\d layer 1 1\.00"),
        ("the control 0.83 after block 0, 0.97 at the last layer",
         r"control: embeddings 0\.[34]\d layer 0 0\.8\d .*? layer 29 0\.9[5-9]"),
        ("selectivity 0.01-0.03 in the last layers", r"selectivity: .*? layer 27 0\.0[0-3] layer 28 0\.0[0-3] "
         r"layer 29 0\.0[0-3]"),
        ("unseen nouns: at least 0.99 from layer 12, the control at chance or below",
         r"from layer 12 on the task is at least 0\.99; the control's mean is 0\.[2-5]\d"),
        ("blocks 10-15 steer on 15 or 16 of 16 prompts, random vectors lower the metric",
         r"layer 10: x4 \+0\.\d\d \(\d+/16 up\) x10 \+1\.[5-7]\d \(1[56]/16 up\) \| random vectors: [-+]0\.\d\d, "
         r"[-+]0\.\d\d, -0\.\d\d, -0\.\d\d layer 12: x4 \+1\.[4-6]\d \(1[56]/16 up\) x10 \+1\.[6-8]\d \(1[56]/16 "
         r"up\) \| random vectors: (-[01]\.\d\d,? ){4}layer 15: x4 \+1\.0\d \(1[56]/16 up\) x10 \+1\.1\d "
         r"\(1[56]/16 up\) \| random vectors: (-[01]\.\d\d,? ){4}"),
        ("block 4: a vector 3-4 times larger that does nothing useful, random pushes harm",
         r"layer 4: x4 -0\.\d\d \(\d/16 up\) x10 -0\.\d\d \(\d/16 up\) \| random vectors: (-[0-2]\.\d\d,? ){4}"),
        ("block 20: nothing moves much", r"layer 20: x4 -0\.\d\d \(\d+/16 up\) x10 -0\.\d\d \(\d+/16 up\) \| random "
         r"vectors: ([-+]0\.[01]\d,? ){4}"),
        ("at block 12 no random vector of six does better, at block 15 one does (+1.55 against +1.10)",
         r"layer 12: Love − Hate \+1\.[6-8]\d; six random vectors .*?; 0 of 6 do better layer 15: Love − Hate "
         r"\+1\.1\d; six random vectors \[[^]]*\b1\.5\d[^]]*\]; 1 of 6 do better"),
        ("2, 4, 5 and 5 features", r"S=0: 2, S=0\.7: 4, S=0\.9: 5, S=0\.97: 5"),
        ("a pentagon at S = 0.97", r"degrees between neighbouring features: \[7\d, 7\d, 7\d, 7\d, 7\d\]"),
        ("two opposite pairs at S = 0.7", r"(-1\.0\d.*?){4}"),
    ],
}


def shown_text(notebook) -> str:
    """Everything the executed lesson shows as text: streams, tables and pages without tags, figure titles."""
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            pieces.append(output.get("text", ""))
            data = output.get("data", {})
            pieces.append(re.sub(r"<[^>]+>", " ", data.get("text/html", "")))
            layout = data.get("application/vnd.plotly.v1+json", {}).get("layout", {})
            pieces.append(json.dumps(layout, ensure_ascii=False))
    return re.sub(r"\s+", " ", html.unescape(" ".join(pieces)))


def test_there_are_lessons():
    assert [p.name for p in NOTEBOOKS][:1] == ["00_start_here.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    notebook = executed(path, tmp_path, monkeypatch)
    unrun = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and cell.source.strip() and cell.execution_count is None]  # fmt: skip
    assert unrun == [], f"cells {unrun} never ran"
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr")
    ]
    assert errors == [], errors
    shown = shown_text(notebook)
    for claim, pattern in CLAIMS[path.stem]:
        assert re.search(pattern, shown), f"the prose says {claim!r}, but the lesson does not show it"
    if path.stem in HANDOUT_CHECKED:
        check_handout(notebook)
    if path.stem == "03_attention":  # its conclusion on its own prompt, as the lesson computed it
        found = lesson_03_strongest(shown)
        assert len(found["zero"]) == 6, found
        assert_the_receiver_heads(found, RECEIVERS[0][0])


HANDOUT_CHECKED = {"03_attention", "09_circuits", "10_probes_and_steering"}  # 07's export: test_cli


def check_handout(notebook) -> None:
    """The executed lesson as a handout page (``llminspect export`` without running it again): every figure
    drawn by the plotly.js the page carries once, the prose in order, nothing fetched from elsewhere."""
    from llminspect.teaching.handout import handout_page

    saved = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    inside = [model["state"].get("outputs", []) for model in saved.get("state", {}).values()]  # Output widgets'
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])] + sum(inside, [])
    figures = sum("application/vnd.plotly.v1+json" in output.get("data", {}) for output in outputs)
    page = handout_page(notebook)
    assert figures >= 4 and page.count("Plotly.newPlot(") == figures and page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc=", page) and not re.search(r"<link[^>]*\bhref=.https?:", page)
    headings = [line.lstrip("# ").replace("*", "").strip() for cell in notebook.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]  # fmt: skip
    shown, at = html.unescape(re.sub(r"<[^>]+>", "", page)), 0
    for heading in headings:  # every section, in the lesson's order
        at = shown.find(heading, at)
        assert at >= 0, heading


def executed(path, tmp_path, monkeypatch):
    """The lesson with its outputs: as the browser test ran it in JupyterLab, or else run here, headless.

    Each lesson runs once a session: test_browser.py, collected before this file, leaves its run in
    ``EXECUTED_LESSONS``. Without it (no Chromium, browser tests deselected, or a browser run that never
    finished) the lesson runs here with nbclient, offline, in a temporary HOME.
    """
    saved = EXECUTED_LESSONS.pop(path.stem, None)
    if saved is not None:  # the .ipynb text JupyterLab would have saved
        return nbformat.reads(saved, as_version=4)
    # The converted models live in the real user cache: find it *before* HOME moves, or every lesson
    # would convert the models again into a cache under the temporary HOME (~18 s each).
    from llminspect.models.registry import cache_root

    monkeypatch.setenv("LLMINSPECT_CACHE", str(cache_root()))
    for variable in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    LESSON_SECONDS.setdefault(path.stem, {})["headless"] = time.perf_counter() - start
    return notebook


# --- Conclusions that hold -------------------------------------------------------------------------
# Each causal or comparative conclusion a lesson states, checked under every method the lesson names, on
# the lesson's own example and at least two more of the kind written here.

TRIOS = [("kitten", "cat", "truck"), ("puppy", "dog", "car"), ("calf", "cow", "bus")]  # young, adult, unrelated


def test_lesson_02_centred_the_adult_is_nearer_on_every_trio_raw_not(decoder):
    table = emb.embedding_table(decoder).double()
    mean = table.mean(0)
    assert mean.norm() > 0.6 * table.norm(dim=1).mean()  # one direction every row shares
    for young, adult, other in TRIOS:
        _, raw = emb.word_vectors(decoder, [young, adult, other])
        _, centred = emb.word_vectors(decoder, [young, adult, other], centred=True)
        by_hand = torch.nn.functional.cosine_similarity(raw.double()[:1] - mean, raw.double()[1:] - mean)
        assert emb.cosine_matrix(centred)[0, 1:].tolist() == pytest.approx(by_hand.tolist(), abs=1e-5)
        assert by_hand[0] > by_hand[1] + 0.1, (young, by_hand)  # centred: the adult animal wins, every trio
    raw = emb.cosine_matrix(emb.word_vectors(decoder, ["kitten", "cat", "truck"])[1])[0]
    assert raw[2] > raw[1]  # raw, kitten leans toward truck: the flip the lesson teaches
    for centred in (False, True):  # kitten's neighbours are young creatures, raw or centred; cat is not among them
        found = [t.strip() for t in emb.nearest_tokens(decoder, "kitten", k=5, centred=centred).tokens]
        assert found == ["kittens", "puppy", "puppies", "toddler", "feline"]


PRONOUN_PAIRS = [  # (sentence, pronoun, first noun, its ending, the other noun's ending)
    ("The animal didn't cross the street because it was too {}", "it", "animal", "tired", "wide"),
    ("The trophy didn't fit in the suitcase because it was too {}", "it", "trophy", "big", "small"),
    ("The man couldn't lift his son because he was so {}", "he", "man", "weak", "heavy"),
    ("The city council refused the demonstrators a permit because they {} violence", "they", "council", "feared",
     "advocated"),
]  # fmt: skip


def test_lesson_03_encoder_head_3_1_follows_the_deciding_word_on_one_pair_only(encoder):
    for index, (sentence, pronoun, noun, first, second) in enumerate(PRONOUN_PAIRS):
        traces = [encoder.trace(sentence.format(end)) for end in (first, second)]
        weights = [att.link_weights(t.attentions, t.tokens, pronoun, noun) for t in traces]
        shift = (weights[0] - weights[1]).abs()
        if index == 0:
            assert shift[3, 1] > 0.3 and shift.flatten().argmax() == 3 * shift.shape[1] + 1
        else:  # on every other pair no head moves its weight by 0.05
            assert float(shift.max()) < 0.05, (noun, float(shift.max()))
        row = att.link_shift(encoder, sentence, pronoun, noun, (first, second), head=(3, 1))
        assert row["head 3.1"] == f"{float(weights[0][3, 1]):.2f} → {float(weights[1][3, 1]):.2f}"


QUESTIONS = [  # the four pronoun pairs asked as questions: (question, the two nouns as answers)
    ("The animal didn't cross the street because it was too {0}. What was too {0}? The", " animal", " street"),
    ("The trophy didn't fit in the suitcase because it was too {0}. What was too {0}? The", " trophy", " suit"),
    ("The man couldn't lift his son because he was so {0}. Who was so {0}? The", " man", " son"),
    ("The city council refused the demonstrators a permit because they {0} violence. Who {0} violence, the council "
     "or the demonstrators? The", " council", " demonstr"),
]  # " suit", " demonstr": the first tokens of suitcase and demonstrators


def test_lesson_03_the_decoder_does_not_resolve_the_pronoun(decoder):
    for (question, first, other), (*_, end_first, end_other) in zip(QUESTIONS, PRONOUN_PAIRS, strict=True):
        chances = [decoder.answer_probabilities(question.format(end), [first, other]) for end in (end_first, end_other)]
        for found in chances:  # the same noun wins whichever word decides: it copies, it does not resolve
            assert found[first] > found[other], (question, chances)
        assert abs(chances[0][first] - chances[1][first]) < 0.05


RECEIVERS = [  # (prompt with the giver left open, the two names): lesson 03's and two more of the kind
    ("When Mary and John went to the store, {} gave a drink to", "Mary", "John"),
    ("When Anna and Tom went to the park, {} gave a ball to", "Anna", "Tom"),
    ("After Sarah and David had lunch, {} handed the bill to", "Sarah", "David"),
]


def test_lesson_03_the_model_names_the_receiver_and_the_control_flips_it(decoder):
    for prompt, first, second in RECEIVERS:
        names = [" " + first, " " + second]
        to_first = decoder.answer_probabilities(prompt.format(second), names)
        to_second = decoder.answer_probabilities(prompt.format(first), names)
        assert to_first[names[0]] > 0.5 and to_first[names[1]] < 0.05
        assert to_second[names[1]] > 10 * to_second[names[0]]  # the control: swap the giver, the answer follows


def assert_the_receiver_heads(strongest: dict[str, list[tuple[int, int]]], prompt: str) -> None:
    """Lesson 03's conclusion on one prompt, from the six strongest heads under each method."""
    for how, heads in strongest.items():
        assert (29, 1) in heads[:3] and (0, 0) in heads, (prompt, how, heads)  # both methods agree on these
    assert (1, 5) in strongest["zero"], strongest  # layer 1 matters only when zeroed
    assert not [head for layer, head in strongest["mean"] if layer == 1], strongest


def lesson_03_strongest(shown: str) -> dict[str, list[tuple[int, int]]]:
    """The six strongest heads under each method, read from the table lesson 03 prints for its own prompt."""
    table = shown[shown.index("zero ablation mean ablation"):]
    rows = re.findall(r"\d (\d+)\.(\d+) \([-+]\d+\.\d\d\) (\d+)\.(\d+) \([-+]\d+\.\d\d\)", table)[:6]
    return {"zero": [(int(a), int(b)) for a, b, _, _ in rows], "mean": [(int(c), int(d)) for _, _, c, d in rows]}


@pytest.mark.slow  # four sweeps of 270 ablations (the lesson's own prompt: its own run, test_notebook_runs_offline)
def test_lesson_03_heads_under_zero_and_mean_ablation_on_two_more_prompts(decoder):
    for prompt, receiver, giver in RECEIVERS[1:]:
        strongest = {how: [(layer, head) for layer, head, _ in
                           decoder.head_effects(prompt.format(giver), " " + receiver, how=how).strongest(6)]
                     for how in ("zero", "mean")}  # fmt: skip
        assert_the_receiver_heads(strongest, prompt)


OUTLIER_TEXTS = ["The quick brown fox jumps over the lazy dog",  # lesson 08's, and two more
                 "The capital of France is Paris, and the capital of Italy is Rome.",
                 "Once upon a time, there was a little girl who lived in a village."]  # fmt: skip


def test_lesson_08_per_token_scales_fix_the_sink_and_two_dimensions_stand_out(decoder):
    for text in OUTLIER_TEXTS:
        for layer in (15, 20):
            found = decoder.activation_outliers(text, layer=layer)
            others = [i for i in range(len(found.tokens)) if i != found.outlier]
            assert found.outlier == 0 and found.largest[0] > 20_000  # the sink, on the first token
            assert min(found.error_all[i] for i in others) > 0.5  # one scale for the tensor ruins the others
            assert max(found.error_per_token) < 0.06  # one scale per token fixes a whole-token outlier
            assert all(found.error_dims_kept[i] < found.error_per_token[i] for i in others)
            median = sorted(found.dimension_largest)[len(found.dimension_largest) // 2]
            assert found.outlier_dims == [507, 247] and found.dimension_largest[507] > 10 * median


SINK_TEXTS = ["The capital of France is", "The quick brown fox jumps over the lazy dog",  # lessons 04's and 06's
              "The best thing about AI is its ability to"]  # fmt: skip


def test_lessons_00_and_04_most_heads_but_not_the_first_layers_park_on_the_first_token(decoder):
    for index, text in enumerate(SINK_TEXTS):
        attentions = decoder.trace(text).attentions  # [layers, heads, queries, keys]
        on_first = attentions[:, :, 1:, 0].mean(-1)  # each head's weight on token 0, averaged over queries >= 1
        share, first_layers = float((on_first > 0.5).float().mean()), on_first[:2].mean(1).tolist()
        assert share > 0.75 and max(first_layers) < 0.5, (text, share, first_layers)
        if index == 0:  # lesson 04's numbers: 228 of 270 heads; layers 0 and 1 average 0.42 and 0.31
            assert int((on_first > 0.5).sum()) == 228 and on_first.numel() == 270
            assert first_layers == pytest.approx([0.42, 0.31], abs=0.01)
    trip = decoder.journey(SINK_TEXTS[0])  # the whole journey's head 15.0: the last token on "The"
    assert next(s.numbers[0] for s in trip.stages if s.name == "attention") == pytest.approx(0.93, abs=0.005)


CAPITALS = [("France", " Paris"), ("Germany", " Berlin"), ("Japan", " Tokyo")]  # lessons 04 and 06's, two more


@pytest.mark.slow  # six integrated-gradients runs of 50 steps
def test_lesson_04_each_baseline_tells_its_own_story_on_two_more_capitals(decoder):
    for country, capital in CAPITALS[1:]:  # France's three stories are the lesson's own claims (CLAIMS above)
        prompt, first = f"The capital of {country} is", {}
        for baseline in ("pad", "unk", "zero"):
            found = decoder.importance(prompt, capital, baseline=baseline, internal_batch_size=50)
            order = found.scores[0].argsort(descending=True).tolist()
            first[baseline] = [found.sources[i].replace("␣", "") for i in order]
        assert first["pad"][0] == "The" and first["zero"][0] == "capital", (country, first)
        assert first["unk"][:2] == ["capital", country], (country, first)


def test_lesson_04_feature_ablation_ranks_is_first_then_the_country_and_capital(decoder):
    for country, capital in CAPITALS:
        found = decoder.importance(f"The capital of {country} is", capital, "feature_ablation")
        order = [found.sources[i].replace("␣", "") for i in found.scores[0].argsort(descending=True).tolist()]
        assert order[0] == "is" and set(order[1:3]) == {"capital", country}, (country, order)


@pytest.mark.slow  # three sweeps of 30 blocks x 5 positions
def test_lesson_04_patching_the_country_through_block_22_then_the_last_token(decoder):
    for country, capital in CAPITALS:
        found = decoder.patching(f"The capital of {country} is", "The capital of Italy is", capital)
        assert found.blocks_restoring(3) == list(range(23)), (country, found.blocks_restoring(3))
        assert found.blocks_restoring(4) == list(range(23, 30)), (country, found.blocks_restoring(4))


AI = "The best thing about AI is its ability to"  # lesson 05's prompt


def test_lesson_05_generate_samples_among_50_only_when_told_to_sample(decoder):
    from llminspect.analysis.sampling import Knobs

    assert not decoder.model.generation_config.do_sample  # without do_sample=True, generate is greedy
    knobs = Knobs.from_generate(decoder.model)  # do_sample=True and nothing else
    assert knobs.top_k == 50 and decoder.sampling(AI).stages(knobs)[-1].kept == 50


def test_lesson_06_the_lens_shows_each_capital_only_after_layer_23_and_on_top_after_29(decoder):
    for country, capital in CAPITALS:
        lens = decoder.logit_lens(f"The capital of {country} is", answer=capital)
        rank = [int(r) for r in lens.answer_rank[:, -1]]  # row 0: the embeddings, row L + 1: after layer L
        assert min(rank[:24]) > 1000, (country, rank)  # beyond 1,000th through layer 22
        assert rank[24] < rank[23] / 4, (country, rank)  # the jump after layer 23
        assert lens.first_layer_with_answer_on_top() == "layer 29" and rank[29] > 1, (country, rank)


def silence(added):
    return added * 0


def test_lesson_06_attention_23_carries_the_capital_its_mlp_hardly_and_mlp_0_breaks_every_prompt_tried(decoder):
    def p(prompt, answer, site=None):
        edit = {} if site is None else {site: silence}
        return float(decoder.run(prompt, edit=edit).logits[0, -1].softmax(-1)[decoder.tokenize(answer).ids[0]])

    for country, capital in CAPITALS:
        prompt = f"The capital of {country} is"
        sites = (None, "layer.23.mlp.output", "layer.23.attention.output", "layer.29.mlp.output", "layer.0.mlp.output")
        found = {site: p(prompt, capital, site) for site in sites}
        assert found["layer.23.mlp.output"] > 0.85 * found[None], (country, found)
        assert found["layer.23.attention.output"] < 0.15 and found["layer.29.mlp.output"] < 0.15, (country, found)
        assert found["layer.0.mlp.output"] < 0.01, (country, found)
    fox = "The quick brown fox jumps over the lazy"  # the control: MLP 0 silenced breaks an unrelated prompt too
    assert p(fox, " dog") > 0.8 and p(fox, " dog", "layer.0.mlp.output") < 0.01


@pytest.mark.slow  # two more random sequences, each one pass with attention maps and a batch of 10 ablations
def test_lesson_09_induction_heads_hold_on_other_seeds_under_both_ablations(decoder):
    for seed in (1, 2):  # lesson 09 uses seed 0
        found = decoder.induction(length=40, seed=seed)
        assert found.loss("second") < 0.4 * found.loss("first"), seed  # in-context learning on every repeat
        assert found.top_heads(3) == [(18, 6), (17, 3), (17, 4)] and float(found.induction[18, 6]) > 0.85
        previous = found.top_heads(1, "previous_token")[0]
        assert previous == (16, 0) and previous[0] < found.top_heads(1)[0][0]  # the feeding head sits earlier
        ablation = decoder.induction_ablation(found, n=5, controls=2, seed=seed)
        baseline = ablation.second_copy()
        for how in ("zero", "mean"):
            rise = {s.label: ablation.second_copy(s.label, how) - baseline for s in ablation.sets}
            assert rise["top 5 induction heads"] > 4 and rise["top 5 previous-token heads"] > 4, (seed, how, rise)
            randoms = [value for label, value in rise.items() if label.startswith("random")]
            assert len(randoms) == 2 and max(randoms) < 1.0, (seed, how, rise)  # the control moves it < 1 nat


ATTRIBUTED = [("The capital of France is", " Paris", " Rome"), ("The capital of Italy is", " Rome", " Paris"),
            ("The capital of Germany is", " Berlin", " Paris"), ("The capital of Spain is", " Madrid", " Paris")]


def test_lesson_09_direct_attribution_on_four_capitals(decoder):
    for prompt, answer, other in ATTRIBUTED:  # lesson 09's prompt and three more of the kind
        found = decoder.logit_attribution(prompt, answer, other)
        assert found.difference > 3 and found.total == pytest.approx(found.difference, abs=1e-3)
        assert int(found.attention.argmax()) == 23, prompt  # the block where lesson 04's patching sees Paris arrive
        assert "23.4" in [name for name, _ in found.largest(2, heads=True)], (prompt, found.largest(3, heads=True))
        assert float((found.attention + found.mlp)[23:].sum()) > 0.8 * found.difference  # the last blocks write it
        ratio = found.scale / found.scales
        torch.testing.assert_close(found.lens, found.running * ratio, atol=1e-3, rtol=1e-4)  # the lens, rescaled
        assert (ratio[:29] > 1).all() and 0.9 < ratio[29] < 1  # up to block 27 the lens magnifies; after 28 it shrinks


@pytest.mark.slow  # the streams of 240 texts once, then 372 fits
def test_lesson_10_the_probe_and_its_control_on_three_seeds(decoder):
    from llminspect.analysis.probes import number_sentences

    data, features = number_sentences(), None
    for seed in (0, 1, 2):  # other random splits and control labellings
        found = decoder.probe(data, seed=seed, features=features)
        features = found.features
        assert found.accuracy[0] < 0.6 and found.accuracy[2:].min() >= 0.95, (seed, found.accuracy)
        assert found.control[2:].min() >= 0.6 and found.control[-1] >= 0.85, (seed, found.control)  # it memorises
        assert found.selectivity.max() <= 0.35 and found.selectivity[-3:].mean() < 0.15, (seed, found.selectivity)
        held = decoder.probe(data, seed=seed, hold_out_words=True, features=features)
        assert held.accuracy[13:].min() >= 0.95 and held.control.mean() < 0.65, (seed, held.accuracy, held.control)


OTHER_PROMPTS = ["You are", "Last night was", "The concert was", "This room is", "Right now I feel", "The sky is",
                 "The students are", "Her new book is", "The town seems", "Living here is", "That plan was",
                 "My friends are", "The trip was", "His smile looks", "The restaurant was", "This song is"]  # fmt: skip


@pytest.mark.slow  # 16 other prompts x 4 layers x 7 vectors: one batched sweep
def test_lesson_10_steering_on_other_prompts_against_six_random_vectors(decoder):
    from llminspect.analysis.steering import NEGATIVE, POSITIVE

    # the lesson's own prompts get six random vectors at blocks 12 and 15 in the lesson (its claims); 16 others here
    sweep = decoder.steering(OTHER_PROMPTS, " Love", " Hate", (POSITIVE, NEGATIVE), layers=[4, 10, 12, 15],
                             coefficients=[10], controls=6, seed=1)  # fmt: skip
    shift = {layer: float(sweep.shift[i, 0]) for i, layer in enumerate(sweep.layers)}
    beaten = {layer: int((sweep.random_shift[i, 0] > shift[layer]).sum()) for i, layer in enumerate(sweep.layers)}
    assert shift[4] < 0.3, shift  # early: no steering
    for layer in (10, 12):  # the band where the direction matters: no random vector of its norm does as well
        assert shift[layer] > 0.5 and beaten[layer] == 0 and sweep.moved(layer, 10) >= 0.8, (layer, shift, beaten)
    assert shift[15] > 0.5 and sweep.moved(15, 10) >= 0.9  # block 15 moves nearly every prompt ...
    assert beaten[15] == 1, beaten  # ... but one random direction in six moves the metric more: the flip


@pytest.mark.slow  # three more toy trainings
def test_lesson_10_superposition_on_other_seeds():
    from llminspect.analysis.superposition import toy_superposition

    for seed in (1, 2, 3):  # lesson 10 trains seed 0
        toy = toy_superposition(sparsities=[0.0, 0.7, 0.9, 0.97], seed=seed)
        assert toy.represented().tolist() == [2, 4, 5, 5], seed
        norms, overlap = toy.norms(), toy.interference()
        assert (norms[0] > 0.5).nonzero().flatten().tolist() == [0, 1] and abs(float(overlap[0, 0, 1])) < 0.05
        kept = (norms[1] > 0.5).nonzero().flatten()
        pairs = overlap[1][kept][:, kept]
        assert (pairs.min(1).values < -0.95).all(), pairs  # S = 0.7: two features pointing opposite ways, twice
        angles = sorted(torch.atan2(toy.weights[3, 1], toy.weights[3, 0]).rad2deg().tolist())
        gaps = [b - a for a, b in zip(angles, angles[1:] + [angles[0] + 360], strict=True)]
        assert max(abs(gap - 72) for gap in gaps) < 6, gaps  # S = 0.97: a pentagon
