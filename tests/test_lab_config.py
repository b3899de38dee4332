"""The lab config as typed sections (sans-IO): what a TOML file may say, and the one-line
error that names the key and what it wants when it says something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.errors import SpamdrillError
from spamdrill.lab.config import SECTIONS, LabConfig, from_dict, load, with_overrides

pytestmark = pytest.mark.unit


def test_wrapper_fates_are_settable_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text('[delivery]\nwrapper = "measured"\n'
                    'wrapper_fates = { timeout = "lost", filter-failed = "deferred" }\n')
    d = load(path).delivery
    assert d.wrapper == "measured"
    assert d.wrapper_fates == {"timeout": "lost", "filter-failed": "deferred"}


BAD = [
    ({"spamd": {"max_children": 0}}, "spamd.max_children: expected int >= 1"),
    ({"spamd": {"max_children": True}}, "spamd.max_children: expected int, got bool"),
    ({"spamd": {"max_childs": 1}}, "unknown setting spamd.max_childs -- known: port,"),
    ({"database": {"port": -1}}, "database.port: expected int >= 0"),
    ({"topology": {"spamd_syncookies": "sometimes"}},
     "topology.spamd_syncookies: invalid enum value 'sometimes' -- known: kernel, off"),
    ({"topology": {"clients": 9}}, "topology.clients: expected int <= 8"),
    ({"maildrop": {"spamc_args": "-t 5"}}, "maildrop.spamc_args: expected a list, got str"),
    ({"spamd": 3}, "spamd: expected a table, got int"),
    ({"nonsense": {}}, "unknown section [nonsense] -- known: topology,"),
    ({"users": {"a b": 1}}, "users: expected str of letters and digits"),
    ({"users": {}}, "users: expected a table of length >= 1"),
    ({"delivery": {"wrapper": "measured"}},
     'delivery.wrapper_fates: a fate for each of timeout, filter-failed, with wrapper = '
     '"measured" only'),
    ({"delivery": {"wrapper_fates": {"timeout": "lost", "filter-failed": "lost"}}},
     "delivery.wrapper_fates: a fate for each of"),
    ({"delivery": {"wrapper": "measured", "wrapper_fates": {"timeout": "gone"}}},
     "delivery.wrapper_fates: invalid enum value 'gone' -- events: timeout, filter-failed; "
     "fates: delivered,"),
]


@pytest.mark.parametrize("raw,line", BAD, ids=[b[1][:30] for b in BAD])
def test_a_bad_value_is_one_line_naming_its_key(raw: dict[str, object], line: str) -> None:
    with pytest.raises(SpamdrillError) as err:
        from_dict(raw)
    got = err.value.one_line()
    assert "\n" not in got and got.startswith(line), got


def test_either_spelling_of_a_key_and_overrides_validated_as_a_whole() -> None:
    config = from_dict({"spamd": {"max-conn-per-child": 3}})
    assert config.spamd.max_conn_per_child == 3
    assert with_overrides(config, {"spamd": {"timeout-tcp": 2}}).spamd.timeout_tcp == 2
    with pytest.raises(SpamdrillError, match=r"delivery\.wrapper_fates"):
        with_overrides(LabConfig(), {"delivery": {"wrapper": "measured"}})
    assert with_overrides(config, {"spamd": {}}) == config


def test_the_documented_config_is_valid_and_says_the_defaults() -> None:
    """docs/CONFIG.md's example names every key with its default: it must parse, and
    parse to the defaults (a key renamed or a default changed shows here)."""
    import re
    import tomllib

    doc = (Path(__file__).parent.parent / "docs" / "CONFIG.md").read_text()
    [example] = re.findall(r"```toml\n(.*?)```", doc, re.S)
    raw = tomllib.loads(example)
    assert from_dict(raw) == LabConfig()
    for name, section in SECTIONS.items():
        missing = set(section.__struct_fields__) - set(raw[name])
        assert not missing, f"docs/CONFIG.md: [{name}] lacks {sorted(missing)}"
