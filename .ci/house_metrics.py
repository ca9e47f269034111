#!/usr/bin/env python3
"""House-style measurements of a checkout: cell sizes, example cells ending in a value, cells with outputs,
docments, imports inside functions, module sizes.  usage: python .ci/house_metrics.py . (the numbers issue 15 tracks)"""
import ast, json, statistics, sys
from pathlib import Path
root = Path(sys.argv[1])
lib = sorted(p for p in (root/'nbs').glob('*.ipynb') if not p.name.startswith('index'))
allnb = sorted((root/'nbs').rglob('*.ipynb'))
sizes, ex, ex_val, with_out, n_code = [], 0, 0, 0, 0
for p in allnb:
    nb = json.load(open(p))
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        n_code += 1
        if c.get('outputs'): with_out += 1
        s = ''.join(c['source']); lines = [l for l in s.splitlines() if l.strip()]
        if p in lib: sizes.append(len(lines))
        if p in lib and not s.lstrip().startswith('#|') or (p in lib and s.lstrip().startswith('#| slow')):
            body = '\n'.join(l for l in s.splitlines() if not l.startswith('#|'))
            try: tree = ast.parse(body)
            except SyntaxError: continue
            if not tree.body: continue
            ex += 1
            last = tree.body[-1]
            if isinstance(last, ast.Expr) and not (isinstance(last.value, ast.Call) and getattr(last.value.func, 'id', '') in ('test_eq', 'test_fail', 'test_close', 'print', 'display', 'test_ne', 'test')):
                ex_val += 1
funcs = docm = inner_imp = inner_imp_pkg = 0; mods = {}
for f in sorted((root/'aidsafe_nb').glob('*.py')):
    if f.name.startswith('_'): continue
    src = f.read_text(); mods[f.stem] = len(src.splitlines()); tree = ast.parse(src)
    srclines = src.splitlines()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if n.name.startswith('_'): 
                pass
            else:
                args = [a for a in n.args.args + n.args.kwonlyargs if a.arg not in ('self', 'cls')]
                if args:
                    funcs += 1
                    # docments: a comment on the line of an argument
                    if any('#' in srclines[a.lineno - 1].split(a.arg, 1)[-1] for a in args): docm += 1
            for m in ast.walk(n):
                if isinstance(m, (ast.Import, ast.ImportFrom)):
                    inner_imp += 1
                    if isinstance(m, ast.ImportFrom) and (m.level > 0 or (m.module or '').startswith('aidsafe_nb')): inner_imp_pkg += 1
print(f'library notebooks: {len(lib)}; all notebooks: {len(allnb)}; code cells: {n_code}')
print(f'library code cell lines: median {statistics.median(sizes)}, p90 {sorted(sizes)[int(.9*len(sizes))]}, max {max(sizes)}')
print(f'example cells ending in a value: {ex_val}/{ex} = {ex_val/ex:.0%}')
print(f'code cells with saved outputs: {with_out}/{n_code}')
print(f'public functions with parameters using docments: {docm}/{funcs}')
print(f'imports inside functions: {inner_imp} ({inner_imp_pkg} within the package)')
print('module lines:', ', '.join(f'{k} {v}' for k, v in sorted(mods.items(), key=lambda kv: -kv[1])))

# --- issue 21: the import graph, RunConfig's reach, private names across modules, long lines
sys.path.insert(0, str(Path(__file__).resolve().parent))
from package_graph import package_modules, import_graph, private_imports, cycles as import_cycles, takes_runconfig
modules = package_modules(root/'aidsafe_nb')
private = private_imports(modules)
cfg_funcs = [f'{m}.{fn}' for m, tree in modules.items() for fn in takes_runconfig(tree)]
long_lines = total_lines = 0
for p in lib:
    for c in json.load(open(p))['cells']:
        if c['cell_type'] != 'code': continue
        for l in ''.join(c['source']).splitlines():
            if l.strip(): total_lines += 1; long_lines += len(l) > 120
cycles = import_cycles(import_graph(modules))
by_mod = {}
for x in cfg_funcs: by_mod[x.split('.')[0]] = by_mod.get(x.split('.')[0], 0) + 1
big = max(mods.items(), key=lambda kv: kv[1])
nb_out = sum(any(c.get('outputs') for c in json.load(open(p))['cells'] if c['cell_type'] == 'code') for p in lib)
print(f'import cycles (all intra-package imports, function-level included): {len(cycles)}'
      + ''.join(f'; {len(c)} modules: {" ".join(c)}' for c in cycles))
print(f'functions taking RunConfig (param `cfg` or annotated RunConfig): {len(cfg_funcs)} in {len(by_mod)} modules ('
      + ', '.join(f'{k} {v}' for k, v in sorted(by_mod.items(), key=lambda kv: -kv[1])) + ')')
print(f'largest module: {big[0]} {big[1]} lines')
print(f'library notebooks with saved outputs: {nb_out}/{len(lib)}')
print(f'private names imported across modules: {len(private)}' + (': ' + ', '.join(sorted(private)) if private else ''))
print(f'library notebook code lines over 120 chars: {long_lines}/{total_lines} = {long_lines/total_lines:.1%}')
