"""De-id recall on gold dev notes: argmax vs the recall operating point, model alone vs with patterns.

    python benchmarks/deid_recall.py --checkpoint FT_DIR --dev ../shared/data/MEDDOCAN/dev/xml \
        [--target_recall 0.99] [--save] [--output OUT.json]

``FT_DIR`` is a fine-tuned de-id model dir (e.g. ``finetune --gin_file=gin/finetune/meddocan.gin``).
Dev is any de-id input with gold PHI (i2b2 2014/MEDDOCAN XML, 2006 XML, brat). Prints binary
(any-type) span recall under the leak-free criterion (every letter/digit of a gold span covered),
precision (predicted spans touching gold PHI), and the gold spans still missed, by type, at the
chosen point; ``--save`` stores the operating point and the pattern recipe in ``FT_DIR/config.json``
(``operating_point``, ``patterns``), where ``predict``/``deid`` (``ScoringTagger``) pick them up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dev", required=True, help="gold de-id notes (XML or brat)")
    p.add_argument("--target_recall", type=float, default=0.99)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--no_patterns", action="store_true")
    p.add_argument("--save", action="store_true", help="store the operating point and recipe in the model dir")
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)

    from gatortron_jax.annotations.patterns import recipe_for_labels
    from gatortron_jax.inference import operating_point as opl
    from gatortron_jax.inference.deid import read_deid_input
    from gatortron_jax.inference.stream import ScoringTagger

    gold, has_gold, _ = read_deid_input(args.dev, strict=True)
    if not has_gold:
        raise SystemExit(f"{args.dev}: no gold PHI")
    tagger = ScoringTagger(args.checkpoint, batch_size=args.batch_size, candidates=True)
    # the recipe the model dir stores (fine-tuning's PatternConfig), else the preset for its labels
    recipe = None if args.no_patterns else (opl.load_patterns(args.checkpoint) or recipe_for_labels(tagger.labels))
    op, table = opl.calibrate(tagger, gold, args.target_recall, recipe)
    print(f"\n{len(gold)} dev notes, {table['argmax, model']['gold']} gold PHI spans; target recall {args.target_recall}")
    print(f"| decoding | recall | precision | missed | predicted |\n|---|---|---|---|---|")
    for name, m in table.items():
        print(f"| {name} | {m['recall']:.4f} | {m['precision']:.4f} | {m['missed']} | {m['predicted']} |")
    missed = {t: v["missed"] for t, v in op.dev["by_type"].items() if v["missed"]}
    print(f"missed at the chosen point, by type: {dict(sorted(missed.items(), key=lambda kv: -kv[1]))}")
    print(f"thresholds: {dict(sorted(op.thresholds.items()))}; below target: {op.dev['unreached']}")
    if recipe is not None:
        print(f"patterns: recognizers {list(recipe.recognizers)}, type map {dict(recipe.type_map)}")
    if args.save:
        opl.save_operating_point(args.checkpoint, op)
        if recipe is not None:
            opl.save_patterns(args.checkpoint, recipe)
        print(f"stored operating_point{' and patterns' if recipe else ''} in {args.checkpoint}/config.json")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"table": table, "operating_point": op.to_dict(),
                       "patterns": recipe.to_dict() if recipe else None}, f, indent=2)
    return 0


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    raise SystemExit(main())
