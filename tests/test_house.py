"""House rules of issue 21, read from the package's source: `config` imports nothing from the package, no library function
outside `steps`/`study` takes `RunConfig`, no module imports another module's private name, no import cycle."""
import ast, subprocess, sys
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parent.parent/'aidsafe_nb'
MODULES = {f.stem: ast.parse(f.read_text()) for f in sorted(PKG.glob('*.py')) if not f.name.startswith('_')}

# `config` owns RunConfig (its validation and serialisation take it); `steps` and `study` build the setups from it.
CFG_OWNERS = {'config', 'steps', 'study'}

def _imports(tree) -> list[tuple[str, list[str]]]:
    "(package module, names) of every intra-package import in `tree`, function-level ones included."
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            m = n.module or ''
            base = m if n.level else m[len('aidsafe_nb.'):] if m.startswith('aidsafe_nb.') else None
            if base: out.append((base.split('.')[0], [a.name for a in n.names]))
            elif n.level or m == 'aidsafe_nb': out += [(a.name, []) for a in n.names if a.name in MODULES]
        elif isinstance(n, ast.Import):
            out += [(a.name.split('.')[1], []) for a in n.names if a.name.startswith('aidsafe_nb.')]
    return out

def _graph() -> dict[str, set]: return {m: {t for t, _ in _imports(tree) if t in MODULES and t != m} for m, tree in MODULES.items()}

def _cycles(g: dict[str, set]) -> list[list[str]]:
    "Strongly connected components with more than one module (Tarjan)."
    idx, low, st, on, out, i = {}, {}, [], set(), [], [0]
    def visit(v):
        idx[v] = low[v] = i[0]; i[0] += 1; st.append(v); on.add(v)
        for w in sorted(g[v]):
            if w not in idx: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            c = []
            while True:
                w = st.pop(); on.discard(w); c.append(w)
                if w == v: break
            if len(c) > 1: out.append(sorted(c))
    for v in sorted(g):
        if v not in idx: visit(v)
    return out

def _takes_runconfig(tree) -> list[str]:
    "Functions with a parameter named `cfg` or annotated `RunConfig`."
    out = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = n.args.posonlyargs + n.args.args + n.args.kwonlyargs
            if any(a.arg == 'cfg' or (a.annotation is not None and 'RunConfig' in ast.unparse(a.annotation)) for a in args): out.append(n.name)
    return out

def test_config_imports_nothing_from_the_package():
    assert _imports(MODULES['config']) == []
    code = "import sys, aidsafe_nb.config as c; c.make_config('tiny'); print(sorted(m for m in sys.modules if m.startswith('aidsafe_nb')))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['aidsafe_nb', 'aidsafe_nb.config']", out

def test_no_import_cycle():
    assert _cycles(_graph()) == []

def test_the_cycle_check_can_fail():
    g = _graph(); g['config'] = g['config'] | {'steps'}          # config -> steps -> ... -> config
    assert any({'config', 'steps'} <= set(c) for c in _cycles(g))

def test_no_library_function_outside_steps_and_study_takes_runconfig():
    found = {m: _takes_runconfig(t) for m, t in MODULES.items() if m not in CFG_OWNERS}
    assert {m: fs for m, fs in found.items() if fs} == {}
    assert _takes_runconfig(ast.parse('def f(x, cfg): pass\ndef g(c: RunConfig): pass\ndef h(setup): pass')) == ['f', 'g']

def test_no_private_name_imported_across_modules():
    bad = [f'{m} <- {t}.{x}' for m, tree in MODULES.items()
           for t, names in _imports(tree) for x in names if x.startswith('_') and not x.startswith('__')]
    assert bad == []
