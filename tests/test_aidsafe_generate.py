"Study step 1 on the tiny profile with the real (tiny, random-weight) HF model: rows, columns, failure accounting, resume."
import json, shutil
import pytest
from aidsafe_nb.dataio import load_dataset_folder as load_from_disk   # one Dataset over the DatasetDict's splits
from aidsafe_nb.run import open_run, Manifest
from aidsafe_nb.refiner import COT_COLUMNS, ZS_COLUMNS
from aidsafe_nb.steps import run_generate

STAGES = ('intents', 'initial_cot', 'deliberation', 'refiner', 'llm_zs')
MAY_BE_EMPTY_LIST = {'failures', 'removed_thoughts', 'gate_failures', 'edited_thoughts', 'refiner_ignored'}   # JSON '[]' when nothing failed / removed / edited
CONTENT = {'thoughts', 'cot', 'response', 'initial_cot', 'initial_response', 'category'}   # empty when the tiny model's text failed the gates

def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}

@pytest.fixture(scope='module')
def tiny_generate(tmp_path_factory):
    rd, cfg = open_run(tmp_path_factory.mktemp('aidsafe')/'run', 'tiny')
    return rd, cfg, run_generate(rd, cfg)

def test_one_row_per_prompt_every_column_filled(tiny_generate):
    rd, cfg, summary = tiny_generate
    ds = load_from_disk(str(rd.data/'cot'))
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert len(ds) == len(rows) == cfg.n_prompts == summary['rows']
    assert tuple(ds.column_names) == COT_COLUMNS and len({r['id'] for r in rows}) == cfg.n_prompts
    assert sorted(r['kind'] for r in rows).count('safety') == round(cfg.n_prompts * cfg.safety_fraction)
    for r in rows:
        for c in COT_COLUMNS:
            if c not in MAY_BE_EMPTY_LIST | CONTENT: assert r[c] not in ('', None, [], '[]'), (c, r['id'])
        log = json.loads(r['deliberation_log'])
        assert 1 <= r['n_rounds'] == len(log) <= cfg.max_rounds and r['stop_reason'] in ('agreement', 'budget')
        assert r['status'] in ('ok', 'gate_failed', 'partial', 'failed')
        gf, fails = json.loads(r['gate_failures']), json.loads(r['failures'])     # issue 20: the status follows the training targets only
        final_failed = any(f['stage'] == 'final' for f in gf)
        assert (r['status'] == 'gate_failed') == (final_failed or (bool(gf) and not (r['cot'].strip() and r['response'].strip())))
        assert r['status'] != 'ok' or (r['cot'].strip() and r['response'].strip() and not any(f['stage'] == 'refiner' for f in fails))
        assert r['n_thoughts_deliberation'] == r['n_thoughts_final'] + len(json.loads(r['removed_thoughts'])), r['id']   # the refiner's ledger balances
        assert all(x['reason'] in ('redundant', 'deceptive', 'policy_inconsistent') for x in json.loads(r['removed_thoughts']))
        assert json.loads(r['gate_stages']) == ['intents', 'initial_cot', 'deliberation', 'refiner', 'final']
    assert (rd.data/'cot'/'README.md').exists() and 'n_agents' in (rd.data/'cot'/'README.md').read_text()
    assert (rd.figures/'generate.png').stat().st_size > 0

def test_baseline_zs(tiny_generate):
    rd, cfg, _ = tiny_generate
    ds = load_from_disk(str(rd.data/'baseline_zs'))
    assert len(ds) == cfg.n_prompts and tuple(ds.column_names) == ZS_COLUMNS
    cot_ids = [json.loads(l)['id'] for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert sorted(ds['id']) == sorted(cot_ids)
    for r in ds:
        assert r['status'] in ('ok', 'gate_failed', 'failed') and (r['status'] != 'ok' or bool(r['cot'] and r['response']))
        gf = r['gate_failures'] if isinstance(r['gate_failures'], list) else json.loads(r['gate_failures'])
        assert r['status'] != 'gate_failed' or gf                                 # a dropped thought alone is a diagnostic (issue 20)

def test_calls_counted_per_stage(tiny_generate):
    rd, cfg, summary = tiny_generate
    usage = Manifest(rd).read()['usage']
    for s in STAGES:
        assert usage[s]['calls'] >= cfg.n_prompts if s != 'deliberation' else usage[s]['calls'] >= 1, s
    assert 1 <= usage['intents']['chat_calls'] <= 2                               # one batch (+ at most one batched repair)
    assert usage['deliberation']['chat_calls'] <= 2 * cfg.max_rounds              # one batch per round (+ repair)
    assert summary['usage']['deliberation'] == usage['deliberation']

def test_rerun_makes_no_calls_and_changes_nothing(tiny_generate, monkeypatch):
    rd, cfg, summary = tiny_generate
    before, usage = snapshot(rd.data), Manifest(rd).read()['usage']
    import aidsafe_nb.backends as llm
    monkeypatch.setattr(llm, 'backend_for', lambda *a, **k: pytest.fail('rerun built a backend'))
    assert run_generate(rd, cfg) == summary
    assert snapshot(rd.data) == before and Manifest(rd).read()['usage'] == usage

def test_resume_after_a_kill_answers_every_call_from_the_cache(tiny_generate):
    rd, cfg, _ = tiny_generate
    jsonl = (rd.data/'cot.jsonl').read_bytes()
    shutil.rmtree(rd.data/'cot')                            # as if killed before the final write
    usage = Manifest(rd).read()['usage']
    run_generate(rd, cfg)
    after = Manifest(rd).read()['usage']
    for s in STAGES:
        assert after[s]['calls'] == usage[s]['calls'] and after[s]['cached'] > usage[s]['cached'], s   # no new model call
    assert (rd.data/'cot.jsonl').read_bytes() == jsonl

def test_gate_summaries_written_per_set(tiny_generate):
    "data/cot.gates.json and data/baseline_zs.gates.json: n, passed, pass_rate per stage (the tiny random model fails most gates: honest)."
    rd, cfg, summary = tiny_generate
    for name, stages in (('cot', ('intents', 'initial_cot', 'deliberation', 'refiner', 'final')), ('baseline_zs', ('llm_zs',))):
        g = json.loads((rd.data/f'{name}.gates.json').read_text())['stages']
        assert tuple(g) == stages and all(g[s]['n'] == cfg.n_prompts and 0 <= g[s]['passed'] <= g[s]['n'] for s in stages), g
        assert g == summary['gates'][name]
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert summary['status']['ok'] == sum(r['status'] == 'ok' for r in rows)

def test_splits_assigned(tiny_generate):
    rd, cfg, _ = tiny_generate
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert {r['split'] for r in rows} <= {'train', 'validation', 'test'}
