"""The human report of ``rvh diff``."""

from __future__ import annotations

from rvh.diff.comparison import DiffResult, pretty_field


def format_report(result: DiffResult, *, elf: str | None = None) -> str:
    """The human report of ``rvh diff``."""
    lines = []
    d = result.divergence
    if d is None:
        lines.append(
            f"rvh diff: {result.instructions} instruction boundaries agree with QEMU 7.2 "
            f"({len(result.fields)} fields: pc, x0-x31, "
            + ("f0-f31, " if "f0" in result.fields else "")
            + ", ".join(
                f for f in result.fields if f != "pc" and not (f[0] in "xf" and f[1:].isdigit())
            )
            + ")"
        )
        if result.rvh_exit is not None:
            lines.append(f"both exited with status {result.rvh_exit}")
    else:
        where = "reset" if d.index < 0 else f"instruction {d.index}"
        lines.append(f"rvh diff: first divergence at {where}: {d.pc:#x}: {d.disassembly}")
        lines.append(f"  {d.reason}")
        if d.fields:
            lines.append(f"  {'field':<14}{'rvh':<22}{'QEMU 7.2':<22}")
            for name, (ours, theirs) in d.fields.items():
                label = f"{pretty_field(name)} ({name})" if name.startswith("x") else name
                lines.append(f"  {label:<14}{_hex(ours):<22}{_hex(theirs):<22}")
        if d.context:
            lines.append(f"last {len(d.context)} instructions (rvh's register writes):")
            lines.extend("  " + step.text() for step in d.context)
        if elf:
            lines.append(f"reproduce: rvh diff {elf} --context {max(20, len(d.context))}")
    if result.deviations:
        counts: dict[str, int] = {}
        for applied in result.deviations:
            counts[applied.label] = counts.get(applied.label, 0) + 1
        lines.append(
            "known QEMU deviations applied: "
            + ", ".join(f"{name} x{n}" for name, n in counts.items())
            + " (docs/testing.md)"
        )
    if result.not_compared:
        lines.append("not compared (unknown to rvh): " + ", ".join(result.not_compared))
    return "\n".join(lines)


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#018x}"
