"""The one table each benchmark prints (markdown, so it pastes into issues as it is)."""

from __future__ import annotations

from dataclasses import dataclass, field

MET, MISSED = "✓", "✗ MISSED"


def cell(value: str, met: bool | None = None) -> str:
    if met is None:
        return value
    return f"{value} {MET if met else MISSED}"


@dataclass
class Table:
    title: str
    columns: list[str] = field(default_factory=lambda: ["value"])
    rows: list[tuple[str, list[str], str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ok_message: str = "correct (every post accounted for)"

    def add(self, metric: str, *values: str, target: str = "") -> None:
        padded = [*values, *[""] * (len(self.columns) - len(values))]
        self.rows.append((metric, padded, target))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def render(self) -> str:
        header = ["metric", *self.columns, "target"]
        lines = [f"== {self.title} ==", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join([metric, *values, target]) + " |"
                  for metric, values, target in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {text}" for text in self.notes]
        lines.append("")
        if self.problems:
            lines.append("RESULT: INCORRECT RUN")
            lines += [f"  MISMATCH: {text}" for text in self.problems]
        else:
            lines.append(f"RESULT: {self.ok_message}")
        return "\n".join(lines)

    def print(self) -> int:
        """Prints the table; the exit code: 0 when the run was correct, else 1."""
        print(self.render(), flush=True)
        return 1 if self.problems else 0
