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
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
from typing import Callable, Sequence

# --------------------------------------------------------------------------------------
# Invented identities (clearly fake: see module docstring).
# --------------------------------------------------------------------------------------
FIRST_NAMES = (
    "Avery", "Blake", "Corin", "Dana", "Ellis", "Farah", "Gideon", "Harlow", "Imani",
    "Jonah", "Kestrel", "Lorna", "Milo", "Nadia", "Orrin", "Priya", "Quentin", "Rosalind",
    "Silas", "Tamsin", "Ulric", "Vera", "Wendell", "Xiomara", "Yusuf", "Zelda", "Marisol",
    "Theo", "Ingrid", "Bartholomew", "Delphine", "Everett", "Lucinda", "Rafferty",
)
LAST_NAMES = (
    "Quillfeather", "Brambleton", "Ostrander", "Vexley", "Marchetti-Lowe", "Thistlewood",
    "Okonkwo-Hart", "Pennywhistle", "Dunmarrow", "Fairweather", "Glasscock-Ruiz", "Hollowell",
    "Ivanova-Pike", "Jessamine", "Kettleburn", "Lindqvist", "Moorcroft", "Nettleford",
    "Oakhurst", "Pemberley", "Quarrington", "Rookwood", "Sablewood", "Tindall-Osei",
    "Umberfield", "Valcourt", "Winterbourne", "Yarborough", "Zellweger-Finch", "Ashgrove",
)
FACILITIES = (
    "Synthetic General Hospital", "Example Regional Medical Center", "Fictional Valley Hospital",
    "Placeholder University Health", "Sample County Medical Center",
)
SERVICES = ("Hospital Medicine", "Internal Medicine", "Cardiology", "Family Medicine", "Nephrology")
CLINICS = ("cardiology", "nephrology", "pulmonology", "endocrinology", "primary care", "GI", "neurology")

# --------------------------------------------------------------------------------------
# Medications.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Drug:
    """One orderable: the pieces of a "name dose route frequency" sig."""

    name: str
    doses: tuple[str, ...]
    route: str
    freqs: tuple[str, ...]


def _d(name: str, doses: str, route: str, freqs: str) -> Drug:
    return Drug(name, tuple(doses.split("|")), route, tuple(freqs.split("|")))


# Home medications keyed by the comorbidity they treat: a tuple of groups of alternatives.
# A patient gets at most one drug per group (never apixaban *and* warfarin), and the first
# group is always filled so every listed comorbidity is treated.
HOME_MEDS: dict[str, tuple[tuple[Drug, ...], ...]] = {
    "HTN": (
        (_d("lisinopril", "5 mg|10 mg|20 mg|40 mg", "PO", "daily"),
         _d("losartan", "25 mg|50 mg|100 mg", "PO", "daily")),
        (_d("amlodipine", "2.5 mg|5 mg|10 mg", "PO", "daily"),),
        (_d("hydrochlorothiazide", "12.5 mg|25 mg", "PO", "daily|qAM"),
         _d("chlorthalidone", "12.5 mg|25 mg", "PO", "daily")),
    ),
    "DM2": (
        (_d("metformin", "500 mg|850 mg|1000 mg", "PO", "BID|daily with breakfast"),
         _d("metformin ER", "500 mg|1000 mg", "PO", "daily with dinner")),
        (_d("insulin glargine", "10 units|18 units|24 units|32 units", "SC", "qHS|daily"),
         _d("insulin degludec", "12 units|20 units", "SC", "daily")),
        (_d("insulin lispro", "4 units|6 units|8 units", "SC", "TID AC|with meals per sliding scale"),),
        (_d("empagliflozin", "10 mg|25 mg", "PO", "daily"),
         _d("semaglutide", "0.25 mg|0.5 mg|1 mg", "SC", "weekly"),
         _d("glipizide", "2.5 mg|5 mg|10 mg", "PO", "daily|BID")),
    ),
    "HLD": (
        (_d("atorvastatin", "10 mg|20 mg|40 mg|80 mg", "PO", "daily|qHS"),
         _d("rosuvastatin", "5 mg|10 mg|20 mg", "PO", "daily"),
         _d("pravastatin", "20 mg|40 mg", "PO", "qHS")),
        (_d("ezetimibe", "10 mg", "PO", "daily"),),
    ),
    "CAD": (
        (_d("aspirin", "81 mg", "PO", "daily"),),
        (_d("metoprolol succinate", "25 mg|50 mg|100 mg", "PO", "daily"),),
        (_d("clopidogrel", "75 mg", "PO", "daily"),),
        (_d("nitroglycerin", "0.4 mg", "SL", "q5min prn chest pain, max 3 doses"),),
    ),
    "CHF": (
        (_d("furosemide", "20 mg|40 mg|80 mg", "PO", "daily|BID"),
         _d("torsemide", "10 mg|20 mg|40 mg", "PO", "daily")),
        (_d("carvedilol", "3.125 mg|6.25 mg|12.5 mg|25 mg", "PO", "BID"),),
        (_d("sacubitril-valsartan", "24-26 mg|49-51 mg", "PO", "BID"),),
        (_d("spironolactone", "12.5 mg|25 mg", "PO", "daily"),),
        (_d("dapagliflozin", "10 mg", "PO", "daily"),),
    ),
    "AFib": (
        (_d("apixaban", "2.5 mg|5 mg", "PO", "BID"),
         _d("warfarin", "2 mg|5 mg|7.5 mg", "PO", "daily, dose per INR clinic"),
         _d("rivaroxaban", "15 mg|20 mg", "PO", "daily with dinner")),
        (_d("metoprolol tartrate", "12.5 mg|25 mg|50 mg", "PO", "BID"),
         _d("diltiazem ER", "120 mg|180 mg|240 mg", "PO", "daily")),
    ),
    "COPD": (
        (_d("albuterol HFA", "2 puffs (90 mcg/puff)", "inhaled", "q4h prn SOB/wheezing|q6h prn"),),
        (_d("tiotropium", "18 mcg", "inhaled", "daily"),),
        (_d("fluticasone-salmeterol", "250/50 mcg", "inhaled", "BID"),
         _d("budesonide-formoterol", "160/4.5 mcg, 2 puffs", "inhaled", "BID")),
    ),
    "CKD": (
        (_d("sodium bicarbonate", "650 mg", "PO", "BID|TID"),),
        (_d("calcitriol", "0.25 mcg|0.25 µg", "PO", "daily"),),
        (_d("sevelamer", "800 mg", "PO", "TID with meals"),),
    ),
    "hypothyroidism": ((_d("levothyroxine", "50 mcg|75 mcg|88 mcg|112 mcg|100 µg", "PO", "daily before breakfast"),),),
    "GERD": ((_d("omeprazole", "20 mg|40 mg", "PO", "daily|BID"), _d("pantoprazole", "40 mg", "PO", "daily"),
              _d("famotidine", "20 mg", "PO", "BID")),),
    "depression": ((_d("sertraline", "50 mg|100 mg", "PO", "daily"), _d("escitalopram", "10 mg|20 mg", "PO", "daily"),
                    _d("bupropion XL", "150 mg|300 mg", "PO", "qAM")),),
    "OSA": (),
    "obesity": (),
    "gout": ((_d("allopurinol", "100 mg|300 mg", "PO", "daily"),), (_d("colchicine", "0.6 mg", "PO", "daily prn flare"),)),
    "BPH": ((_d("tamsulosin", "0.4 mg", "PO", "qHS"),), (_d("finasteride", "5 mg", "PO", "daily"),)),
}
PRN_MEDS = (
    _d("acetaminophen", "500 mg|650 mg|1000 mg", "PO", "q6h prn pain/fever|q8h prn"),
    _d("ondansetron", "4 mg", "IV", "q8h prn nausea"),
    _d("melatonin", "3 mg", "PO", "qHS prn insomnia"),
    _d("senna", "8.6 mg", "PO", "BID prn constipation"),
    _d("docusate", "100 mg", "PO", "BID"),
    _d("oxycodone", "5 mg", "PO", "q4h prn severe pain"),
)

COMORBIDITY_NAMES: dict[str, tuple[str, ...]] = {
    "HTN": ("HTN", "hypertension", "essential hypertension"),
    "DM2": ("DM2", "T2DM", "type 2 diabetes mellitus", "DMII, insulin-requiring"),
    "HLD": ("HLD", "hyperlipidemia", "dyslipidemia"),
    "CAD": ("CAD s/p PCI to LAD", "CAD s/p CABG x3", "coronary artery disease", "CAD s/p DES to RCA"),
    "CHF": ("HFrEF (EF 30-35%)", "CHF", "chronic systolic heart failure", "HFpEF"),
    "AFib": ("paroxysmal AFib on anticoagulation", "atrial fibrillation", "PAF", "persistent AF"),
    "COPD": ("COPD", "COPD on 2L home O2", "COPD (GOLD stage 3)"),
    "CKD": ("CKD stage 3b", "CKD 3a", "chronic kidney disease stage 4"),
    "hypothyroidism": ("hypothyroidism", "hypothyroid"),
    "GERD": ("GERD", "gastroesophageal reflux"),
    "depression": ("depression", "MDD", "major depressive disorder"),
    "OSA": ("OSA on CPAP", "obstructive sleep apnea"),
    "obesity": ("obesity (BMI 38)", "morbid obesity", "obesity"),
    "gout": ("gout", "gouty arthritis"),
    "BPH": ("BPH", "benign prostatic hyperplasia"),
}
# Plan fragments per comorbidity; verbose notes join several. {med} is the patient's own drug.
COMORBIDITY_PLANS: dict[str, tuple[str, ...]] = {
    "HTN": ("BP acceptable, continue home {med}", "hold antihypertensives for SBP < 100",
            "resume home regimen as BP tolerates", "BP goal < 130/80 as outpatient", "hydralazine 10 mg IV q6h prn SBP > 180"),
    "DM2": ("A1c {a1c}%, hold metformin while inpatient", "SSI with lispro, goal BG 140-180",
            "continue basal glargine at reduced dose (80% of home)", "FSBG AC/HS", "hypoglycemia protocol",
            "diabetic diet, consult diabetes educator"),
    "HLD": ("continue statin", "continue high-intensity statin", "lipid panel in AM"),
    "CAD": ("no active angina, continue ASA and statin", "continue DAPT", "EKG without acute ST changes",
            "troponin x2 negative", "continue beta blocker, hold for HR < 55"),
    "CHF": ("euvolemic on exam, continue GDMT", "strict I/Os, daily weights", "2 g Na diet, 1.5 L fluid restriction",
            "last TTE with EF {n}0%", "hold spironolactone while K elevated"),
    "AFib": ("rate controlled, continue {med}", "CHA2DS2-VASc {n}", "continue anticoagulation unless bleeding",
             "keep K ≥ 4 and Mg ≥ 2", "telemetry"),
    "COPD": ("no wheezing, continue home inhalers", "duonebs q6h prn", "titrate O2 to SpO2 88-92%",
             "not in exacerbation", "incentive spirometry"),
    "CKD": ("Cr near baseline", "renally dose meds, avoid nephrotoxins", "trend BMP",
            "avoid NSAIDs and IV contrast", "baseline Cr ~{cr}"),
    "hypothyroidism": ("continue levothyroxine", "TSH within normal limits, continue home dose"),
    "GERD": ("continue PPI", "continue home {med}"),
    "depression": ("mood stable, continue home {med}", "SW following", "denies SI/HI"),
    "OSA": ("CPAP qHS", "patient to bring home CPAP machine"),
    "obesity": ("nutrition consult", "counseled on weight loss", "BMI {w}"),
    "gout": ("no flare, continue {med}", "hold colchicine while AKI"),
    "BPH": ("continue {med}", "bladder scan prn, straight cath for PVR > 400 mL"),
}
ALLERGIES = (
    ("penicillin", "rash"), ("sulfa drugs", "hives"), ("codeine", "nausea"), ("lisinopril", "angioedema"),
    ("iodinated contrast", "hives"), ("morphine", "pruritus"), ("latex", "contact dermatitis"),
    ("vancomycin", "red man syndrome"), ("shellfish", "anaphylaxis"), ("amoxicillin", "urticaria"),
)

# --------------------------------------------------------------------------------------
# Admission scenarios: what the patient came in with drives HPI, exam, labs and the plan.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A presenting problem with the vocabulary that goes with it."""

    dx: tuple[str, ...]
    cc: tuple[str, ...]
    symptoms: tuple[str, ...]
    exam: dict[str, tuple[str, ...]]
    labs: dict[str, tuple[float, float]]
    studies: tuple[str, ...]
    treatments: tuple[str, ...]
    course: tuple[str, ...]
    discharge_changes: tuple[str, ...]
    ddx: tuple[str, ...] = ()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        dx=("acute on chronic systolic CHF exacerbation", "ADHF", "acute decompensated heart failure"),
        cc=("SOB", "shortness of breath and leg swelling", "worsening DOE"),
        symptoms=("progressive DOE over {days} days", "3-pillow orthopnea", "PND", "bilateral LE edema",
                  "weight gain of {n} lbs", "dietary indiscretion over the holidays", "missed several doses of furosemide"),
        exam={"CV": ("JVP to the angle of the jaw", "S3 gallop", "JVD to 10 cm"),
              "Lungs": ("bibasilar crackles", "crackles halfway up bilaterally", "decreased BS at the bases"),
              "Ext": ("2+ pitting edema to the knees bilaterally", "3+ LE edema to the thighs")},
        labs={"BNP": (850, 3800), "Cr": (1.3, 2.2), "Na": (128, 134)},
        studies=("CXR: cephalization and small bilateral pleural effusions c/w pulmonary edema",
                 "TTE: LVEF 25-30%, moderate MR, RVSP 48 mmHg", "EKG: sinus tachycardia, LBBB, unchanged from prior"),
        treatments=("furosemide 40 mg IV BID", "furosemide 80 mg IV BID", "metolazone 2.5 mg PO x1"),
        course=("diuresed with IV furosemide with net negative {n} L over the admission",
                "dry weight estimated at {w} kg", "transitioned to PO torsemide on hospital day {day}",
                "Cr bumped to {cr} with diuresis and then returned to baseline",
                "GDMT was optimized and carvedilol was uptitrated"),
        discharge_changes=("NEW: torsemide 40 mg PO daily", "STOPPED: furosemide", "CHANGED: carvedilol increased to 12.5 mg PO BID"),
        ddx=("ACS", "PE", "worsening MR", "AKI with volume overload", "new arrhythmia"),
    ),
    Scenario(
        dx=("community-acquired pneumonia", "CAP", "RLL pneumonia", "multifocal pneumonia"),
        cc=("cough and fever", "productive cough", "fevers and SOB"),
        symptoms=("productive cough with yellow-green sputum x {days} days", "subjective fevers and chills",
                  "pleuritic chest pain on the right", "decreased PO intake", "sick contact at home"),
        exam={"Lungs": ("rhonchi over the RLL", "crackles at the right base with egophony", "diminished BS on the right"),
              "General": ("ill-appearing, mildly tachypneic",)},
        labs={"WBC": (12.5, 21.0), "Lactate": (1.8, 3.6), "Procalcitonin": (0.6, 8.5)},
        studies=("CXR: dense RLL consolidation, no effusion", "CT chest: multifocal consolidation, no PE",
                 "blood cultures x2: NGTD", "sputum culture: S. pneumoniae", "urine Legionella Ag negative"),
        treatments=("ceftriaxone 1 g IV q24h", "azithromycin 500 mg IV daily", "vancomycin 15 mg/kg IV q12h",
                    "cefepime 2 g IV q8h", "IVF 30 mL/kg bolus"),
        course=("started on ceftriaxone and azithromycin with defervescence by hospital day {day}",
                "O2 weaned from 4L NC to RA", "blood cultures remained negative",
                "transitioned to PO cefpodoxime to complete a {n}-day course",
                "MRSA nares swab negative so vancomycin was discontinued"),
        discharge_changes=("NEW: cefpodoxime 200 mg PO q12h x {n} more days", "NEW: guaifenesin 600 mg PO BID prn cough"),
        ddx=("aspiration pneumonia", "viral pneumonitis incl. COVID-19/influenza", "PE", "CHF"),
    ),
    Scenario(
        dx=("COPD exacerbation", "AECOPD", "acute hypoxic respiratory failure 2/2 COPD exacerbation"),
        cc=("wheezing", "SOB", "increased sputum"),
        symptoms=("increased work of breathing", "wheezing not relieved by home albuterol",
                  "increased sputum purulence", "URI symptoms for {days} days", "using rescue inhaler q2h"),
        exam={"Lungs": ("diffuse expiratory wheezes, prolonged expiratory phase", "poor air movement bilaterally"),
              "General": ("speaking in 3-4 word sentences, using accessory muscles",)},
        labs={"pCO2": (48, 68), "WBC": (9.0, 14.5)},
        studies=("CXR: hyperinflation, no focal consolidation", "VBG 7.31/62/38", "resp viral panel: rhinovirus positive"),
        treatments=("methylprednisolone 40 mg IV q12h", "prednisone 40 mg PO daily", "duonebs q4h",
                    "doxycycline 100 mg PO BID", "BiPAP 12/5"),
        course=("required BiPAP overnight on admission and was weaned to NC by the next morning",
                "treated with steroids, scheduled duonebs and doxycycline", "ambulatory SpO2 on RA was {spo2}%",
                "seen by pulmonary rehab"),
        discharge_changes=("NEW: prednisone 40 mg PO daily x {n} more days", "NEW: doxycycline 100 mg PO BID x 3 days"),
        ddx=("pneumonia", "PE", "CHF exacerbation", "PTX"),
    ),
    Scenario(
        dx=("diabetic ketoacidosis", "DKA", "DKA in setting of insulin nonadherence"),
        cc=("nausea and vomiting", "abdominal pain", "polyuria and polydipsia"),
        symptoms=("N/V x {days} days", "diffuse abdominal pain", "polyuria and polydipsia", "ran out of insulin",
                  "generalized weakness", "fruity breath per family"),
        exam={"General": ("dry mucous membranes, Kussmaul respirations", "ill-appearing, tachypneic"),
              "Abd": ("diffusely tender without rebound or guarding",)},
        labs={"Glucose": (380, 690), "HCO3": (7, 15), "Anion gap": (22, 34), "K": (5.2, 6.1), "BHB": (4.5, 9.8)},
        studies=("UA: 3+ glucose, 3+ ketones", "VBG pH 7.12", "lipase WNL"),
        treatments=("insulin gtt per DKA protocol", "LR 1 L bolus x2 then 150 mL/h", "KCl 20 mEq IV per protocol"),
        course=("gap closed at hour {n} and transitioned to SC insulin with 2-hour overlap",
                "seen by endocrinology and diabetes educator", "K repleted per protocol",
                "tolerating diet by hospital day {day}"),
        discharge_changes=("CHANGED: insulin glargine increased to {u} units SC qHS", "NEW: insulin lispro 6 units SC TID AC"),
        ddx=("HHS", "alcoholic ketoacidosis", "pancreatitis", "gastroenteritis"),
    ),
    Scenario(
        dx=("acute kidney injury", "AKI on CKD", "prerenal AKI"),
        cc=("decreased urine output", "weakness", "abnormal labs"),
        symptoms=("poor PO intake for {days} days", "diarrhea", "dizziness on standing", "recent NSAID use for back pain",
                  "decreased UOP"),
        exam={"General": ("dry mucous membranes",), "CV": ("tachycardic, no murmurs",)},
        labs={"Cr": (2.4, 5.1), "BUN": (45, 98), "K": (5.3, 6.4), "HCO3": (15, 20)},
        studies=("renal US: no hydronephrosis", "FENa 0.4%", "UA bland, no casts"),
        treatments=("LR 1 L bolus", "NS at 100 mL/h", "sodium zirconium cyclosilicate 10 g PO x1",
                    "calcium gluconate 1 g IV x1"),
        course=("Cr improved from {cr} to baseline with IVF", "lisinopril and NSAIDs were held",
                "hyperkalemia resolved with Lokelma", "renally dosed medications"),
        discharge_changes=("STOPPED: ibuprofen", "HOLD: lisinopril until PCP follow-up"),
        ddx=("ATN", "obstructive uropathy", "AIN", "cardiorenal syndrome"),
    ),
    Scenario(
        dx=("upper GI bleed", "UGIB 2/2 duodenal ulcer", "acute blood loss anemia"),
        cc=("black stools", "melena", "hematemesis"),
        symptoms=("melena x {days} days", "lightheadedness", "one episode of coffee-ground emesis",
                  "taking ibuprofen 800 mg TID for knee pain", "no prior EGD"),
        exam={"General": ("pale, diaphoretic",), "Abd": ("epigastric tenderness, no peritoneal signs",),
              "Rectal": ("melena on DRE",)},
        labs={"Hgb": (5.9, 8.3), "BUN": (38, 72), "INR": (1.0, 1.4)},
        studies=("EGD: 1.5 cm clean-based duodenal ulcer, no active bleeding", "H. pylori serology positive"),
        treatments=("pantoprazole 80 mg IV bolus then 40 mg IV BID", "transfused 2 units pRBC",
                    "octreotide gtt", "2 large-bore PIVs"),
        course=("received {n} units pRBC with appropriate Hgb response", "EGD on hospital day {day} showed a clean-based ulcer",
                "Hgb stable at {hgb} for 48 hours", "diet advanced after EGD", "started on H. pylori eradication therapy"),
        discharge_changes=("NEW: pantoprazole 40 mg PO BID x 8 weeks", "STOPPED: ibuprofen",
                           "NEW: bismuth quadruple therapy x 14 days"),
        ddx=("variceal bleed", "Mallory-Weiss tear", "gastritis", "malignancy"),
    ),
    Scenario(
        dx=("chest pain, r/o ACS", "NSTEMI", "unstable angina", "atypical chest pain"),
        cc=("chest pain", "chest pressure", "CP"),
        symptoms=("substernal chest pressure radiating to the L arm", "started at rest {n} hours PTA",
                  "associated diaphoresis and nausea", "partially relieved by SL nitro", "exertional CP for {days} days"),
        exam={"CV": ("RRR, no m/r/g", "regular rhythm, soft systolic murmur at the LUSB")},
        labs={"Troponin": (0.05, 3.2), "LDL": (110, 190)},
        studies=("EKG: 1 mm ST depressions in V4-V6", "EKG: NSR, no acute ST changes",
                 "LHC: 90% mid-LAD stenosis s/p DES", "stress test: no reversible ischemia"),
        treatments=("aspirin 325 mg PO x1", "heparin gtt per ACS nomogram", "atorvastatin 80 mg PO qHS",
                    "metoprolol tartrate 25 mg PO q6h", "nitroglycerin 0.4 mg SL q5min prn CP"),
        course=("troponin peaked at {trop} ng/mL", "underwent LHC on hospital day {day} with DES to the LAD",
                "started on DAPT and high-intensity statin", "remained CP free after revascularization"),
        discharge_changes=("NEW: ticagrelor 90 mg PO BID", "NEW: atorvastatin 80 mg PO daily",
                           "CHANGED: metoprolol succinate 50 mg PO daily"),
        ddx=("PE", "aortic dissection", "pericarditis", "GERD", "MSK chest wall pain"),
    ),
    Scenario(
        dx=("AFib with RVR", "atrial fibrillation with rapid ventricular response"),
        cc=("palpitations", "racing heart", "dizziness"),
        symptoms=("palpitations x {n} hours", "mild SOB", "no syncope", "missed metoprolol doses for {days} days"),
        exam={"CV": ("irregularly irregular, tachycardic to the 140s", "irregular rhythm, no murmurs")},
        labs={"TSH": (0.5, 3.9), "Mg": (1.5, 1.9)},
        studies=("EKG: AF with RVR, rate 148", "TTE: LVEF 55%, LA moderately dilated"),
        treatments=("diltiazem 10 mg IV x2", "diltiazem gtt 5-15 mg/h", "metoprolol tartrate 5 mg IV q5min x3",
                    "magnesium sulfate 2 g IV"),
        course=("rate controlled on diltiazem gtt and transitioned to PO", "converted to NSR spontaneously on hospital day {day}",
                "CHA2DS2-VASc {n}, started apixaban after shared decision making"),
        discharge_changes=("NEW: apixaban 5 mg PO BID", "CHANGED: diltiazem ER 240 mg PO daily"),
        ddx=("thyrotoxicosis", "infection", "volume depletion", "alcohol withdrawal"),
    ),
    Scenario(
        dx=("sepsis 2/2 pyelonephritis", "complicated UTI", "urosepsis", "acute pyelonephritis"),
        cc=("fever and flank pain", "dysuria", "confusion"),
        symptoms=("dysuria and frequency x {days} days", "R flank pain", "rigors", "new confusion per daughter",
                  "N/V, unable to keep down PO"),
        exam={"Abd": ("R CVA tenderness",), "Neuro": ("oriented x2, inattentive", "A&Ox3, nonfocal")},
        labs={"WBC": (14.0, 24.0), "Lactate": (2.2, 4.8), "Cr": (1.2, 2.0)},
        studies=("UA: >50 WBC, + nitrite, + LE", "urine culture: E. coli, pan-sensitive", "CT A/P: R perinephric stranding, no stone"),
        treatments=("ceftriaxone 1 g IV q24h", "piperacillin-tazobactam 4.5 g IV q6h", "NS 30 mL/kg bolus",
                    "norepinephrine 0.05 mcg/kg/min briefly"),
        course=("met sepsis criteria on arrival and received 30 mL/kg IVF", "lactate cleared to {lac}",
                "urine culture grew pan-sensitive E. coli", "narrowed to PO ciprofloxacin to complete {n} days"),
        discharge_changes=("NEW: ciprofloxacin 500 mg PO BID x {n} days",),
        ddx=("nephrolithiasis with obstruction", "perinephric abscess", "intra-abdominal process"),
    ),
    Scenario(
        dx=("LLE cellulitis", "RLE cellulitis without abscess", "purulent cellulitis"),
        cc=("leg redness", "leg swelling and pain"),
        symptoms=("spreading erythema of the leg x {days} days", "warmth and tenderness", "low-grade fevers",
                  "small abrasion from gardening"),
        exam={"Skin": ("10 x 14 cm area of erythema, warm, tender, borders marked", "erythema without fluctuance"),
              "Ext": ("1+ edema on the affected side",)},
        labs={"WBC": (10.5, 16.0), "CRP": (40, 180)},
        studies=("LE venous duplex: no DVT", "US soft tissue: no drainable fluid collection"),
        treatments=("cefazolin 2 g IV q8h", "vancomycin 15 mg/kg IV q12h", "elevation of the extremity"),
        course=("erythema receded from the marked borders within 48 hours", "transitioned to PO cephalexin",
                "no abscess on ultrasound"),
        discharge_changes=("NEW: cephalexin 500 mg PO QID x {n} days",),
        ddx=("DVT", "necrotizing fasciitis (low suspicion)", "stasis dermatitis", "gout flare"),
    ),
    Scenario(
        dx=("acute ischemic stroke", "L MCA stroke", "TIA"),
        cc=("R sided weakness", "slurred speech", "facial droop"),
        symptoms=("acute onset R arm weakness, LKW {n} hours PTA", "word-finding difficulty", "R facial droop",
                  "no headache or vision changes"),
        exam={"Neuro": ("R pronator drift, 4/5 strength RUE", "expressive aphasia, NIHSS {n}",
                        "R lower facial droop, sensation intact")},
        labs={"LDL": (120, 185), "A1c": (6.4, 9.8)},
        studies=("CT head: no hemorrhage", "CTA head/neck: no LVO", "MRI brain: small L MCA territory infarct",
                 "TTE with bubble: no PFO"),
        treatments=("aspirin 325 mg x1 then 81 mg daily", "clopidogrel 300 mg load then 75 mg daily",
                    "permissive HTN to 220/120", "atorvastatin 80 mg qHS"),
        course=("not a tPA candidate given time from LKW", "symptoms improved to NIHSS {n} by discharge",
                "evaluated by PT/OT/SLP, cleared for regular diet", "telemetry without AF"),
        discharge_changes=("NEW: clopidogrel 75 mg PO daily x 21 days", "NEW: atorvastatin 80 mg PO daily"),
        ddx=("hypoglycemia", "seizure with Todd paralysis", "ICH", "complex migraine"),
    ),
)

# --------------------------------------------------------------------------------------
# Labs: (unit, normal low, normal high, decimals). Scenario overrides move values out of range.
# --------------------------------------------------------------------------------------
LABS: dict[str, tuple[str, float, float, int]] = {
    "WBC": ("K/uL", 4.5, 10.5, 1), "Hgb": ("g/dL", 12.0, 15.5, 1), "Hct": ("%", 36.0, 46.0, 1),
    "Plt": ("K/uL", 160, 380, 0), "Na": ("mmol/L", 136, 144, 0), "K": ("mmol/L", 3.6, 4.9, 1),
    "Cl": ("mmol/L", 98, 107, 0), "HCO3": ("mmol/L", 22, 29, 0), "BUN": ("mg/dL", 8, 21, 0),
    "Cr": ("mg/dL", 0.7, 1.2, 2), "Glucose": ("mg/dL", 78, 135, 0), "Mg": ("mg/dL", 1.8, 2.4, 1),
    "Anion gap": ("mmol/L", 7, 13, 0), "Lactate": ("mmol/L", 0.6, 1.7, 1), "BNP": ("pg/mL", 20, 95, 0),
    "Troponin": ("ng/mL", 0.0, 0.03, 2), "Procalcitonin": ("ng/mL", 0.02, 0.09, 2), "INR": ("", 0.9, 1.1, 1),
    "TSH": ("mIU/L", 0.5, 4.0, 2), "A1c": ("%", 5.0, 5.6, 1), "LDL": ("mg/dL", 60, 99, 0),
    "CRP": ("mg/L", 0.5, 7.9, 1), "pCO2": ("mmHg", 36, 44, 0), "BHB": ("mmol/L", 0.0, 0.4, 1),
    "AST": ("U/L", 12, 38, 0), "ALT": ("U/L", 9, 41, 0), "Albumin": ("g/dL", 3.5, 5.0, 1),
}
PANELS = {
    "CBC": ("WBC", "Hgb", "Hct", "Plt"),
    "BMP": ("Na", "K", "Cl", "HCO3", "BUN", "Cr", "Glucose"),
    "Other": ("Mg", "Anion gap", "Lactate", "INR", "AST", "ALT", "Albumin"),
}

# --------------------------------------------------------------------------------------
# Header spellings: the same section under different names, as in real EHR exports.
# --------------------------------------------------------------------------------------
HEADERS: dict[str, tuple[str, ...]] = {
    "cc": ("CHIEF COMPLAINT:", "Chief Complaint:", "CC:"),
    "hpi": ("HISTORY OF PRESENT ILLNESS:", "History of Present Illness:", "HPI:"),
    "pmh": ("PAST MEDICAL HISTORY:", "Past Medical History:", "PMH:", "PMHx:"),
    "psh": ("PAST SURGICAL HISTORY:", "Past Surgical History:", "PSH:"),
    "meds": ("MEDICATIONS:", "Home Medications:", "Medications:", "Outpatient Medications:", "MEDS:"),
    "allergies": ("ALLERGIES:", "Allergies:", "ALLERGIES/ADVERSE REACTIONS:"),
    "social": ("SOCIAL HISTORY:", "Social History:", "SH:"),
    "family": ("FAMILY HISTORY:", "Family History:", "FH:"),
    "ros": ("REVIEW OF SYSTEMS:", "Review of Systems:", "ROS:"),
    "exam": ("PHYSICAL EXAM:", "Physical Examination:", "PE:", "EXAM:"),
    "vitals": ("VITAL SIGNS:", "Vitals:", "VS:"),
    "labs": ("LABS:", "Laboratory Data:", "Labs:", "Pertinent Labs:"),
    "studies": ("IMAGING/STUDIES:", "Studies:", "Imaging:", "Diagnostics:"),
    "ap": ("ASSESSMENT AND PLAN:", "Assessment/Plan:", "A/P:", "ASSESSMENT & PLAN:", "Assessment and Plan:"),
    "subjective": ("SUBJECTIVE:", "Subjective:", "S:", "Interval History:"),
    "course": ("HOSPITAL COURSE:", "Hospital Course:", "BRIEF HOSPITAL COURSE:"),
    "dc_meds": ("DISCHARGE MEDICATIONS:", "Discharge Medications:", "Medications at Discharge:"),
    "followup": ("FOLLOW-UP:", "Follow-up Appointments:", "FOLLOW UP:"),
    "dc_dx": ("DISCHARGE DIAGNOSES:", "Discharge Diagnoses:", "Diagnoses:"),
    "dc_condition": ("CONDITION AT DISCHARGE:", "Discharge Condition:"),
    "instructions": ("DISCHARGE INSTRUCTIONS:", "Patient Instructions:"),
    "consults": ("CONSULTS:", "Consultants:", "Consult Recommendations:"),
    "med_rec": ("MEDICATION RECONCILIATION:", "Medication Reconciliation:"),
    "education": ("PATIENT EDUCATION:", "Education:"),
    "transitions": ("TRANSITIONAL ISSUES:", "Transitional Issues:", "Issues for Follow-up:"),
}
ROS_SYSTEMS = {
    "Constitutional": ("fevers", "chills", "night sweats", "weight loss", "fatigue"),
    "Eyes": ("blurry vision", "eye pain"),
    "ENT": ("sore throat", "rhinorrhea", "hearing loss"),
    "CV": ("chest pain", "palpitations", "orthopnea", "LE edema"),
    "Resp": ("SOB", "cough", "wheezing", "hemoptysis"),
    "GI": ("N/V", "abdominal pain", "diarrhea", "constipation", "melena", "BRBPR"),
    "GU": ("dysuria", "hematuria", "frequency"),
    "MSK": ("myalgias", "joint pain", "back pain"),
    "Neuro": ("headache", "focal weakness", "numbness", "dizziness"),
    "Psych": ("depressed mood", "anxiety", "SI/HI"),
    "Skin": ("rash", "itching", "wounds"),
}
NORMAL_EXAM = {
    "General": ("NAD, A&Ox3", "well-appearing, pleasant, in no acute distress", "alert, conversant, NAD"),
    "HEENT": ("NCAT, PERRL, EOMI, MMM", "anicteric sclerae, oropharynx clear", "NC/AT, MMM, no JVD"),
    "Neck": ("supple, no LAD, no JVD", "supple, no thyromegaly"),
    "CV": ("RRR, normal S1/S2, no m/r/g", "regular rate and rhythm, no murmurs", "RRR, 2/6 SEM at RUSB"),
    "Lungs": ("CTAB, no wheezes/rales/rhonchi", "clear to auscultation bilaterally, normal WOB", "CTA b/l"),
    "Abd": ("soft, NT/ND, +BS", "soft, non-tender, non-distended, normoactive bowel sounds", "obese, soft, NTND"),
    "Ext": ("WWP, no edema", "no c/c/e, 2+ DP pulses bilaterally", "trace bilateral LE edema"),
    "Neuro": ("A&Ox3, CN II-XII grossly intact, moving all extremities", "nonfocal, strength 5/5 throughout"),
    "Skin": ("no rashes or lesions", "warm and dry, no jaundice"),
    "Psych": ("appropriate mood and affect", "calm, cooperative"),
}
SOCIAL = (
    "Lives with {rel} in {home}. {tob}. {etoh}. Denies illicit drug use. {job}.",
    "{tob}; {etoh}. No IVDU. Lives {home_alone}. {job}. Independent in ADLs.",
    "{job}. Lives with {rel}. {tob}. {etoh}. Ambulates with a {aid} at baseline.",
)
TOBACCO = ("Former smoker, {n} pack-years, quit {q} years ago", "Current smoker, 1 ppd", "Never smoker",
           "Quit tobacco in 2079, {n} pk-yr history", "Smokes 1/2 ppd, interested in cessation")
ETOH = ("Drinks 1-2 beers on weekends", "No EtOH use", "Occasional glass of wine", "Social EtOH",
        "Reports 4-6 drinks daily, last drink yesterday")
FAMILY = ("Mother with {a}, father with {b}.", "Father died of MI at age {n}. Mother with {a}.",
          "Noncontributory.", "Sister with {a}. No family history of colon cancer.", "Father with {b}, brother with {a}.")
FAMILY_DX = ("DM2", "HTN", "breast cancer", "CAD", "stroke", "COPD", "colon cancer", "dementia")
SURGERIES = ("appendectomy", "lap cholecystectomy", "R TKA", "L THA", "CABG x3", "hysterectomy",
             "cataract surgery OU", "inguinal hernia repair", "tonsillectomy as a child", "L carpal tunnel release")

# --------------------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Patient:
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


def _fmt_date(date: tuple[int, int, int], style: int) -> str:
    y, m, d = date
    if style == 0:
        return f"{m:02d}/{d:02d}/{y}"
    if style == 1:
        return f"{y}-{m:02d}-{d:02d}"
    return f"{m}/{d}/{y % 100:02d}"


def _add_days(date: tuple[int, int, int], days: int) -> tuple[int, int, int]:
    y, m, d = date
    d += days
    while d > 28:  # every synthetic month has 28 days; keeps the arithmetic trivial and valid
        d -= 28
        m += 1
        if m > 12:
            m, y = 1, y + 1
    return (y, m, d)


def _fill(rng: random.Random, template: str, **extra: object) -> str:
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


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")


def _join_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sig(rng: random.Random, drug: Drug, dose: str | None = None, freq: str | None = None) -> str:
    dose = dose or rng.choice(drug.doses)
    freq = freq or rng.choice(drug.freqs)
    if rng.random() < 0.15:
        dose = dose.replace(" mg", "mg")  # "25mg" is as common as "25 mg" in real notes
    return f"{drug.name} {dose} {drug.route} {freq}"


def _lab_value(rng: random.Random, name: str, scenario: Scenario | None) -> tuple[str, str]:
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


def _new_patient(rng: random.Random) -> _Patient:
    comorbidities = rng.sample(sorted(COMORBIDITY_NAMES), rng.randint(1, 7))
    home_meds = []
    for c in comorbidities:
        for i, group in enumerate(HOME_MEDS[c]):
            if i == 0 or rng.random() < 0.45:
                drug = rng.choice(group)
                home_meds.append((drug, rng.choice(drug.doses), rng.choice(drug.freqs)))
    scenario = rng.choice(SCENARIOS)
    return _Patient(
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


def _pmh_phrase(p: _Patient) -> str:
    return _join_list(list(p.pmh.values()))


def _hpi(rng: random.Random, p: _Patient, verbose: float) -> str:
    s = p.scenario
    n_sym = max(2, round(len(s.symptoms) * (0.4 + 0.6 * verbose)))
    symptoms = [_fill(rng, x) for x in rng.sample(s.symptoms, min(n_sym, len(s.symptoms)))]
    opener = rng.choice((
        "{age} y/o {sex} w/ PMH of {pmh} who presents with {cc}.",
        "{age}-year-old {man} with a history of {pmh} presenting with {cc}.",
        "Pt is a {age}yo {sex} with {pmh} who p/w {cc}.",
        "{title} {last} is a {age} year old {man} with PMHx significant for {pmh}, here for {cc}.",
    )).format(age=p.age, sex=p.sex, man=p.man, pmh=_pmh_phrase(p), cc=rng.choice(s.cc),
              title="Mr." if p.sex == "M" else "Ms.", last=p.name.split()[-1])
    body = [opener, _sentence(f"{p.he} reports {symptoms[0]}")]
    if len(symptoms) > 1:
        lead = rng.choice(("also endorses ", "+ ", "associated with ", "also c/o "))
        body.append(_sentence(lead + _join_list(symptoms[1:])))
    negatives = rng.sample(("fevers", "chills", "chest pain", "syncope", "abdominal pain", "hematuria", "headache",
                            "recent travel", "sick contacts", "melena"), rng.randint(2, 5))
    body.append(rng.choice(("Denies ", "No ", "Pt denies ")) + ", ".join(negatives) + ".")
    if verbose > 0.45:
        vitals = _vitals(rng, compact=True)
        body.append(_sentence(rng.choice((f"in the ED, {vitals}", f"on arrival to the ED {vitals}",
                                          f"ED course: {vitals}"))))
        body.append(_sentence(f"{p.he} received " + _join_list(rng.sample(s.treatments, min(2, len(s.treatments))))))
    if verbose > 0.8:
        body.append(_sentence(rng.choice((
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
        body += [_sentence(x) for x in rng.sample(extra, rng.randint(2, 4))]
    return " ".join(body)


def _vitals(rng: random.Random, compact: bool = False) -> str:
    t = round(rng.uniform(36.4, 39.3), 1)
    temp = f"T {t}" + rng.choice((" C", "°C", "C", "")) if rng.random() < 0.8 else f"Tmax {t}"
    o2 = rng.choice(("RA", "2L NC", "4L NC", "RA", "BiPAP"))
    parts = [temp, f"HR {rng.randint(58, 138)}", f"BP {rng.randint(88, 182)}/{rng.randint(48, 104)}",
             f"RR {rng.randint(12, 30)}", f"SpO2 {rng.randint(86, 100)}% on {o2}"]
    if not compact and rng.random() < 0.5:
        parts.append(f"Wt {round(rng.uniform(48, 140), 1)} kg")
    return ", ".join(parts) if compact or rng.random() < 0.6 else "  ".join(parts)


def _med_list(rng: random.Random, p: _Patient, numbered: bool) -> str:
    meds = [_sig(rng, drug, dose, freq) for drug, dose, freq in p.home_meds]
    if rng.random() < 0.5:
        meds += [_sig(rng, d) for d in rng.sample(PRN_MEDS, rng.randint(1, 2))]
    if not meds:
        return "None."
    if numbered:
        return "\n".join(f"{i}. {m}" for i, m in enumerate(meds, 1))
    return "\n".join(f"- {m}" for m in meds)


def _allergies(rng: random.Random, p: _Patient) -> str:
    if not p.allergies:
        return rng.choice(("NKDA", "No known drug allergies.", "NKDA."))
    return "; ".join(f"{a} ({r})" if rng.random() < 0.7 else f"{a} - {r}" for a, r in p.allergies)


def _ros(rng: random.Random, verbose: float) -> str:
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


def _exam(rng: random.Random, p: _Patient, verbose: float) -> str:
    lines = [f"{rng.choice(HEADERS['vitals'])} {_vitals(rng)}"]
    systems = list(NORMAL_EXAM)
    if verbose < 0.4:
        systems = [s for s in systems if s in ("General", "CV", "Lungs", "Abd", "Ext") or s in p.scenario.exam]
    for system in systems:
        if system in p.scenario.exam and rng.random() < 0.9:
            finding = _fill(rng, rng.choice(p.scenario.exam[system]))
        else:
            k = 2 if verbose > 0.75 else 1  # long notes spell out a second normal finding per system
            finding = "; ".join(rng.sample(NORMAL_EXAM[system], min(k, len(NORMAL_EXAM[system]))))
        lines.append(f"{system}: {finding}")
    for system, findings in p.scenario.exam.items():
        if system not in systems:
            lines.append(f"{system}: {_fill(rng, rng.choice(findings))}")
    return "\n".join(lines)


def _labs(rng: random.Random, p: _Patient, verbose: float) -> str:
    names = list(PANELS["CBC"]) + list(PANELS["BMP"])
    names += [n for n in p.scenario.labs if n not in names]
    if verbose > 0.6:
        names += [n for n in rng.sample(PANELS["Other"], 3) if n not in names]
    style = rng.randrange(3)
    values = {n: _lab_value(rng, n, p.scenario) for n in names}
    if style == 0:  # one lab per line with units and flags
        return "\n".join(f"{n}: {v}{u}" for n, (v, u) in values.items())
    if style == 1:  # compact inline run, units dropped (as clinicians type them)
        return ", ".join(f"{n} {v}" for n, (v, _) in values.items()) + "."
    bmp = "/".join(values[n][0] for n in PANELS["BMP"])
    cbc = " > ".join(values[n][0] for n in ("WBC", "Hgb", "Plt"))
    extra = "; ".join(f"{n} {v}{u}" for n, (v, u) in values.items() if n not in PANELS["BMP"] + PANELS["CBC"])
    return f"CBC: {cbc} (Hct {values['Hct'][0]})\nBMP: {bmp}" + (f"\nOther: {extra}" if extra else "")


def _lab_trend(rng: random.Random, p: _Patient, days: int) -> str:
    """A day-by-day lab table (as pasted into long notes); abnormal labs drift toward normal."""
    dates = [_fmt_date(_add_days(p.admit, d), 2) for d in range(days)]
    names = list(dict.fromkeys([*p.scenario.labs, "WBC", "Hgb", "Plt", "Na", "K", "BUN", "Cr"]))
    rows = ["Lab".ljust(10) + "  ".join(d.rjust(8) for d in dates)]
    for name in names:
        unit, lo, hi, decimals = LABS[name]
        start = float(_lab_value(rng, name, p.scenario)[0])
        target = start + (rng.uniform(lo, hi) - start) * rng.uniform(0.4, 0.9)  # partial recovery
        cells = []
        for d in range(days):
            v = start + (target - start) * d / max(1, days - 1) + rng.uniform(-0.03, 0.03) * (hi - lo)
            cells.append((f"{v:.{decimals}f}" if decimals else str(int(round(v)))).rjust(8))
        rows.append(name.ljust(10) + "  ".join(cells))
    return "\n".join(rows)


def _studies(rng: random.Random, p: _Patient, verbose: float) -> str:
    picks = rng.sample(p.scenario.studies, rng.randint(1, len(p.scenario.studies)))
    lines = [f"- {_fill(rng, s)}" for s in picks]
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


def _comorbidity_plan(rng: random.Random, p: _Patient, c: str, verbose: float) -> str:
    k = 1 + int(verbose > 0.5) + int(verbose > 0.8)
    picks = rng.sample(COMORBIDITY_PLANS[c], min(k, len(COMORBIDITY_PLANS[c])))
    return "; ".join(_fill(rng, x, med=p.own_med(c, "home regimen")) for x in picks)


def _problem_plan(rng: random.Random, p: _Patient, verbose: float) -> str:
    s = p.scenario
    lines = [f"1. {_sentence(p.dx)[:-1]}"]
    if verbose > 0.4 and s.ddx:
        lines.append(_sentence(rng.choice(("DDx includes ", "DDx: ", "also considered ")) +
                               _join_list(rng.sample(s.ddx, rng.randint(2, len(s.ddx))))))
    lines += [f"- {t}" for t in rng.sample(s.treatments, rng.randint(1, len(s.treatments)))]
    extras = ["trend labs, BMP in AM", "monitor on telemetry", "PT/OT eval", "consult " + rng.choice(CLINICS),
              "f/u cultures", "repeat imaging if not improving", "goals of care discussion with family",
              "replete K to ≥ 4.0", "I/Os, daily standing weights", "fall precautions", "aspiration precautions"]
    lines += [f"- {e}" for e in rng.sample(extras, rng.randint(1, 2 + int(5 * verbose)))]
    for i, c in enumerate(p.pmh, 2):
        if verbose < 0.3 and i > 3:
            break
        lines.append(f"{i}. {p.pmh[c]}: {_comorbidity_plan(rng, p, c, verbose)}")
    if verbose > 0.35:
        lines.append(rng.choice(("FEN: regular diet, replete lytes prn, no IVF", "F/E/N: cardiac diet, K > 4, Mg > 2",
                                 "FEN: NPO after midnight for procedure")))
        lines.append(rng.choice(("PPx: heparin 5000 units SC q8h", "DVT ppx: enoxaparin 40 mg SC daily",
                                 "PPx: SCDs given bleeding risk", "DVT ppx: enoxaparin 0.5 mg/kg SC daily (BMI > 40)")))
        lines.append("Code: " + rng.choice(("Full code", "DNR/DNI", "Full (confirmed with patient)")))
        lines.append("Dispo: " + rng.choice(("pending clinical improvement, likely home in 2-3 days",
                                             "anticipate discharge home with VNA", "may need SNF, CM consulted")))
    return "\n".join(lines)


def _consults(rng: random.Random, p: _Patient) -> str:
    lines = []
    for clinic in rng.sample(CLINICS, rng.randint(1, 3)):
        rec = rng.choice((
            "agree with current management, will follow peripherally",
            "recommend outpatient follow-up within 2 weeks and repeat labs prior",
            "recommend uptitrating home regimen as BP and renal function allow",
            "no acute intervention needed; signed off on HD#{n}",
            "recommend additional imaging as outpatient; discussed with patient at bedside",
        ))
        lines.append(f"- {clinic.capitalize()}: {_fill(rng, rec)}")
    return "\n".join(lines)


def _signature(rng: random.Random, p: _Patient, date: tuple[int, int, int]) -> str:
    return rng.choice((
        f"Electronically signed by {p.attending}, MD on {_fmt_date(date, 0)} at "
        f"{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}",
        f"{p.attending}, MD\nPager 555-01{rng.randint(10, 99)}",
        f"Seen and examined with resident. Agree with above. -- {p.attending}",
    ))


def _header(rng: random.Random, p: _Patient, title: str, date: tuple[int, int, int]) -> str:
    style = rng.randrange(3)
    lines = [title if style else title.upper()]
    if style != 2:
        dob = (p.admit[0] - p.age, rng.randint(1, 12), rng.randint(1, 28))
        lines.append(f"Patient: {p.name}    MRN: {p.mrn}    DOB: {_fmt_date(dob, 0)}")
    lines.append(f"Date of Service: {_fmt_date(date, style)}    Service: {rng.choice(SERVICES)}")
    if rng.random() < 0.5:
        lines.append(f"Facility: {p.facility}")
    return "\n".join(lines)


def _assessment_summary(rng: random.Random, p: _Patient) -> str:
    return _sentence(rng.choice((
        f"{p.age} y/o {p.sex} with {_pmh_phrase(p)} admitted with {p.dx}",
        f"{p.age}yo {p.man} w/ {_pmh_phrase(p)} here with {p.dx}, hemodynamically stable",
        f"in summary, this is a {p.age} year old {p.man} presenting with {p.dx}",
    )))


# --------------------------------------------------------------------------------------
# Note types.
# --------------------------------------------------------------------------------------


def _history_and_physical(rng: random.Random, p: _Patient, verbose: float) -> str:
    sections: list[tuple[str, str]] = [
        ("cc", rng.choice(p.scenario.cc)),
        ("hpi", _hpi(rng, p, verbose)),
        ("pmh", "\n".join(f"- {name}" + (f", dx {rng.randint(2070, 2090)}" if verbose > 0.7 and rng.random() < 0.5 else "")
                          for name in p.pmh.values())),
    ]
    history: list[tuple[str, str]] = [
        ("meds", _med_list(rng, p, numbered=rng.random() < 0.5)),
        ("allergies", _allergies(rng, p)),
    ]
    if verbose > 0.3:
        history.append(("psh", ", ".join(rng.sample(SURGERIES, rng.randint(1, 3)))))
    rng.shuffle(history)  # meds/allergies/PSH order varies between templates in real EHRs
    sections += history
    if verbose > 0.25:
        social = _fill(rng, rng.choice(SOCIAL), rel=rng.choice(("spouse", "daughter", "son", "partner")),
                       home=rng.choice(("a 2-story house", "an apartment", "assisted living")),
                       home_alone=rng.choice(("alone", "with family")), tob=_fill(rng, rng.choice(TOBACCO)),
                       etoh=rng.choice(ETOH), aid=rng.choice(("cane", "walker", "rollator")),
                       job=rng.choice(("Retired teacher", "Works as a mechanic", "Retired nurse", "On disability",
                                       "Works in IT")))
        sections.append(("social", social))
    if verbose > 0.4:
        sections.append(("family", _fill(rng, rng.choice(FAMILY), a=rng.choice(FAMILY_DX), b=rng.choice(FAMILY_DX),
                                         n=rng.randint(48, 72))))
    sections.append(("ros", _ros(rng, verbose)))
    objective = [("exam", _exam(rng, p, verbose)), ("labs", _labs(rng, p, verbose))]
    if rng.random() < 0.3:
        objective.reverse()
    sections += objective
    sections.append(("studies", _studies(rng, p, verbose)))
    sections.append(("ap", _assessment_summary(rng, p) + "\n" + _problem_plan(rng, p, verbose)))
    title = rng.choice(("History and Physical", "Admission H&P", "H&P", "Admission Note"))
    return _render(rng, p, title, p.admit, sections)


def _progress_note(rng: random.Random, p: _Patient, verbose: float) -> str:
    hd = rng.randint(2, max(2, p.los))
    date = _add_days(p.admit, hd - 1)
    s = p.scenario
    subjective = _sentence(rng.choice((
        "no acute events overnight", "NAEO", "overnight pt had {n} episodes of emesis, resolved with zofran",
        "pt reports feeling better this AM", "c/o poor sleep, otherwise doing ok")).format(n=rng.randint(2, 4)))
    subjective += " " + _sentence(rng.choice((
        f"{p.he} reports improvement in {rng.choice(s.cc)}", f"still endorses {rng.choice(s.cc)} but improving",
        "denies CP, SOB, N/V", "tolerating PO, ambulating in hallway with PT")))
    sections: list[tuple[str, str]] = [("subjective", subjective)]
    if verbose < 0.25:
        sections.append(("vitals", _vitals(rng, compact=True)))
        sections.append(("labs", _labs(rng, p, 0.0).split("\n")[0]))
    else:
        sections.append(("exam", _exam(rng, p, verbose)))
        sections.append(("labs", _labs(rng, p, verbose)))
        if verbose > 0.6:
            sections.append(("labs", _lab_trend(rng, p, min(hd, 5))))
            sections.append(("meds", "Scheduled:\n" + "\n".join(f"- {t}" for t in s.treatments)
                             + "\nPRN:\n" + "\n".join(f"- {_sig(rng, d)}" for d in rng.sample(PRN_MEDS, 2))))
        if verbose > 0.7:
            sections.append(("studies", _studies(rng, p, verbose)))
    summary = f"HD#{hd}. " + _assessment_summary(rng, p)
    sections.append(("ap", summary + "\n" + _problem_plan(rng, p, verbose)))
    title = rng.choice(("Progress Note", "Daily Progress Note", "Hospital Medicine Progress Note", "SOAP Note"))
    return _render(rng, p, title, date, sections)


EDUCATION = (
    "The patient was educated on the warning signs of worsening illness, including increasing shortness of breath, "
    "chest pain, fevers, or new confusion, and verbalized understanding using teach-back.",
    "We reviewed each new medication, its purpose, the dose, and common side effects; a printed list was provided.",
    "The importance of keeping all follow-up appointments and obtaining labs before the first visit was emphasized.",
    "Dietary counseling was provided by the nutritionist, with a focus on sodium restriction and carbohydrate counting.",
    "Smoking cessation was discussed for more than 3 minutes and nicotine replacement was offered.",
    "Family members were present for the discharge teaching and had the opportunity to ask questions.",
)


def _med_reconciliation(rng: random.Random, p: _Patient) -> str:
    """Med rec table: every home med with indication and what happened to it."""
    lines = []
    for drug, dose, freq in p.home_meds:
        indication = next((p.pmh[c] for c in p.pmh if any(drug in g for g in HOME_MEDS[c])), "see PMH")
        status = rng.choice(("CONTINUE", "CONTINUE", "CONTINUE", "HOLD until follow-up", "CHANGE dose (see above)"))
        lines.append(f"- {drug.name} {dose} {drug.route} {freq} | Indication: {indication} | {status}")
    return "\n".join(lines) or "No home medications."


DAILY_EVENTS = (
    "vitals were notable for intermittent tachycardia to the 110s which resolved with pain control",
    "the patient was seen by case management and home services were arranged",
    "overnight there was a brief episode of hypotension that responded to a 500 mL bolus",
    "the team discussed goals of care with the patient and family, who wish to continue full treatment",
    "repeat imaging was obtained and showed interval improvement",
    "diet was advanced as tolerated and IV fluids were stopped",
    "the patient ambulated twice with PT and was felt safe for discharge home",
    "home medications were carefully reconciled with the pharmacist",
)


def _discharge_summary(rng: random.Random, p: _Patient, verbose: float) -> str:
    s = p.scenario
    discharge = _add_days(p.admit, p.los)
    course_items = [_sentence(_fill(rng, c)) for c in rng.sample(s.course, rng.randint(2, len(s.course)))]
    course = [f"# {_sentence(p.dx)[:-1]}: " + " ".join(course_items)]
    for c, name in p.pmh.items():
        if verbose < 0.3 and len(course) > 2:
            break
        course.append(f"# {name}: " + _sentence(_comorbidity_plan(rng, p, c, verbose)))
    if verbose > 0.6:
        days = list(range(2, min(p.los, 2 + int(6 * verbose)) + 1))
        lab = rng.choice(PANELS["BMP"])
        details = (
            f"{p.he} remained afebrile with stable vitals",
            f"labs notable for {lab} of {_lab_value(rng, lab, s)[0]}",
            "PT recommended home with outpatient PT", f"{p.he} was transitioned to PO medications",
            f"the {rng.choice(CLINICS)} team was consulted and agreed with the current plan",
            f"{p.he} had an episode of delirium overnight managed with reorientation, no antipsychotics required",
            f"Cr {_fill(rng, '{cr}')} → {rng.uniform(0.8, 1.4):.1f} with IVF",
        )
        events = rng.sample(DAILY_EVENTS, len(days))  # each day gets a different event
        for day, event, detail in zip(days, events, rng.sample(details, len(days))):
            course.append(_sentence(f"on HD#{day}, {event}") + " " + _sentence(detail))
    intro = _sentence(rng.choice((
        f"{p.age} y/o {p.sex} with {_pmh_phrase(p)} admitted {_fmt_date(p.admit, 0)} with {p.dx}",
        f"{p.name.split()[0]} is a {p.age} year old {p.man} with {_pmh_phrase(p)} who presented with "
        f"{rng.choice(s.cc)} and was found to have {p.dx}")))
    dc_meds = [_sig(rng, d, dose, freq) for d, dose, freq in p.home_meds]
    dc_meds += [_fill(rng, c, u=rng.choice((20, 24, 28))) for c in s.discharge_changes]
    sections: list[tuple[str, str]] = [
        ("meta", f"Admission Date: {_fmt_date(p.admit, 0)}\nDischarge Date: {_fmt_date(discharge, 0)}\n"
                 f"Attending: {p.attending}\nLength of stay: {p.los} days"),
        ("dc_dx", f"Principal: {p.dx}\nSecondary: " + _pmh_phrase(p)),
        ("hpi", intro + (" " + _hpi(rng, p, verbose) if verbose > 0.5 else "")),
        ("course", "\n".join(course)),
        ("studies", _studies(rng, p, verbose)),
    ]
    if verbose > 0.7:  # long summaries carry admission and discharge exams, as many real ones do
        sections.insert(3, ("ros", _ros(rng, verbose)))
        sections.insert(4, ("exam", "On admission:\n" + _exam(rng, p, verbose)))
        sections.append(("exam", "At discharge:\n" + _exam(rng, p, verbose * 0.5)))
    if verbose > 0.75:
        sections.append(("consults", _consults(rng, p)))
    if verbose > 0.45:
        sections.append(("labs", "On discharge:\n" + _labs(rng, p, verbose)))
    if verbose > 0.8:
        sections.append(("labs", _lab_trend(rng, p, min(p.los + 1, 6))))
    sections += [
        ("dc_meds", "\n".join(f"{i}. {m}" for i, m in enumerate(dc_meds, 1))),
        ("allergies", _allergies(rng, p)),
        ("dc_condition", rng.choice(("Stable. A&Ox3, ambulating independently.", "Good, tolerating diet, pain controlled.",
                                     "Fair; ambulates with walker, baseline mental status."))),
    ]
    if verbose > 0.55:
        issues = ("repeat BMP in 1 week given diuretic changes", "consider uptitrating GDMT as BP allows",
                  "f/u pending blood cultures (NGTD at discharge)", "outpatient colonoscopy if not done in past 10 years",
                  "recheck CBC at PCP visit", "confirm completion of antibiotic course",
                  "reassess need for home O2 at follow-up", "A1c {a1c}%: intensify regimen as outpatient")
        sections.append(("transitions", "\n".join(f"- {_fill(rng, x)}" for x in rng.sample(issues, rng.randint(2, 5)))))
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


def _render(rng: random.Random, p: _Patient, title: str, date: tuple[int, int, int],
            sections: list[tuple[str, str]]) -> str:
    """Join sections; header style (own line vs inline) and blank-line spacing vary per note."""
    inline = rng.random() < 0.35
    parts = [_header(rng, p, title, date)]
    for key, body in sections:
        if key == "meta":
            parts.append(body)
            continue
        header = rng.choice(HEADERS[key])
        parts.append(f"{header} {body}" if inline and "\n" not in body else f"{header}\n{body}")
    parts.append(_signature(rng, p, date))
    return ("\n\n" if rng.random() < 0.7 else "\n").join(parts) + "\n"


NOTE_TYPES: tuple[tuple[Callable[[random.Random, _Patient, float], str], float], ...] = (
    (_progress_note, 0.4), (_history_and_physical, 0.35), (_discharge_summary, 0.25),
)


def generate_note(rng: random.Random, note_id: int) -> str:
    """Generate one synthetic note. All randomness comes from ``rng`` (no global state).

    ``note_id`` is stamped into the first line so a file can be traced back to its call.
    """
    patient = _new_patient(rng)
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
