"Project wiring: parameters tags, README/index story, nbdev sync check, CI entry point."
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import nbformat, pytest
from conftest import ROOT, BIN

ALL_STUDY = sorted((ROOT/'nbs'/'study').glob('*.ipynb'))
STUDY = [p for p in ALL_STUDY if p.stem != '0_colab']     # the six steps; 0_colab is the Colab driver that runs them

def test_six_study_notebooks():
    assert [p.stem for p in STUDY] == ['1_generate', '2_preference', '3_sft', '4_dpo', '5_evaluate', '6_report']

@pytest.mark.parametrize('path', ALL_STUDY, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    "papermill infers every assignment of the parameters cell (an `=` inside a comment makes it skip the line)."
    nb = nbformat.read(path, as_version=4)
    src = next(c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])).source
    names = re.findall(r'^(\w+)\s*(?::\s*\w+\s*)?=', src, re.M)
    r = subprocess.run([str(BIN/'papermill'), '--help-notebook', str(path)], capture_output=True, text=True, check=True)
    assert names and all(f'  {n}:' in r.stdout for n in names), (names, r.stdout)

@pytest.mark.parametrize('path', STUDY, ids=lambda p: p.stem)
def test_study_notebook_shape(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])]
    assert len(tagged) == 1, f'{path.name}: needs exactly one cell tagged parameters'
    src = tagged[0].source
    for name in ('run_dir', 'profile', 'overrides'): assert re.search(rf'^{name}\s*(:\s*\w+\s*)?=', src, re.M), f'{path.name}: parameter {name} missing'
    text = '\n'.join(c.source for c in nb.cells)
    assert 'colab.research.google.com/github' in text and "'google.colab' in sys.modules" in text
    assert 'nbdev_export' not in text, 'study notebooks must run outside the repo'

def test_nbdev_clean_keeps_parameters_tags(tmp_path):
    for p in STUDY: shutil.copy(p, tmp_path/p.name)
    subprocess.run([str(BIN/'nbdev_clean'), '--fname', str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    for p in STUDY:
        nb = nbformat.read(tmp_path/p.name, as_version=4)
        assert any('parameters' in c.metadata.get('tags', []) for c in nb.cells), f'nbdev_clean dropped the parameters tag of {p.name}'

def test_sync_check_detects_drift(tmp_path):
    "A module edited by hand (disagreeing with its notebook) makes the Makefile's sync check fail."
    repo = tmp_path/'repo'
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns('.venv', 'outputs', '.git', '_docs', '__pycache__', '*.egg-info'))
    git = lambda *a: subprocess.run(['git', *a], cwd=repo, check=True, capture_output=True)
    git('init', '-q'); git('add', '-A'); git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'x')
    make = ['make', '-s', 'sync-check', f'VENV={ROOT/".venv"}']
    env = {**os.environ, 'AIDSAFE_ROOT': str(repo)}
    ok = subprocess.run(make, cwd=repo, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with open(repo/'aidsafe_nb'/'config.py', 'a') as f: f.write('\nHAND_EDIT = 1\n')
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qam', 'hand edit')
    bad = subprocess.run(make, cwd=repo, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and 'SYNC CHECK FAILED' in bad.stdout and 'aidsafe_nb/config.py' in bad.stdout

def _words(text): return re.findall(r'[a-z0-9_]+', text.lower())

def test_readme_and_index_tell_the_same_story():
    readme = (ROOT/'README.md').read_text()
    nb = nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4)
    index = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
    assert _words(readme) == _words(index)
    assert 'make study' in readme and 'make test' in readme

def test_ci_runs_make_test():
    assert 'make test' in (ROOT/'.ci'/'run').read_text()

def test_sidebar_lists_every_notebook_once():
    "The docs site's sidebar (custom: `custom_sidebar = True`) names every notebook exactly once, and nothing that does not exist."
    import yaml
    def names(items):
        for it in items:
            if isinstance(it, dict): yield from names(it.get('contents', []))
            else: yield it
    listed = list(names(yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']))
    present = sorted(p.relative_to(ROOT/'nbs').as_posix() for p in (ROOT/'nbs').rglob('*.ipynb') if not any(q.startswith(('_', '.')) for q in p.parts))
    assert len(listed) == len(set(listed)), [n for n in listed if listed.count(n) > 1]
    assert sorted(listed) == present, (set(present) - set(listed), set(listed) - set(present))
    assert not (ROOT/'nbs'/'study'/'sidebar.yml').exists() and not (ROOT/'nbs'/'bench'/'sidebar.yml').exists()
