"""llminspect's site layer against nnsight, an independent interpretability library, on the embedded decoder.

``tests/nnsight_reference.py`` runs in its own process (importing nnsight changes torch globals) and computes,
with nnsight 0.8.1 only, on the same SmolLM2-135M model object ``li.load("decoder")`` gives:

(a) the block outputs of layers 0, 14 and 29 for "The capital of France is";
(b) activation patching: p(" Paris") on "The capital of Italy is" with the clean stream put back after block l at
    position p, for four (l, p), plus p_clean and p_corrupt;
(c) head ablation on "...too tired. What was too tired? The" -> " animal": heads 23.4 and 1.5 zeroed together,
    and head 1.5 set to its mean over the prompt's own positions;
(d) the logit lens: p(" Paris") at the last position read through the final norm and lm_head from the stream
    entering block 0 and after blocks 9, 19 and 29.

This test computes the same numbers with llminspect (``run``, ``patching``, ``ablation``, ``heads_off``,
``logit_lens``) and compares them at float32 tolerance (separate forward passes, some batched, so not
bit-identical): 1e-4 absolute on probabilities, 1e-4 relative on the block-output vectors.

Why nnsight is an independent reference: it shares nothing with llminspect but the transformers model and its
tokenizer. It tokenizes the prompts itself (checked against llminspect's token ids), reaches modules through its
own envoy tree and hooks, batches patching as separate invokes of one trace, and the lens calls the model's own
``norm`` and ``lm_head`` modules ad hoc. llminspect's site names (``layer.3.output``, ``layer.1.attention.heads``),
its batch-row tricks (one patch position per row, every lens layer as one row of the last block) and its
head-slice edits are all its own code; an off-by-one in a site, a wrong head slice, a row 0 of the lens that is
not the embeddings, or a mean over the wrong axis would show here. The numbers are also checked to be
non-trivial (patching at (5, 3) restores p(" Paris") above 0.5 from below 0.01; zeroing the heads cuts
p(" animal"); the lens goes from ~0 to the model's answer), so a test on garbage cannot pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
CAPITAL = "The capital of France is"
CORRUPT = "The capital of Italy is"
ANIMAL = "The animal didn't cross the street because it was too tired. What was too tired? The"
P_TOLERANCE = 1e-4  # absolute, on probabilities
VECTOR_TOLERANCE = 1e-4  # relative (norm of the difference / norm), per token vector


def reference(out: Path) -> dict:
    """The nnsight numbers, computed in a fresh process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(HERE / "nnsight_reference.py"), str(out)], cwd=HERE.parent, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"nnsight_reference.py failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(out.read_text())


@pytest.mark.slow
def test_llminspect_agrees_with_nnsight(decoder, tmp_path):
    ref = reference(tmp_path / "nnsight.json")
    assert ref["nnsight"] == "0.8.1"
    differences: dict[str, float] = {}

    def close(name: str, ours: float, theirs: float) -> None:
        differences[name] = abs(float(ours) - float(theirs))
        assert differences[name] <= P_TOLERANCE, f"{name}: llminspect {float(ours):.6g} vs nnsight {theirs:.6g}"

    # the same tokens went in
    for text, ids in ref["tokens"].items():
        assert decoder.tokenize(text).ids == ids, text

    # (a) block outputs: llminspect's layer.L.output sites against nnsight's layers[L].output
    names = [f"layer.{layer}.output" for layer in ref["blocks"]]
    cache = decoder.run(CAPITAL, keep=names)
    for layer, rows in ref["blocks"].items():
        theirs = torch.tensor(rows, dtype=torch.float32)
        ours = cache[f"layer.{layer}.output"]
        assert ours.shape == (1, *theirs.shape), (layer, tuple(ours.shape))
        relative = (ours[0].float() - theirs).norm(dim=-1) / theirs.norm(dim=-1)
        differences[f"block {layer} (relative)"] = float(relative.max())
        assert float(relative.max()) <= VECTOR_TOLERANCE, f"layer {layer} output: relative differences {relative}"
    blocks = [torch.tensor(rows) for rows in ref["blocks"].values()]
    assert float((blocks[0] - blocks[-1]).norm() / blocks[-1].norm()) > 0.5  # the layers really differ
    paris = decoder.tokenize(" Paris").ids[0]
    close("run p(Paris)", cache.logits[0, -1].double().softmax(-1)[paris], ref["p_clean_direct"])

    # (b) activation patching
    patch, theirs = decoder.patching(CAPITAL, CORRUPT, " Paris"), ref["patching"]
    close("patch p_clean", patch.p_clean, theirs["p_clean"])
    close("patch p_corrupt", patch.p_corrupt, theirs["p_corrupt"])
    patched = {}
    for layer, position, p in theirs["p_patched"]:
        close(f"patch ({layer},{position})", patch.p_patched[layer, position], p)
        patched[layer, position] = p
    assert theirs["p_clean"] > 0.7 and theirs["p_corrupt"] < 0.01
    assert patched[5, 3] > 0.5  # the clean "France" put back early restores the answer
    assert patched[29, 4] == pytest.approx(theirs["p_clean"], abs=1e-4)  # the whole last stream: the clean run
    assert patched[12, 0] == pytest.approx(theirs["p_corrupt"], abs=1e-6)  # "The" is the same in both prompts

    # (c) head ablation, zero and mean (ablation, and heads_off with the prompt as its own reference)
    theirs = ref["ablation"]
    zeroed = decoder.ablation(ANIMAL, " animal", heads=theirs["zero"]["heads"], how="zero")
    meaned = decoder.ablation(ANIMAL, " animal", heads=theirs["mean"]["heads"], how="mean")
    close("ablate p_before (zero)", zeroed.p_before, theirs["p_before"])
    close("ablate p_before (mean)", meaned.p_before, theirs["p_before"])
    close("zero ablation p_after", zeroed.p_after, theirs["zero"]["p_after"])
    close("mean ablation p_after", meaned.p_after, theirs["mean"]["p_after"])
    animal = decoder.tokenize(" animal").ids[0]
    with decoder.heads_off(theirs["mean"]["heads"], how="mean", reference=ANIMAL):
        logits = decoder.run(ANIMAL).logits
    close("heads_off(mean) p_after", logits[0, -1].double().softmax(-1)[animal], theirs["mean"]["p_after"])
    assert 0.05 < theirs["p_before"] < 0.2
    assert theirs["zero"]["p_after"] < 0.5 * theirs["p_before"]  # zeroing these heads costs " animal" most of its p
    assert abs(theirs["mean"]["p_after"] - theirs["p_before"]) < 0.03  # at its mean, head 1.5 barely matters
    assert abs(theirs["mean"]["p_after"] - theirs["zero"]["p_after"]) > 0.05  # ... so mean is not zero

    # (d) logit lens, last position
    lens = decoder.logit_lens(CAPITAL, answer=" Paris")
    assert lens.answer_prob.shape[0] == 31
    for row, p in ref["lens"].items():
        close(f"lens row {row}", lens.answer_prob[int(row), -1], p)
    assert ref["lens_last_row_vs_output"] < 1e-4  # nnsight's own lens row 30 is the model's output
    assert ref["lens"]["0"] < 1e-6 and ref["lens"]["30"] > 0.7

    print("largest differences, llminspect vs nnsight:", json.dumps(differences, indent=1))
