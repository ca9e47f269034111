"""The package's import graph read from its source, for `.ci/house_metrics.py` and `tests/test_house.py` (issue 21):
intra-package imports (function-level ones included), import cycles, functions that take `RunConfig`."""
import ast
from pathlib import Path

def package_modules(pkg: Path) -> dict[str, ast.Module]:
    "{module name: parsed source} of the package's own modules (`_modidx` and other private files left out)."
    return {f.stem: ast.parse(f.read_text()) for f in sorted(Path(pkg).glob('*.py')) if not f.name.startswith('_')}

def package_imports(tree: ast.AST, modules) -> list[tuple[str, list[str]]]:
    "(package module, names imported from it) for every intra-package import in `tree`, function-level ones included."
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            m = n.module or ''
            base = m if n.level else m[len('aidsafe_nb.'):] if m.startswith('aidsafe_nb.') else None
            if base: out.append((base.split('.')[0], [a.name for a in n.names]))
            elif n.level or m == 'aidsafe_nb': out += [(a.name, []) for a in n.names if a.name in modules]
        elif isinstance(n, ast.Import):
            out += [(a.name.split('.')[1], []) for a in n.names if a.name.startswith('aidsafe_nb.')]
    return out

def import_graph(modules: dict) -> dict[str, set]:
    "{module: the other package modules it imports}."
    return {m: {t for t, _ in package_imports(tree, modules) if t in modules and t != m} for m, tree in modules.items()}

def private_imports(modules: dict) -> list[str]:
    "`module <- other.name` for every private name a module imports from another package module."
    return sorted(f'{m} <- {t}.{x}' for m, tree in modules.items() for t, names in package_imports(tree, modules)
                  if t != m for x in names if x.startswith('_') and not x.startswith('__'))

def cycles(g: dict[str, set]) -> list[list[str]]:
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

def takes_runconfig(tree: ast.AST) -> list[str]:
    "Functions with a parameter named `cfg` or annotated `RunConfig`."
    out = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = n.args.posonlyargs + n.args.args + n.args.kwonlyargs
            if any(a.arg == 'cfg' or (a.annotation is not None and 'RunConfig' in ast.unparse(a.annotation)) for a in args):
                out.append(n.name)
    return out
