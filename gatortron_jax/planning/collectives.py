"""Collective traffic of one compiled step, read from its HLO text, the same way for CPU, GPU and TPU.

The three compilers print the same communication differently, so counting ops naively
disagrees by orders of magnitude (the same step once showed 20 all-gathers on TPU, 1,411 on
CPU). What this parser normalises:

* **async pairs** (GPU): ``all-gather-start`` / ``-done`` is one collective, counted at the
  start; a start's result type is ``(operands, results[, contexts])`` except
  ``all-reduce-start``, whose type is the result. Generic ``async-start`` wrappers count
  their wrapped computation once (``async-done``/``-update`` name it again; ignored).
* **combined collectives**: GPU and TPU merge many small collectives into one variadic op, so
  ``count`` (ops) differs by backend while ``tensors`` (operands) and the bytes do not.
* **TPU reduce-scatter**: emitted as a custom fusion ``%all-reduce-scatter.*`` holding an
  ``all-reduce`` (+ slice); it is counted as the reduce-scatter it is.
* **loops**: ops in a while body count ``known_trip_count`` times (nested loops multiply);
  TPU HLO has no such annotation, so there the bound ``N`` of the condition ``i < N`` is used
  (the scan's counter starts at 0); fusions, calls and conditionals pass their multiplicity on.

Wire bytes are what a device sends with ring algorithms: all-gather ``out*(g-1)/g``,
reduce-scatter ``in*(g-1)/g``, all-reduce ``2*in*(g-1)/g``, all-to-all ``in*(g-1)/g``,
collective-permute ``in``. With ``host_of`` (partition id -> host or slice), the bytes of a
collective whose group spans hosts are also summed as ``slow_wire_bytes`` (InfiniBand / DCN).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Sequence

import numpy as np

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")

_DTYPE_BYTES = {
    "pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "s32": 4, "u32": 4,
    "s64": 8, "u64": 8, "f8e4m3fn": 1, "f8e5m2": 1, "bf16": 2, "f16": 2, "f32": 4, "f64": 8,
    "c64": 8, "c128": 16, "token": 0,
}

_COMP_HEADER = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*\(.*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.+?)\s+([a-z][a-z0-9\-]*)\((.*)$")
_SHAPE = re.compile(r"\b([a-z]+[0-9]*[a-z0-9]*)\[([0-9,]*)\]")
_CALLEE = re.compile(
    r"\b(body|condition|to_apply|calls|true_computation|false_computation)=%([\w.\-]+)"
)
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_IOTA = re.compile(r"\[(\d+),(\d+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?")
_MESH = re.compile(r"replica_groups=mesh\[([^\]]*)\]\s*(?:,\s*device_ids=\(([^)]*\)?)\)\s*)?\{([^}]*)\}")


def shape_bytes(type_text: str) -> float:
    """Bytes of every array shape in an HLO type (tuples summed; layouts ignored)."""
    total = 0.0
    for dtype, dims in _SHAPE.findall(type_text):
        if dtype not in _DTYPE_BYTES:
            continue
        total += _DTYPE_BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
    return total


def _top_level(type_text: str) -> list[str]:
    """Elements of a tuple type ``(a, (b, c), d)`` -> ['a', '(b, c)', 'd']."""
    inner = type_text.strip()
    if not inner.startswith("("):
        return [inner]
    inner, depth, parts, cur = inner[1:], 0, [], []
    for ch in inner:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _iota(dims: str, perm: str | None) -> np.ndarray:
    shape = [int(d) for d in dims.split(",")]
    ids = np.arange(math.prod(shape)).reshape(shape)
    return ids.transpose([int(p) for p in perm.split(",")]) if perm else ids


def replica_groups(attrs: str, num_devices: int) -> np.ndarray:
    """The device groups ``[num_groups, group_size]`` of a collective, in partition ids."""
    pairs = re.search(r"source_target_pairs=\{((?:\{\d+,\d+\},?)*)\}", attrs)
    if pairs:
        found = re.findall(r"\{(\d+),(\d+)\}", pairs.group(1))
        return np.array([[int(a), int(b)] for a, b in found] or [[0, 0]])
    m = _MESH.search(attrs)  # mesh['a'=4,'b'=2], device_ids=([2,4]T(1,0)) {'a'}
    if m:
        names_sizes = re.findall(r"'?([\w]+)'?=(\d+)", m.group(1))
        names, sizes = [n for n, _ in names_sizes], [int(s) for _, s in names_sizes]
        chosen = [a.strip("' ") for a in m.group(3).split(",") if a.strip()]
        ids = np.arange(math.prod(sizes))
        if m.group(2):
            it = re.fullmatch(r"\[([\d,]+)\](?:T\(([\d,]+)\))?", m.group(2).strip())
            if it:
                ids = _iota(it.group(1), it.group(2)).reshape(-1)
        grid = ids.reshape(sizes)
        rest = [i for i, n in enumerate(names) if n not in chosen]
        picked = [names.index(a) for a in chosen if a in names]
        size = math.prod(sizes[i] for i in picked) if picked else 1
        return grid.transpose(rest + picked).reshape(-1, size)
    m = re.search(r"replica_groups=" + _IOTA.pattern, attrs)  # [groups, size]<=[dims]T(perm)
    if m:
        return _iota(m.group(3), m.group(4)).reshape(int(m.group(1)), int(m.group(2)))
    m = re.search(r"replica_groups=\{((?:\{[\d,]*\},?)+)\}", attrs)  # explicit {{0,1},{2,3}}
    if m:
        groups = [[int(x) for x in g.split(",") if x] for g in re.findall(r"\{([\d,]*)\}", m.group(1))]
        if len({len(g) for g in groups}) == 1:
            return np.array(groups)
        return np.array([max(groups, key=len)])
    return np.arange(num_devices).reshape(1, -1)  # replica_groups={} means all devices


def _parse(hlo_text: str) -> tuple[dict, list[str], str, dict]:
    comps: dict[str, list[tuple[str, str, str, str]]] = {}
    order: list[str] = []
    entry = None
    types: dict[tuple[str, str], str] = {}  # (computation, instruction) -> type text
    current: str | None = None
    for line in hlo_text.splitlines():
        header = _COMP_HEADER.match(line)
        if header and "=" not in line.split("(", 1)[0]:
            current = header.group(2)
            comps[current] = []
            order.append(current)
            if header.group(1):
                entry = current
            for pname, ptype in re.findall(r"([\w.\-]+):\s*((?:\([^)]*\))|[a-z0-9]+\[[0-9,]*\](?:\{[^}]*\})?)",
                                           line.split("->", 1)[0]):
                types[(current, pname)] = ptype
            continue
        if current is None:
            continue
        m = _INSTR.match(line)
        if m:
            name, type_text, op, rest = m.groups()
            types[(current, name)] = type_text
            comps[current].append((name, type_text, op, rest))
    if entry is None:
        raise ValueError("no ENTRY computation in HLO text")
    return comps, order, entry, types


def _condition_trip_count(cond: list[tuple[str, str, str, str]]) -> int | None:
    """``i < N`` loop conditions (TPU HLO carries no known_trip_count): N, assuming i starts at 0."""
    consts = {}
    for name, _, op, rest in cond:
        if op == "constant":
            m = re.match(r"\s*(-?\d+)\)", rest)
            if m:
                consts[name] = int(m.group(1))
    for _, _, op, rest in cond:
        if op == "compare" and "direction=LT" in rest:
            args = re.findall(r"%([\w.\-]+)", rest.split(")", 1)[0])
            if len(args) == 2 and args[1] in consts:
                return consts[args[1]]
    return None


def _multiplicities(comps: dict, order: list[str], entry: str) -> dict[str, float]:
    """How often each computation runs per step. Callers follow callees, so walk backwards."""
    mult: dict[str, float] = defaultdict(float)
    mult[entry] = 1.0
    for comp in reversed(order):
        if mult[comp] == 0:
            continue
        for _, _, op, rest in comps[comp]:
            if op in ("async-done", "async-update"):
                continue  # the async-start already accounted for the wrapped computation
            trip = 1
            if op == "while":
                t = _TRIP.search(rest)
                cond = re.search(r"\bcondition=%([\w.\-]+)", rest)
                guess = _condition_trip_count(comps.get(cond.group(1), [])) if cond and not t else None
                trip = int(t.group(1)) if t else (guess if guess and guess > 0 else 1)
            for kind, callee in _CALLEE.findall(rest):
                mult[callee] += mult[comp] * (trip if kind in ("body", "condition") else 1)
            for branches in _BRANCHES.findall(rest):
                for callee in re.findall(r"%([\w.\-]+)", branches):
                    mult[callee] += mult[comp]
    return mult


def collective_bytes(hlo_text: str, num_devices: int,
                     host_of: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """Per-device collective traffic of one step, by type, from compiled HLO text.

    Each type has ``count`` (ops executed), ``tensors`` (arrays moved), ``result_bytes``,
    ``operand_bytes``, ``wire_bytes`` and ``slow_wire_bytes`` (the part whose group spans
    ``host_of``'s domains; 0 without ``host_of``).
    """
    comps, order, entry, types = _parse(hlo_text)
    mult = _multiplicities(comps, order, entry)
    fields = ("count", "tensors", "result_bytes", "operand_bytes", "wire_bytes", "slow_wire_bytes")
    out: dict[str, dict[str, float]] = {c: dict.fromkeys(fields, 0.0) for c in COLLECTIVES}
    hosts = np.asarray(host_of) if host_of is not None else None
    for comp in order:
        k = mult[comp]
        if k == 0:
            continue
        for _, type_text, op, rest in comps[comp]:
            base = op[: -len("-start")] if op.endswith("-start") else op
            if base not in out:
                continue
            args = rest.split(")", 1)[0]
            operands = re.findall(r"%([\w.\-]+)", args)
            operand_bytes = sum(shape_bytes(types.get((comp, a), "")) for a in operands)
            result_bytes = shape_bytes(type_text)
            if op.endswith("-start") and base != "all-reduce" and type_text.startswith("("):
                elems = _top_level(type_text)  # (operands, results[, contexts])
                result_bytes = shape_bytes(elems[1]) if len(elems) > 1 else result_bytes
            groups = replica_groups(rest, num_devices)
            g = groups.shape[1]
            if base == "all-reduce" and comp.startswith("all-reduce-scatter"):
                base, result_bytes = "reduce-scatter", operand_bytes / max(g, 1)  # TPU's fused form
            frac = (g - 1) / g if g > 1 else 0.0
            wire = {
                "all-gather": result_bytes * frac,
                "reduce-scatter": operand_bytes * frac,
                "all-reduce": 2 * operand_bytes * frac,
                "all-to-all": operand_bytes * frac,
                "collective-permute": operand_bytes,
            }[base]
            slow = False
            if hosts is not None and groups.size and groups.max() < len(hosts):
                slow = bool((hosts[groups].min(axis=1) != hosts[groups].max(axis=1)).any())
            rec = out[base]
            rec["count"] += k
            rec["tensors"] += k * max(len(operands), 1)
            rec["result_bytes"] += k * result_bytes
            rec["operand_bytes"] += k * operand_bytes
            rec["wire_bytes"] += k * wire
            rec["slow_wire_bytes"] += k * wire if slow else 0.0
    return out
