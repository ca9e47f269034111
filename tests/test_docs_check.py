"The docs check in `make test` (nbdev's notebook processing for the site, Quarto stubbed) passes on a clean notebook and fails on one that breaks it."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, BIN

def _nb(*sources):
    "A library notebook (a title and an exported function, as nbdev only executes notebooks that have docs) plus `sources`."
    sources = ('#| default_exp example', '#| export\ndef area(r): return 3.14159 * r * r') + sources
    cells = [{'cell_type': 'markdown', 'id': 'title', 'metadata': {}, 'source': '# example\n\n> A notebook for the docs check'}] + [{'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source': s} for i, s in enumerate(sources)]
    return {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}

def _docs_check(tmp_path, notebook: dict):
    "A minimal nbdev project holding one notebook; run the same processing `make docs-check` runs."
    (tmp_path/'nbs').mkdir(); (tmp_path/'mylib').mkdir()
    (tmp_path/'mylib'/'__init__.py').write_text('')
    ini = (ROOT/'settings.ini').read_text().replace('lib_name = aidsafe_nb', 'lib_name = mylib').replace('lib_path = aidsafe_nb', 'lib_path = mylib')
    (tmp_path/'settings.ini').write_text(ini)
    for f in ('_quarto.yml', 'nbdev.yml'): shutil.copy(ROOT/'nbs'/f, tmp_path/'nbs'/f)
    (tmp_path/'nbs'/'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - example.ipynb\n')
    (tmp_path/'nbs'/'example.ipynb').write_text(json.dumps(notebook))
    env = {**os.environ, 'PATH': f"{ROOT/'.ci'/'quarto-stub'}:{os.environ['PATH']}"}
    return subprocess.run([str(BIN/'nbdev_proc_nbs'), '--n_workers', '0'], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)

def test_clean_notebook_passes(tmp_path):
    r = _docs_check(tmp_path, _nb('import math', 'radius = 2.0', 'math.pi * radius**2', 'area(radius)'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'_proc'/'example.ipynb').exists()

def test_import_mixed_with_example_code_fails(tmp_path):
    # nbdev runs every cell holding an import when it builds the docs, but not the cells before it:
    # `radius` is undefined at docs time, exactly the failure the library notebooks had (01_llm, 07_train, 09_evaluate)
    r = _docs_check(tmp_path, _nb('radius = 2.0', 'import math\nmath.pi * radius**2'))
    assert r.returncode != 0
    assert "name 'radius' is not defined" in r.stderr and 'Error in notebook: example' in r.stderr, r.stderr[-2000:]
