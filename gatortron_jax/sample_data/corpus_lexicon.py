"""The synthetic corpus's lexicon and templates: data only, no generation logic.

Invented identities and facilities, drugs with their doses, routes and frequencies, comorbidity
spellings and plan templates, allergies, the admission scenarios (chief complaints, symptoms,
exam findings, labs, studies, treatments), lab reference ranges and panels, section-header
spellings, ROS / normal-exam phrases, social and family history templates, discharge education
and daily events. Everything here is clearly fake (see :mod:`gatortron_jax.sample_data.corpus`).
Templates use ``str.format`` placeholders that ``corpus_sections.fill`` and the section builders
fill. The NER and de-id sample generators (``ner.py``, ``deid.py``) draw on the same lists.
"""

from __future__ import annotations

import dataclasses

# --------------------------------------------------------------------------------------
# Invented identities (clearly fake: see the docstring of corpus.py).
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


EDUCATION = (
    "The patient was educated on the warning signs of worsening illness, including increasing shortness of breath, "
    "chest pain, fevers, or new confusion, and verbalized understanding using teach-back.",
    "We reviewed each new medication, its purpose, the dose, and common side effects; a printed list was provided.",
    "The importance of keeping all follow-up appointments and obtaining labs before the first visit was emphasized.",
    "Dietary counseling was provided by the nutritionist, with a focus on sodium restriction and carbohydrate counting.",
    "Smoking cessation was discussed for more than 3 minutes and nicotine replacement was offered.",
    "Family members were present for the discharge teaching and had the opportunity to ask questions.",
)


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
