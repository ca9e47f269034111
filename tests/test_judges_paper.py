"""Issue 20: the `paper` profile as the papers ran it, or visibly not (fast, no model):
- the evaluation safety judge is given the study's harm policies (ShieldGemma: as its principle lines; an LLM judge: the policy texts);
- what the judges read of a CoT answer is a parameter (`judge_reads`);
- a second pairwise CoT grader from another model family, on its own endpoint (`judge2_model`, `judge2_base_url`);
- the StrongREJECT rubric keeps the `overall_reasoning` step the rubric asks for."""
import pandas as pd, pytest

from aidsafe_nb.config import make_config
from aidsafe_nb.run import RunDir
import aidsafe_nb.judges as judges
from aidsafe_nb.judges import make_judges, cot_grader_2, eval_policy_text, judge_conversation
from aidsafe_nb.evaluate import EvalSetup
from aidsafe_nb.scoring import judge_benchmark


def test_shieldgemma_gets_the_study_policies(tmp_path):
    js = make_judges(EvalSetup.of(make_config('tiny', safety_classifier='google/shieldgemma-2b')), RunDir(tmp_path).create())
    clf = js['safety'].classifier          # not loaded: the prompt is built from the text below on first use
    assert clf.style == 'shieldgemma' and clf.policies == eval_policy_text('aidsafe5', 'shieldgemma')
    assert 'Fraud and deception' in clf.policies and 'Illegal' in clf.policies      # the two harm types ShieldGemma's default lacks
    off = make_judges(EvalSetup.of(make_config('tiny', safety_classifier='google/shieldgemma-2b', eval_safety_policies=False)), RunDir(tmp_path/'b').create())
    assert off['safety'].classifier.policies is None                              # visibly the classifier's own four types


def test_llm_safety_judge_prompt_holds_the_study_policies(tmp_path):
    js = make_judges(EvalSetup.of(make_config('tiny')), RunDir(tmp_path).create())
    conv = judge_conversation('safety_llm', question='q', response='r', policies=js['safety'].policies, structured=True)
    assert '1. Hate, harassment and violence' in conv[-1]['content'] and 'S14: Code Interpreter Abuse' not in conv[-1]['content']


def test_judge_reads_is_a_parameter(tmp_path):
    js = make_judges(EvalSetup.of(make_config('tiny', judge_reads='answer')), RunDir(tmp_path).create())
    assert js['safety'].reads == 'answer' and js['strongreject'].reads == 'answer'
    seen = []
    js['safety'].judge = lambda ps, rs: seen.extend(rs) or [dict(safe=True) for _ in rs]
    g = pd.DataFrame({'prompt': ['p'], 'reasoning': ['the user wants to harm'], 'response': ["I can't help."]})
    judge_benchmark('beavertails', g, js)
    assert seen == ["I can't help."]
    with pytest.raises(ValueError, match='judge_reads'): make_judges(EvalSetup.of(make_config('tiny', judge_reads='everything')), RunDir(tmp_path/'x').create())


def test_second_grader_from_another_family_on_its_own_endpoint(tmp_path, monkeypatch):
    p = make_config('paper')
    assert p.judge2_model and p.judge2_model.split('/')[0] != p.judge_model.split('/')[0] and p.judge2_base_url != p.judge_base_url
    probed = []
    monkeypatch.setattr(judges, 'probe_endpoint', lambda url, model, *a, **k: probed.append((url, model)))
    g = cot_grader_2(EvalSetup.of(p), RunDir(tmp_path).create())
    assert probed == [(p.judge2_base_url, p.judge2_model)]
    assert g.backend.base_url.rstrip('/') == p.judge2_base_url.rstrip('/') and g.backend.model_name == p.judge2_model
    assert cot_grader_2(EvalSetup.of(make_config('tiny'))) is None                               # not set: one grader, and the report says so
    assert cot_grader_2(EvalSetup.of(make_config('tiny', judge2_model='tiny'))).backend is not None


def test_rubric_schema_allows_the_reasoning_the_rubric_asks_for():
    sch = judges.StrongRejectJudge(None).schema
    assert list(sch['properties'])[0] == 'overall_reasoning' and sch['additionalProperties'] is False


def test_rubric_reasons_when_the_budget_allows(tmp_path):
    "The rubric's reasoning needs room: with a small budget (tiny, smol) the judge gives scores only, as before issue 20."
    big = make_judges(EvalSetup.of(make_config('tiny', max_new_tokens=1024)), RunDir(tmp_path/'a').create())['strongreject']
    small = make_judges(EvalSetup.of(make_config('smol')), RunDir(tmp_path/'b').create())['strongreject']
    assert big.reasoning and big.max_tokens == 512 and 'overall_reasoning' in big.schema['properties']
    assert not small.reasoning and 'overall_reasoning' not in small.schema['properties']
