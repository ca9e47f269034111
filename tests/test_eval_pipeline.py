"""End-to-end evaluation on the tiny profile: the tiny random model as Base, plus a random LoRA adapter saved as
`models/sft_db/`, the real judges (`make_judges`, tiny model) and the offline benchmark copies. Checks the CONTENT of
results.csv against the generation/judgment files, and of report.md against results.csv."""
import json, re, time
from pathlib import Path
import pandas as pd, pytest

from aidsafe_nb.config import shared_benchmarks_dir
from aidsafe_nb.models import resolve_model
from aidsafe_nb.run import open_run, Manifest
from aidsafe_nb.evaluate import COT_METRICS
from aidsafe_nb.scoring import headline_table
from aidsafe_nb.steps import run_evaluate
from aidsafe_nb.report import table2
from aidsafe_nb.steps import run_report

pytestmark = pytest.mark.skipif(shared_benchmarks_dir() is None, reason="../shared/benchmarks (offline benchmark copies) is absent")


def make_random_adapter(path: Path, seed: int = 1):
    "A LoRA adapter with random (non-zero) weights on the tiny model, saved like a trained one (+ tokenizer)."
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(resolve_model('tiny'))
    cfg = LoraConfig(r=4, lora_alpha=32, target_modules=['q_proj', 'v_proj', 'o_proj'], init_lora_weights=False, task_type='CAUSAL_LM')
    model = get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'lora_' in n: p.normal_(0, 0.5)
    model.save_pretrained(path); AutoTokenizer.from_pretrained(resolve_model('tiny')).save_pretrained(path)
    return path


def write_cot_fixtures(data: Path, n: int = 3):
    rows = [dict(id=f'p{i}', prompt=f'How do I do thing {i}?', kind='safety' if i % 2 else 'general', source='smoke', original_response='ok')
            for i in range(n)]
    pd.DataFrame([{**r, 'cot': 'Policy 3 applies; the implicit intent is benign.', 'response': 'Here is a safe answer.'} for r in rows]).to_json(
        data/'cot.jsonl', orient='records', lines=True)
    pd.DataFrame([{**r, 'cot': 'Answer it.', 'response': 'Sure.'} for r in rows]).to_json(data/'baseline_zs.jsonl', orient='records', lines=True)


@pytest.fixture(scope='module')
def evaluated(tmp_path_factory):
    d = tmp_path_factory.mktemp('run_eval')
    rd, cfg = open_run(d, 'tiny', benchmarks=['beavertails', 'wildchat', 'strongreject', 'xstest', 'mmlu', 'jbb'])
    make_random_adapter(rd.models/'sft_db')
    write_cot_fixtures(rd.data)
    t0 = time.time(); res = run_evaluate(rd, cfg, temperature=0.7); seconds = time.time() - t0   # sampled: greedy random weights repeat one token
    print(f'run_evaluate (tiny, Base + SFT_DB): {seconds:.1f} s')
    return rd, cfg, res, seconds


def test_results_cover_benchmarks_and_systems(evaluated):
    rd, cfg, res, seconds = evaluated
    on_disk = pd.read_csv(rd.eval/'results.csv')
    assert list(on_disk.columns[:7]) == ['model', 'system', 'benchmark', 'metric', 'value', 'n', 'judge']
    assert set(on_disk.system) >= {'Base', 'SFT_DB', 'AIDSAFE', 'LLM_ZS'}
    for system in ('Base', 'SFT_DB'):
        got = set(on_disk[on_disk.system == system].benchmark)
        assert {b for b in got if '/' not in b} == {'strongreject', 'strongreject_jb', 'xstest', 'mmlu', 'jbb'}, got
        from aidsafe_nb.benchmarks import load_jailbreak_templates # every jailbreak template has its own rows (issue 12)
        assert {b.split('/')[1] for b in got if b.startswith('strongreject_jb/')} == set(load_jailbreak_templates()), got
    n = on_disk.set_index(['system', 'benchmark', 'metric', 'judge']).n
    assert n[('Base', 'strongreject', 'safe_rate')].iloc[0] == cfg.eval_limit
    assert n[('Base', 'strongreject_jb', 'safe_rate')].iloc[0] == 6 * cfg.eval_limit
    assert n[('Base', 'mmlu', 'accuracy', 'loglik')] == cfg.mmlu_limit
    # 3 prompts graded per set; a grade cut at the token budget (48 on tiny) is a failed judgment, not a grade (issue 11)
    for k, label in (('aidsafe', 'AIDSAFE'), ('llm_zs', 'LLM_ZS')):
        g = pd.read_json(rd.eval/'cot_quality'/f'{k}.jsonl', lines=True, dtype=False)
        assert len(g) == 3
        ok = g.error.isna().sum() if 'error' in g.columns else 3
        cq = on_disk[(on_disk.benchmark == 'cot_quality') & (on_disk.system == label)]
        assert (cq.n <= 3).all() and (cq.n >= ok).all()
    assert set(on_disk[on_disk.benchmark == 'cot_quality'].metric) == set(COT_METRICS)
    assert seconds < 360, f'evaluation of 2 models took {seconds:.0f} s'   # 6x jailbreak prompts and the judge validation since issues 11/12; ~150 s alone on 2 cores


def test_skips_are_stated(evaluated):
    rd, *_ = evaluated
    skipped = {s['item']: s for s in json.loads((rd.eval/'skipped.json').read_text())}
    assert {'beavertails', 'wildchat', 'sft_og', 'dpo'} <= set(skipped)
    assert 'hub' in skipped['beavertails']['reason'] and 'adapter' in skipped['dpo']['reason']


def test_values_match_judgments(evaluated):
    from aidsafe_nb.judges import xstest_strmatch
    rd, cfg, res, _ = evaluated
    val = lambda s, b, m, j=None: res[(res.system == s) & (res.benchmark == b) & (res.metric == m) & ((res.judge == j) if j else True)].value.iloc[0]
    for sysdir, system in (('base', 'Base'), ('sft_db', 'SFT_DB')):
        j = pd.read_json(rd.eval/'judgments'/sysdir/'strongreject_jb.jsonl', lines=True, dtype=False)
        assert val(system, 'strongreject_jb', 'safe_rate') == pytest.approx(100 * (j.safe == True).mean())
        complete = j.truncated.isna() if 'truncated' in j.columns else pd.Series(True, index=j.index)   # cut answers leave the rubric
        scores = [s for s, ok in zip(j.sr_score, complete) if ok and s is not None and s == s]
        if scores: assert val(system, 'strongreject_jb', 'sr_score') == pytest.approx(sum(scores) / len(scores))
        else: assert val(system, 'strongreject_jb', 'sr_score') != val(system, 'strongreject_jb', 'sr_score')   # NaN: nothing to score
        g = pd.read_json(rd.eval/'generations'/sysdir/'xstest.jsonl', lines=True, dtype=False)
        safe = g[g.label == 'safe']   # a truncated answer (cut, unclosed <think>, empty) is never compliant (issue 12)
        comp = sum(xstest_strmatch(r) == '1_full_compliance' and pd.isna(t) for r, t in zip(safe.response, safe.truncated)) / len(safe)
        assert val(system, 'xstest', 'truncated_rate') == pytest.approx(100 * g.truncated.notna().mean())
        assert val(system, 'xstest', 'safe_full_compliance', 'strmatch') == pytest.approx(100 * comp)
        m = pd.read_json(rd.eval/'generations'/sysdir/'mmlu.jsonl', lines=True, dtype=False)
        assert val(system, 'mmlu', 'accuracy') == pytest.approx(100 * (m.pred == m.answer).mean())
        # the judges saw the final response, and the reasoning is kept
        assert {'output', 'reasoning', 'response'} <= set(g.columns)


def test_adapter_changes_the_model(evaluated):
    rd, *_ = evaluated
    a = pd.read_json(rd.eval/'generations'/'base'/'xstest.jsonl', lines=True, dtype=False)
    b = pd.read_json(rd.eval/'generations'/'sft_db'/'xstest.jsonl', lines=True, dtype=False)
    assert list(a.prompt) == list(b.prompt) and (a.output != b.output).any()
    ma = pd.read_json(rd.eval/'generations'/'base'/'mmlu.jsonl', lines=True, dtype=False)
    mb = pd.read_json(rd.eval/'generations'/'sft_db'/'mmlu.jsonl', lines=True, dtype=False)
    assert ma.logprobs.tolist() != mb.logprobs.tolist()


def test_one_chat_call_per_model_and_benchmark(evaluated):
    rd, *_ = evaluated
    usage = Manifest(rd).read()['usage']
    for system in ('base', 'sft_db'):
        for b in ('strongreject', 'strongreject_jb', 'xstest', 'jbb'):
            assert usage[f'eval_{system}_{b}']['chat_calls'] == 1, usage.get(f'eval_{system}_{b}')


def test_resume_redoes_nothing(evaluated):
    rd, cfg, res, _ = evaluated
    files = sorted((rd.eval/'judgments').rglob('*.jsonl')) + sorted((rd.eval/'generations').rglob('*.jsonl'))
    before = {f: f.stat().st_mtime_ns for f in files}
    t0 = time.time(); res2 = run_evaluate(rd, cfg, temperature=0.7); dt = time.time() - t0
    assert {f: f.stat().st_mtime_ns for f in files} == before
    pd.testing.assert_frame_equal(res.reset_index(drop=True), res2.reset_index(drop=True))
    assert dt < 30


def test_report_content(evaluated):
    rd, cfg, res, _ = evaluated
    path = run_report(rd, cfg)
    md = path.read_text()
    h = headline_table(res).set_index(['system', 'benchmark']).value
    mmlu = next(l for l in md.splitlines() if l.startswith('| MMLU |'))
    assert f"{h[('Base', 'mmlu')]:.2f}" in mmlu and '35.42 / 31.38 / 34.51' in mmlu   # the paper's Mixtral numbers beside ours
    rows = [l for l in md.splitlines() if l.startswith('| StrongREJECT |')]
    if ('Base', 'strongreject') in h.index:   # only when its (tiny, random) judge passed validation
        cells = [c.strip() for c in rows[0].strip('|').split('|')]
        assert cells[1] == f"{h[('Base', 'strongreject')]:.2f}" and cells[2] == f"{h[('SFT_DB', 'strongreject')]:.2f}"
    else:
        assert not rows and 'Left out of this table' in md and 'StrongREJECT (jailbreak) `safe_rate`' in md
    # issue 11: honest labels, the validation table, the reasons, the skipped models
    assert "the package's random-weight tiny model (`tiny`)" in md and '## Judge validation' in md and '## Content gates' in md
    val = pd.read_csv(rd.eval/'judge_validation.csv')
    for role in val[~val.passed].role.unique(): assert f'- `{role}`: ' in md
    assert '**beavertails** (benchmark)' in md and '**dpo** (model)' in md and '**rw** (model)' in md
    assert '## Tokens per answer' in md and '## Truncated or empty answers' in md and 'per jailbreak template' in md
    assert '## Preference-pair quality' in md
    assert 'faithfulness_cot_policy' in md and '| relevance |' in md
    for name in ('benchmarks', 'xstest', 'cot_quality'):
        assert (rd.figures/f'{name}.png').stat().st_size > 5000 and f'figures/{name}.png' in md
    assert list(table2(res).columns[:2]) == ['Base', 'SFT_DB']
