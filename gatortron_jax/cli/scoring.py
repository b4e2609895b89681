"""``gatortron-jax score``: the official numbers for any system's output, no model needed.

A team with outputs from another tool (or from our ``predict``) gets, for every metric the
benchmark's official scorer reports, the figure that scorer would print
(:mod:`gatortron_jax.scoring`), as a table and optionally as JSON (``--json OUT``).
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger("gatortron_jax.cli.scoring")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    from gatortron_jax.scoring import FORMATS

    p = sub.add_parser("score", help="score a system output (directory or file) against gold the way the "
                                     "benchmark's official scorer does (i2b2 2014, n2c2 2018, MEDDOCAN, conlleval)")
    p.add_argument("--format", required=True, choices=FORMATS, help="the benchmark / file format of both sides")
    p.add_argument("--gold", required=True, help="gold directory (a file for --format conll)")
    p.add_argument("--system", required=True, help="system output directory (a file for --format conll)")
    p.add_argument("--json", metavar="OUT", help="also write every figure as JSON here")
    p.add_argument("--corrected_hipaa", action="store_true",
                   help="i2b2 2014: include IDNUM in the HIPAA rows (the official script's 'IDNUM ' pattern never "
                        "matches; the default stays official, comparable with published figures)")
    p.add_argument("--sentences", metavar="DIR",
                   help="MEDDOCAN: the organisers' sentence_splitted/ folder, for the leak score")
    p.set_defaults(handler=cmd_score)


def cmd_score(args: argparse.Namespace, overrides: list[str]) -> int:
    """Score, print the table (warnings included), write ``--json``; 0 on success."""
    from gatortron_jax.core.errors import InputError
    from gatortron_jax.scoring import format_report, score

    for what, path in (("--gold", args.gold), ("--system", args.system)):
        if not os.path.exists(path):
            raise InputError(f"{what} {path}: no such file or directory")
    report = score(args.format, args.gold, args.system, corrected_hipaa=args.corrected_hipaa,
                   sentences=args.sentences)
    print(format_report(report), end="")
    for w in report.warnings:
        log.warning("%s", w)
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0
