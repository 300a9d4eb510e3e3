"""Parses the KTAP v1 that ktest prints: suites as subtests, one result line
per case, '# ' diagnostic lines before the result they belong to. Lines that
are not KTAP (log messages) are ignored, as the format allows."""
import re
from dataclasses import dataclass, field

RESULT = re.compile(r"^(?P<indent>\s*)(?P<ok>ok|not ok) (?P<num>\d+) (?P<name>[^#]*?)\s*(?:# (?P<directive>.*))?$")
SUBTEST = re.compile(r"^\s+# Subtest: (?P<name>\S+)")
DIAG = re.compile(r"^\s+# (?P<text>.*)$")


@dataclass
class CaseResult:
    suite: str
    name: str
    ok: bool
    skipped: bool = False
    skip_reason: str = ""
    diagnostics: list = field(default_factory=list)

    @property
    def full_name(self):
        return f"{self.suite}.{self.name}"


def parse(text):
    """Returns {full_name: CaseResult} for every case line found."""
    results = {}
    suite = None
    pending = []
    for raw in text.replace("\r", "").splitlines():
        m = SUBTEST.match(raw)
        if m:
            suite = m.group("name")
            pending = []
            continue
        m = RESULT.match(raw)
        if m and m.group("indent") and suite:
            directive = m.group("directive") or ""
            skipped = directive.upper().startswith("SKIP")
            case = CaseResult(suite, m.group("name"), m.group("ok") == "ok", skipped,
                              directive[4:].strip() if skipped else "", pending)
            results[case.full_name] = case
            pending = []
            continue
        if m and not m.group("indent"):
            suite = None
            continue
        m = DIAG.match(raw)
        if m and suite:
            pending.append(m.group("text"))
    return results


def summary(text):
    m = re.search(r"# ktest: (\d+) passed, (\d+) failed, (\d+) skipped", text)
    return tuple(int(x) for x in m.groups()) if m else None
