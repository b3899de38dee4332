"""JUnit XML for CI: one ``<testsuite>`` per scenario, one ``<testcase>`` per check (and
one per fault's evidence, whose absence makes a drill's verdict ``error``), the findings
as the suite's ``<properties>``.

The dialect is Jenkins xUnit's ``junit-10.xsd`` (the schema pytest's own JUnit output
follows, and GitLab and GitHub's JUnit readers accept): properties belong to a test
suite there, not to a test case, and ``time`` is seconds with at most three decimals.
The standard library's ElementTree writes it: the format is a handful of elements, and
the schema test (tests/test_reports.py) holds it to the XSD.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from spamdrill.runmodel import Check, Run, Scenario


def _t(seconds: float | None) -> str:
    return f"{max(0.0, seconds or 0.0):.3f}"


def _check_case(sc: Scenario, c: Check) -> ET.Element:
    case = ET.Element("testcase", name=c.name, classname=f"spamdrill.{sc.name}")
    if c.status != "pass":
        who = sc.offenders(c)
        text = c.detail + "".join(
            f"\n{m.id} ({m.case or 'all'}): {m.outcome} after "
            f"{'-' if m.seconds is None else f'{m.seconds:.3f}'} s" for m in who[:20])
        tag = "failure" if c.status == "fail" else "error"
        el = ET.SubElement(case, tag, message=c.detail[:200], type=c.status)
        el.text = text
    return case


def _suite(sc: Scenario) -> ET.Element:
    duration = (sc.end_ns - sc.t0_ns) / 1e9
    cases = [_check_case(sc, c) for c in sc.checks]
    for f in sc.fault_evidence:
        case = ET.Element("testcase", name=f"fault {f.fault} took effect",
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
    pairs = [("hypothesis", sc.hypothesis), ("verdict", sc.verdict),
             ("finding", sc.finding), ("scale", f"{sc.scale:g}"),
             ("budget_s", f"{sc.budget_s:g}")]
    pairs += [(f"finding.{f.case}", f"{f.finding} (fate {f.fate}; worst "
               f"{'-' if f.worst_s is None else f'{f.worst_s:g}'} s; {f.why})")
              for f in sc.findings]
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=value)
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = "\n".join(sc.notes)
    return suite


def render(run: Run) -> bytes:
    suites = [_suite(sc) for sc in run.scenarios]
    root = ET.Element("testsuites", name=f"spamdrill {run.kind} {run.run}",
                      tests=str(sum(int(s.get("tests", "0")) for s in suites)),
                      failures=str(sum(int(s.get("failures", "0")) for s in suites)),
                      errors=str(sum(int(s.get("errors", "0")) for s in suites)))
    root.extend(suites)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
