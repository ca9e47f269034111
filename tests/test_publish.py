"aidsafe_nb.publish: what `push` would send to the Hub (a recording stand-in for HfApi), the token from the environment only."
import io, json
import pandas as pd, pytest, yaml
import huggingface_hub
from aidsafe_nb import publish
from aidsafe_nb.publish import push_run, write_demo_run, push_main
from aidsafe_nb.testing import RecordingApi

def test_push_sends_datasets_and_adapters(tmp_path):
    run, api = write_demo_run(tmp_path/'run'), RecordingApi()
    plan = push_run(run, 'org/study', api=api)
    assert [(c['op'], c['repo_id'], c.get('repo_type')) for c in api.calls] == [
        ('create_repo', 'org/study', 'dataset'), ('upload_folder', 'org/study', 'dataset'),
        ('create_repo', 'org/study-sft_db', 'model'), ('upload_folder', 'org/study-sft_db', 'model')]
    ds_files = api.calls[1]['files']
    assert sorted(ds_files) == ['README.md', 'cards/cot.md', 'cards/pairs_belief.md', 'data/cot/train-00000-of-00001.parquet',
                                'data/cot/validation-00000-of-00001.parquet', 'data/pairs_belief/train-00000-of-00001.parquet',
                                'run/config.yaml', 'run/manifest.json']
    assert sorted(plan['org/study']['files']) == sorted(ds_files)
    df = pd.read_parquet(io.BytesIO(ds_files['data/cot/train-00000-of-00001.parquet']))
    assert len(df) == 3 and df.log[0][0]['agree'] == True                              # typed nested column, not JSON text
    meta = yaml.safe_load(ds_files['README.md'].decode().split('---')[1])
    assert meta['configs'][0] == dict(config_name='cot', data_files=[dict(split='train', path='data/cot/train-*.parquet'),
                                                                    dict(split='validation', path='data/cot/validation-*.parquet')])
    assert meta['license'] == 'cc-by-nc-4.0' and meta['source_datasets'] == ['PKU-Alignment/BeaverTails']
    assert sorted(api.calls[3]['files']) == ['README.md', 'adapter_config.json', 'adapter_model.safetensors']   # no checkpoint, no optimizer

def test_hub_layout_loads_with_datasets(tmp_path):
    "The staged repo loads with `datasets` the way the Hub would serve it (parquet data files per config and split)."
    from datasets import load_dataset
    run = write_demo_run(tmp_path/'run'); api = RecordingApi()
    push_run(run, 'org/study', api=api)
    root = tmp_path/'repo'
    for name, data in api.calls[1]['files'].items(): (root/name).parent.mkdir(parents=True, exist_ok=True); (root/name).write_bytes(data)
    meta = yaml.safe_load((root/'README.md').read_text().split('---')[1])
    cfg = next(c for c in meta['configs'] if c['config_name'] == 'cot')
    dd = load_dataset('parquet', data_files={d['split']: str(root/d['path']) for d in cfg['data_files']})
    assert {k: len(v) for k, v in dd.items()} == dict(train=3, validation=1)
    assert dd['train'].features['log'].feature['round'].dtype == 'int64'

def test_token_from_environment_only(tmp_path, monkeypatch, capsys):
    seen = {}
    class FakeHfApi(RecordingApi):
        def __init__(self, token=None, **kw): super().__init__(); seen['token'] = token; seen['api'] = self
    monkeypatch.setattr(huggingface_hub, 'HfApi', FakeHfApi)
    monkeypatch.setenv('MY_HF_WRITE', 'hf_SECRET_value_123')
    run = write_demo_run(tmp_path/'run')
    assert push_main(['--run', str(run), '--repo', 'org/study', '--private', '--token-env', 'MY_HF_WRITE']) == 0
    out = capsys.readouterr()
    assert seen['token'] == 'hf_SECRET_value_123' and 'SECRET' not in out.out + out.err
    assert all(c['private'] for c in seen['api'].calls if c['op'] == 'create_repo')
    assert not any('SECRET' in p.read_text(errors='ignore') for p in tmp_path.rglob('*') if p.is_file())   # never written

def test_refusals_before_any_call(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('HF_TOKEN', raising=False)
    run, api = write_demo_run(tmp_path/'run'), RecordingApi()
    assert push_main(['--run', str(run), '--repo', 'org/study']) == 2 and 'HF_TOKEN' in capsys.readouterr().err
    for args, msg in [((run, 'no-slash'), 'ORG/NAME'), ((tmp_path/'none', 'o/n'), 'does not exist'), ((tmp_path, 'o/n'), 'nothing to push')]:
        with pytest.raises(publish.PublishError, match=msg): push_run(*args, api=api)
    assert api.calls == []

def test_calls_fit_the_real_hfapi_signatures(tmp_path):
    "Every keyword push_run passes exists on huggingface_hub.HfApi's methods (the stand-in is only as good as this)."
    import inspect
    calls = []
    class Spy(RecordingApi):
        def create_repo(self, **kw): calls.append(('create_repo', kw)); return super().create_repo(**kw)
        def upload_folder(self, **kw): calls.append(('upload_folder', kw)); return super().upload_folder(**kw)
    push_run(write_demo_run(tmp_path/'run'), 'org/study', api=Spy())
    for name, kw in calls:
        params = inspect.signature(getattr(huggingface_hub.HfApi, name)).parameters
        assert set(kw) <= set(params), (name, set(kw) - set(params))

def _plumbing_run(tmp_path):
    "A run as the tiny profile leaves it: random weights, gates not enforced, an adapter card from training, a set with no row."
    from aidsafe_nb.dataio import save_dataset_dict
    run = write_demo_run(tmp_path/'run')
    (run/'config.yaml').write_text('profile: tiny\ntarget_model: tiny\nenforce_gates: false\n')
    (run/'models'/'sft_db'/'train_info.json').write_text(json.dumps(dict(base_model='tiny', enforce_gates=False)))
    save_dataset_dict([], run/'data'/'pairs_saro', columns=['prompt', 'chosen', 'rejected'], jsonl=False)
    return run

def test_push_refuses_a_random_weight_ungated_run_unless_forced(tmp_path, monkeypatch, capsys):
    run, api = _plumbing_run(tmp_path), RecordingApi()
    monkeypatch.setenv('HF_TOKEN', 'hf_x')
    with pytest.raises(publish.PublishError, match='refusing to push: random weights .*content gates not enforced.*--force'):
        push_run(run, 'org/study', api=api)
    assert api.calls == []
    assert push_main(['--run', str(run), '--repo', 'org/study']) == 2 and 'refusing to push' in capsys.readouterr().err
    # the dry run says what it would refuse (exit 2) and which set it leaves out
    assert push_main(['--run', str(run), '--repo', 'org/study', '--dry-run']) == 2
    out = capsys.readouterr()
    assert 'would REFUSE: random weights' in out.err and 'would REFUSE: content gates not enforced' in out.err
    assert 'left out: data set pairs_saro (0 rows)' in out.out
    # forced: pushed, but never the empty config
    plan = push_run(run, 'org/study', api=api, force=True)
    assert list(plan['org/study']['configs']) == ['cot', 'pairs_belief'] and not any('pairs_saro' in f for f in plan['org/study']['files'])
    meta = yaml.safe_load(api.calls[1]['files']['README.md'].decode().split('---')[1])
    assert [c['config_name'] for c in meta['configs']] == ['cot', 'pairs_belief']

def test_a_real_run_is_not_refused(tmp_path):
    run = write_demo_run(tmp_path/'run')                                 # smol, gates enforced
    assert publish.refusals(run) == []
    (run/'config.yaml').unlink()
    assert publish.refusals(run) == ['the run has no config.yaml: what it is (profile, gates) cannot be checked']
