"A package that installs anywhere: the built wheel carries data/ and the study notebooks, and an installed copy runs the tiny dry run outside the checkout."
import importlib.util, os, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ('setup.py', 'settings.ini', 'pyproject.toml', 'README.md', 'MANIFEST.in', 'LICENSE', 'CITATION.cff', 'aidsafe_nb', 'data', 'nbs/study')
JUNK = shutil.ignore_patterns('__pycache__', '*.pyc', '.ipynb_checkpoints', '.last_checked', '*.egg-info')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "Build the wheel from a copy of the checkout's package files (no build isolation: offline, setuptools from this environment)."
    if importlib.util.find_spec('setuptools') is None: pytest.skip('setuptools is not installed: cannot build the wheel')
    src, dist = tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('dist')
    for s in SOURCES:
        (src/s).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree(ROOT/s, src/s, ignore=JUNK) if (ROOT/s).is_dir() else shutil.copy(ROOT/s, src/s))
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index', '-w', str(dist), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = dist.glob('aidsafe_nb-*.whl')
    return whl


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file() and '__pycache__' not in p.parts
            and '.ipynb_checkpoints' not in p.parts and p.suffix != '.pyc'}


def test_wheel_carries_data_and_study_notebooks(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _files(ROOT/'data')
    assert len(data) > 40 and {f'aidsafe_nb/data/{f}' for f in data} <= names, sorted({f'aidsafe_nb/data/{f}' for f in data} - names)[:10]
    study = {p.name for p in (ROOT/'nbs'/'study').glob('*.ipynb')}
    assert {f'aidsafe_nb/study_nbs/{n}' for n in study} <= names
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names)
    assert any(n.endswith('.dist-info/entry_points.txt') for n in names) and not any(n.startswith('tests/') for n in names)
    assert {f'aidsafe_nb/{p.name}' for p in (ROOT/'aidsafe_nb').glob('*.py')} <= names


def test_installed_wheel_runs_the_tiny_dry_run_outside_the_checkout(wheel, tmp_path):
    "A fresh venv holding only the wheel (its dependencies come from this environment's site-packages through a .pth path line)."
    venv = tmp_path/'venv'
    base = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120)
    py = venv/'bin'/'python'
    site = Path(subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip())
    (site/'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')     # a plain path: the checkout's editable install (.pth hook) is not loaded
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AIDSAFE_ROOT', 'VIRTUAL_ENV')}
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--ignore-installed', str(wheel)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    where = subprocess.run([str(py), '-c', 'import aidsafe_nb, aidsafe_nb.config as c; print(aidsafe_nb.__file__); print(c.data_dir())'],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1] == str(site/'aidsafe_nb'/'data'), where     # the installed copy, not the checkout
    out = tmp_path/'outside'; out.mkdir()
    r = subprocess.run([str(venv/'bin'/'aidsafe-study'), '--profile', 'tiny', '--dry-run', '--run', str(out/'run')],
                       capture_output=True, text=True, env=env, cwd=out, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'plan for' in r.stdout and '1_generate' in r.stdout and 'total to run' in r.stdout, r.stdout
