"""What a compiled program communicates: its collectives, read from the HLO after the SPMD partitioner.

XLA decides every collective of a sharded program when it partitions it, the same way on any backend, so
the HLO right after the SPMD partitioner of a program compiled for N fake CPU devices shows what it would
send on N GPUs (herl_jax.compiled dumps it: XLA_FLAGS --xla_dump_hlo_pass_re=spmd-partitioning). Read
there, before the backend's own passes: the CPU backend later widens bf16 collectives to float32 and never
forms reduce-scatters, which GPU backends do not and do.

  traffic = collective_traffic(hlo_text_after_spmd_partitioning)
  traffic.count, traffic.bytes_sent, traffic.by_kind()

Bytes sent per device, for a collective over a group of n devices whose (per-device) result is S bytes,
are those of the bandwidth-optimal ring algorithms (what NCCL's ring and XLA's decompositions send):
all-reduce 2 (n-1)/n S; all-gather (n-1)/n S; reduce-scatter (n-1) S (its result is the 1/n shard);
all-to-all (n-1)/n S; collective-permute S. An all-reduce whose result is only dynamic-sliced (directly or
through get-tuple-element) is a reduce-scatter, as the GPU backends rewrite it. A collective inside a loop
counts once per iteration: loops with a fixed trip count (scans, `lax.map`: XLA's annotation, or a
condition `counter < constant`) multiply their bodies by it; a loop on data (a `while_loop` such as the
decode loop) counts its body once, i.e. per iteration, and is counted in `unknown_loops`.
"""

from __future__ import annotations

import collections
import dataclasses
import re

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4,
                "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16, "s4": 0.5, "u4": 0.5,
                "f8e4m3fn": 1, "f8e5m2": 1, "token": 0}
_ARRAY = re.compile(r"\b([a-z][a-z0-9]*)\[([0-9,]*)\]")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][a-z\-]*)\((.*)$")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


@dataclasses.dataclass(frozen=True)
class Collective:
    """One collective instruction: its kind, the per-device bytes of its result, its group size, and how
    many times the program runs it (the product of the trip counts of the loops around it)."""

    kind: str
    result_bytes: int
    group_size: int
    times: int

    @property
    def bytes_sent(self) -> float:
        """Bytes one device sends, per execution (see the module docstring)."""
        n, s = self.group_size, self.result_bytes
        if n <= 1:
            return 0.0
        return {"all-reduce": 2 * (n - 1) / n * s, "all-gather": (n - 1) / n * s,
                "reduce-scatter": (n - 1) * s, "all-to-all": (n - 1) / n * s,
                "collective-permute": s}[self.kind]


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Every collective of a program, and the loops of unknown trip count (counted once each)."""

    collectives: tuple[Collective, ...]
    unknown_loops: int

    @property
    def count(self) -> int:
        """Collectives executed per run (per iteration of unknown loops)."""
        return sum(c.times for c in self.collectives if c.group_size > 1)

    @property
    def bytes_sent(self) -> float:
        """Bytes one device sends per run (per iteration of unknown loops)."""
        return sum(c.bytes_sent * c.times for c in self.collectives)

    def by_kind(self) -> dict[str, tuple[int, float]]:
        """kind -> (executions, bytes sent per device), for the kinds present."""
        out: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
        for c in self.collectives:
            if c.group_size > 1:
                out[c.kind][0] += c.times
                out[c.kind][1] += c.bytes_sent * c.times
        return {k: (int(v[0]), float(v[1])) for k, v in sorted(out.items())}


def collective_traffic(hlo_text: str, num_devices: int | None = None) -> Traffic:
    """The collectives of an HLO module's text as the SPMD partitioner left it (see the module docstring);
    `num_devices` sizes a collective whose replica groups are empty (all devices; default: the module's
    partition count)."""
    computations, entry = _computations(hlo_text)
    if num_devices is None:
        found = re.search(r"num_partitions=(\d+)", hlo_text)
        num_devices = int(found.group(1)) if found else 1
    collectives: list[Collective] = []
    unknown = 0

    def visit(name: str, times: int, depth: int) -> None:
        nonlocal unknown
        if depth > 64:
            raise ValueError(f"HLO computation nesting deeper than 64 at {name}")
        instructions = computations.get(name, [])
        for instruction, result_type, op, rest in instructions:
            base = op.removesuffix("-start")
            if base in KINDS and not op.endswith("-done"):
                kind, size = base, _result_bytes(result_type, op)
                group = _group_size(rest, num_devices)
                if base == "all-reduce":
                    scattered = _scattered_bytes(instructions, instruction)
                    if scattered is not None:
                        kind, size = "reduce-scatter", scattered
                collectives.append(Collective(kind, size, group, times))
            elif op == "while":
                trip = _trip_count(rest, computations)
                unknown += trip is None
                visit(_attribute(rest, "body"), times * (trip or 1), depth + 1)
            elif op in ("call", "conditional", "async-start"):
                for callee in _callees(rest):
                    visit(callee, times, depth + 1)

    visit(entry, 1, 0)
    return Traffic(tuple(collectives), unknown)


def _computations(text: str) -> tuple[dict[str, list[tuple[str, str, str, str]]], str]:
    """computation name -> its instructions as (name, result type, opcode, the rest of the line); and the
    entry computation's name."""
    computations: dict[str, list] = {}
    entry, current = None, None
    for line in text.splitlines():
        if current is None:
            header = _COMPUTATION.match(line)
            if header and "=" not in line.split("(")[0]:
                current = header.group(1)
                computations[current] = []
                if line.startswith("ENTRY"):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        instruction = _INSTRUCTION.match(line)
        if instruction:
            computations[current].append(instruction.groups())
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    return computations, entry


def _users(instructions, name: str) -> list[tuple[str, str, str, str]]:
    """The instructions of one computation that take `name` as an operand."""
    used = re.compile(rf"%{re.escape(name)}[,)\s]")
    return [i for i in instructions if i[0] != name and used.search(i[3])]


def _scattered_bytes(instructions, name: str) -> int | None:
    """When every use of all-reduce `name` is a dynamic-slice (directly, or of a get-tuple-element of it),
    the bytes of those slices: the all-reduce is a reduce-scatter. Else None."""
    slices: list[int] = []
    for user, result_type, op, _ in _users(instructions, name):
        if op == "dynamic-slice":
            slices.append(_result_bytes(result_type, op))
        elif op == "get-tuple-element":
            inner = _users(instructions, user)
            if not inner or any(o != "dynamic-slice" for _, _, o, _ in inner):
                return None
            slices += [_result_bytes(t, o) for _, t, o, _ in inner]
        else:
            return None
    return sum(slices) if slices else None


def _trip_count(rest: str, computations) -> int | None:
    """A while loop's fixed trip count: XLA's annotation, else a condition `counter < constant` (how scans and
    fori loops count from 0); None for a loop on data."""
    annotated = _TRIP_COUNT.search(rest)
    if annotated:
        return int(annotated.group(1))
    condition = computations.get(_attribute(rest, "condition"), [])
    constants = {n: int(c.group(1)) for n, t, o, r in condition
                 if o == "constant" and (c := re.match(r"\s*(\d+)\)", r))}
    root = condition[-1] if condition else None
    if root is None or root[2] != "compare" or "direction=LT" not in root[3]:
        return None
    operands = re.findall(r"%([\w.\-]+)", root[3].split(")")[0])
    return constants.get(operands[1]) if len(operands) == 2 else None


def _result_bytes(result_type: str, op: str) -> int:
    """Per-device bytes of a collective's result. An async start returns (operands..., results...): its
    result is the second half; all-gather's is its largest array."""
    sizes = [_array_bytes(dtype, dims) for dtype, dims in _ARRAY.findall(result_type)]
    if op.endswith("-start") and len(sizes) > 1:
        sizes = sizes[len(sizes) // 2:] if not op.startswith("all-gather") else [max(sizes)]
    return int(sum(sizes))


def _array_bytes(dtype: str, dims: str) -> float:
    count = 1
    for d in filter(None, dims.split(",")):
        count *= int(d)
    return count * _DTYPE_BYTES.get(dtype, 4)


def _group_size(rest: str, num_devices: int) -> int:
    """Devices in one replica group: `{{0,1},{2,3}}` lists them, `[G,n]<=[...]` is the iota form, and
    `mesh['a'=2,'b'=4] {'b'}` names the mesh axes a group spans."""
    named = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", rest)
    if named:
        sizes = {k.strip("' "): int(v) for k, v in (item.split("=") for item in named.group(1).split(","))}
        size = 1
        for axis in filter(None, (a.strip("' ") for a in named.group(2).split(","))):
            size *= sizes[axis]
        return size
    iota = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", rest)
    if iota:
        return int(iota.group(2))
    listed = re.search(r"replica_groups=\{\{([0-9,\s]*)\}", rest)
    if listed:
        return len([d for d in listed.group(1).split(",") if d.strip()])
    pairs = re.search(r"source_target_pairs=\{(.*?)\}\s*(?:,|$)", rest)
    if pairs:
        return 2  # a permute sends its whole buffer once, whatever the pairs
    return num_devices


def _attribute(rest: str, name: str) -> str:
    found = re.search(rf"\b{name}=%?([\w.\-]+)", rest)
    if not found:
        raise ValueError(f"HLO instruction without {name}=: {rest[:200]}")
    return found.group(1)


def _callees(rest: str) -> list[str]:
    """Computations a call / conditional / async-start runs."""
    names = re.findall(r"\b(?:to_apply|calls|true_computation|false_computation)=%?([\w.\-]+)", rest)
    branches = re.search(r"branch_computations=\{([^}]*)\}", rest)
    if branches:
        names += [b.strip().lstrip("%") for b in branches.group(1).split(",")]
    return names
