"""Checkpoint interop commands: ``import-hf`` / ``export-hf`` (transformers megatron-bert/bert) and
``import-megatron`` / ``export-megatron`` (Megatron-LM .pt shards, NeMo .nemo).

Each handler calls one ``convert`` function and prints its summary (what was imported, ignored or padded).
"""

from __future__ import annotations

import argparse

from gatortron_jax.cli import flags


def cmd_import_hf(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.hf_dir import import_hf

    s = import_hf(args.hf_dir, args.out_dir, lowercase=args.lowercase)
    print(f"imported {s['model_type']} ({s['layers']} layers, hidden {s['hidden']}, {s['tensors']} tensors) "
          f"from {', '.join(s['files'])} -> {s['out_dir']}")
    print(f"vocabulary: {s['vocab_entries']} entries, {s['embedding_rows']} embedding rows "
          f"({s['embedding_rows'] - s['vocab_entries']} padding rows kept); "
          f"{'uncased (lowercase)' if s['lowercase'] else 'cased'}: {s['lowercase_source']}")
    if not s["has_mlm_head"]:
        print("note: no MLM head in the checkpoint; a freshly initialised head is stored (export-hf omits it)")
    if not s["has_pooler"]:
        print("note: no pooler in the checkpoint; the model is stored without one")
    for kind, label in (("task_heads", "task heads ignored (e.g. NSP)"), ("buffers", "buffers skipped"),
                        ("tied", "tied to the word embeddings")):
        if s["ignored"][kind]:
            print(f"note: {label}: {', '.join(s['ignored'][kind])}")
    return 0


def cmd_export_hf(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.hf_dir import export_hf

    s = export_hf(args.model_dir, args.out_dir)
    print(f"exported {s['tensors']} tensors as {s['architectures'][0]} ({s['model_type']}) -> {s['out_dir']}: "
          f"{', '.join(s['files'])}")
    for note in s.get("notes", []):
        print(f"note: {note}")
    return 0


def cmd_import_megatron(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.megatron_read import import_megatron

    s = import_megatron(args.path, args.out_dir, lowercase=args.lowercase, vocab_file=args.vocab,
                        checkpoint_version=args.checkpoint_version)
    print(f"imported {s['format']} BERT ({s['layers']} layers, hidden {s['hidden']}, {s['tensors']} tensors, "
          f"{s['tensor_parallel']} tensor-parallel shard(s), checkpoint_version {s['checkpoint_version']:g}) "
          f"-> {s['out_dir']}")
    print(f"vocabulary: {s['vocab_entries']} entries, {s['embedding_rows']} embedding rows "
          f"({s['embedding_rows'] - s['vocab_entries']} padding rows kept); "
          f"{'uncased (lowercase)' if s['lowercase'] else 'cased'}: {s['lowercase_source']}")
    for kind, label in (("task_heads", "task heads ignored (NSP binary_head)"), ("tied", "tied to the word embeddings"),
                        ("skipped_extra_state", "Transformer Engine _extra_state skipped")):
        if s["ignored"].get(kind):
            print(f"note: {label}: {len(s['ignored'][kind])} tensor(s)")
    for note in s["notes"] + ([] if s["has_mlm_head"] else ["no lm_head: a freshly initialised MLM head is stored"]):
        print(f"note: {note}")
    return 0


def cmd_export_megatron(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.megatron_write import export_megatron

    s = export_megatron(args.model_dir, args.out, tensor_parallel=args.tensor_parallel, nemo=args.nemo)
    print(f"exported {s['format']} (TP {s['tensor_parallel']}, padded_vocab_size {s['padded_vocab_size']}, "
          f"{s['tokenizer_type']}) -> {', '.join(s['files'])}")
    for note in s["notes"]:
        print(f"note: {note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this family's subcommands; each sets ``handler`` (and ``accepts_gin`` where gin bindings apply)."""
    p = sub.add_parser("import-hf", help="HF megatron-bert/bert directory -> model dir (orbax + config + vocab)")
    p.add_argument("hf_dir", help="directory with config.json, model.safetensors or pytorch_model.bin, vocab.txt")
    p.add_argument("out_dir", help="model dir to create")
    flags.add_casing_flags(p, "tokenizer_config.json do_lower_case, else inferred")
    p.set_defaults(handler=cmd_import_hf)

    p = sub.add_parser("export-hf", help="model dir -> safetensors + config.json + vocab for transformers")
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.set_defaults(handler=cmd_export_hf)

    p = sub.add_parser("import-megatron", help="Megatron-LM .pt (file or mp_rank_XX shards) or .nemo -> model dir")
    p.add_argument("path", help="MegatronBERT.pt, a Megatron checkpoint dir (mp_rank_XX/...) or a .nemo file")
    p.add_argument("out_dir", help="model dir to create")
    p.add_argument("--vocab", default=None, help="vocab.txt (default: the .nemo's, or vocab.txt next to the checkpoint)")
    p.add_argument("--checkpoint_version", type=float, default=None,
                   help="QKV layout override (default: the checkpoint's checkpoint_version; .nemo/mcore: 3)")
    flags.add_casing_flags(p, "from tokenizer_type, else inferred from the vocabulary")
    p.set_defaults(handler=cmd_import_megatron)

    p = sub.add_parser("export-megatron", help="model dir -> Megatron-LM checkpoint (release/mp_rank_XX) or .nemo")
    p.add_argument("model_dir")
    p.add_argument("out", help="output directory (or FILE.pt for TP 1; FILE.nemo with --nemo)")
    p.add_argument("--tensor_parallel", type=int, default=1, help="tensor-parallel shards to write")
    p.add_argument("--nemo", action="store_true", help="write a legacy NeMo .nemo archive")
    p.set_defaults(handler=cmd_export_megatron)
