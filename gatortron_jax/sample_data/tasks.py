"""Synthetic samples of the RE / NLI / STS / QA benchmark formats (no real patients or papers).

``python -m gatortron_jax.sample_data.tasks --out data/task_samples`` writes (deterministic
for a given ``--seed``; files are replaced):

* ``chemprot_style/{train,dev,test}.tsv`` — BLUE ChemProt form ``index<TAB>sentence<TAB>label``
  with the pair masked as ``@CHEMICAL$`` / ``@GENE$``; labels CPR:3/4/5/6/9/false;
* ``mednli_style/mli_{train,dev,test}_v1.jsonl`` — MedNLI jsonl (sentence1, sentence2,
  gold_label, pairID);
* ``sts_style/clinicalsts_{train,dev,test}.tsv`` — 2019 n2c2 clinical STS form
  ``sentence1<TAB>sentence2<TAB>score`` (0–5, no header);
* ``emrqa_style/{train,dev,test}.json`` — SQuAD v2-style JSON (emrQA medication/relation-style
  questions, some unanswerable, one long context per split for document stride);
* ``n2c2_2018_re/README.md`` — the n2c2 2018 RE sample is ``data/ner_samples/brat_n2c2_2018``
  (brat with ``R`` lines), not duplicated.

Sentences come from templates over small invented/generic term lists; scores and labels are
fixed by the template, so a model can learn them.
"""

from __future__ import annotations

import argparse
import json
import os
import random

SPLITS = (("train", 36), ("dev", 12), ("test", 12))

CHEMICALS = ("zanoterol", "bexamide", "clorafen", "metoxivir", "pradicaine", "sulfanolol", "tetravast",
             "quinorabine", "lofexidate", "virapentin", "dextrafol", "nimocarb")
GENES = ("KRX1", "TPH-7", "CYP9Z1", "ALDH12", "SLC99A1", "GPR404", "MAPK21", "NRX-3", "HSD99B", "PTGS9")
CHEMPROT_TEMPLATES = {
    "CPR:3": ("@CHEMICAL$ markedly increased the expression of @GENE$ in cultured {cell}.",
              "Treatment with @CHEMICAL$ activated @GENE$ in {cell}.",
              "@GENE$ was upregulated by @CHEMICAL$ in a dose-dependent manner."),
    "CPR:4": ("@CHEMICAL$ inhibited @GENE$ activity in {cell}.",
              "@GENE$ expression was suppressed by @CHEMICAL$ in {cell}.",
              "@CHEMICAL$ is a potent inhibitor of @GENE$."),
    "CPR:5": ("@CHEMICAL$ acts as a selective agonist of @GENE$.",
              "@CHEMICAL$ bound to and stimulated @GENE$ as a full agonist in {cell}."),
    "CPR:6": ("@CHEMICAL$ is a competitive antagonist of @GENE$.",
              "The effect was blocked by @CHEMICAL$, an @GENE$ antagonist."),
    "CPR:9": ("@CHEMICAL$ is metabolized by @GENE$ in {cell}.",
              "@GENE$ catalyzes the conversion of @CHEMICAL$ to {chem2}."),
    "false": ("@CHEMICAL$ and @GENE$ levels were both measured in {cell}.",
              "Neither @CHEMICAL$ nor {chem2} changed the localization of {gene2}, while @GENE$ was not studied.",
              "@GENE$ was sequenced in patients who had received @CHEMICAL$ or {chem2}.",
              "We describe the synthesis of @CHEMICAL$ and the cloning of @GENE$."),
}
CELLS = ("rat hepatocytes", "HEK293 cells", "mouse cortex", "human platelets", "Xenopus oocytes")
# label mix close to ChemProt's (false dominates; CPR:5/6 rare)
CHEMPROT_WEIGHTS = (("CPR:3", 2), ("CPR:4", 3), ("CPR:5", 1), ("CPR:6", 1), ("CPR:9", 2), ("false", 6))

DRUGS = ("lisinopril", "metformin", "atorvastatin", "furosemide", "apixaban", "levothyroxine", "amlodipine",
         "insulin glargine", "warfarin", "omeprazole", "metoprolol", "prednisone")
PROBLEMS = ("hypertension", "type 2 diabetes", "hyperlipidemia", "heart failure", "atrial fibrillation",
            "hypothyroidism", "GERD", "COPD", "chronic kidney disease", "asthma")
SYMPTOMS = ("chest pain", "shortness of breath", "fever", "nausea", "dizziness", "leg swelling", "headache")
ADES = ("a diffuse rash", "hyperkalemia", "angioedema", "bradycardia", "hypotension", "acute kidney injury")


def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


def chemprot_rows(rng: random.Random, n: int, split_no: int) -> list[tuple[str, str, str]]:
    labels = [lab for lab, w in CHEMPROT_WEIGHTS for _ in range(w)]
    rows = []
    for i in range(n):
        label = labels[i % len(labels)] if i < len(labels) else _pick(rng, labels)
        chems = rng.sample(CHEMICALS, 2)
        genes = rng.sample(GENES, 2)
        sent = _pick(rng, CHEMPROT_TEMPLATES[label]).format(cell=_pick(rng, CELLS), chem2=chems[1], gene2=genes[1])
        pmid = 99000000 + split_no * 10000 + i // 3
        rows.append((f"{pmid}.T{2 * (i % 3) + 1}.T{2 * (i % 3) + 2}", sent, label))
    return rows


def mednli_rows(rng: random.Random, n: int, split: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug, prob, sym = _pick(rng, DRUGS), _pick(rng, PROBLEMS), _pick(rng, SYMPTOMS)
        other = _pick(rng, [p for p in PROBLEMS if p != prob])
        premise = _pick(rng, (f"Patient with a history of {prob} , on {drug} , presents with {sym} .",
                              f"{sym.capitalize()} for 2 days in a patient with known {prob} .",
                              f"The patient reports {sym} ; past medical history is notable for {prob} ."))
        label = ("entailment", "contradiction", "neutral")[i % 3]
        hyp = {"entailment": _pick(rng, (f"The patient has {prob} .", f"The patient has {sym} .")),
               "contradiction": _pick(rng, ("The patient has no medical history .", f"The patient denies {sym} .")),
               "neutral": _pick(rng, (f"The patient has {other} .", "The patient was recently hospitalized ."))}[label]
        rows.append({"sentence1": premise, "sentence2": hyp, "gold_label": label, "pairID": f"synthetic-{split}-{i:03d}"})
    return rows


def sts_rows(rng: random.Random, n: int) -> list[tuple[str, str, float]]:
    rows = []
    for i in range(n):
        drug, drug2 = rng.sample(DRUGS, 2)
        dose, prob, sym = rng.choice((5, 10, 20, 40)), _pick(rng, PROBLEMS), _pick(rng, SYMPTOMS)
        base = f"Patient was instructed to take {drug} {dose} mg by mouth daily for {prob}."
        kind = i % 6
        s2, score = {
            0: (f"Take {drug} {dose} mg orally once a day for {prob}.", 5.0),
            1: (f"Patient was instructed to take {drug} {dose * 2} mg by mouth daily for {prob}.", 4.0),
            2: (f"Patient was instructed to take {drug} by mouth.", 3.0),
            3: (f"Patient was instructed to take {drug2} {dose} mg by mouth daily for {prob}.", 2.0),
            4: (f"Patient was advised to continue {drug2} for {_pick(rng, PROBLEMS)}.", 1.0),
            5: (f"Patient reports {sym} since yesterday.", 0.0),
        }[kind]
        rows.append((base, s2, score) if rng.random() < 0.5 else (s2, base, score))
    return rows


def _med_line(drug: str, reason: str, rng: random.Random) -> str:
    return _pick(rng, (f"He was started on {drug} {rng.choice((5, 10, 20))} mg daily for {reason} .",
                       f"{drug.capitalize()} was continued for {reason} .",
                       f"She takes {drug} for {reason} at home ."))


def emrqa_split(rng: random.Random, n_questions: int, split: str) -> dict:
    data, qn, para_no = [], 0, 0
    while qn < n_questions:
        long = para_no == 0  # first context of each split is long (document stride)
        drugs = rng.sample(DRUGS, 4)
        lines = ["Admission Date : 01/01/2091", f"HISTORY OF PRESENT ILLNESS : {rng.randint(40, 90)} yo with "
                 f"{_pick(rng, PROBLEMS)} presenting with {_pick(rng, SYMPTOMS)} ."]
        reasons, ade_drug, ade = {}, drugs[3], _pick(rng, ADES)
        filler = [f"Vital signs were stable overnight and {_pick(rng, SYMPTOMS)} improved ." for _ in range(60 if long else 1)]
        answer_at = {}
        for d in drugs[:3]:
            reasons[d] = _pick(rng, PROBLEMS)
            line = _med_line(d, reasons[d], rng)
            offset = sum(len(x) + 1 for x in lines)
            answer_at[d] = offset + line.index(f"for {reasons[d]}") + 4
            lines.append(line)
            if long:
                lines += filler[:20]
                filler = filler[20:]
        lines.append(f"{ade_drug.capitalize()} was stopped because of {ade} .")
        context = "\n".join(lines) + "\n"
        qas = []
        for d in drugs[:3]:
            ans = reasons[d]
            start = answer_at[d]
            assert context[start:start + len(ans)] == ans
            qas.append({"id": f"{split}-{qn:03d}", "question": _pick(rng, (f"Why is the patient on {d} ?",
                        f"What is the reason for {d} ?")), "answers": [{"text": ans, "answer_start": start}],
                        "is_impossible": False})
            qn += 1
        qas.append({"id": f"{split}-{qn:03d}", "question": f"Why was {ade_drug} stopped ?",
                    "answers": [{"text": ade, "answer_start": context.rindex(ade)}], "is_impossible": False})
        qn += 1
        absent = _pick(rng, [d for d in DRUGS if d not in drugs])
        qas.append({"id": f"{split}-{qn:03d}", "question": f"Why is the patient on {absent} ?", "answers": [],
                    "is_impossible": True})
        qn += 1
        data.append({"title": f"synthetic-note-{split}-{para_no}", "paragraphs": [{"context": context, "qas": qas}]})
        para_no += 1
    return {"version": "v2.0", "data": data}


N2C2_README = """# n2c2 2018 relation-extraction sample

The synthetic n2c2 2018 brat sample with relations (`R<n><TAB><Attr>-Drug Arg1:T<a> Arg2:T<b>`) is
`data/ner_samples/brat_n2c2_2018/{train,dev,test}` (generated by `gatortron_jax.sample_data.ner`);
it is not duplicated here. Build relation candidates from it with
`gatortron_jax.finetuning.relations.build_relation_examples` (allowed pairs: `(<Attr>, Drug)`).
"""


def write_all(out: str, seed: int = 0) -> None:
    os.makedirs(out, exist_ok=True)
    for split_no, (split, n) in enumerate(SPLITS):
        rng = random.Random(f"{seed}-chemprot-{split}")
        d = os.path.join(out, "chemprot_style")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{split}.tsv"), "w", encoding="utf-8", newline="") as f:
            f.write("index\tsentence\tlabel\n")
            f.writelines(f"{a}\t{b}\t{c}\n" for a, b, c in chemprot_rows(rng, n, split_no))
        rng = random.Random(f"{seed}-mednli-{split}")
        d = os.path.join(out, "mednli_style")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"mli_{split}_v1.jsonl"), "w", encoding="utf-8", newline="") as f:
            f.writelines(json.dumps(r) + "\n" for r in mednli_rows(rng, n, split))
        rng = random.Random(f"{seed}-sts-{split}")
        d = os.path.join(out, "sts_style")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"clinicalsts_{split}.tsv"), "w", encoding="utf-8", newline="") as f:
            f.writelines(f"{a}\t{b}\t{c:.1f}\n" for a, b, c in sts_rows(rng, n))
        rng = random.Random(f"{seed}-emrqa-{split}")
        d = os.path.join(out, "emrqa_style")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{split}.json"), "w", encoding="utf-8", newline="") as f:
            json.dump(emrqa_split(rng, n, split), f, indent=1)
            f.write("\n")
    d = os.path.join(out, "n2c2_2018_re")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "README.md"), "w", encoding="utf-8", newline="") as f:
        f.write(N2C2_README)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="data/task_samples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_all(args.out, args.seed)


if __name__ == "__main__":
    main()
