"""Pattern recognizers and user lists beside the de-id model, and the merge of their spans with its.

Why: the systems that release notes (Philter, NLM Scrubber, the i2b2 2014 winners) are hybrids.
A model misses the rare shapes a regular expression never misses (an e-mail address, an IP, a
phone number after "Tel:"), and a data team knows names and codes its model has never seen
(a deny list) and words that look like PHI but are not (an allow list). This module is pure
text processing, so readers, ``predict`` and ``deid`` can all use it; it imports nothing above
``annotations``.

* **Recognizers** (:data:`RECOGNIZERS`): e-mail, URL, IPv4, phone and fax, identifier shapes
  after a context word (``NHC:``, ``MRN``, ``DNI``, ``Nº Col``...), Spanish DNI/NIE, dates in
  the common numeric and written (Spanish, English) formats, postal codes after a context
  word, and ages (``70 años``, ``54-year-old``, ``aged 54``). Each yields a generic *kind*
  (EMAIL, URL, IPADDR, PHONE, FAX, ID, DATE, ZIP, AGE); the recipe maps kinds onto the model's
  label set.
* **Lists**: a deny list (strings or ``re:`` regexes, each with a type) is always PHI; an allow
  list (strings or regexes) removes model and recognizer spans whose text it matches in full.
  Deny wins over allow: a deny entry is the data team's explicit "must go".
* **Merge** (:func:`merge_spans`): the union of model and pattern spans. Spans that overlap
  form one span covering all of them: the longer one when one contains the other, their union
  when they only overlap (recall first: no character either source marked is given back). Its
  type is the model's (the longest model span in the group) unless a pattern span in the group
  is *authoritative* (its kind is listed in :attr:`PatternRecipe.authoritative`, or it came
  from the deny list), whose type then wins. Every span says its ``source``: ``model``,
  ``pattern:NAME``, ``deny_list``, or ``model+pattern:NAME`` when both found it.
* **Recipe** (:class:`PatternRecipe`): which recognizers run, the kind → label map, which kinds
  are authoritative, the list entries (stored inline, so a model dir is self-contained) and
  the context window. A plain dataclass stored as the ``patterns`` section of ``config.json``;
  gin binds it only at the CLI.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import ConfigError, InputError

KINDS = ("EMAIL", "URL", "IPADDR", "PHONE", "FAX", "ID", "DATE", "ZIP", "AGE")

#: Preset kind → label maps for the label sets we ship tasks for.
TYPE_MAPS: dict[str, dict[str, str]] = {
    "i2b2_2014": {"EMAIL": "EMAIL", "URL": "URL", "IPADDR": "IPADDR", "PHONE": "PHONE", "FAX": "FAX",
                  "ID": "IDNUM", "DATE": "DATE", "ZIP": "ZIP", "AGE": "AGE"},
    "meddocan": {"EMAIL": "CORREO_ELECTRONICO", "URL": "URL_WEB", "IPADDR": "DIRECCION_IP",
                 "PHONE": "NUMERO_TELEFONO", "FAX": "NUMERO_FAX", "ID": "ID_SUJETO_ASISTENCIA", "DATE": "FECHAS",
                 "ZIP": "TERRITORIO", "AGE": "EDAD_SUJETO_ASISTENCIA"},
}


@dataclasses.dataclass(frozen=True)
class Span:
    """One PHI span of a note: ``[start, end)`` characters, its label, who found it, and the
    model's confidence when the model found it."""

    start: int
    end: int
    type: str
    source: str  # model | pattern:NAME | deny_list | model+pattern:NAME
    score: float | None = None


# ----------------------------------------------------------------------------- recognizers

_MONTHS_ES = "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
_MONTHS_EN = ("january|february|march|april|may|june|july|august|september|october|november|december|"
              "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec")
_I = re.I


@dataclasses.dataclass(frozen=True)
class Recognizer:
    """A regex for one shape of PHI. ``context``: a regex that must match within the recipe's
    window *before* the candidate on the same line (identifiers, postal codes, bare phone
    numbers are only PHI after their label). ``context_kinds``: the matched context word picks
    the kind (``fax`` → FAX). ``validate``: a check on the match (octets ≤ 255, month ≤ 12)."""

    name: str
    kind: str
    pattern: re.Pattern
    context: re.Pattern | None = None
    context_kinds: tuple[tuple[str, str], ...] = ()
    validate: Callable[[re.Match], bool] | None = None
    group: int | str = 0  # the group that is the span (the rest of the match is context)
    strip_trailing: str = ""


def _octets(m: re.Match) -> bool:
    return all(int(p) <= 255 for p in m.group(0).split("."))


def _digits(lo: int, hi: int) -> Callable[[re.Match], bool]:
    return lambda m: lo <= sum(c.isdigit() for c in m.group(0)) <= hi


def _day_month(a: str, b: str) -> bool:
    a_, b_ = int(a), int(b)
    return (1 <= a_ <= 31 and 1 <= b_ <= 12) or (1 <= a_ <= 12 and 1 <= b_ <= 31)


def _numeric_date(m: re.Match) -> bool:
    return _day_month(m.group(1), m.group(2))


def _iso_date(m: re.Match) -> bool:
    return 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31


_ID_CONTEXT = re.compile(
    r"(?<!\w)(?:MRN|NHC|N\.?H\.?C\.?|NASS|N\.?S\.?S\.?|SSN|DNI|NIF|NIE|CIP|ID|IDs?|historia(?:\s+cl[ií]nica)?|"
    r"hist\.|record|expediente|episodio|p[oó]liza|tarjeta(?:\s+sanitaria)?|account|cuenta|acct|license|licencia|"
    r"colegiado|n[º°]\s*col\.?|col\.|n[º°]|n[uú]m(?:ero)?\.?|number|no\.)(?!\w)", _I)
_PHONE_CONTEXT = re.compile(r"(?<!\w)(?:tel[eé]fono|tel[fé]?\.?|tlf\.?|phone|ph\.|m[oó]vil|mobile|cell|"
                            r"llamar|call|contacto|contact|fax)(?!\w)", _I)
_ZIP_CONTEXT = re.compile(r"(?<!\w)(?:C\.?\s?P\.?|c[oó]digo\s+postal|cod\.\s*postal|zip(?:\s*code)?|"
                          r"postal\s+code)(?!\w)", _I)

RECOGNIZERS: dict[str, Recognizer] = {r.name: r for r in (
    Recognizer("email", "EMAIL", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?!\w)")),
    Recognizer("url", "URL", re.compile(r"(?<![\w@])(?:https?://|www\.)[^\s<>\"']+", _I), strip_trailing=".,;:)]"),
    Recognizer("ip", "IPADDR", re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"), validate=_octets),
    Recognizer("phone_shape", "PHONE", re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}|\(\d{2,4}\) ?\d{3,4}[ .-]?\d{3,4}|"
        r"\d{3}-\d{3}-\d{4})(?![\w-])"), validate=_digits(9, 15)),
    Recognizer("phone_context", "PHONE", re.compile(r"(?<![\w+/])\+?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w/-])"),
               context=_PHONE_CONTEXT, context_kinds=(("fax", "FAX"),), validate=_digits(9, 15)),
    Recognizer("id_context", "ID", re.compile(r"(?<![\w/.,-])(?=[A-Z0-9 -]*\d)[A-Z]{0,4}\d[\dA-Z]*(?:[ -][\dA-Z]*\d[\dA-Z]*){0,3}"
                                              r"(?![\w/]|[.,]\d|-\w)"),
               context=_ID_CONTEXT, validate=_digits(4, 20)),
    Recognizer("dni_nie", "ID", re.compile(r"(?<![\w-])(?:\d{8}|[XYZ]\d{7})-?[A-Z](?!\w)")),
    Recognizer("date_numeric", "DATE", re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.-]\d)"),
               validate=lambda m: _day_month(m.group(1), m.group(3))),
    Recognizer("date_iso", "DATE", re.compile(r"(?<![\w/.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w/]|[.-]\d)"),
               validate=_iso_date),
    Recognizer("date_month_year", "DATE", re.compile(r"(?<![\w/.-])(0?[1-9]|1[0-2])/((?:19|20)\d{2})(?![\w/]|[.-]\d)")),
    Recognizer("date_text_es", "DATE", re.compile(
        rf"(?<!\w)(?:\d{{1,2}}\s+de\s+(?:{_MONTHS_ES})(?:\s+(?:de|del)\s+(?:19|20)\d{{2}})?|(?:{_MONTHS_ES})\s+(?:de|del)\s+(?:19|20)\d{{2}})(?!\w)",
        _I)),
    Recognizer("date_text_en", "DATE", re.compile(
        rf"(?<!\w)(?:(?:{_MONTHS_EN})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?"
        rf"(?:{_MONTHS_EN})\.?,?\s+(?:19|20)\d{{2}}|(?:{_MONTHS_EN})\.?\s+(?:19|20)\d{{2}})(?!\w)", _I)),
    Recognizer("postal_code", "ZIP", re.compile(r"(?<![\w-])\d{5}(?:-\d{4})?(?![\w-])"), context=_ZIP_CONTEXT),
    # MEDDOCAN's AGE span is number + unit ("70 años"), after a subject or "edad", or before "de edad".
    Recognizer("age_es", "AGE", re.compile(
        r"(?P<pre>(?<!\w)(?:edad|paciente|var[oó]n|mujer|hombre|niñ[oa]|chic[oa]|señora?|lactante|ancian[oa])"
        r"\s*(?::|de)?\s+)?(?<![\w.,])(?P<span>(?P<n>\d{1,3})\s*(?:años|año|meses))(?!\w)(?P<tail>\s+de\s+edad)?", _I),
        validate=lambda m: bool(m.group("pre") or m.group("tail")) and int(m.group("n")) <= 125, group="span"),
    # i2b2's AGE span is the number ("54" in "54-year-old", "aged 54").
    Recognizer("age_en", "AGE", re.compile(r"(?<![\w.,])\d{1,3}(?=[- ]years?[- ]old\b|[- ]y/?o\b)", _I),
               validate=lambda m: int(m.group(0)) <= 125),
    Recognizer("age_en_aged", "AGE", re.compile(r"(?<!\w)aged\s+(?P<span>\d{1,3})(?!\w)", _I),
               validate=lambda m: int(m.group("span")) <= 125, group="span"),
)}


# ----------------------------------------------------------------------------- lists


@dataclasses.dataclass(frozen=True)
class ListEntry:
    """A deny- or allow-list entry: a literal string (matched case-insensitively at word
    boundaries) or a regex (``regex=True``), and for deny entries the label it is removed as."""

    pattern: str
    type: str = ""
    regex: bool = False

    def compiled(self) -> re.Pattern:
        if self.regex:
            return re.compile(self.pattern)
        return re.compile(rf"(?<!\w){re.escape(self.pattern)}(?!\w)", _I)


def read_list_file(path: str, *, deny: bool) -> tuple[ListEntry, ...]:
    """A list file: one entry a line, ``TYPE<TAB>ENTRY`` (deny; the type is required) or
    ``ENTRY`` / ``TYPE<TAB>ENTRY`` (allow; the type is ignored); ``re:`` before an entry makes it a
    regex; blank lines and lines starting with ``#`` are skipped. A bad line is one
    :class:`InputError` naming ``file:line`` (never the entry: it may be a name)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: list file not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            typ, sep, entry = line.partition("\t")
            if not sep:
                typ, entry = "", line
            if deny and not typ.strip():
                raise InputError(f"{path}:{lineno}: a deny-list line needs a type: TYPE<TAB>ENTRY")
            is_regex = entry.startswith("re:")
            entry = entry[3:] if is_regex else entry.strip()
            if not entry:
                raise InputError(f"{path}:{lineno}: empty entry")
            if is_regex:
                try:
                    re.compile(entry)
                except re.error as e:
                    raise InputError(f"{path}:{lineno}: bad regex ({e.msg} at position {e.pos})") from None
            entries.append(ListEntry(entry, typ.strip(), is_regex))
    return tuple(entries)


# ----------------------------------------------------------------------------- the recipe


@dataclasses.dataclass(frozen=True)
class PatternRecipe:
    """Which recognizers run beside the model and how their kinds map onto its labels.

    Stored as ``config.json``'s ``patterns`` section (:meth:`to_dict` / :meth:`from_dict`)."""

    recognizers: tuple[str, ...] = tuple(RECOGNIZERS)
    type_map: Mapping[str, str] = dataclasses.field(default_factory=dict)  # kind → label; absent: the kind
    authoritative: tuple[str, ...] = ("EMAIL", "URL", "IPADDR")  # kinds whose type beats the model's
    deny: tuple[ListEntry, ...] = ()
    allow: tuple[ListEntry, ...] = ()
    context_window: int = 40  # characters before a candidate searched for its context word

    def __post_init__(self) -> None:
        unknown = [r for r in self.recognizers if r not in RECOGNIZERS]
        if unknown:
            raise ConfigError(f"patterns: unknown recognizer(s) {unknown}; known: {sorted(RECOGNIZERS)}")
        bad = [k for k in (*self.type_map, *self.authoritative) if k not in KINDS]
        if bad:
            raise ConfigError(f"patterns: unknown kind(s) {bad}; kinds: {list(KINDS)}")
        if self.context_window < 1:
            raise ConfigError(f"patterns: context_window {self.context_window} must be >= 1")
        for e in (*self.deny, *self.allow):
            try:
                e.compiled()
            except re.error as err:
                raise ConfigError(f"patterns: bad list regex ({err.msg})") from None

    def label(self, kind: str) -> str:
        return self.type_map.get(kind, kind)

    def to_dict(self) -> dict[str, Any]:
        return {"recognizers": list(self.recognizers), "type_map": dict(self.type_map),
                "authoritative": list(self.authoritative), "context_window": self.context_window,
                "deny": [dataclasses.asdict(e) for e in self.deny], "allow": [dataclasses.asdict(e) for e in self.allow]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "patterns") -> "PatternRecipe":
        try:
            return cls(recognizers=tuple(d["recognizers"]), type_map=dict(d.get("type_map", {})),
                       authoritative=tuple(d.get("authoritative", ())), context_window=int(d.get("context_window", 40)),
                       deny=tuple(ListEntry(**e) for e in d.get("deny", ())),
                       allow=tuple(ListEntry(**e) for e in d.get("allow", ())))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{where}: not a pattern recipe ({type(e).__name__}: {e})") from None


def recipe_for_labels(labels: Iterable[str], *, deny_file: str | None = None, allow_file: str | None = None,
                      recognizers: Sequence[str] | None = None) -> PatternRecipe:
    """The recipe for a model's label set: the preset type map whose labels it holds (MEDDOCAN's
    Spanish types, or i2b2 2014's), kinds it has no label for left out of the recognizers."""
    types = {lab.split("-", 1)[1] if lab[:2] in ("B-", "I-", "E-", "S-") else lab for lab in labels} - {"O"}
    preset = max(TYPE_MAPS.values(), key=lambda m: len(types & set(m.values())))
    type_map = {k: v for k, v in preset.items() if v in types} if types & set(preset.values()) else {}
    names = tuple(recognizers) if recognizers is not None else tuple(
        n for n, r in RECOGNIZERS.items() if not type_map or r.kind in type_map)
    return PatternRecipe(recognizers=names, type_map=type_map,
                         deny=read_list_file(deny_file, deny=True) if deny_file else (),
                         allow=read_list_file(allow_file, deny=False) if allow_file else ())


@dataclasses.dataclass(frozen=True)
class PatternConfig:
    """The pattern recipe as a fine-tuning recipe names it (gin binds this at the CLI; the
    library takes the :class:`PatternRecipe` it builds). ``finetune`` stores the recipe for the
    model's labels in the model dir, so ``evaluate``/``predict``/``deid`` run what the recipe says.

    ``type_map``: a preset of :data:`TYPE_MAPS` (``'meddocan'``, ``'i2b2_2014'``), ``'auto'`` (the
    preset whose labels the model has), or ``{kind: label}``; kinds the model has no label for
    are left out, and so are the recognizers of those kinds. ``recognizers``: names from
    :data:`RECOGNIZERS` (None: all). ``deny_list`` / ``allow_list``: list files (:func:`read_list_file`), stored inline."""

    enabled: bool = False
    recognizers: tuple[str, ...] | None = None
    type_map: Any = "auto"
    authoritative: tuple[str, ...] = ("EMAIL", "URL", "IPADDR")
    deny_list: str | None = None
    allow_list: str | None = None
    context_window: int = 40

    def recipe(self, labels: Iterable[str]) -> PatternRecipe | None:
        """The recipe for a model with ``labels`` (None when not enabled)."""
        if not self.enabled:
            return None
        names = tuple(self.recognizers) if self.recognizers is not None else tuple(RECOGNIZERS)
        unknown = [n for n in names if n not in RECOGNIZERS]
        if unknown:
            raise ConfigError(f"PatternConfig.recognizers: unknown {unknown}; known: {sorted(RECOGNIZERS)}")
        if self.type_map == "auto":
            base = recipe_for_labels(labels, recognizers=self.recognizers)
            type_map = dict(base.type_map)
        else:
            if isinstance(self.type_map, str):
                if self.type_map not in TYPE_MAPS:
                    raise ConfigError(f"PatternConfig.type_map={self.type_map!r}: a preset of {sorted(TYPE_MAPS)}, "
                                      "'auto' or a {kind: label} dict")
                wanted = TYPE_MAPS[self.type_map]
            else:
                wanted = dict(self.type_map)
            types = {lab[2:] if lab[:2] in ("B-", "I-", "E-", "S-") else lab for lab in labels} - {"O"}
            unknown = sorted(v for v in wanted.values() if v not in types)
            if not isinstance(self.type_map, str) and unknown:  # a hand-written map must name real labels
                raise ConfigError(f"PatternConfig.type_map: {unknown} are not labels of this model")
            type_map = {k: v for k, v in wanted.items() if v in types}
            if not type_map:
                raise ConfigError(f"PatternConfig.type_map={self.type_map!r}: none of its labels is a label of this "
                                  "model (another preset, or 'auto')")
        if type_map:  # a recognizer whose kind has no label in this model would add spans of no model type
            names = tuple(n for n in names if RECOGNIZERS[n].kind in type_map)
        return PatternRecipe(recognizers=names, type_map=type_map,
                             authoritative=tuple(self.authoritative),
                             deny=read_list_file(self.deny_list, deny=True) if self.deny_list else (),
                             allow=read_list_file(self.allow_list, deny=False) if self.allow_list else (),
                             context_window=self.context_window)


# ----------------------------------------------------------------------------- matching


class PatternMatcher:
    """A recipe compiled once: :meth:`find` gives a note's pattern and deny-list spans,
    :meth:`allowed` says whether a span's text is on the allow list."""

    def __init__(self, recipe: PatternRecipe):
        self.recipe = recipe
        self._recognizers = [RECOGNIZERS[n] for n in recipe.recognizers]
        self._deny = [(e, e.compiled()) for e in recipe.deny]
        self._allow = [e.compiled() for e in recipe.allow]
        self._authoritative_types = {recipe.label(k) for k in recipe.authoritative}

    def _context(self, r: Recognizer, text: str, start: int) -> str | None:
        """The context word before ``start`` on its line (None: no context word there)."""
        lo = max(text.rfind("\n", 0, start) + 1, start - self.recipe.context_window)
        found = list(r.context.finditer(text, lo, start))
        return found[-1].group(0) if found else None

    def _recognize(self, text: str) -> Iterator[Span]:
        for r in self._recognizers:
            for m in r.pattern.finditer(text):
                if r.validate is not None and not r.validate(m):
                    continue
                s, e = m.span(r.group)
                while r.strip_trailing and e > s and text[e - 1] in r.strip_trailing:
                    e -= 1
                kind = r.kind
                if r.context is not None:
                    word = self._context(r, text, s)
                    if word is None:
                        continue
                    kind = next((k for w, k in r.context_kinds if word.lower().startswith(w)), kind)
                if e > s:
                    yield Span(s, e, self.recipe.label(kind), f"pattern:{r.name}")

    def find(self, text: str) -> list[Span]:
        """Recognizer spans not on the allow list, and every deny-list match, in text order."""
        spans = [sp for sp in self._recognize(text) if not self.allowed(text, sp.start, sp.end)]
        for entry, rx in self._deny:
            spans += [Span(m.start(), m.end(), entry.type, "deny_list") for m in rx.finditer(text) if m.end() > m.start()]
        unique: dict[tuple[int, int, str], Span] = {}
        for sp in spans:  # two recognizers finding the same span: the first listed names it
            unique.setdefault((sp.start, sp.end, sp.type), sp)
        return sorted(unique.values(), key=lambda sp: (sp.start, -sp.end))

    def allowed(self, text: str, start: int, end: int) -> bool:
        piece = text[start:end].strip()
        return any(rx.fullmatch(piece) for rx in self._allow)

    def authoritative(self, span: Span) -> bool:
        return span.source == "deny_list" or (span.source.startswith("pattern:") and span.type in self._authoritative_types)

    def merge(self, text: str, model: Sequence[Span]) -> list[Span]:
        """The model's spans (allow-listed ones dropped) merged with this note's pattern spans."""
        kept = [sp for sp in model if not self.allowed(text, sp.start, sp.end)]
        return merge_spans(kept, self.find(text), self.authoritative)


    def merge_entities(self, doc: Document, scores: Sequence[float | None]
                       ) -> tuple[Document, list[float | None], list[str]]:
        """:meth:`merge` for a document with the model's entities (one span each) and their
        scores: the merged document (ids ``T1``...), each entity's score and source."""
        model = [Span(e.start, e.end, e.type, "model", sc) for e, sc in zip(doc.entities, scores)]
        merged = self.merge(doc.text, model)
        ents = [Entity(f"T{k}", sp.type, ((sp.start, sp.end),), doc.text[sp.start:sp.end])
                for k, sp in enumerate(merged, 1)]
        return (Document(doc.id, doc.text, ents, [], doc.source), [sp.score for sp in merged],
                [sp.source for sp in merged])


def merge_spans(model: Sequence[Span], found: Sequence[Span],
                authoritative: Callable[[Span], bool] = lambda sp: sp.source == "deny_list") -> list[Span]:
    """Union of model and pattern spans, one span per group of overlapping spans (see the module
    docstring): extent = the group's union; type = the longest authoritative pattern span's,
    else the longest model span's, else the longest pattern span's; score = the best model
    score in the group (None when no model span is in it)."""
    def length(sp: Span) -> int:
        return sp.end - sp.start

    groups: list[list[Span]] = []
    end = -1
    for sp in sorted([*model, *found], key=lambda sp: (sp.start, -sp.end)):
        if groups and sp.start < end:
            groups[-1].append(sp)
            end = max(end, sp.end)
        else:
            groups.append([sp])
            end = sp.end
    out = []
    for g in groups:
        from_model = [sp for sp in g if sp.source == "model"]
        patterns = [sp for sp in g if sp.source != "model"]
        auth = [sp for sp in patterns if authoritative(sp)]
        winner = max(auth or from_model or patterns, key=length)
        sources = sorted({sp.source for sp in patterns})
        source = "+".join((["model"] if from_model else []) + sources)
        scores = [sp.score for sp in from_model if sp.score is not None]
        out.append(Span(min(sp.start for sp in g), max(sp.end for sp in g), winner.type, source,
                        max(scores) if scores else None))
    return out
