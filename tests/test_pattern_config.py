"""Patterns as part of the fine-tuning recipe: ``PatternConfig`` bound in the de-id gin files,
turned into the recipe for the model's labels, stored in the model dir by ``finetune`` and
recorded with the scores ``evaluate`` writes."""

from __future__ import annotations

import json

import pytest

from gatortron_jax.annotations.patterns import RECOGNIZERS, TYPE_MAPS, PatternConfig
from gatortron_jax.cli import gin_config
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.finetuning import windowing
from gatortron_jax.inference import operating_point as opl
from test_deid_decodings import MEDDOCAN_TYPES, meddocan_model_dir
from test_meddocan import write_meddocan_corpus

MEDDOCAN_LABELS = windowing.label_list(list(MEDDOCAN_TYPES), "BIO")


@pytest.mark.parametrize("gin_file,preset", [("gin/finetune/meddocan.gin", "meddocan"),
                                             ("gin/finetune/i2b2_2014_deid.gin", "i2b2_2014")])
def test_de_id_gin_files_bind_the_pattern_recipe(repo_root, monkeypatch, gin_file, preset):
    monkeypatch.chdir(repo_root)
    gin_config.parse([gin_file], ["NERDataConfig.data_dir='/nowhere'"])
    cfg = gin_config.build(PatternConfig)
    assert cfg.enabled and cfg.type_map == preset and cfg.recognizers
    labels = windowing.label_list(sorted(TYPE_MAPS[preset].values()), "BIO")
    recipe = cfg.recipe(labels)
    assert dict(recipe.type_map) == TYPE_MAPS[preset] and list(recipe.recognizers) == list(cfg.recognizers)
    if preset != "meddocan":  # a preset none of whose labels the model has is a mistake
        with pytest.raises(ConfigError, match="none of its labels is a label of this model"):
            cfg.recipe(MEDDOCAN_LABELS)
        return
    # a model with fewer labels: kinds without a label, and their recognizers, are left out
    small = cfg.recipe(MEDDOCAN_LABELS)
    assert set(small.type_map.values()) <= set(MEDDOCAN_TYPES)
    assert all(RECOGNIZERS[n].kind in small.type_map for n in small.recognizers)
    assert small.label("EMAIL") == "CORREO_ELECTRONICO" and "email" in small.recognizers
    assert "ip" not in small.recognizers  # no DIRECCION_IP label in this model


def test_pattern_config_errors_and_off():
    assert PatternConfig().recipe(MEDDOCAN_LABELS) is None
    with pytest.raises(ConfigError, match=r"type_map: \['NOPE'\] are not labels"):
        PatternConfig(enabled=True, type_map={"EMAIL": "NOPE"}).recipe(MEDDOCAN_LABELS)
    with pytest.raises(ConfigError, match=r"recognizers: unknown \['mail'\]"):
        PatternConfig(enabled=True, recognizers=("mail",)).recipe(MEDDOCAN_LABELS)
    with pytest.raises(ConfigError, match="type_map='spanish'"):
        PatternConfig(enabled=True, type_map="spanish").recipe(MEDDOCAN_LABELS)
    hand = PatternConfig(enabled=True, type_map={"EMAIL": "CORREO_ELECTRONICO"}, recognizers=("email", "url"))
    assert hand.recipe(MEDDOCAN_LABELS).recognizers == ("email",)
    with pytest.raises(ConfigError, match="PatternConfig.enabled"):
        gin_config.parse(["gin/finetune/meddocan.gin"], ["PatternConfig.enabled='yes'"])
        gin_config.build(PatternConfig)


def test_finetune_stores_the_recipe_for_the_models_labels(repo_root, tmp_path):
    """``finetune``'s storing step on a model dir (the whole command: the slow test below)."""
    from gatortron_jax.cli import finetuning

    model = meddocan_model_dir(tmp_path / "m", repo_root, tmp_path / "corpus")
    cfg = PatternConfig(enabled=True, type_map="meddocan", recognizers=("email", "date_numeric", "ip"))
    finetuning._store_patterns(str(model), cfg)
    stored = opl.load_patterns(str(model))
    assert stored == cfg.recipe(MEDDOCAN_LABELS) and stored.recognizers == ("email", "date_numeric")
    assert stored.label("DATE") == "FECHAS"


@pytest.mark.slow  # a real (tiny) fine-tuning run, then evaluate
def test_cli_finetune_with_meddocan_gin_stores_patterns_and_evaluate_records_them(repo_root, tiny_pretrained,
                                                                                 tmp_path, monkeypatch, capsys):
    from gatortron_jax.cli import main as cli
    from gatortron_jax.finetuning import ner_tasks

    monkeypatch.chdir(repo_root)
    write_meddocan_corpus(tmp_path / "corpus", 3)
    model, out = tmp_path / "m", tmp_path / "ev.json"
    try:
        assert cli.main(["finetune", "--gin_file=gin/finetune/meddocan.gin", f"--init_checkpoint={tiny_pretrained}",
                         f"--model_dir={model}", f"--gin.NERDataConfig.data_dir='{tmp_path / 'corpus'}'",
                         "--gin.NERDataConfig.max_length=64", "--gin.NERDataConfig.overlap=16",
                         "--gin.NERTrainConfig.num_epochs=1", "--gin.NERTrainConfig.max_steps_per_epoch=2"]) == 0
        assert cli.main(["evaluate", f"--checkpoint={model}", "--split", "dev", f"--output={out}"]) == 0
    finally:
        ner_tasks._TASKS.pop("meddocan_deid", None)
    info = json.loads((model / "config.json").read_text())
    gin_config.parse(["gin/finetune/meddocan.gin"], [])
    want = gin_config.build(PatternConfig).recipe(info["ner"]["labels"])
    assert opl.load_patterns(str(model)) == want and "email" in info["patterns"]["recognizers"]
    ev = json.loads(out.read_text())
    assert ev["recipe"]["decoding"] == {"operating_point": None, "patterns": info["patterns"]}
    assert list(ev["decodings"]["rows"]) == ["argmax, model", "argmax, model + patterns"]  # no operating point
    assert "patterns: recognizers ['email'" in capsys.readouterr().out
