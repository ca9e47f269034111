"Which constraints file is which: constraints.txt pins the direct dependencies, constraints-ci.txt every package (make setup), constraints-vllm.txt the separate serving environment."
import re
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()


def pins(name: str) -> dict[str, str]:
    return {norm(l.split('==')[0]): l.split('==')[1].strip() for l in (ROOT/name).read_text().splitlines() if '==' in l and not l.startswith('#')}


def requirements() -> set[str]:
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    reqs = cfg['DEFAULT']['requirements'].split() + cfg['DEFAULT']['dev_requirements'].split()
    return {norm(re.split(r'[<>=!\[;]', r)[0]) for r in reqs}


def test_constraints_pin_every_direct_dependency_at_the_ci_version():
    user, ci = pins('constraints.txt'), pins('constraints-ci.txt')
    assert requirements() <= set(user), requirements() - set(user)
    assert len(user) < 50 < len(ci)                                       # the user file is short; CI pins everything
    assert {k: v for k, v in user.items() if ci.get(k) != v} == {}        # the same versions CI tests
    assert 'tensorboard' in user and 'certifi' not in user                 # the default report_to is installable; no transitive pins


def test_setup_uses_the_ci_pins_and_vllm_has_its_own_environment():
    mk = (ROOT/'Makefile').read_text()
    assert 'CONSTRAINTS ?= constraints-ci.txt' in mk and "-c $(CONSTRAINTS) -e '.[dev]'" in mk
    assert "-c constraints-vllm.txt 'vllm==0.33.0'" in mk
    vllm, ci = pins('constraints-vllm.txt'), pins('constraints-ci.txt')
    assert vllm['vllm'] == '0.33.0' and vllm['torch'] != ci['torch'] and vllm['transformers'] != ci['transformers']   # why it is separate
    assert 'aidsafe-nb' not in vllm
