"""Sentence / pair task fine-tuning (RE, NLI, STS) through the real CLI on the synthetic
samples; evaluate's numbers recomputed independently with sklearn / scipy; (slow) ChemProt and
BIOSSES from ../shared/data."""

import json
import os
import time

import numpy as np
import pytest

from gatortron_jax.cli import main as cli
from gatortron_jax.models.config import EncoderConfig

from cli_run import run_cli
from tiny_models import TINY

TINY_ARGS = ["--gin.TaskDataConfig.max_length=64", "--gin.TaskTrainConfig.num_epochs=2",
             "--gin.TaskTrainConfig.batch_size=8", "--gin.TaskTrainConfig.max_steps_per_epoch=3"]
BAD_LINE = "123.T1.T2\t@CHEMICAL$ binds @GENE$.\tCPR:99\n"  # a label ChemProt does not have


@pytest.fixture
def pretrained(tiny_pretrained):
    return tiny_pretrained


@pytest.fixture
def vocab(repo_root) -> str:
    return str(repo_root / "data/sample_vocab/spm.model")


@pytest.fixture
def bad_chemprot_dir(repo_root, tmp_path):
    """The ChemProt-style sample with one bad example appended to dev.tsv (line 14)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    src = repo_root / "data/task_samples/chemprot_style"
    for split in ("train", "dev", "test"):
        (bad / f"{split}.tsv").write_text((src / f"{split}.tsv").read_text())
    with open(bad / "dev.tsv", "a") as f:
        f.write(BAD_LINE)
    return bad


def _cli_finetune(repo_root, gin_file: str, init, out, *extra: str, caplog=None) -> dict:
    """``finetune`` through the CLI; the model dir's config.json, with what the run logged under ``_log``.

    In this process (``cli.main``, the same parser and code as the console script, without an
    interpreter and TensorFlow start-up per run) when ``caplog`` is given, else as a subprocess.
    The console script itself is run by test_finetune_ner's end-to-end test.
    """
    argv = ["finetune", f"--gin_file={gin_file}", f"--init_checkpoint={init}", f"--model_dir={out}", *extra]
    if caplog is None:
        r = run_cli(repo_root, *argv)
        assert r.returncode == 0, r.stderr[-3000:]
        log = r.stderr
    else:
        caplog.clear()
        with caplog.at_level("INFO"):
            assert cli.main(argv) == 0, caplog.text[-3000:]
        log = caplog.text
    cfg = json.loads((out / "config.json").read_text())
    cfg["_log"] = log
    return cfg


def _evaluate(out, json_path, *extra: str) -> dict:
    assert cli.main(["evaluate", f"--checkpoint={out}", f"--output={json_path}", *extra]) == 0
    return json.loads(json_path.read_text())


def test_encode_pairs_truncates_longer_side_and_counts(repo_root):
    from gatortron_jax.finetuning.task_registry import TaskExample
    from gatortron_jax.text.vocab import load_vocabulary
    from gatortron_jax.text.offsets import OffsetTokenizer
    from gatortron_jax.finetuning.adapters.sequence import encode_examples

    tok = OffsetTokenizer(load_vocabulary(str(repo_root / "data/sample_vocab/spm.model")))
    long = " ".join(["metformin"] * 40)
    exs = [TaskExample("short", "fever today", "no fever", "a"),
           TaskExample("long", long, "no fever", "b"),
           TaskExample("re", long + " then [E1] x [/E1] and [E2] y [/E2] end", None, "a",
                       markers=(len(long) + 6, len(long) + 23))]
    feats, stats = encode_examples(exs, tok, 24, {"a": 0, "b": 1})
    assert stats["truncated"] == 2 and stats["truncated_ids"] == ["long", "re"] and stats["tokens_cut"] > 0
    b_len = len(tok("no fever")[0])
    row = feats["input_ids"][1]
    assert row[0] == tok.cls_id and (row == tok.sep_id).sum() == 2
    assert feats["token_type_ids"][1].sum() == b_len + 1  # b kept whole; a (the longer) was cut
    assert feats["segment_ids"][1].sum() == 24 and feats["segment_ids"][0].sum() < 24
    # RE: the window moved so both markers survive; positions point at the "[" of [E1] / [E2]
    for k in range(2):
        pos = feats["marker_positions"][2, k]
        assert 0 < pos < 23
    ids_e1 = tok("[E1]")[0]
    assert feats["input_ids"][2, feats["marker_positions"][2, 0]] == ids_e1[0]
    assert feats["labels"].tolist() == [0, 1, 0]


def test_cli_chemprot_sample_classification(repo_root, pretrained, tmp_path, monkeypatch, caplog):
    """finetune → evaluate → predict on the ChemProt-style sample; micro-F1 (false excluded)
    recomputed with sklearn from the evaluate JSON's predictions."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    monkeypatch.chdir(repo_root)
    out = tmp_path / "re"
    cfg = _cli_finetune(repo_root, "gin/finetune/sample_re.gin", pretrained, out, *TINY_ARGS, caplog=caplog)
    assert "encoder initialised from" in cfg["_log"] and "dev micro_f1" in cfg["_log"]
    sec = cfg["sequence_task"]
    assert sec["task"] == "chemprot_re" and sec["representation"] == "entity_start" and "false" in sec["labels"]
    assert cfg["result"]["best_epoch"] >= 1 and os.listdir(out / "checkpoints")
    assert cfg["data"]["encoding"]["train"]["examples"] == 36

    ev = _evaluate(out, tmp_path / "eval.json")
    gold = [p["gold"] for p in ev["predictions"]]
    pred = [p["pred"] for p in ev["predictions"]]
    assert ev["examples"] == len(gold) == 12 and set(pred) <= set(sec["labels"])
    positives = [l for l in sec["labels"] if l != "false"]
    p, rc, f, _ = precision_recall_fscore_support(gold, pred, labels=positives, average="micro", zero_division=0)
    assert ev["scores"]["micro"]["f1"] == pytest.approx(f, abs=1e-9)
    assert ev["scores"]["micro"]["precision"] == pytest.approx(p, abs=1e-9)
    assert ev["value"] == pytest.approx(f, abs=1e-9)
    assert ev["scores"]["accuracy"] == pytest.approx(accuracy_score(gold, pred))

    pred_dir = tmp_path / "pred"
    assert cli.main(["predict", f"--checkpoint={out}", "--input",
                     str(repo_root / "data/task_samples/chemprot_style/test.tsv"), "--output", str(pred_dir)]) == 0
    lines = [json.loads(x) for x in (pred_dir / "predictions.jsonl").read_text().splitlines()]
    assert [x["prediction"] for x in lines] == pred  # same model, same inputs, same labels


# Slow: STS through the CLI is also test_benchmark.py's BIOSSES flow (finetune + evaluate, default
# run), and the regression head is test_task_heads.py's.
@pytest.mark.slow
def test_cli_sts_sample_regression(repo_root, pretrained, tmp_path, monkeypatch, caplog):
    """Regression head on the clinical-STS sample; Pearson r checked against scipy."""
    from scipy.stats import pearsonr

    monkeypatch.chdir(repo_root)
    out = tmp_path / "sts"
    cfg = _cli_finetune(repo_root, "gin/finetune/sample_sts.gin", pretrained, out, *TINY_ARGS, caplog=caplog)
    assert cfg["sequence_task"]["kind"] == "regression" and cfg["sequence_task"]["labels"] is None
    ev = _evaluate(out, tmp_path / "eval.json", "--split=dev")
    gold = np.array([p["gold"] for p in ev["predictions"]])
    pred = np.array([p["pred"] for p in ev["predictions"]])
    assert ev["metric"] == "pearson" and len(gold) == 12 and np.ptp(pred) > 0
    assert ev["value"] == pytest.approx(pearsonr(gold, pred)[0], abs=1e-6)
    assert ev["scores"]["mse"] == pytest.approx(float(np.mean((gold - pred) ** 2)), rel=1e-6)
    # evaluate reproduces the dev score recorded at the best epoch during fine-tuning; the MSE
    # too, so the saved head predicts on the original scale (trained on standardised targets)
    assert ev["value"] == pytest.approx(cfg["result"]["best_dev_metric"], abs=1e-4)
    scale = cfg["sequence_task"]["target_scale"]
    assert scale["std"] > 0.1 and ev["scores"]["mse"] == pytest.approx(cfg["result"]["dev_scores"]["mse"], rel=1e-3)
    assert abs(float(np.mean(pred)) - scale["mean"]) < 3 * scale["std"]


def test_n2c2_2018_re_brat_fresh_encoder_in_process(repo_root, tmp_path, capsys):
    """brat relations: candidates with markers, fresh encoder from gin, predictions written back
    as brat R lines; candidate micro-F1 (``none`` excluded) checked against sklearn; export-hf
    refuses the entity-start head."""
    from sklearn.metrics import f1_score

    from gatortron_jax.annotations.formats.brat import read_brat_dir
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.inference.evaluate import evaluate_task
    from gatortron_jax.inference.tasks import predict_task
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.finetuning.config import TaskDataConfig, TaskTrainConfig

    data = TaskDataConfig(task="n2c2_2018_re", vocab_path=str(repo_root / "data/sample_vocab/spm.model"),
                          max_length=64, negative_ratio=1.0, max_train_examples=64)
    train = TaskTrainConfig(num_epochs=1, batch_size=16, eval_batch_size=32, max_steps_per_epoch=2,
                            representation="entity_start")
    out = tmp_path / "re"
    result = finetune(str(out), data, train, OptimizerConfig(learning_rate=1e-3),
                                          model_config=TINY)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["sequence_task"]["labels"][0] != "none" or "none" in cfg["sequence_task"]["labels"]
    assert "none" in cfg["sequence_task"]["labels"] and result["metric"] == "micro_f1"
    assert cfg["data"]["read"]["train"]["relation_stats"].startswith("relations:")
    # an entity-start head has no transformers class: export-hf says so in one line (exit 2)
    assert cli.main(["export-hf", str(out), str(tmp_path / "hf_out")]) == 2
    assert "representation 'entity_start' has no transformers architecture" in capsys.readouterr().err
    ev = evaluate_task(str(out), split="dev")
    gold = [p["gold"] for p in ev["predictions"]]
    pred = [p["pred"] for p in ev["predictions"]]
    positives = [l for l in cfg["sequence_task"]["labels"] if l != "none"]
    assert ev["value"] == pytest.approx(f1_score(gold, pred, labels=positives, average="micro", zero_division=0))
    assert "document_level" in ev["scores"]
    # the official n2c2 figures beside ours: what `score` says of predict's output on the same split
    from gatortron_jax.scoring import score

    dev_notes = repo_root / "data/ner_samples/brat_n2c2_2018/dev"
    predict_task(str(out), str(dev_notes), str(tmp_path / "pred_dev"))
    scored = score("n2c2_2018", str(dev_notes), str(tmp_path / "pred_dev")).rows
    official = ev["scores"]["official"]
    assert official["format"] == "n2c2_2018" and "Relations overall (strict)" in official["rows"]
    for name, row in official["rows"].items():
        assert row == pytest.approx(scored[name]), name
    notes = repo_root / "data/ner_samples/brat_n2c2_2018/test"
    s = predict_task(str(out), str(notes), str(tmp_path / "pred"))
    docs = read_brat_dir(str(tmp_path / "pred"))
    n_pred = sum(1 for line in (tmp_path / "pred/predictions.jsonl").read_text().splitlines()
                 if json.loads(line)["prediction"] != "none")
    assert s["examples"] > 0 and len(docs) == len(read_brat_dir(str(notes)))
    assert sum(len(d.relations) for d in docs) == n_pred


def test_cli_strict_reaches_the_task_reader(repo_root, pretrained, bad_chemprot_dir, tmp_path, capsys, monkeypatch):
    """--strict is passed down as an argument (no process-wide policy): a bad example is one error line."""
    monkeypatch.chdir(repo_root)
    argv = ["finetune", "--gin_file=gin/finetune/sample_re.gin", f"--init_checkpoint={pretrained}",
            f"--gin.TaskDataConfig.data_dir='{bad_chemprot_dir}'", *TINY_ARGS]
    assert cli.main([*argv, f"--model_dir={tmp_path / 'strict'}", "--strict"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "dev.tsv" in err[0] and "CPR:99" in err[0], err


# Slow: sentence-pair encoding is test_encode_pairs_truncates_longer_side_and_counts's, the
# classification head is trained through the CLI by test_cli_chemprot_sample_classification,
# and a bad label under --strict is test_cli_strict_reaches_the_task_reader's (default run).
@pytest.mark.slow
def test_mednli_in_process_and_bad_label_reported(vocab, bad_chemprot_dir, tmp_path):
    from gatortron_jax.core.errors import InputError
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.finetuning.config import TaskDataConfig, TaskTrainConfig

    bad = bad_chemprot_dir
    train = TaskTrainConfig(num_epochs=1, batch_size=8, eval_batch_size=8, max_steps_per_epoch=2)
    result = finetune(str(tmp_path / "nli"), TaskDataConfig(task="mednli", vocab_path=vocab,
                                          max_length=64), train, model_config=TINY)
    assert result["metric"] == "accuracy" and 0.0 <= result["best_dev_metric"] <= 1.0

    data = TaskDataConfig(task="chemprot_re", data_dir=str(bad), vocab_path=vocab, max_length=64)
    assert not data.strict and not data.strict_reading()  # default: skip, count and list
    explicit = TaskDataConfig(task="chemprot_re", data_dir=str(bad), vocab_path=vocab, max_length=64, strict=True)
    with pytest.raises(InputError, match=r"dev\.tsv:\d+.*123\.T1\.T2.*CPR:99"):  # what --strict sets
        finetune(str(tmp_path / "y"), explicit, train, model_config=TINY)
    from gatortron_jax.finetuning.task_registry import get_task

    read = get_task("chemprot_re").read("dev", str(bad), strict=False).summary  # what finetune records
    assert read["skipped"] == 1 and read["skipped_examples"][0]["id"] == "123.T1.T2"
    assert read["skipped_examples"][0]["where"].endswith("dev.tsv:14") and read["examples"] == 12


def test_task_registry_and_seqio_mixture():
    import seqio

    from gatortron_jax.finetuning import task_registry

    names = set(task_registry.registered_tasks())
    assert {"chemprot_re", "n2c2_2018_re", "mednli", "biosses_sts", "n2c2_2019_sts", "emrqa_medication",
            "emrqa_relation", "bioasq_factoid"} <= names
    assert task_registry.register_seqio_task("mednli") == "mednli"
    ex = next(iter(seqio.get_mixture_or_task("mednli").get_dataset(split="dev", shuffle=False).as_numpy_iterator()))
    assert ex["label"].decode() in ("entailment", "contradiction", "neutral")


@pytest.mark.slow
def test_real_chemprot_subset_and_biosses(shared_data, repo_root, tmp_path):
    """A small fresh encoder (no pretrained GatorTron is available here) on a ChemProt subset
    and on BIOSSES from ../shared/data: micro-F1 clearly above the all-``false`` baseline (0)
    and a finite Pearson r equal to scipy's. Sizes: CHEMPROT_TRAIN / CHEMPROT_EPOCHS env vars."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.inference.evaluate import evaluate_task
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.finetuning.config import TaskDataConfig, TaskTrainConfig

    chemprot = shared_data / "ChemProt/blue_style"
    biosses = shared_data / "BIOSSES"
    if not (chemprot / "train.tsv").is_file() or not (biosses / "train.tsv").is_file():
        pytest.skip("ChemProt/blue_style or BIOSSES not present")
    vocab = str(repo_root / "data/sample_vocab/spm.model")
    config = EncoderConfig(vocab_size=4096, hidden_size=128, num_layers=2, num_heads=4, mlp_dim=512,
                           max_position_embeddings=128, dropout_rate=0.1, attention_dropout_rate=0.1)
    report = {}

    data = TaskDataConfig(task="chemprot_re", data_dir=str(chemprot), vocab_path=vocab, max_length=128,
                          max_train_examples=int(os.environ.get("CHEMPROT_TRAIN", "6000")), max_eval_examples=2000)
    train = TaskTrainConfig(num_epochs=int(os.environ.get("CHEMPROT_EPOCHS", "4")), batch_size=32, eval_batch_size=64,
                            patience=None, log_every=100)
    t0 = time.time()
    result = finetune(str(tmp_path / "chemprot"), data, train,
                                          OptimizerConfig(learning_rate=1e-3, weight_decay=0.01), model_config=config)
    test = evaluate_task(str(tmp_path / "chemprot"), data, split="test")
    gold = [p["gold"] for p in test["predictions"]]
    pred = [p["pred"] for p in test["predictions"]]
    positives = [l for l in test["scores"]["positive_labels"]]
    assert test["value"] == pytest.approx(f1_score(gold, pred, labels=positives, average="micro", zero_division=0))
    report["chemprot"] = {"dev_micro_f1": result["best_dev_metric"], "test_micro_f1": test["value"],
                          "test_per_type": {k: round(v["f1"], 4) for k, v in test["scores"]["per_type"].items()},
                          "seconds": time.time() - t0, "history": result["history"],
                          "truncated_train": json.loads((tmp_path / "chemprot/config.json").read_text())
                          ["data"]["encoding"]["train"]["truncated"]}

    data = TaskDataConfig(task="biosses_sts", data_dir=str(biosses), vocab_path=vocab, max_length=128)
    train = TaskTrainConfig(num_epochs=int(os.environ.get("BIOSSES_EPOCHS", "15")), batch_size=8, eval_batch_size=16,
                            patience=None, log_every=100)
    t0 = time.time()
    result = finetune(str(tmp_path / "biosses"), data, train,
                                          OptimizerConfig(learning_rate=5e-4), model_config=config)
    test = evaluate_task(str(tmp_path / "biosses"), split="test")
    g = [p["gold"] for p in test["predictions"]]
    p = [p["pred"] for p in test["predictions"]]
    assert test["value"] == pytest.approx(pearsonr(g, p)[0], abs=1e-6)
    report["biosses"] = {"dev_pearson": result["best_dev_metric"], "test_pearson": test["value"],
                         "seconds": time.time() - t0, "history": result["history"]}
    print("REAL", json.dumps(report, indent=1, default=str))
    # better than the best constant positive guess (every pair = the same CPR class), not just > 0
    constant = max(f1_score(gold, [lab] * len(gold), labels=positives, average="micro", zero_division=0)
                   for lab in positives)
    assert report["chemprot"]["test_micro_f1"] > constant
    assert np.isfinite(report["biosses"]["test_pearson"])


@pytest.mark.slow  # ~25 s on an idle 2-core machine; kept out of the default suite
def test_cli_emrqa_sample_span_qa(repo_root, pretrained, tmp_path, monkeypatch):
    """Span QA with document stride on the emrQA-style sample; EM/F1 recomputed from the
    evaluate JSON's answers with an independent SQuAD v1.1 implementation."""
    import collections
    import re
    import string

    monkeypatch.chdir(repo_root)
    out = tmp_path / "qa"
    cfg = _cli_finetune(repo_root, "gin/finetune/sample_qa.gin", pretrained, out, "--gin.TaskDataConfig.max_length=64",
                        "--gin.TaskDataConfig.doc_stride=24", "--gin.TaskDataConfig.max_query_length=16",
                        "--gin.TaskTrainConfig.num_epochs=1", "--gin.TaskTrainConfig.max_steps_per_epoch=3")
    assert cfg["sequence_task"]["kind"] == "qa" and cfg["data"]["encoding"]["train"]["windows"] > \
        cfg["data"]["encoding"]["train"]["questions"]  # long contexts were strided
    ev = _evaluate(out, tmp_path / "eval.json", "--split=dev")

    def norm(s):
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    def f1(p, g):
        pt, gt = norm(p).split(), norm(g).split()
        if not pt or not gt:
            return float(pt == gt)
        common = sum((collections.Counter(pt) & collections.Counter(gt)).values())
        if not common:
            return 0.0
        prec, rec = common / len(pt), common / len(gt)
        return 2 * prec * rec / (prec + rec)

    ems, f1s = [], []
    for p in ev["predictions"]:
        golds = p["gold"] or [""]
        ems.append(max(float(norm(p["pred"]) == norm(g)) for g in golds))
        f1s.append(max(f1(p["pred"], g) for g in golds))
    assert ev["metric"] == "f1" and ev["scores"]["total"] == len(ev["predictions"]) > 0
    assert ev["scores"]["exact"] == pytest.approx(100 * np.mean(ems))
    assert ev["value"] == pytest.approx(100 * np.mean(f1s))


@pytest.mark.parametrize("name,task", [
    ("chemprot", "chemprot_re"), ("n2c2_2018_re", "n2c2_2018_re"), ("mednli", "mednli"),
    ("biosses_sts", "biosses_sts"), ("n2c2_2019_sts", "n2c2_2019_sts"), ("sample_re", "chemprot_re"),
    ("sample_nli", "mednli"), ("sample_sts", "n2c2_2019_sts"), ("sample_qa", "emrqa_medication"),
    ("emrqa_medication", "emrqa_medication"), ("emrqa_relation", "emrqa_relation"),
    ("bioasq_factoid", "bioasq_factoid")])
def test_task_gin_files_parse(name, task):
    from gatortron_jax.cli import gin_config
    from gatortron_jax.cli.finetuning import sequence_task_bound
    from gatortron_jax.finetuning.task_registry import get_task
    from gatortron_jax.finetuning.config import TaskDataConfig, TaskTrainConfig

    gin_config.parse([f"gin/finetune/{name}.gin"], [])
    assert sequence_task_bound()
    data = gin_config.build(TaskDataConfig)
    gin_config.build(TaskTrainConfig)
    gin_config.build_finetune_config()
    assert data.task == task and get_task(task).name == task
    gin_config.parse(["gin/finetune/sample_ner.gin"], [])
    assert not sequence_task_bound()  # NER gin files keep the NER flow


def test_one_train_config_under_old_and_new_gin_names():
    """NERTrainConfig.* / TaskTrainConfig.* (what gin files already say) and FinetuneConfig.* bind
    the same fields; one setting bound to two values under two names is one error naming both."""
    from gatortron_jax.cli import gin_config
    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.finetuning.config import FinetuneConfig

    gin_config.parse(["gin/finetune/sample_ner.gin"], ["FinetuneConfig.length_buckets=False"])
    cfg = gin_config.build_finetune_config()
    assert type(cfg) is FinetuneConfig and cfg.num_epochs == 8 and cfg.batch_size == 8 and not cfg.length_buckets
    gin_config.parse(["gin/finetune/sample_qa.gin"], [])
    assert gin_config.build_finetune_config().eval_batch_size == 16
    gin_config.parse(["gin/finetune/sample_ner.gin"], ["TaskTrainConfig.num_epochs=2"])
    with pytest.raises(ConfigError, match=r"NERTrainConfig\.num_epochs=8 and TaskTrainConfig\.num_epochs=2"):
        gin_config.build_finetune_config()
