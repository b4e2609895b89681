"""The synthetic corpus's generation logic below the note level: a patient and the sections of a note.

:class:`Patient` holds everything a note needs to stay internally consistent (comorbidities in the
chart's one spelling, home meds, the admission scenario, dates); :func:`new_patient` draws one.
The section builders (HPI, vitals, med list, allergies, ROS, exam, labs and lab trends, studies,
problem-based plan, consults, header, signature) each turn a patient and a ``random.Random`` into
text, drawing words from :mod:`gatortron_jax.sample_data.corpus_lexicon`; ``verbose`` in [0, 1]
scales how much of each section is written. The note types that assemble them live in
:mod:`gatortron_jax.sample_data.corpus`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from gatortron_jax.sample_data.corpus_lexicon import (
    ALLERGIES, CLINICS, COMORBIDITY_NAMES, COMORBIDITY_PLANS, Drug, FACILITIES, FIRST_NAMES, HEADERS,
    HOME_MEDS, LABS, LAST_NAMES, NORMAL_EXAM, PANELS, PRN_MEDS, ROS_SYSTEMS, SCENARIOS, SERVICES, Scenario,
)

# --------------------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Patient:
    """Everything a note needs to stay internally consistent."""

    name: str
    age: int
    sex: str  # "M" or "F"
    mrn: str
    pmh: dict[str, str]  # comorbidity key -> the one spelling this patient's chart uses
    home_meds: list[tuple[Drug, str, str]]  # drug, dose, freq
    allergies: list[tuple[str, str]]
    scenario: Scenario
    dx: str
    admit: tuple[int, int, int]
    los: int
    attending: str
    facility: str

    @property
    def he(self) -> str:
        return "he" if self.sex == "M" else "she"

    @property
    def his(self) -> str:
        return "his" if self.sex == "M" else "her"

    @property
    def man(self) -> str:
        return "man" if self.sex == "M" else "woman"

    def own_med(self, comorbidity: str, default: str) -> str:
        """Name of the patient's drug for ``comorbidity`` so plans cite what is actually listed."""
        for drug, _, _ in self.home_meds:
            if any(drug in group for group in HOME_MEDS[comorbidity]):
                return drug.name
        return default


def fmt_date(date: tuple[int, int, int], style: int) -> str:
    y, m, d = date
    if style == 0:
        return f"{m:02d}/{d:02d}/{y}"
    if style == 1:
        return f"{y}-{m:02d}-{d:02d}"
    return f"{m}/{d}/{y % 100:02d}"


def add_days(date: tuple[int, int, int], days: int) -> tuple[int, int, int]:
    y, m, d = date
    d += days
    while d > 28:  # every synthetic month has 28 days; keeps the arithmetic trivial and valid
        d -= 28
        m += 1
        if m > 12:
            m, y = 1, y + 1
    return (y, m, d)


def fill(rng: random.Random, template: str, **extra: object) -> str:
    """Fill the shared numeric placeholders so templates can mention them freely."""
    values: dict[str, object] = {
        "days": rng.randint(2, 10), "n": rng.randint(2, 7), "day": rng.randint(2, 4),
        "w": rng.randint(62, 118), "cr": f"{rng.uniform(1.6, 3.2):.1f}", "spo2": rng.randint(89, 96),
        "u": rng.choice((20, 24, 28, 30, 36)), "hgb": f"{rng.uniform(7.4, 9.2):.1f}",
        "trop": f"{rng.uniform(0.2, 4.5):.2f}", "lac": f"{rng.uniform(0.8, 1.6):.1f}",
        "a1c": f"{rng.uniform(6.8, 11.5):.1f}", "q": rng.randint(2, 30),
    }
    values.update(extra)
    return template.format(**values)


def sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")


def join_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def sig(rng: random.Random, drug: Drug, dose: str | None = None, freq: str | None = None) -> str:
    dose = dose or rng.choice(drug.doses)
    freq = freq or rng.choice(drug.freqs)
    if rng.random() < 0.15:
        dose = dose.replace(" mg", "mg")  # "25mg" is as common as "25 mg" in real notes
    return f"{drug.name} {dose} {drug.route} {freq}"


def lab_value(rng: random.Random, name: str, scenario: Scenario | None) -> tuple[str, str]:
    """(value, " unit (H/L)") for one lab; scenario labs are drawn from their abnormal range."""
    unit, lo, hi, decimals = LABS[name]
    flag = ""
    if scenario is not None and name in scenario.labs:
        lo2, hi2 = scenario.labs[name]
        value = rng.uniform(lo2, hi2)
        flag = " (H)" if value > hi else (" (L)" if value < lo else "")
    else:
        span = hi - lo
        value = rng.uniform(lo - 0.05 * span, hi + 0.05 * span)
    text = f"{value:.{decimals}f}" if decimals else str(int(round(value)))
    return text, (f" {unit}" if unit else "") + flag


# --------------------------------------------------------------------------------------
# Section builders. ``verbose`` in [0, 1] scales how much of each section is written.
# --------------------------------------------------------------------------------------


def new_patient(rng: random.Random) -> Patient:
    comorbidities = rng.sample(sorted(COMORBIDITY_NAMES), rng.randint(1, 7))
    home_meds = []
    for c in comorbidities:
        for i, group in enumerate(HOME_MEDS[c]):
            if i == 0 or rng.random() < 0.45:
                drug = rng.choice(group)
                home_meds.append((drug, rng.choice(drug.doses), rng.choice(drug.freqs)))
    scenario = rng.choice(SCENARIOS)
    return Patient(
        name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        age=rng.randint(24, 94),
        sex=rng.choice("MF"),
        mrn="99" + "".join(str(rng.randint(0, 9)) for _ in range(6)),
        pmh={c: rng.choice(COMORBIDITY_NAMES[c]) for c in comorbidities},
        home_meds=home_meds,
        allergies=rng.sample(ALLERGIES, rng.choice((0, 0, 1, 1, 2, 3))),
        scenario=scenario,
        dx=rng.choice(scenario.dx),
        admit=(rng.randint(2091, 2096), rng.randint(1, 12), rng.randint(1, 28)),
        los=rng.randint(2, 9),
        attending=f"Dr. {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        facility=rng.choice(FACILITIES),
    )


def pmh_phrase(p: Patient) -> str:
    return join_list(list(p.pmh.values()))


def hpi(rng: random.Random, p: Patient, verbose: float) -> str:
    s = p.scenario
    n_sym = max(2, round(len(s.symptoms) * (0.4 + 0.6 * verbose)))
    symptoms = [fill(rng, x) for x in rng.sample(s.symptoms, min(n_sym, len(s.symptoms)))]
    opener = rng.choice((
        "{age} y/o {sex} w/ PMH of {pmh} who presents with {cc}.",
        "{age}-year-old {man} with a history of {pmh} presenting with {cc}.",
        "Pt is a {age}yo {sex} with {pmh} who p/w {cc}.",
        "{title} {last} is a {age} year old {man} with PMHx significant for {pmh}, here for {cc}.",
    )).format(age=p.age, sex=p.sex, man=p.man, pmh=pmh_phrase(p), cc=rng.choice(s.cc),
              title="Mr." if p.sex == "M" else "Ms.", last=p.name.split()[-1])
    body = [opener, sentence(f"{p.he} reports {symptoms[0]}")]
    if len(symptoms) > 1:
        lead = rng.choice(("also endorses ", "+ ", "associated with ", "also c/o "))
        body.append(sentence(lead + join_list(symptoms[1:])))
    negatives = rng.sample(("fevers", "chills", "chest pain", "syncope", "abdominal pain", "hematuria", "headache",
                            "recent travel", "sick contacts", "melena"), rng.randint(2, 5))
    body.append(rng.choice(("Denies ", "No ", "Pt denies ")) + ", ".join(negatives) + ".")
    if verbose > 0.45:
        ed_vitals = vitals(rng, compact=True)
        body.append(sentence(rng.choice((f"in the ED, {ed_vitals}", f"on arrival to the ED {ed_vitals}",
                                          f"ED course: {ed_vitals}"))))
        body.append(sentence(f"{p.he} received " + join_list(rng.sample(s.treatments, min(2, len(s.treatments))))))
    if verbose > 0.8:
        body.append(sentence(rng.choice((
            "per outside records, {he} was admitted to another facility {n} months ago with similar symptoms and "
            "was discharged on a prolonged course of oral medications",
            "of note, {his} home medications were recently changed by {his} PCP, who increased one of {his} doses "
            "about {n} weeks ago; {he} is unsure of which one",
            "{he} lives independently and manages {his} own medications with a pill box, and {his} family checks "
            "on {him} daily")).format(he=p.he, his=p.his, him="him" if p.sex == "M" else "her", n=rng.randint(2, 9))))
    if verbose > 0.65:
        extra = [
            f"{p.his} symptoms have been gradually worsening and {p.he} was unable to manage at home",
            f"of note, {p.he} was seen in clinic {rng.randint(1, 6)} weeks ago and was at {p.his} baseline",
            f"{p.he} has had {rng.randint(1, 3)} admissions in the past year for similar symptoms",
            "history obtained from the patient and family at bedside, who corroborate the above",
            f"{p.he} reports adherence to {p.his} medications, although {p.he} ran out of one refill last week",
            f"at baseline {p.he} walks about {rng.randint(1, 4)} blocks before needing to rest",
            f"ROS is otherwise notable for {rng.choice(('poor sleep', 'decreased appetite', 'mild fatigue'))}",
        ]
        body += [sentence(x) for x in rng.sample(extra, rng.randint(2, 4))]
    return " ".join(body)


def vitals(rng: random.Random, compact: bool = False) -> str:
    t = round(rng.uniform(36.4, 39.3), 1)
    temp = f"T {t}" + rng.choice((" C", "°C", "C", "")) if rng.random() < 0.8 else f"Tmax {t}"
    o2 = rng.choice(("RA", "2L NC", "4L NC", "RA", "BiPAP"))
    parts = [temp, f"HR {rng.randint(58, 138)}", f"BP {rng.randint(88, 182)}/{rng.randint(48, 104)}",
             f"RR {rng.randint(12, 30)}", f"SpO2 {rng.randint(86, 100)}% on {o2}"]
    if not compact and rng.random() < 0.5:
        parts.append(f"Wt {round(rng.uniform(48, 140), 1)} kg")
    return ", ".join(parts) if compact or rng.random() < 0.6 else "  ".join(parts)


def med_list(rng: random.Random, p: Patient, numbered: bool) -> str:
    meds = [sig(rng, drug, dose, freq) for drug, dose, freq in p.home_meds]
    if rng.random() < 0.5:
        meds += [sig(rng, d) for d in rng.sample(PRN_MEDS, rng.randint(1, 2))]
    if not meds:
        return "None."
    if numbered:
        return "\n".join(f"{i}. {m}" for i, m in enumerate(meds, 1))
    return "\n".join(f"- {m}" for m in meds)


def allergies(rng: random.Random, p: Patient) -> str:
    if not p.allergies:
        return rng.choice(("NKDA", "No known drug allergies.", "NKDA."))
    return "; ".join(f"{a} ({r})" if rng.random() < 0.7 else f"{a} - {r}" for a, r in p.allergies)


def ros(rng: random.Random, verbose: float) -> str:
    if verbose < 0.5 and rng.random() < 0.6:
        return rng.choice(("10-point ROS negative except as per HPI.", "ROS otherwise negative.",
                           "All other systems reviewed and negative.", "Unable to obtain 2/2 patient mental status."))
    lines = []
    for system, items in ROS_SYSTEMS.items():
        if rng.random() < 0.25 and verbose < 0.8:
            continue
        picked = rng.sample(items, rng.randint(1, len(items)))
        if rng.random() < 0.2:
            lines.append(f"{system}: + {picked[0]}; denies {', '.join(picked[1:]) or 'other symptoms'}")
        else:
            lines.append(f"{system}: " + rng.choice(("denies ", "negative for ", "no ")) + ", ".join(picked))
    return "\n".join(lines)


def exam(rng: random.Random, p: Patient, verbose: float) -> str:
    lines = [f"{rng.choice(HEADERS['vitals'])} {vitals(rng)}"]
    systems = list(NORMAL_EXAM)
    if verbose < 0.4:
        systems = [s for s in systems if s in ("General", "CV", "Lungs", "Abd", "Ext") or s in p.scenario.exam]
    for system in systems:
        if system in p.scenario.exam and rng.random() < 0.9:
            finding = fill(rng, rng.choice(p.scenario.exam[system]))
        else:
            k = 2 if verbose > 0.75 else 1  # long notes spell out a second normal finding per system
            finding = "; ".join(rng.sample(NORMAL_EXAM[system], min(k, len(NORMAL_EXAM[system]))))
        lines.append(f"{system}: {finding}")
    for system, findings in p.scenario.exam.items():
        if system not in systems:
            lines.append(f"{system}: {fill(rng, rng.choice(findings))}")
    return "\n".join(lines)


def labs(rng: random.Random, p: Patient, verbose: float) -> str:
    names = list(PANELS["CBC"]) + list(PANELS["BMP"])
    names += [n for n in p.scenario.labs if n not in names]
    if verbose > 0.6:
        names += [n for n in rng.sample(PANELS["Other"], 3) if n not in names]
    style = rng.randrange(3)
    values = {n: lab_value(rng, n, p.scenario) for n in names}
    if style == 0:  # one lab per line with units and flags
        return "\n".join(f"{n}: {v}{u}" for n, (v, u) in values.items())
    if style == 1:  # compact inline run, units dropped (as clinicians type them)
        return ", ".join(f"{n} {v}" for n, (v, _) in values.items()) + "."
    bmp = "/".join(values[n][0] for n in PANELS["BMP"])
    cbc = " > ".join(values[n][0] for n in ("WBC", "Hgb", "Plt"))
    extra = "; ".join(f"{n} {v}{u}" for n, (v, u) in values.items() if n not in PANELS["BMP"] + PANELS["CBC"])
    return f"CBC: {cbc} (Hct {values['Hct'][0]})\nBMP: {bmp}" + (f"\nOther: {extra}" if extra else "")


def lab_trend(rng: random.Random, p: Patient, days: int) -> str:
    """A day-by-day lab table (as pasted into long notes); abnormal labs drift toward normal."""
    dates = [fmt_date(add_days(p.admit, d), 2) for d in range(days)]
    names = list(dict.fromkeys([*p.scenario.labs, "WBC", "Hgb", "Plt", "Na", "K", "BUN", "Cr"]))
    rows = ["Lab".ljust(10) + "  ".join(d.rjust(8) for d in dates)]
    for name in names:
        unit, lo, hi, decimals = LABS[name]
        start = float(lab_value(rng, name, p.scenario)[0])
        target = start + (rng.uniform(lo, hi) - start) * rng.uniform(0.4, 0.9)  # partial recovery
        cells = []
        for d in range(days):
            v = start + (target - start) * d / max(1, days - 1) + rng.uniform(-0.03, 0.03) * (hi - lo)
            cells.append((f"{v:.{decimals}f}" if decimals else str(int(round(v)))).rjust(8))
        rows.append(name.ljust(10) + "  ".join(cells))
    return "\n".join(rows)


def studies(rng: random.Random, p: Patient, verbose: float) -> str:
    picks = rng.sample(p.scenario.studies, rng.randint(1, len(p.scenario.studies)))
    lines = [f"- {fill(rng, s)}" for s in picks]
    if verbose > 0.7:
        lines.append(rng.choice((
            "- CXR (portable, AP): Lines and tubes: none. Heart size is {size}. Mediastinal contours are unremarkable. "
            "There is {lung}. No pneumothorax. Osseous structures are intact. IMPRESSION: {imp}.",
            "- TTE: LV cavity size is normal. LVEF estimated at {ef}% by Simpson's biplane. Grade {g} diastolic dysfunction. "
            "RV size and function are normal. No pericardial effusion. IVC {ivc}.",
        )).format(size=rng.choice(("normal", "mildly enlarged", "enlarged")),
                  lung=rng.choice(("no focal consolidation", "patchy opacity at the right base",
                                   "mild interstitial edema", "a small left pleural effusion")),
                  imp=rng.choice(("no acute cardiopulmonary process", "findings may represent pneumonia in the "
                                  "appropriate clinical setting", "mild pulmonary edema")),
                  ef=rng.choice((25, 35, 45, 55, 60, 65)), g=rng.randint(1, 3),
                  ivc=rng.choice(("is dilated with < 50% inspiratory collapse", "is normal in size and collapses > 50%"))))
    return "\n".join(lines)


def comorbidity_plan(rng: random.Random, p: Patient, c: str, verbose: float) -> str:
    k = 1 + int(verbose > 0.5) + int(verbose > 0.8)
    picks = rng.sample(COMORBIDITY_PLANS[c], min(k, len(COMORBIDITY_PLANS[c])))
    return "; ".join(fill(rng, x, med=p.own_med(c, "home regimen")) for x in picks)


def problem_plan(rng: random.Random, p: Patient, verbose: float) -> str:
    s = p.scenario
    lines = [f"1. {sentence(p.dx)[:-1]}"]
    if verbose > 0.4 and s.ddx:
        lines.append(sentence(rng.choice(("DDx includes ", "DDx: ", "also considered ")) +
                               join_list(rng.sample(s.ddx, rng.randint(2, len(s.ddx))))))
    lines += [f"- {t}" for t in rng.sample(s.treatments, rng.randint(1, len(s.treatments)))]
    extras = ["trend labs, BMP in AM", "monitor on telemetry", "PT/OT eval", "consult " + rng.choice(CLINICS),
              "f/u cultures", "repeat imaging if not improving", "goals of care discussion with family",
              "replete K to ≥ 4.0", "I/Os, daily standing weights", "fall precautions", "aspiration precautions"]
    lines += [f"- {e}" for e in rng.sample(extras, rng.randint(1, 2 + int(5 * verbose)))]
    for i, c in enumerate(p.pmh, 2):
        if verbose < 0.3 and i > 3:
            break
        lines.append(f"{i}. {p.pmh[c]}: {comorbidity_plan(rng, p, c, verbose)}")
    if verbose > 0.35:
        lines.append(rng.choice(("FEN: regular diet, replete lytes prn, no IVF", "F/E/N: cardiac diet, K > 4, Mg > 2",
                                 "FEN: NPO after midnight for procedure")))
        lines.append(rng.choice(("PPx: heparin 5000 units SC q8h", "DVT ppx: enoxaparin 40 mg SC daily",
                                 "PPx: SCDs given bleeding risk", "DVT ppx: enoxaparin 0.5 mg/kg SC daily (BMI > 40)")))
        lines.append("Code: " + rng.choice(("Full code", "DNR/DNI", "Full (confirmed with patient)")))
        lines.append("Dispo: " + rng.choice(("pending clinical improvement, likely home in 2-3 days",
                                             "anticipate discharge home with VNA", "may need SNF, CM consulted")))
    return "\n".join(lines)


def consults(rng: random.Random, p: Patient) -> str:
    lines = []
    for clinic in rng.sample(CLINICS, rng.randint(1, 3)):
        rec = rng.choice((
            "agree with current management, will follow peripherally",
            "recommend outpatient follow-up within 2 weeks and repeat labs prior",
            "recommend uptitrating home regimen as BP and renal function allow",
            "no acute intervention needed; signed off on HD#{n}",
            "recommend additional imaging as outpatient; discussed with patient at bedside",
        ))
        lines.append(f"- {clinic.capitalize()}: {fill(rng, rec)}")
    return "\n".join(lines)


def signature(rng: random.Random, p: Patient, date: tuple[int, int, int]) -> str:
    return rng.choice((
        f"Electronically signed by {p.attending}, MD on {fmt_date(date, 0)} at "
        f"{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}",
        f"{p.attending}, MD\nPager 555-01{rng.randint(10, 99)}",
        f"Seen and examined with resident. Agree with above. -- {p.attending}",
    ))


def header(rng: random.Random, p: Patient, title: str, date: tuple[int, int, int]) -> str:
    style = rng.randrange(3)
    lines = [title if style else title.upper()]
    if style != 2:
        dob = (p.admit[0] - p.age, rng.randint(1, 12), rng.randint(1, 28))
        lines.append(f"Patient: {p.name}    MRN: {p.mrn}    DOB: {fmt_date(dob, 0)}")
    lines.append(f"Date of Service: {fmt_date(date, style)}    Service: {rng.choice(SERVICES)}")
    if rng.random() < 0.5:
        lines.append(f"Facility: {p.facility}")
    return "\n".join(lines)


def assessment_summary(rng: random.Random, p: Patient) -> str:
    return sentence(rng.choice((
        f"{p.age} y/o {p.sex} with {pmh_phrase(p)} admitted with {p.dx}",
        f"{p.age}yo {p.man} w/ {pmh_phrase(p)} here with {p.dx}, hemodynamically stable",
        f"in summary, this is a {p.age} year old {p.man} presenting with {p.dx}",
    )))
