"""JUnit XML for CI: one ``<testsuite>`` per scenario, one ``<testcase>`` per check (and
one per fault's evidence, whose absence makes a drill's verdict ``error``), one per
finding, and the findings and what the run found (``runmodel.headline``) as the suite's
``<properties>``.

The same pass/fail as the exit status: a ``<failure>`` is the system under test crossing a
budget (a finding that bounces, loses or duplicates mail: exit 1); an ``<error>`` is the
drill's own trouble (a refuted hypothesis, a fault without evidence, a drill that could
not run: exit 3). CI that goes green has nothing of either.

The dialect is Jenkins xUnit's ``junit-10.xsd`` (the schema pytest's own JUnit output
follows, and GitLab and GitHub's JUnit readers accept): properties belong to a test
suite there, not to a test case, and ``time`` is seconds with at most three decimals.
The standard library's ElementTree writes it: the format is a handful of elements, and
the schema test (tests/test_reports.py) holds it to the XSD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from spamdrill.checks import CheckResult
from spamdrill.runmodel import FindingRow, Run, Scenario, headline, seconds_phrase


def _t(seconds: float | None) -> str:
    return f"{max(0.0, seconds or 0.0):.3f}"


def _check_case(sc: Scenario, c: CheckResult) -> ET.Element:
    case = ET.Element("testcase", name=c.name, classname=f"spamdrill.{sc.name}")
    if c.status != "pass":
        who = sc.offenders(c)
        text = c.detail + "".join(
            f"\n{m.id} ({m.case or 'all'}): {m.outcome} after "
            f"{'-' if m.seconds is None else f'{m.seconds:.3f}'} s" for m in who[:20])
        # a check judges the drill's hypothesis: failing it is the drill's error
        kind = "refuted" if c.status == "fail" else c.status
        el = ET.SubElement(case, "error", message=c.detail[:200], type=kind)
        el.text = text
    return case


def _finding_case(sc: Scenario, f: FindingRow) -> ET.Element:
    case = ET.Element("testcase", name=f"finding {f.case}: {f.mode or 'all'}",
                      classname=f"spamdrill.{sc.name}")
    if f.crosses_budget:
        text = (f"{f.finding} (fate {f.fate}; worst {seconds_phrase(f.worst_s, sc.scale)}; "
                f"{f.messages} messages, {f.lost} lost): {f.why}")
        ET.SubElement(case, "failure", message=text[:200], type="crosses-budget").text = text
    return case


def _suite(sc: Scenario, run_headline: str) -> ET.Element:
    duration = (sc.end_ns - sc.t0_ns) / 1e9
    cases = [_check_case(sc, c) for c in sc.checks]
    cases += [_finding_case(sc, f) for f in sc.findings]
    for f in sc.fault_evidence:
        case = ET.Element("testcase", name=f"fault {f.name} took effect",
                          classname=f"spamdrill.{sc.name}")
        if not f.took_effect:
            ET.SubElement(case, "error", message=f.detail[:200], type="no-evidence").text = \
                f.detail
        cases.append(case)
    if sc.error:
        case = ET.Element("testcase", name="drill ran", classname=f"spamdrill.{sc.name}")
        ET.SubElement(case, "error", message=sc.error[:200], type="error").text = sc.error
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    suite = ET.Element("testsuite", name=sc.name, tests=str(len(cases)),
                       failures=str(failures), errors=str(errors), skipped="0",
                       time=_t(duration))
    props = ET.SubElement(suite, "properties")
    pairs = [("run.found", run_headline), ("found", headline([sc])),
             ("hypothesis", sc.hypothesis), ("verdict", sc.verdict),
             ("finding", sc.finding), ("scale", f"{sc.scale:.3g}"),
             ("budget_s", f"{sc.budget_s:.3g}"),
             ("budget", seconds_phrase(sc.budget_s, sc.scale, measured=False))]
    pairs += [(f"finding.{f.case}", f"{f.finding} (fate {f.fate}; worst "
               f"{seconds_phrase(f.worst_s, sc.scale)}; {f.why})")
              for f in sc.findings]
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=value)
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = "\n".join(sc.notes)
    return suite


# characters XML 1.0 cannot carry at all, escaped or not: a log line's control bytes
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Outside text as XML can hold it: what XML 1.0 forbids shown as ``\\xNN``, so
    the document stays well-formed (a CI tool rejects the whole report otherwise)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _clean(el: ET.Element) -> None:
    for e in el.iter():
        e.text = _xml_text(e.text) if e.text else e.text
        e.tail = _xml_text(e.tail) if e.tail else e.tail
        for k, v in e.attrib.items():
            e.attrib[k] = _xml_text(v)


def render(run: Run) -> bytes:
    found = headline(run.scenarios)
    suites = [_suite(sc, found) for sc in run.scenarios]
    root = ET.Element("testsuites", name=f"spamdrill {run.kind} {run.run}",
                      tests=str(sum(int(s.get("tests", "0")) for s in suites)),
                      failures=str(sum(int(s.get("failures", "0")) for s in suites)),
                      errors=str(sum(int(s.get("errors", "0")) for s in suites)))
    root.extend(suites)
    _clean(root)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
