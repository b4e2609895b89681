"""Synthetic clinical notes: a PHI-free stand-in corpus for tests, demos and smoke runs.

Real clinical text cannot ship with the repo, yet the pretraining pipeline, tokenizer and
MLM loss need text that *looks* clinical: section headers, abbreviations (HTN, DM2, s/p,
prn, q6h), dosages ("metoprolol tartrate 25 mg PO BID", "15 mg/kg"), lab values with units
and numbered assessment/plan items. Every note here is generated from templates; names are
drawn from invented lists, MRNs all start with ``99``, phone numbers use the fictional
555-01xx range and dates fall in 2091-2096 (as in date-shifted de-identified corpora), so
nothing can be mistaken for a real patient while still giving later de-id work realistic
PHI-shaped spans.

Variation (note type, header spelling, section order, template choice, verbosity) is what
gives an MLM something to learn, and the length spread (~80 to ~1500 words) makes some
notes exceed a 512-token window. Everything is a pure function of a ``random.Random``
passed in, so a seed fully determines the corpus.

This module holds the note types (history and physical, progress note, discharge summary),
their assembly and the corpus writer; patients and sections are built in
:mod:`gatortron_jax.sample_data.corpus_sections`, from the words and templates in
:mod:`gatortron_jax.sample_data.corpus_lexicon`.
"""

from __future__ import annotations

import argparse
import os
import random
from typing import Callable, Sequence

from gatortron_jax.sample_data import corpus_sections as sec
from gatortron_jax.sample_data.corpus_lexicon import (
    CLINICS, DAILY_EVENTS, EDUCATION, ETOH, FAMILY, FAMILY_DX, HEADERS, HOME_MEDS, LAST_NAMES, PANELS, PRN_MEDS, SOCIAL,
    SURGERIES, TOBACCO,
)

# --------------------------------------------------------------------------------------
# Note types.
# --------------------------------------------------------------------------------------


def _history_and_physical(rng: random.Random, p: sec.Patient, verbose: float) -> str:
    sections: list[tuple[str, str]] = [
        ("cc", rng.choice(p.scenario.cc)),
        ("hpi", sec.hpi(rng, p, verbose)),
        ("pmh", "\n".join(f"- {name}" + (f", dx {rng.randint(2070, 2090)}" if verbose > 0.7 and rng.random() < 0.5 else "")
                          for name in p.pmh.values())),
    ]
    history: list[tuple[str, str]] = [
        ("meds", sec.med_list(rng, p, numbered=rng.random() < 0.5)),
        ("allergies", sec.allergies(rng, p)),
    ]
    if verbose > 0.3:
        history.append(("psh", ", ".join(rng.sample(SURGERIES, rng.randint(1, 3)))))
    rng.shuffle(history)  # meds/allergies/PSH order varies between templates in real EHRs
    sections += history
    if verbose > 0.25:
        social = sec.fill(rng, rng.choice(SOCIAL), rel=rng.choice(("spouse", "daughter", "son", "partner")),
                       home=rng.choice(("a 2-story house", "an apartment", "assisted living")),
                       home_alone=rng.choice(("alone", "with family")), tob=sec.fill(rng, rng.choice(TOBACCO)),
                       etoh=rng.choice(ETOH), aid=rng.choice(("cane", "walker", "rollator")),
                       job=rng.choice(("Retired teacher", "Works as a mechanic", "Retired nurse", "On disability",
                                       "Works in IT")))
        sections.append(("social", social))
    if verbose > 0.4:
        sections.append(("family", sec.fill(rng, rng.choice(FAMILY), a=rng.choice(FAMILY_DX), b=rng.choice(FAMILY_DX),
                                         n=rng.randint(48, 72))))
    sections.append(("ros", sec.ros(rng, verbose)))
    objective = [("exam", sec.exam(rng, p, verbose)), ("labs", sec.labs(rng, p, verbose))]
    if rng.random() < 0.3:
        objective.reverse()
    sections += objective
    sections.append(("studies", sec.studies(rng, p, verbose)))
    sections.append(("ap", sec.assessment_summary(rng, p) + "\n" + sec.problem_plan(rng, p, verbose)))
    title = rng.choice(("History and Physical", "Admission H&P", "H&P", "Admission Note"))
    return _render(rng, p, title, p.admit, sections)


def _progress_note(rng: random.Random, p: sec.Patient, verbose: float) -> str:
    hd = rng.randint(2, max(2, p.los))
    date = sec.add_days(p.admit, hd - 1)
    s = p.scenario
    subjective = sec.sentence(rng.choice((
        "no acute events overnight", "NAEO", "overnight pt had {n} episodes of emesis, resolved with zofran",
        "pt reports feeling better this AM", "c/o poor sleep, otherwise doing ok")).format(n=rng.randint(2, 4)))
    subjective += " " + sec.sentence(rng.choice((
        f"{p.he} reports improvement in {rng.choice(s.cc)}", f"still endorses {rng.choice(s.cc)} but improving",
        "denies CP, SOB, N/V", "tolerating PO, ambulating in hallway with PT")))
    sections: list[tuple[str, str]] = [("subjective", subjective)]
    if verbose < 0.25:
        sections.append(("vitals", sec.vitals(rng, compact=True)))
        sections.append(("labs", sec.labs(rng, p, 0.0).split("\n")[0]))
    else:
        sections.append(("exam", sec.exam(rng, p, verbose)))
        sections.append(("labs", sec.labs(rng, p, verbose)))
        if verbose > 0.6:
            sections.append(("labs", sec.lab_trend(rng, p, min(hd, 5))))
            sections.append(("meds", "Scheduled:\n" + "\n".join(f"- {t}" for t in s.treatments)
                             + "\nPRN:\n" + "\n".join(f"- {sec.sig(rng, d)}" for d in rng.sample(PRN_MEDS, 2))))
        if verbose > 0.7:
            sections.append(("studies", sec.studies(rng, p, verbose)))
    summary = f"HD#{hd}. " + sec.assessment_summary(rng, p)
    sections.append(("ap", summary + "\n" + sec.problem_plan(rng, p, verbose)))
    title = rng.choice(("Progress Note", "Daily Progress Note", "Hospital Medicine Progress Note", "SOAP Note"))
    return _render(rng, p, title, date, sections)


def _med_reconciliation(rng: random.Random, p: sec.Patient) -> str:
    """Med rec table: every home med with indication and what happened to it."""
    lines = []
    for drug, dose, freq in p.home_meds:
        indication = next((p.pmh[c] for c in p.pmh if any(drug in g for g in HOME_MEDS[c])), "see PMH")
        status = rng.choice(("CONTINUE", "CONTINUE", "CONTINUE", "HOLD until follow-up", "CHANGE dose (see above)"))
        lines.append(f"- {drug.name} {dose} {drug.route} {freq} | Indication: {indication} | {status}")
    return "\n".join(lines) or "No home medications."


def _discharge_summary(rng: random.Random, p: sec.Patient, verbose: float) -> str:
    s = p.scenario
    discharge = sec.add_days(p.admit, p.los)
    course_items = [sec.sentence(sec.fill(rng, c)) for c in rng.sample(s.course, rng.randint(2, len(s.course)))]
    course = [f"# {sec.sentence(p.dx)[:-1]}: " + " ".join(course_items)]
    for c, name in p.pmh.items():
        if verbose < 0.3 and len(course) > 2:
            break
        course.append(f"# {name}: " + sec.sentence(sec.comorbidity_plan(rng, p, c, verbose)))
    if verbose > 0.6:
        days = list(range(2, min(p.los, 2 + int(6 * verbose)) + 1))
        lab = rng.choice(PANELS["BMP"])
        details = (
            f"{p.he} remained afebrile with stable vitals",
            f"labs notable for {lab} of {sec.lab_value(rng, lab, s)[0]}",
            "PT recommended home with outpatient PT", f"{p.he} was transitioned to PO medications",
            f"the {rng.choice(CLINICS)} team was consulted and agreed with the current plan",
            f"{p.he} had an episode of delirium overnight managed with reorientation, no antipsychotics required",
            f"Cr {sec.fill(rng, '{cr}')} → {rng.uniform(0.8, 1.4):.1f} with IVF",
        )
        events = rng.sample(DAILY_EVENTS, len(days))  # each day gets a different event
        for day, event, detail in zip(days, events, rng.sample(details, len(days))):
            course.append(sec.sentence(f"on HD#{day}, {event}") + " " + sec.sentence(detail))
    intro = sec.sentence(rng.choice((
        f"{p.age} y/o {p.sex} with {sec.pmh_phrase(p)} admitted {sec.fmt_date(p.admit, 0)} with {p.dx}",
        f"{p.name.split()[0]} is a {p.age} year old {p.man} with {sec.pmh_phrase(p)} who presented with "
        f"{rng.choice(s.cc)} and was found to have {p.dx}")))
    dc_meds = [sec.sig(rng, d, dose, freq) for d, dose, freq in p.home_meds]
    dc_meds += [sec.fill(rng, c, u=rng.choice((20, 24, 28))) for c in s.discharge_changes]
    sections: list[tuple[str, str]] = [
        ("meta", f"Admission Date: {sec.fmt_date(p.admit, 0)}\nDischarge Date: {sec.fmt_date(discharge, 0)}\n"
                 f"Attending: {p.attending}\nLength of stay: {p.los} days"),
        ("dc_dx", f"Principal: {p.dx}\nSecondary: " + sec.pmh_phrase(p)),
        ("hpi", intro + (" " + sec.hpi(rng, p, verbose) if verbose > 0.5 else "")),
        ("course", "\n".join(course)),
        ("studies", sec.studies(rng, p, verbose)),
    ]
    if verbose > 0.7:  # long summaries carry admission and discharge exams, as many real ones do
        sections.insert(3, ("ros", sec.ros(rng, verbose)))
        sections.insert(4, ("exam", "On admission:\n" + sec.exam(rng, p, verbose)))
        sections.append(("exam", "At discharge:\n" + sec.exam(rng, p, verbose * 0.5)))
    if verbose > 0.75:
        sections.append(("consults", sec.consults(rng, p)))
    if verbose > 0.45:
        sections.append(("labs", "On discharge:\n" + sec.labs(rng, p, verbose)))
    if verbose > 0.8:
        sections.append(("labs", sec.lab_trend(rng, p, min(p.los + 1, 6))))
    sections += [
        ("dc_meds", "\n".join(f"{i}. {m}" for i, m in enumerate(dc_meds, 1))),
        ("allergies", sec.allergies(rng, p)),
        ("dc_condition", rng.choice(("Stable. A&Ox3, ambulating independently.", "Good, tolerating diet, pain controlled.",
                                     "Fair; ambulates with walker, baseline mental status."))),
    ]
    if verbose > 0.55:
        issues = ("repeat BMP in 1 week given diuretic changes", "consider uptitrating GDMT as BP allows",
                  "f/u pending blood cultures (NGTD at discharge)", "outpatient colonoscopy if not done in past 10 years",
                  "recheck CBC at PCP visit", "confirm completion of antibiotic course",
                  "reassess need for home O2 at follow-up", "A1c {a1c}%: intensify regimen as outpatient")
        sections.append(("transitions", "\n".join(f"- {sec.fill(rng, x)}" for x in rng.sample(issues, rng.randint(2, 5)))))
    if verbose > 0.85:
        sections.append(("med_rec", _med_reconciliation(rng, p)))
        sections.append(("education", " ".join(rng.sample(EDUCATION, rng.randint(3, len(EDUCATION))))))
    if verbose > 0.3:
        sections.append(("instructions", " ".join(rng.sample((
            "Return to the ED for CP, SOB, fevers > 101F, or any other concerning symptoms.",
            "Weigh yourself every morning; call if weight increases by more than 3 lbs in a day or 5 lbs in a week.",
            "Take all medications as prescribed; do not take ibuprofen or naproxen.",
            "Check blood sugars before meals and at bedtime and bring the log to your appointment.",
            "Activity as tolerated. No driving while taking oxycodone.",
            "Follow a low-sodium (2 g) diet.",
            "You were in the hospital because of " + p.dx + ". We treated you with " + rng.choice(s.treatments) + "."),
            rng.randint(2, 5)))))
    followups = [f"- {rng.choice(CLINICS).capitalize()} clinic with Dr. {rng.choice(LAST_NAMES)} in "
                 f"{rng.choice(('1 week', '1-2 weeks', '2 weeks', '4-6 weeks'))}" for _ in range(rng.randint(1, 3))]
    followups.append(f"- PCP within 7 days; labs (BMP, CBC) at f/u. Clinic phone 555-01{rng.randint(10, 99)}")
    sections.append(("followup", "\n".join(followups)))
    title = rng.choice(("Discharge Summary", "DISCHARGE SUMMARY", "Hospital Discharge Summary"))
    return _render(rng, p, title, discharge, sections)


def _render(rng: random.Random, p: sec.Patient, title: str, date: tuple[int, int, int],
            sections: list[tuple[str, str]]) -> str:
    """Join sections; header style (own line vs inline) and blank-line spacing vary per note."""
    inline = rng.random() < 0.35
    parts = [sec.header(rng, p, title, date)]
    for key, body in sections:
        if key == "meta":
            parts.append(body)
            continue
        header = rng.choice(HEADERS[key])
        parts.append(f"{header} {body}" if inline and "\n" not in body else f"{header}\n{body}")
    parts.append(sec.signature(rng, p, date))
    return ("\n\n" if rng.random() < 0.7 else "\n").join(parts) + "\n"


NOTE_TYPES: tuple[tuple[Callable[[random.Random, sec.Patient, float], str], float], ...] = (
    (_progress_note, 0.4), (_history_and_physical, 0.35), (_discharge_summary, 0.25),
)


def generate_note(rng: random.Random, note_id: int) -> str:
    """Generate one synthetic note. All randomness comes from ``rng`` (no global state).

    ``note_id`` is stamped into the first line so a file can be traced back to its call.
    """
    patient = sec.new_patient(rng)
    verbose = rng.random() ** 1.2  # skew toward shorter notes; the tail still reaches ~1500 words
    builders, weights = zip(*NOTE_TYPES)
    builder = rng.choices(builders, weights=weights)[0]
    return f"[Synthetic note #{note_id:05d} - not a real patient]\n" + builder(rng, patient, verbose)


def generate_corpus(num_notes: int, seed: int = 0) -> list[tuple[str, str]]:
    """``num_notes`` (doc_id, text) pairs; the same seed always yields the same corpus."""
    if num_notes < 0:
        raise ValueError(f"num_notes must be >= 0, got {num_notes}")
    rng = random.Random(seed)
    return [(f"note_{i:05d}", generate_note(rng, i)) for i in range(num_notes)]


def write_sample_corpus(out_dir: str, num_train: int = 400, num_validation: int = 40, seed: int = 0) -> dict:
    """Write ``out_dir/{train,validation}/note_NNNNN.txt`` (UTF-8) and return the counts.

    Validation notes continue the same random stream after the training notes, so the two
    splits never share a note and their file names (doc ids) are distinct. Stale
    ``note_*.txt`` files from an earlier, larger run are removed so counts stay exact.
    """
    notes = generate_corpus(num_train + num_validation, seed)
    splits = {"train": notes[:num_train], "validation": notes[num_train:]}
    counts: dict[str, int] = {}
    for split, docs in splits.items():
        split_dir = os.path.join(out_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        for name in os.listdir(split_dir):
            if name.startswith("note_") and name.endswith(".txt"):
                os.remove(os.path.join(split_dir, name))
        for doc_id, text in docs:
            with open(os.path.join(split_dir, f"{doc_id}.txt"), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        counts[split] = len(docs)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic clinical sample corpus.")
    parser.add_argument("--out", default="data/sample_corpus", help="output directory")
    parser.add_argument("--num-train", type=int, default=400)
    parser.add_argument("--num-validation", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write_sample_corpus(args.out, args.num_train, args.num_validation, args.seed)
    print(f"wrote {counts} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
