"""Fine-tuning commands: ``finetune`` (NER/de-id, RE, NLI, STS, span QA through the one loop; resumable)
and ``evaluate`` (scores of a fine-tuned model on a task split, written with their recipe).

Which flow runs follows the gin config (``TaskDataConfig.task`` bound: sequence task; else NER) or, for
``evaluate`` without gin files, the kind of the model dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from gatortron_jax.cli import flags
from gatortron_jax.core.errors import GatortronError

log = logging.getLogger("gatortron_jax")


def sequence_task_bound() -> bool:
    """True when the parsed gin config names a TaskDataConfig.task (else the NER flow runs)."""
    import gin

    try:
        return bool(gin.query_parameter("TaskDataConfig.task"))
    except ValueError:
        return False


def cmd_finetune(args: argparse.Namespace, overrides: list[str]) -> int:
    flags.maybe_init_distributed(args)
    from gatortron_jax.annotations.patterns import PatternConfig
    from gatortron_jax.cli import gin_config
    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.finetuning.config import NERDataConfig, TaskDataConfig
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.models.config import EncoderConfig

    gin_config.parse(args.gin_file, overrides)
    data = gin_config.build(TaskDataConfig if sequence_task_bound() else NERDataConfig)
    patterns = gin_config.build(PatternConfig)
    if patterns.enabled and sequence_task_bound():
        raise ConfigError("PatternConfig.enabled: pattern recognizers run beside NER/de-id models only")
    if args.strict:  # the input policy travels in the data config (recorded in config.json)
        data = dataclasses.replace(data, strict=True)
    result = finetune(
        args.model_dir,
        data,
        gin_config.build_finetune_config(),
        gin_config.build(OptimizerConfig),
        gin_config.build(MeshConfig),
        init_checkpoint=args.init_checkpoint,
        model_config=None if args.init_checkpoint else gin_config.build(EncoderConfig),
    )
    import jax

    if jax.process_index() == 0:
        with open(os.path.join(args.model_dir, "operative_config.gin"), "w") as f:
            f.write(gin_config.operative_config())
        if patterns.enabled and not result.get("preempted"):
            _store_patterns(args.model_dir, patterns)
    if result.get("preempted"):
        log.warning("stopped early (preempted); exit status %d asks the scheduler to requeue", flags.EXIT_PREEMPTED)
        return flags.EXIT_PREEMPTED
    log.info("done: best dev %s %.4f at epoch %d; model in %s", result["metric"], result["best_dev_metric"],
             result["best_epoch"], args.model_dir)
    return 0


def _store_patterns(model_dir: str, config) -> None:
    """The gin recipe's pattern recognizers for the fine-tuned labels, stored in the model dir
    (``config.json`` ``patterns``): predict/deid/evaluate run them beside the model from now on."""
    from gatortron_jax.inference.operating_point import save_patterns
    from gatortron_jax.models.model_dir import read_model_info

    recipe = config.recipe(read_model_info(model_dir)["ner"]["labels"])
    save_patterns(model_dir, recipe)
    log.info("pattern recipe stored in %s: recognizers %s, type map %s, %d deny / %d allow entries", model_dir,
             list(recipe.recognizers), dict(recipe.type_map), len(recipe.deny), len(recipe.allow))


def _write_eval(args: argparse.Namespace, result: dict) -> str:
    import json

    out = args.output or os.path.join(args.checkpoint, f"eval_{result['task']}_{args.split}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    return out


def cmd_evaluate(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.cli import gin_config
    from gatortron_jax.evaluation.ner_metrics import format_table
    from gatortron_jax.finetuning.config import NERDataConfig
    from gatortron_jax.inference.evaluate import evaluate_ner
    from gatortron_jax.models.model_dir import kind_of, read_model_info

    if args.gin_file:
        gin_config.parse(args.gin_file, overrides)
    info = read_model_info(args.checkpoint)
    if kind_of(info) == "sequence_task":
        return _evaluate_sequence_task(args)
    if args.gin_file:
        data = gin_config.build(NERDataConfig)
    else:  # the task and data the model was fine-tuned on
        data = NERDataConfig(**info.get("finetune", {}).get("data_config", {}))
    if args.strict:
        data = dataclasses.replace(data, strict=True)
    if _is_deid_task(data.task):  # the NER result plus the binary / per-category / HIPAA de-id scores
        from gatortron_jax.inference.deid import evaluate_deid_model

        result = evaluate_deid_model(args.checkpoint, data, split=args.split, batch_size=args.batch_size,
                                     quantize=flags.quantize_of(args), dtype=args.dtype)
    else:
        result = evaluate_ner(args.checkpoint, data, split=args.split, batch_size=args.batch_size,
                              quantize=flags.quantize_of(args), dtype=args.dtype)
    dev_run = None  # the dev notes run through the model once: calibration and the table share it
    if args.target_recall is not None:
        if not _is_deid_task(data.task):
            raise ConfigError(f"--target_recall: task {data.task} is not a de-id task")
        result["operating_point"], dev_run = _calibrate(args, data)
    reuse = dev_run if dev_run is not None and data.splits()[args.split] == data.dev_split else None
    table = _decodings(args, data, reuse) if _is_deid_task(data.task) else None
    if table is not None:
        result["decodings"] = table
        result["recipe"]["decoding"] = table["recipe"]
    out = _write_eval(args, result)
    print(f"{result['task']} / {args.split}: {result['documents']} documents")
    print(format_table(result["scores"]))
    if "deid" in result:
        from gatortron_jax.evaluation.deid_metrics import format_deid_tables

        print(format_deid_tables(result["deid"]))
    _print_official(result.get("official"))
    if table is not None:
        from gatortron_jax.inference.decodings import format_decodings

        print(format_decodings(table))
    print(f"wrote {out} (scores with the recipe: seed, configs, checkpoint and data fingerprints, versions)")
    return 0


def _calibrate(args: argparse.Namespace, data) -> tuple[dict, object]:
    """``--target_recall``: per-type thresholds chosen on the task's dev split (with the pattern
    recipe the model dir stores from fine-tuning, else the preset for its labels, or one with
    ``--deny_list``/``--allow_list``; none with ``--no_patterns``), stored in the model dir, and the
    table of binary span recall/precision at argmax and at the operating point."""
    from gatortron_jax.annotations.patterns import recipe_for_labels
    from gatortron_jax.finetuning import ner_tasks
    from gatortron_jax.inference import operating_point as opl
    from gatortron_jax.inference.stream import ScoringTagger

    dev = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits()).documents(data.dev_split, strict=data.strict)
    tagger = ScoringTagger(args.checkpoint, batch_size=args.batch_size, operating_point=None, patterns=None,
                           candidates=True, quantize=flags.quantize_of(args), dtype=args.dtype)
    stored = opl.load_patterns(args.checkpoint)  # the fine-tuning recipe's (PatternConfig), if any
    if args.no_patterns:
        recipe = None
    elif stored is not None and not (args.deny_list or args.allow_list):
        recipe = stored
    else:
        recipe = recipe_for_labels(tagger.labels, deny_file=args.deny_list, allow_file=args.allow_list)
    dev_run = opl.DevRun.of(tagger, dev)
    op, table = opl.calibrate(tagger, dev, args.target_recall, recipe, dev=dev_run)
    opl.save_operating_point(args.checkpoint, op)
    opl.save_patterns(args.checkpoint, recipe)
    print(f"operating point for recall {args.target_recall} chosen on {data.dev_split} ({len(dev)} notes; binary "
          "span recall: every letter/digit of a gold span covered), stored in the model dir:")
    print("| decoding | recall | precision | missed | predicted |\n|---|---|---|---|---|")
    for name, m in table.items():
        print(f"| {name} | {m['recall']:.4f} | {m['precision']:.4f} | {m['missed']} | {m['predicted']} |")
    missed = {t: v["missed"] for t, v in op.dev["by_type"].items() if v["missed"]}
    print(f"missed at the operating point, by type: {missed}; below the target: {op.dev['unreached']}")
    return {"split": data.dev_split, "table": table, **op.to_dict(),
            "patterns": recipe.to_dict() if recipe else None}, dev_run


def _decodings(args: argparse.Namespace, data, dev_run=None) -> dict | None:
    """The split at the four decodings (argmax / stored operating point x model alone / with the
    stored patterns) when the model dir stores an operating point or patterns; else None.
    ``dev_run``: the split's notes already run through the model (by ``--target_recall``)."""
    from gatortron_jax.finetuning import ner_tasks
    from gatortron_jax.inference import decodings, operating_point as opl
    from gatortron_jax.inference.stream import ScoringTagger
    from gatortron_jax.models.model_dir import read_model_info

    info = read_model_info(args.checkpoint)
    op, recipe = opl.load_operating_point(args.checkpoint, info), opl.load_patterns(args.checkpoint, info)
    if op is None and recipe is None:
        return None
    task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
    if dev_run is None:
        gold = task.documents(args.split, strict=data.strict)
        if not any(d.entities for d in gold):
            log.warning("%s has no gold PHI: the decodings table is not computed", args.split)
            return None
        tagger = ScoringTagger(args.checkpoint, batch_size=args.batch_size, operating_point=None, patterns=None,
                               candidates=True, quantize=flags.quantize_of(args), dtype=args.dtype)
        dev_run = opl.DevRun.of(tagger, gold)
    return decodings.evaluate_decodings(dev_run, task.name, op, recipe,
                                        sentences_dir=decodings.sentences_dir_of(task.split_path(args.split)))


def _print_official(official: dict | None) -> None:
    """The challenge script's figure (what ``score`` gives ``predict``'s files), beside ours above."""
    if not official:
        return
    from gatortron_jax.scoring.tasks import official_headline

    head = official_headline(official)
    row = official["rows"][head["row"]]
    figures = " ".join(f"{k} {row[k]:.4f}" for k in ("precision", "recall", "f1") if isinstance(row.get(k), float))
    print(f"official ({head['format']} scorer, {head['row']}): {figures}  [all rows in the JSON under 'official']")


def _is_deid_task(name: str) -> bool:
    from gatortron_jax.finetuning import ner_tasks

    try:
        return ner_tasks.get_ner_task(name).deid
    except GatortronError:
        return False


def _evaluate_sequence_task(args: argparse.Namespace) -> int:
    from gatortron_jax.cli import gin_config
    from gatortron_jax.finetuning.config import TaskDataConfig
    from gatortron_jax.inference.evaluate import evaluate_task

    data = gin_config.build(TaskDataConfig) if args.gin_file and sequence_task_bound() else None
    result = evaluate_task(args.checkpoint, data, split=args.split, batch_size=args.batch_size, strict=args.strict,
                           quantize=flags.quantize_of(args), dtype=args.dtype)
    out = _write_eval(args, result)
    print(f"{result['task']} / {args.split}: {result['examples']} examples; {result['metric']} {result['value']:.4f}")
    sc = result["scores"]
    if "micro" in sc:
        m = sc["micro"]
        print(f"micro P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f} (excluding {result['task']}'s "
              f"negative label)")
        for t, v in sc["per_type"].items():
            print(f"  {t:<16} P {v['precision']:.4f} R {v['recall']:.4f} F1 {v['f1']:.4f} support {v['support']}")
    enc = result["encoding"]
    if enc.get("truncated"):
        print(f"note: {enc['truncated']} example(s) truncated to max_length")
    if enc.get("question_truncated") or enc.get("answer_outside_all_windows") or enc.get("answer_not_tokenizable"):
        print(f"note: {enc['question_truncated']} question(s) truncated, {enc['answer_not_tokenizable']} answer(s) "
              f"no token covers, {enc['answer_outside_all_windows']} answer(s) in no single window")
    if "exact" in sc:
        print(f"exact match {sc['exact']:.2f}  F1 {sc['f1']:.2f}  ({sc['total']} questions)")
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this family's subcommands; each sets ``handler`` (and ``accepts_gin`` where gin bindings apply)."""
    p = sub.add_parser("finetune", help="fine-tune a NER/de-id, RE, NLI, STS or span-QA head (by the gin task); best dev "
                       "checkpoint kept; the same command on the same --model_dir resumes a killed run")
    p.add_argument("--gin_file", action="append", required=True, help="gin file(s), e.g. gin/finetune/sample_ner.gin")
    p.add_argument("--model_dir", required=True, help="directory for the fine-tuned model (an unfinished run of the "
                   "same configuration there is resumed)")
    p.add_argument("--init_checkpoint", default=None, help="pretrained model dir (pretrain / import-hf); "
                   "without it the encoder is freshly initialised from gin")
    flags.add_input_flags(p)
    flags.add_distributed_flags(p)
    p.set_defaults(handler=cmd_finetune, accepts_gin=True)

    p = sub.add_parser("evaluate", help="score a fine-tuned model on a task split (NER: strict + lenient F1; RE: micro-F1; NLI: accuracy; STS: Pearson)")
    p.add_argument("--checkpoint", required=True, help="fine-tuned model dir")
    p.add_argument("--gin_file", action="append", default=None, help="gin file(s) naming the task/data "
                   "(default: the task the model was fine-tuned on)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    g = p.add_argument_group("de-id: an operating point for recall (stored in the model dir; predict/deid use it)")
    g.add_argument("--target_recall", type=float, default=None, help="choose per-type thresholds on the dev split "
                   "for this binary span recall, with the pattern recognizers beside the model")
    g.add_argument("--no_patterns", action="store_true", help="choose (and store) the model alone, no patterns")
    g.add_argument("--deny_list", default=None, help="TYPE<TAB>entry per line (re: for a regex): always PHI")
    g.add_argument("--allow_list", default=None, help="entry per line (re: for a regex): never PHI")
    p.add_argument("--output", default=None, help="JSON file (default CHECKPOINT/eval_<task>_<split>.json)")
    p.add_argument("--batch_size", type=int, default=32)
    flags.add_int8_flag(p)
    flags.add_dtype_flag(p)
    flags.add_input_flags(p)
    p.set_defaults(handler=cmd_evaluate, accepts_gin=True)
