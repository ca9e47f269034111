"Issue 13/16 (runner side): validation before any step, run lock, content fingerprints, dry run, unreadable inputs, papermill parameters. Fast: no model runs."
import json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import ROOT, BIN, aidsafe_study
from aidsafe_nb.config import make_config, data_dir
from aidsafe_nb.run import RunDir, Manifest, save_config
from aidsafe_nb.study import main, fingerprints, STEPS, RunLock

_REGISTRY_NAMES = [('benchmarks', '5'), ('benchmarks', 'xstest, bogus'), ('eval_models', 'base, sft_xx'), ('safety_judge', 'keyword')]
BAD = [('top_p', '5'), ('top_p', '0'), ('temperature', '-1'), ('temperature', '3'), ('eval_temperature', '9'),
       ('target_model', 'not-a-model'), ('agent_model', 'bad model'),
       ('judge_model', '???'), ('safety_source', 'nope'), ('general_source', './missing.jsonl'), ('policy_set', 'nope'),
       ('learning_rate', '0'), ('dpo_learning_rate', '2'), ('lora_dropout', '1'), ('lora_alpha', '0'), ('num_train_epochs', '0'),
       ('max_steps', '0'), ('dpo_beta', '0'), ('seed', '-1'), ('mmlu_shots', '9'), ('eval_limit', '-1'), ('mmlu_limit', '-5'),
       ('val_fraction', '1.5'), ('test_fraction', '1'), ('safety_fraction', '-0.1'), ('near_dup_threshold', '2'), ('n_prompts', '0'),
       ('max_rounds', 'three'), ('stage_max_tokens', '{cot: 0}'), ('stage_max_tokens', '[1, 2]'), ('api_key_env', 'sk-123 x'),
       ('benchmarks_dir', '/no/such/dir'), ('sft_db_source', 'nope'), ('judge_max_share', '0'), ('pair_min_gap', '-1'),
       ('checkpoint_minutes', '0'), ('srpo_branch', 'last'), ('dpo_loss_type', 'magic'), ('agent_backend', 'ollama'), ('profile', 'huge'),
       ('judge_base_url', 'localhost:8000'), ('n_prompts', '500')]

@pytest.fixture
def finished_run(tmp_path):
    "A run directory whose step 3 'finished' under another config: a valid changed run would move models/sft_db to .stale/."
    rd = RunDir(tmp_path/'run').create()
    save_config(make_config('tiny'), rd.config)
    Manifest(rd).step('3_sft', status='done', fingerprint='older')
    (rd.models/'sft_db').mkdir(); (rd.models/'sft_db'/'adapter_model.safetensors').write_text('weights')
    return rd

@pytest.mark.parametrize('name,value', BAD, ids=[f'{n}={v}' for n, v in BAD])
def test_bad_value_rejected_before_any_step(finished_run, name, value, capsys):
    before = finished_run.manifest.read_text()
    rc = main(['--run', str(finished_run.path), '-p', name, value])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"'{name}'" in err, err
    assert (finished_run.models/'sft_db'/'adapter_model.safetensors').exists() and not (finished_run.path/'.stale').exists()
    assert finished_run.manifest.read_text() == before and not any(finished_run.notebooks.iterdir())

def _claimed_by_setup(name: str) -> bool: return any(name in S.params() for s in STEPS for S in s.setups)

@pytest.mark.parametrize('name,value', _REGISTRY_NAMES, ids=[f'{n}={v}' for n, v in _REGISTRY_NAMES])
def test_bad_registry_name_refused_before_any_step(finished_run, name, value, capsys):
    "`config` no longer knows the registries: the pre-flight builds every planned step's setups, whose `check` refuses the name."
    if not _claimed_by_setup(name): pytest.skip(f"no step's setup holds {name!r} yet (EvalSetup, h-eval): refused by its check once it lands")
    test_bad_value_rejected_before_any_step(finished_run, name, value, capsys)

def test_malformed_prompts_file_names_file_and_line(tmp_path, capsys):
    p = tmp_path/'mine.jsonl'; p.write_text('{"prompt": "a"}\n{"prompt": "b"\n')
    assert main(['--run', str(tmp_path/'run'), '-p', 'safety_source', str(p)]) == 2
    err = capsys.readouterr().err
    assert 'mine.jsonl is not valid JSONL (line 2' in err, err

def test_corrupt_manifest_names_the_file(finished_run, capsys):
    finished_run.manifest.write_text('{"steps": {"1_gen')
    assert main(['--run', str(finished_run.path)]) == 2
    err = capsys.readouterr().err
    assert 'manifest.json is not valid JSON' in err and str(finished_run.manifest) in err, err

def _lock_holder(run):
    "A separate process that holds the run lock until killed."
    code = f"from aidsafe_nb.study import RunLock; import time; l = RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(120)"
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'held'
    return p

def test_second_process_on_locked_run_exits_at_once(tmp_path):
    run = tmp_path/'run'; holder = _lock_holder(run)
    try:
        t0 = time.time()
        r = aidsafe_study('--run', run, '-p', 'n_prompts', '2', check=False, timeout=60)
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert time.time() - t0 < 30
        assert f'pid {holder.pid} on host {socket.gethostname()}' in r.stderr and 'in use by another aidsafe-study' in r.stderr, r.stderr
        assert not (run/'notebooks').exists() and not (run/'config.yaml').exists()
    finally: holder.kill(); holder.wait()
    with RunLock(run) as lk: assert json.loads(lk.path.read_text())['pid'] == os.getpid()   # the dead holder's lock is taken over

def test_stale_pid_file_does_not_block(tmp_path):
    run = tmp_path/'run'; run.mkdir()
    (run/'.aidsafe-study.lock').write_text(json.dumps(dict(pid=2**22 + 12345, host=socket.gethostname(), started='yesterday')))
    with RunLock(run): pass

def test_dry_run_prints_plan_and_calls_nothing(tmp_path):
    from aidsafe_nb.testing import FakeOpenAIServer
    with FakeOpenAIServer(latency=0) as srv:
        r = aidsafe_study('--run', tmp_path/'run', '--dry-run', '-p', 'n_prompts', '4', '-p', 'agent_backend', 'openai',
                          '-p', 'agent_base_url', srv.base_url, '-p', 'agent_model', 'fake')
        assert srv.n_requests == 0
    assert not (tmp_path/'run').exists()
    for s in STEPS: assert s.name in r.stdout
    assert '1_generate    run' in r.stdout and 'calls' in r.stdout and 'tokens' in r.stdout and 'total to run' in r.stdout, r.stdout

def _done_manifest(rd, cfg):
    for s, fp in fingerprints(cfg).items(): Manifest(rd).step(s, status='done', fingerprint=fp)

def test_template_edit_reruns_its_step_and_the_steps_after(tmp_path, monkeypatch):
    "Edit a step-1 template: the plan reruns every step from 1; edit a step-4 template: 1-3 stay, 4-6 rerun (checked through the CLI's --dry-run)."
    root = tmp_path/'root'; shutil.copytree(data_dir(), root/'data')
    monkeypatch.setenv('AIDSAFE_ROOT', str(root))
    cfg = make_config('tiny', n_prompts=2); rd = RunDir(tmp_path/'run').create(); save_config(cfg, rd.config); _done_manifest(rd, cfg)
    env = {**os.environ, 'AIDSAFE_ROOT': str(root)}
    plan = lambda: {l.split()[0]: l.split()[1] for l in subprocess.run([str(BIN/'aidsafe-study'), '--run', str(rd.path), '--dry-run', '-p', 'n_prompts', '2'],
                    capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout.splitlines()[1:7]}
    assert set(plan().values()) == {'skip'}
    t = root/'data'/'prompts'/'aidsafe_deliberation.j2'; t.write_text(t.read_text() + '\n[edited]\n')
    assert list(plan().values()) == ['rerun'] * 6
    _done_manifest(rd, cfg)
    t = root/'data'/'prompts'/'belief_whisper.j2'; t.write_text(t.read_text() + '\n[edited]\n')
    assert list(plan().values()) == ['skip'] * 3 + ['rerun'] * 3
    _done_manifest(rd, cfg)
    p = next((root/'data'/'policies'/'aidsafe5').iterdir()); p.write_text(p.read_text() + '\n')
    assert plan()['1_generate'] == 'rerun' and plan()['3_sft'] == 'rerun'    # a policy text: generation and all after it

def test_papermill_help_lists_parameters():
    r = subprocess.run([str(BIN/'papermill'), '--help-notebook', str(ROOT/'nbs'/'study'/'1_generate.ipynb')], capture_output=True, text=True, check=True)
    for p in ('run_dir', 'profile', 'overrides'): assert f'  {p}:' in r.stdout, r.stdout
    assert 'Unable to parse' not in r.stdout + r.stderr

def _param_probe(tmp_path):
    "A notebook with the real parameters cell of 1_generate, then a cell that writes what it received."
    import nbformat
    nb = nbformat.read(ROOT/'nbs'/'study'/'1_generate.ipynb', as_version=4)
    par = next(c for c in nb.cells if 'parameters' in c.metadata.get('tags', []))
    out = tmp_path/'got.json'
    cells = [par, nbformat.v4.new_code_cell(f"import json; open({str(out)!r}, 'w').write(json.dumps(dict(run_dir=run_dir, profile=profile, overrides=overrides)))")]
    path = tmp_path/'probe.ipynb'; nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata), path)
    return path, out

def test_notebook_run_directly_rejects_bad_p_and_parses_dict_overrides(tmp_path):
    path, out = _param_probe(tmp_path)
    r = subprocess.run([str(BIN/'papermill'), str(path), str(tmp_path/'o.ipynb'), '-p', 'n_prompts', '3'], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown notebook parameter 'n_prompts'" in r.stdout + r.stderr and 'goes in overrides' in r.stdout + r.stderr
    assert not out.exists()
    r = subprocess.run([str(BIN/'papermill'), str(path), str(tmp_path/'o.ipynb'), '-p', 'run_dir', str(tmp_path/'x'), '-p', 'overrides', '{n_prompts: 3, benchmarks: [xstest]}'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(out.read_text()) == dict(run_dir=str(tmp_path/'x'), profile='tiny', overrides={'n_prompts': 3, 'benchmarks': ['xstest']})

def test_dict_override_from_aidsafe_study_command_line(tmp_path, capsys):
    assert main(['--run', str(tmp_path/'r'), '--dry-run', '-p', 'stage_max_tokens', '{intents: 64, cot: 128}']) == 0
    assert main(['--run', str(tmp_path/'r'), '--dry-run', '-p', 'stage_max_tokens', '{intents: many}']) == 2

def test_every_field_is_a_step_parameter_or_non_semantic():
    "Each RunConfig field is claimed by a step (one of its setups' fields) or NON_SEMANTIC: none counts for every step unseen."
    from aidsafe_nb.config import PARAM_TYPES, NON_SEMANTIC
    assert set(PARAM_TYPES) - {p for s in STEPS for p in s.params} - NON_SEMANTIC == set()
    for s in STEPS:
        if s.setups: assert set(s.params) == {p for S in s.setups for p in S.params()}, s.name

def test_a_step_reading_a_field_through_its_setup_declares_it():
    "Step 1's parameters are its setup's fields: a field added to the setup is a parameter (and changes the fingerprint)."
    import dataclasses
    from aidsafe_nb.steps import GenerationSetup, step, _REGISTRY
    @dataclasses.dataclass(frozen=True)
    class Wider(GenerationSetup):
        lora_r: int = 16
    @step('0_wider', setups=(Wider,))
    def _f(rd, cfg): return Wider.of(cfg)
    s = _REGISTRY.pop('0_wider')
    assert 'lora_r' in s.params and 'lora_r' not in STEPS[0].params
    cfg = make_config('tiny')
    assert Wider.of(cfg).fingerprint() != Wider.of(make_config('tiny', lora_r=8)).fingerprint()
    assert GenerationSetup.of(cfg).fingerprint() == GenerationSetup.of(make_config('tiny', lora_r=8)).fingerprint()
