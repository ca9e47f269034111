"""House rules of issue 21, read from the package's source: `config` imports nothing from the package, no library function
outside `steps`/`study` takes `RunConfig`, no module imports another module's private name, no import cycle."""
import ast, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'.ci'))
from package_graph import package_modules, package_imports, import_graph, private_imports, cycles, takes_runconfig

MODULES = package_modules(ROOT/'aidsafe_nb')

# `config` owns RunConfig (its validation and serialisation take it); `steps` and `study` build the setups from it.
CFG_OWNERS = {'config', 'steps', 'study'}

def test_config_imports_nothing_from_the_package():
    assert package_imports(MODULES['config'], MODULES) == []
    code = "import sys, aidsafe_nb.config as c; c.make_config('tiny'); print(sorted(m for m in sys.modules if m.startswith('aidsafe_nb')))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['aidsafe_nb', 'aidsafe_nb.config']", out

def test_no_import_cycle():
    assert cycles(import_graph(MODULES)) == []

def test_the_cycle_check_can_fail():
    g = import_graph(MODULES); g['config'] = g['config'] | {'steps'}          # config -> steps -> ... -> config
    assert any({'config', 'steps'} <= set(c) for c in cycles(g))

def test_no_library_function_outside_steps_and_studytakes_runconfig():
    found = {m: takes_runconfig(t) for m, t in MODULES.items() if m not in CFG_OWNERS}
    assert {m: fs for m, fs in found.items() if fs} == {}
    assert takes_runconfig(ast.parse('def f(x, cfg): pass\ndef g(c: RunConfig): pass\ndef h(setup): pass')) == ['f', 'g']

def test_no_private_name_imported_across_modules():
    assert private_imports(MODULES) == []
    assert private_imports({'a': ast.parse('from .b import _x, y'), 'b': ast.parse('')}) == ['a <- b._x']
