"Issue 23 (smaller items): bad inputs end in a named error (exit 2, no traceback) before any work; reruns continue from config.yaml; the dry-run estimate counts calls the way the steps send them. Fast: no model runs."
import json, subprocess, sys
from pathlib import Path
import pytest
from aidsafe_nb.config import shared_benchmarks_dir
from conftest import ROOT, BIN
from aidsafe_nb.config import make_config
from aidsafe_nb.run import RunDir, Manifest, save_config
from aidsafe_nb.study import main, fingerprints, estimate, STEPS, RunLock

def _run(tmp_path, cfg=None):
    rd = RunDir(tmp_path/'run').create(); save_config(cfg or make_config('tiny', n_prompts=3, max_rounds=1), rd.config)
    return rd

def _err(capsys, rc, want):
    out = capsys.readouterr()
    assert rc == 2 and want in out.err and 'Traceback' not in out.err + out.out, (rc, out.err[-2000:])
    return out.err

def test_unterminated_quote_in_csv_named(tmp_path, capsys):
    p = tmp_path/'bad.csv'; p.write_text('prompt\n"unterminated quote here\nsecond,row\n')
    _err(capsys, main(['--run', str(tmp_path/'r'), '-p', 'safety_source', str(p), '--steps', '1']), "parameter 'safety_source': cannot read")
    assert not (tmp_path/'r'/'notebooks').exists()

@pytest.mark.parametrize('shape', ['[]', '{"steps": []}', '{"steps": {"1_generate": "done"}}', '{"usage": 3}'])
def test_manifest_of_the_wrong_shape_named(tmp_path, capsys, shape):
    rd = _run(tmp_path); rd.manifest.write_text(shape)
    _err(capsys, main(['--run', str(rd.path)]), 'manifest.json has the wrong shape')
    _err(capsys, main(['--run', str(rd.path), '--dry-run']), 'manifest.json has the wrong shape')

def test_corrupt_config_with_dry_run_named(tmp_path, capsys):
    rd = _run(tmp_path); rd.config.write_text('n_prompts: [3\nmax_rounds: 2\n')
    _err(capsys, main(['--run', str(rd.path), '--dry-run']), 'config.yaml is not valid YAML')
    _err(capsys, main(['--run', str(rd.path)]), 'config.yaml is not valid YAML')

def test_run_at_a_file_named(tmp_path, capsys):
    f = tmp_path/'afile'; f.write_text('x')
    for run in (f, f/'under'):
        _err(capsys, main(['--run', str(run), '--dry-run']), 'a file is in the way')
        _err(capsys, main(['--run', str(run)]), 'a file is in the way')
    assert f.read_text() == 'x'

def test_nonexistent_hub_model_refused_with_its_name(tmp_path, capsys, monkeypatch):
    "Offline (the hub cannot be asked): a hub id absent from the local cache is refused before any step, naming the parameter and the model."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    err = _err(capsys, main(['--run', str(tmp_path/'r'), '-p', 'target_model', 'nonexistent-org/nonexistent-model', '--steps', '1', '2', '3']),
               "parameter 'target_model': model 'nonexistent-org/nonexistent-model'")
    assert 'not in the local Hugging Face cache' in err and not (tmp_path/'r'/'notebooks').exists()

def test_truncated_arrow_named_and_upstream_marked_for_rerun(tmp_path, capsys):
    import datasets
    cfg = make_config('tiny', n_prompts=3)
    rd = _run(tmp_path, cfg)
    datasets.Dataset.from_dict({'id': ['a', 'b'], 'prompt': ['x', 'y']}).save_to_disk(str(rd.data/'cot'))
    Manifest(rd).step('1_generate', status='done', fingerprint=fingerprints(cfg)['1_generate'])
    f = next((rd.data/'cot').glob('*.arrow')); f.write_bytes(f.read_bytes()[:100])
    err = _err(capsys, main(['--run', str(rd.path), '--steps', '2']), str(f))
    assert 'an output of step 1_generate' in err and not (rd.path/'.stale').exists()
    assert Manifest(rd).read()['steps']['1_generate']['status'] == 'incomplete'      # the next run rewrites it
    _err(capsys, main(['--run', str(rd.path), '--steps', '2']), 'step 2_preference would build on the outputs of 1_generate')

def test_rerun_without_flags_continues_the_run_as_configured(tmp_path, capsys):
    cfg = make_config('tiny', n_prompts=3, max_rounds=1)
    rd = _run(tmp_path, cfg)
    for s, fp in fingerprints(cfg).items(): Manifest(rd).step(s, status='done', fingerprint=fp)
    assert main(['--run', str(rd.path), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert all(f'{s.name:<13} skip' in out for s in STEPS) and 'config change' not in out, out
    assert main(['--run', str(rd.path), '--dry-run', '-p', 'max_rounds', '2']) == 0      # a change is explicit and shown
    out = capsys.readouterr().out
    assert 'config change: max_rounds: 1 -> 2' in out and '1_generate    rerun' in out and 'n_prompts' not in out.split('config change')[1], out

def test_step_alone_after_an_upstream_change_is_refused(tmp_path, capsys):
    cfg = make_config('tiny', n_prompts=3)
    rd = _run(tmp_path, cfg)
    for s in ('1_generate', '2_preference'): Manifest(rd).step(s, status='done', fingerprint=fingerprints(cfg)[s])
    err = _err(capsys, main(['--run', str(rd.path), '--steps', '2', '-p', 'n_prompts', '2']), 'step 2_preference would build on the outputs of 1_generate')
    assert '--steps 1 2' in err and Manifest(rd).read()['steps']['2_preference']['fingerprint'] == fingerprints(cfg)['2_preference']

def test_papermill_on_a_locked_run_is_refused(tmp_path):
    run = tmp_path/'run'
    with RunLock(run):
        r = subprocess.run([str(BIN/'papermill'), str(ROOT/'nbs'/'study'/'1_generate.ipynb'), str(tmp_path/'o.ipynb'), '-p', 'run_dir', str(run)],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'RunLocked' in r.stdout + r.stderr and 'in use by another aidsafe-study' in r.stdout + r.stderr, r.stderr[-2000:]
    assert not (run/'data').exists()

def test_policy_readme_reruns_nothing(tmp_path, monkeypatch):
    import shutil
    from aidsafe_nb.config import data_dir
    shutil.copytree(data_dir(), tmp_path/'data'); monkeypatch.setenv('AIDSAFE_ROOT', str(tmp_path))
    cfg = make_config('tiny'); before = fingerprints(cfg)
    (tmp_path/'data'/'policies'/'aidsafe5'/'README.md').write_text('edited\n')
    assert fingerprints(cfg) == before
    y = tmp_path/'data'/'policies'/'aidsafe5'/'03_physical_harm.yaml'; y.write_text(y.read_text() + '\n# edited\n')
    assert fingerprints(cfg) != before                                                  # a file a step reads still counts

def test_dry_run_estimate_counts_every_step(monkeypatch):
    "The estimate counts evaluation calls per benchmark, system and judge (it said 612 for a run that sent 1,405); the e2e test compares it with a real run."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    e = estimate(RunDir('/nonexistent-run'), make_config('tiny', n_prompts=3))
    assert e['1_generate']['calls'] == 18 and e['4_dpo']['calls'] == 30, e
    if shared_benchmarks_dir() is not None:   # without the offline copies step 5 skips every benchmark, and so does the count
        assert e['5_evaluate']['calls'] > 7 * 64, e                                    # 7 systems x (8 + 8 x 6 jailbreaks + 8 XSTest) generations, then judges
