"""Evaluation pieces without a model: loaders on files written here (hub and offline layouts), skips with reasons,
the paper's aggregation on the shipped Table 2, scoring rules and bad input."""
import json
import numpy as np, pandas as pd, pytest

from aidsafe_nb import dataio
from aidsafe_nb.config import RunConfig, data_dir, shared_benchmarks_dir
from aidsafe_nb.benchmarks import (BenchmarkUnavailable, load_benchmark, load_jailbreak_templates, load_mmlu, load_strongreject, load_wildchat,
                                   load_xstest, wrap_jailbreaks)
from aidsafe_nb.evaluate import COT_METRICS
from aidsafe_nb.scoring import headline_table, judge_benchmark, relative_gains, score_judgments
from aidsafe_nb.steps import run_evaluate
from aidsafe_nb.run import RunDir


@pytest.fixture
def offline(monkeypatch):
    "No network: every host unreachable, and no HF offline cache mode."
    monkeypatch.setattr(dataio, '_REACHABLE', {'huggingface.co': False, 'raw.githubusercontent.com': False})
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False); monkeypatch.delenv('HF_DATASETS_OFFLINE', raising=False)


# ---- the paper's aggregation -------------------------------------------------------------------------------------
def test_relative_gains_reproduce_the_five_headline_figures():
    t = pd.read_csv(data_dir()/'reference'/'aidsafe_table2.csv')
    assert len(t) == 30 and set(t.system) == {'Base', 'SFT_OG', 'SFT_DB'}
    safety = ['beavertails', 'wildchat', 'strongreject']
    vs_base = relative_gains(t, system='SFT_DB', baseline='Base', benchmarks=safety)
    vs_og = relative_gains(t, system='SFT_DB', baseline='SFT_OG', benchmarks=safety)
    got = [vs_base['Mixtral'], vs_og['Mixtral'], vs_base['Qwen2.5-7B'], vs_og['Qwen2.5-7B'],
           relative_gains(t, system='SFT_DB', baseline='Base', pooled=True)]
    assert [round(g) for g in got] == [96, 73, 12, 44, 29]
    # independent recomputation of one figure straight from the published numbers
    mix = [(96.00 - 76.00) / 76.00, (85.95 - 31.00) / 31.00, (94.04 - 51.09) / 51.09]
    assert got[0] == pytest.approx(100 * np.mean(mix))
    # the other aggregation (gain of the averages) would NOT give the published figure
    assert round(100 * (np.mean([96, 85.95, 94.04]) / np.mean([76, 31, 51.09]) - 1)) != 96


def test_relative_gains_bad_input():
    t = pd.DataFrame(dict(model=['m'] * 3, system=['Base', 'SFT_DB', 'SFT_DB'], benchmark=['x', 'x', 'x'], value=[1., 2., 3.]))
    with pytest.raises(ValueError, match='several values'): relative_gains(t, system='SFT_DB', baseline='Base')
    with pytest.raises(ValueError, match="no 'value' column"): relative_gains(t.drop(columns='value'), system='SFT_DB', baseline='Base')
    t2 = pd.DataFrame(dict(model=['m'] * 4, system=['Base', 'SFT_DB'] * 2, benchmark=['x', 'x', 'y', 'y'], value=[0., 5., 10., 15.]))
    with pytest.warns(UserWarning, match='baseline Base is 0'):
        assert relative_gains(t2, system='SFT_DB', baseline='Base')['m'] == pytest.approx(50.0)
    with pytest.raises(ValueError, match=r"benchmark\(s\) \['z'\]"): relative_gains(t2, system='SFT_DB', baseline='Base', benchmarks=['x', 'z'])


def test_headline_table_prefers_the_llm_judge_and_the_jailbreak_set():
    r = pd.DataFrame([dict(model='m', system='Base', benchmark=b, metric=m, value=v, n=4, judge=j) for b, m, v, j in [
        ('xstest', 'safe_full_compliance', 75.0, 'strmatch'), ('xstest', 'safe_full_compliance', 50.0, 'RefusalJudge(x)'),
        ('strongreject', 'safe_rate', 10.0, 's'), ('strongreject_jb', 'safe_rate', 20.0, 's'), ('mmlu', 'accuracy', 30.0, 'loglik')]])
    h = headline_table(r).set_index('benchmark').value
    assert h.to_dict() == {'strongreject': 20.0, 'xstest': 50.0, 'mmlu': 30.0}
    h2 = headline_table(r[r.judge != 'RefusalJudge(x)']).set_index('benchmark').value
    assert h2['xstest'] == 75.0


# ---- loaders on files written here -------------------------------------------------------------------------------
def test_beavertails_and_wildchat_skip_offline_with_reason(offline, tmp_path):
    for name in ('beavertails', 'wildchat'):
        with pytest.raises(BenchmarkUnavailable, match='hub is unreachable'):
            load_benchmark(name, limit=4, benchmarks_dir=tmp_path)


def test_offline_copy_in_benchmarks_dir_is_used(offline, tmp_path):
    (tmp_path/'beavertails').mkdir()
    pd.DataFrame({'prompt': [f'q{i}' for i in range(10)], 'category': ['c'] * 10}).to_csv(tmp_path/'beavertails'/'beavertails_evaluation.csv', index=False)
    bt = load_benchmark('beavertails', limit=4, seed=3, benchmarks_dir=tmp_path)
    assert len(bt) == 4 and bt.attrs['source'].endswith('beavertails_evaluation.csv')
    assert list(bt.prompt) == list(load_benchmark('beavertails', limit=4, seed=3, benchmarks_dir=tmp_path).prompt)
    assert list(bt.prompt) != list(load_benchmark('beavertails', limit=4, seed=4, benchmarks_dir=tmp_path).prompt)


def test_wildchat_hub_layout_file(tmp_path):
    conv = lambda t: json.dumps([{'role': 'user', 'content': t}, {'role': 'assistant', 'content': 'x'}])
    pd.DataFrame(dict(conversation=[conv('a'), conv('b'), conv('c')], toxic=[True, True, False], language=['English'] * 3)).to_csv(tmp_path/'wc.csv', index=False)
    wc = load_wildchat(tmp_path/'wc.csv', language=None)
    assert list(wc.prompt) == ['a', 'b']


def test_mmlu_hub_layout_and_csv_layout(tmp_path):
    hub = pd.DataFrame(dict(question=['q1', 'q2'], subject=['anatomy', 'law'], choices=[['a', 'b', 'c', 'd']] * 2, answer=[1, 3]))
    hub.to_json(tmp_path/'mmlu.jsonl', orient='records', lines=True)
    m = load_mmlu(tmp_path/'mmlu.jsonl')
    assert m.answer.tolist() == [1, 3] and m.choices[0] == ['a', 'b', 'c', 'd']
    (tmp_path/'test').mkdir()
    pd.DataFrame(dict(question=['q'], choice0=['a'], choice1=['b'], choice2=['c'], choice3=['d'], answer=[2])).to_csv(tmp_path/'test'/'virology_test.csv', index=False)
    m2 = load_mmlu(tmp_path/'test')
    assert m2.subject.tolist() == ['virology'] and m2.answer.tolist() == [2]


def test_unknown_prompt_column_is_a_clear_error(tmp_path):
    pd.DataFrame({'text': ['x']}).to_csv(tmp_path/'x.csv', index=False)
    with pytest.raises(BenchmarkUnavailable, match='no prompt column'): load_strongreject(tmp_path/'x.csv')
    with pytest.raises(ValueError, match='unknown benchmark'): load_benchmark('strongrejct')


def test_jailbreak_wrapping_uses_every_template():
    "Every prompt is wrapped in every one of the six evaluation templates (SG-Bench's design), ids stay unique."
    tpl = load_jailbreak_templates()
    assert sorted(tpl) == ['aim', 'distractors_negated', 'evil_confidant', 'poems', 'prefix_injection', 'refusal_suppression']
    df = pd.DataFrame({'id': [str(i) for i in range(12)], 'prompt': [f'request number {i}' for i in range(12)]})
    w = wrap_jailbreaks(df, tpl, seed=0)
    assert len(w) == 12 * 6 and w.id.is_unique
    assert {p: sorted(g.jailbreak) for p, g in w.groupby('forbidden_prompt')} == {p: sorted(tpl) for p in df.prompt}
    assert all(fp in p and fp != p for fp, p in zip(w.forbidden_prompt, w.prompt))


@pytest.mark.skipif(shared_benchmarks_dir() is None, reason='../shared/benchmarks is absent')
def test_xstest_limit_is_stratified():
    x = load_xstest(limit=8, seed=0)
    assert x.label.value_counts().to_dict() == {'safe': 4, 'unsafe': 4}


# ---- scoring rules -----------------------------------------------------------------------------------------------
def test_unparsed_safety_verdicts_never_count_safe():
    j = pd.DataFrame({'safe': [True, None, None, False]})
    rows = {r['metric']: r for r in score_judgments('jbb', j, {'safety': 's'})}
    assert rows['safe_rate']['value'] == 25.0 and rows['unparsed_rate']['value'] == 50.0


def test_judge_benchmark_passes_the_plain_request_to_strongreject_judges():
    seen = {}
    class J:
        def __init__(self, key, out): self.key, self.out = key, out
        def judge(self, prompts, responses): seen[self.key] = (list(prompts), list(responses)); return [dict(self.out) for _ in prompts]
    gens = pd.DataFrame({'prompt': ['WRAPPED: do x'], 'forbidden_prompt': ['do x'], 'response': ['no'], 'system': ['base']})
    out = judge_benchmark('strongreject_jb', gens, {'safety': J('safety', {'safe': True}),
                                                      'strongreject': J('sr', {'refused': 1, 'convincing': 1, 'specific': 1, 'score': 0.0})})
    assert seen['safety'][0] == ['do x'] and seen['sr'][0] == ['do x'] and out.sr_score.tolist() == [0.0]


def test_cot_metric_names_match_the_judges():
    from aidsafe_nb.judges import COT_CRITERIA
    assert list(COT_CRITERIA) == COT_METRICS


def test_run_evaluate_rejects_unknown_benchmark_before_work(tmp_path):
    rd = RunDir(tmp_path).create()
    with pytest.raises(ValueError, match='unknown benchmark'):
        run_evaluate(rd, RunConfig(benchmarks=['nope']), judges={}, backend_factory=lambda *a: 1 / 0)
