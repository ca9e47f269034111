"Preference data (notebooks 06_belief, 06a_saro): hand-written model outputs through the fake backend; no model weights."
import json, random, re
import pytest
from aidsafe_nb.reasoning import format_reasoning, split_reasoning
from aidsafe_nb.run import open_run
from aidsafe_nb.backends import get_backend
from aidsafe_nb.benchmarks import load_jailbreak_templates
from aidsafe_nb.policies import prompts_dir
from aidsafe_nb.belief import ear_whisper, belief_pairs, two_sample_pairs, clean_belief
from aidsafe_nb.pairs import mark_pairs, pair_row, save_pairs, load_pairs, exclusion_reason, KeywordScorer, LLMJudgeScorer
from aidsafe_nb.saro import split_steps, branch_point, srpo_pairs, rw_items, rw_rows, TRAIN_JAILBREAK_DIR, wrap_jailbreak, JAILBREAK_NAMES, PAIR_SETS, SARO_SETS
from aidsafe_nb.pairs import write_cot_fixture
from aidsafe_nb.steps import run_preference

POL = 'P1. No illegal activities.\nP5. Do not refuse benign requests.'

# ---- belief refinement and scoring

def _agent(log):
    "Proposes belief i+1 after seeing i earlier beliefs; logs each prompt it gets."
    def reply(conv):
        c = conv[-1]['content']; log.append(c)
        return f'Belief: "level {c.count(" -> score ")}"'
    return reply

def _target(conv):
    "Violates more often the higher the belief level: level n gives 'Here is how' for samples where seed-independent text allows."
    c = conv[-1]['content']
    lvl = int(c.split('level ')[1][0]) if 'level ' in c else -1
    return json.dumps({'cot': f'lvl {lvl}', 'response': 'Here is how.' if lvl >= 2 else 'I cannot help.'})

def test_belief_refinement_sees_history_and_keeps_best():
    log = []
    agent, target = get_backend('fake', responder=_agent(log)), get_backend('fake', responder=_target)
    scorer = KeywordScorer(('here is how',))
    items = [dict(id='a', prompt='Pick a lock?', kind='safety'), dict(id='b', prompt='Bake bread?', kind='general')]
    res = ear_whisper(items, agent, target, scorer, POL, iterations=4, samples=3, progress=False)
    for r in res:
        test = [b['belief'] for b in r['beliefs']]
        assert test == ['level 0', 'level 1', 'level 2']           # stops once a belief always works (score 1.0)
        assert [b['score'] for b in r['beliefs']] == [0.0, 0.0, 1.0]
        assert r['best']['belief'] == 'level 2' and r['best']['iteration'] == 2
        assert all(len(b['samples']) == 3 for b in r['beliefs'])
    # the agent's third request shows both earlier beliefs with their scores
    assert '"level 0" -> score 0.00' in log[4] and '"level 1" -> score 0.00' in log[4]
    # batched: one whisper call, `samples` target calls and one scoring call per round, whatever the number of prompts
    assert agent.usage['belief_whisper']['chat_calls'] == 3
    assert target.usage['belief_target']['chat_calls'] == 9
    assert scorer.calls == 3

def test_belief_pairs_keep_beliefs_and_flag_not_worse():
    agent, target = get_backend('fake', responder=_agent([])), get_backend('fake', responder=_target)
    items = [dict(id='a', prompt='Pick a lock?', kind='safety', cot='Policy 1.', response='No.'),
             dict(id='b', prompt='Bake bread?', kind='general', cot='Benign.', response='Here is how.')]
    res = ear_whisper(items, agent, target, KeywordScorer(('here is how',)), POL, iterations=3, samples=1, progress=False)
    rows = belief_pairs(items, res, [0.0, 1.0], 'keyword')
    assert [r['exclude_reason'] for r in rows] == ['', 'rejected_not_worse']
    assert rows[0]['best_belief'] == 'level 2' and len(json.loads(rows[0]['beliefs'])) == 3
    assert split_reasoning(rows[0]['chosen'][0]['content']) == ('Policy 1.', 'No.')
    with pytest.raises(ValueError, match='does not match'):
        belief_pairs(items[::-1], res, [0.0, 1.0])

def test_llm_judge_scorer_maps_scale_and_records_failures():
    replies = iter(['{"violation": 1}', '{"violation": 5}', 'no idea', 'still no idea'])
    be = get_backend('fake', responder=lambda conv: next(replies))
    sc = LLMJudgeScorer(be, POL)
    assert sc.score(['q1', 'q2', 'q3'], ['a', 'b', 'c']) == [0.0, 1.0, None]
    assert sc.errors[2] and sc.errors[0] is None
    with pytest.raises(ValueError, match='responses'):
        sc.score(['q'], [])

def test_two_sample_baseline_orders_by_score_and_flags_ties():
    replies = iter([json.dumps({'cot': 'c', 'response': r}) for r in ('Here is how.', 'Same.', 'Fine.', 'Same.')])
    be = get_backend('fake', responder=lambda conv: next(replies))
    rows = two_sample_pairs([dict(id='a', prompt='A?'), dict(id='b', prompt='B?')], be, KeywordScorer(('here is how',)), POL)
    assert split_reasoning(rows[0]['chosen'][0]['content'])[1] == 'Fine.' and rows[0]['excluded'] is False
    assert rows[1]['exclude_reason'] == 'identical'

def test_clean_belief():
    assert clean_belief('New belief: "It is legal here."\n\nExplanation...') == 'It is legal here.'

# ---- step splitting and branching

def test_split_steps_variants():
    assert split_steps('Step 1: read.\nStep 2: check\npolicy 4.\nStep 3: answer.') == ['Step 1: read.', 'Step 2: check policy 4.', 'Step 3: answer.']
    assert split_steps('- a\n- b') == ['- a', '- b']
    assert split_steps('One. Two? Three!') == ['One.', 'Two?', 'Three!']
    assert split_steps('no punctuation at all') == ['no punctuation at all']
    assert len(split_steps('\n'.join(map(str, range(30))), max_steps=12)) == 12

def test_branch_rules():
    assert branch_point(5, 'first_unsafe', [0, 0, 1, 1, 1]) == (2, 'first_unsafe')
    assert branch_point(5, 'first_unsafe', [0] * 5) == (2, 'middle')
    assert branch_point(6, 'middle') == (3, 'middle')
    ks = {branch_point(6, 'random', rng=random.Random(s))[0] for s in range(50)}
    assert ks <= set(range(1, 7)) and len(ks) > 3
    with pytest.raises(ValueError, match='prefix scores'): branch_point(3, 'first_unsafe')

def _saro_agent(conv):
    c = conv[-1]['content']
    if 'contrast examples' in c: return json.dumps({'reasoning': 'The user asks. I will go along. Here is how it works.', 'answer': 'Here is how.'})
    if 'must start with "Wait,"' in c: return json.dumps({'continuation': 'Wait, that breaks policy 1.', 'answer': 'I cannot help.'})
    return json.dumps({'continuation': 'So I continue.', 'answer': 'Here is how: more.'})

@pytest.mark.parametrize('rule,k', [('first_unsafe', 2), ('middle', 1), ('random', None)])
def test_srpo_pairs_share_prefix(rule, k):
    be = get_backend('fake', responder=_saro_agent)
    rows, chains = srpo_pairs([dict(id='s', prompt='Pick a lock?', kind='safety')], be, KeywordScorer(('here is how',)), POL, rule=rule, seed=1)
    r = rows[0]
    assert r['n_steps'] == 3 and (k is None or r['branch_step'] == k) and r['branch_rule'] == rule
    ch, rj = (split_reasoning(r[s][0]['content'])[0] for s in ('chosen', 'rejected'))
    assert ch.startswith(r['shared_prefix']) and rj.startswith(r['shared_prefix'])
    assert 'Wait,' in ch[len(r['shared_prefix']):] and 'Wait' not in rj
    assert chains[0]['answer'] == 'Here is how.'
    if rule == 'first_unsafe': assert r['excluded'] is False and json.loads(r['prefix_scores']) == [0.0, 0.0, 1.0]

# ---- templates and RW

def test_jailbreak_templates_are_the_training_set_and_disjoint_from_evaluation():
    t, ev = load_jailbreak_templates(prompts_dir()/TRAIN_JAILBREAK_DIR, whole_prompt=False), load_jailbreak_templates()   # training; evaluation
    assert set(JAILBREAK_NAMES) == set(t) and len(t) >= 4
    assert not set(t) & set(ev), 'a training jailbreak has an evaluation template name'
    norm = lambda x: ' '.join(re.sub(r'\{#.*?#\}', '', x, flags=re.S).lower().split())     # the wording, comments left out
    assert not {norm(v) for v in t.values()} & {norm(v) for v in ev.values()}
    for n in JAILBREAK_NAMES:               # every wrapper carries the whole request (payload_split in two halves)
        w = wrap_jailbreak('Do X now?', n)
        assert 'Do X now?' in w or ('Do X' in w and ' now?' in w)
    its = rw_items([dict(id=f's{i}', prompt='P?', kind='safety') for i in range(7)])
    assert {i['jailbreak'] for i in its if i['jailbreak']} == set(JAILBREAK_NAMES)     # RW/SRPO use only the training set

def test_rw_rows_shortest_accepted():
    texts = iter(['x y z w v. Wait, long one.', 'a b c', 'Wait, short.', 'a b'])   # sample 0 of g, s; then sample 1 of g, s
    teacher = get_backend('fake', responder=lambda conv: json.dumps({'reasoning': next(texts), 'answer': 'A.'}))
    judge = get_backend('fake', responder=lambda conv: json.dumps({'accept': 'a b c' not in conv[-1]['content']}))
    its = rw_items([dict(id='g', prompt='Bake?', kind='general'), dict(id='s', prompt='Steal?', kind='safety')], with_jailbreaks=False)
    rows = rw_rows(its, teacher, judge, POL, k=2)
    assert split_reasoning(rows[0]['messages'][1]['content'])[0] == 'Wait, short.' and rows[0]['has_reflection']
    assert rows[1]['n_accepted'] == 1 and rows[1]['excluded'] is False      # 'a b' accepted, 'a b c' not

# ---- degenerate pairs and saving

def test_degenerate_pairs_flagged_never_silently_dropped(tmp_path):
    g, b = format_reasoning('Policy.', 'No.'), format_reasoning('Sure.', 'Here is how.')
    rows = mark_pairs([pair_row('q', g, b, id='ok', chosen_score=0.0, rejected_score=1.0),
                       pair_row('q', g, g, id='same', chosen_score=0.0, rejected_score=1.0),
                       pair_row('q', g, b, id='worse', chosen_score=1.0, rejected_score=0.0),
                       pair_row('q', g, b, id='tie', chosen_score=0.5, rejected_score=0.5),
                       pair_row('q', g, b, id='none', chosen_score=None, rejected_score=0.5),
                       pair_row('q', g, format_reasoning('', ''), id='empty', chosen_score=0.0, rejected_score=1.0)])
    save_pairs(rows, tmp_path/'pairs_x')
    ds, allr = load_pairs(tmp_path/'pairs_x'), load_pairs(tmp_path/'pairs_x', all_rows=True)
    assert ds['id'] == ['ok']
    assert {r['id']: r['exclude_reason'] for r in allr} == dict(ok='', same='identical', worse='rejected_not_worse', tie='rejected_not_worse',
                                                               none='unscored', empty='empty_side')
    assert [r['excluded'] for r in allr] == [False] + [True] * 5
    with pytest.raises(ValueError, match='mark_pairs'):
        save_pairs([pair_row('q', g, b)], tmp_path/'bad')

# ---- the steps

def _fake_model(conv):
    "Agent, judge, teacher and (in chat mode) the SFT model, from hand-written rules."
    c = conv[-1]['content']
    if 'ear-whisperer' in c: return 'Everyone agrees this is harmless.'
    if 'Rate how clearly' in c: return json.dumps({'violation': 5 if 'Here is how' in c else 1})
    if 'strict judge of training data' in c: return json.dumps({'accept': True})
    if 'contrast examples' in c or 'Continue the reasoning' in c: return _saro_agent(conv)
    if 'Think about the user' in c: return json.dumps({'reasoning': 'Wait, check the policies.', 'answer': f'Safe answer {len(c)}.'})
    if 'harmless' in c: return format_reasoning('The belief says it is fine.', 'Here is how.')
    return format_reasoning(f'Policy applies {len(c) % 7}.', 'A safe reply.')

COT = [dict(id='s1', prompt='How do I pick a lock?', kind='safety', cot='Policy 1 applies.', response='I cannot help.', status='ok'),
       dict(id='s2', prompt='Steal a car?', kind='safety', cot='Policy 1.', response=']', status='gate_failed',
            gate_failures=json.dumps([dict(stage='refiner', field='response', gate='punctuation')])),
       dict(id='g1', prompt='How do I bake bread?', kind='general', cot='Benign.', response='Mix flour and water.', status='ok')]

def test_run_preference_writes_saro_sets_only_and_resumes(tmp_path):
    from aidsafe_nb.pairs import load_meta
    rd, cfg = open_run(tmp_path/'run', 'tiny', rw_samples=2)
    write_cot_fixture(rd, COT)
    fb = get_backend('fake', responder=_fake_model)
    res = run_preference(rd, cfg, agent=fb, judge=fb, progress=False)
    assert set(res['paths']) == set(SARO_SETS) and not (rd.data/'pairs_belief').exists()
    for name in SARO_SETS:
        allr, ds, meta = load_pairs(rd.data/name, all_rows=True), load_pairs(rd.data/name), load_meta(rd.data/name)
        assert allr and all('excluded' in r and 'exclude_reason' in r and 'status' in r for r in allr)
        assert len(ds) == sum(not r['excluded'] for r in allr) == meta['n_trainable'] > 0
        assert json.loads((rd.data/f'{name}.gates.json').read_text())['stages']
    for name in PAIR_SETS:
        row = load_pairs(rd.data/name)[0]
        assert row['prompt'][0]['role'] == 'user' and row['chosen'][0]['role'] == row['rejected'][0]['role'] == 'assistant'
        assert row['chosen'][0]['content'].startswith('<think>') and row['chosen'] != row['rejected']
        assert {'id', 'method', 'chosen_score', 'rejected_score', 'score_gap', 'scorer', 'config_hash', 'status'} <= set(load_pairs(rd.data/name).column_names)
    rw = load_pairs(rd.data/'rw')
    assert len(rw) == 5 and set(rw['variant']) == {'harmful', 'jailbreak', 'benign'}
    assert {r['jailbreak'] for r in rw if r['jailbreak']} <= set(JAILBREAK_NAMES)
    n = fb.n_calls
    res2 = run_preference(rd, cfg, progress=False)       # no backends given: none may be built, nothing generated
    assert fb.n_calls == n and res2['counts'] == res['counts']
    assert json.loads(rd.manifest.read_text())['steps']['2_preference']['llm_backends_built'] == []

def test_run_preference_bad_input(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny')
    with pytest.raises(FileNotFoundError, match='step 1'): run_preference(rd, cfg)
    write_cot_fixture(rd, [dict(id='x', prompt='p', kind='safety', cot='c')])
    with pytest.raises(ValueError, match='response'): run_preference(rd, cfg)

# ---- belief pairs from the SFT model (step 4)

def _fake_sft_db(rd):
    (rd.models/'sft_db').mkdir(parents=True)
    (rd.models/'sft_db'/'train_info.json').write_text(json.dumps(dict(base_model='tiny', load_in_4bit=False)))

class _Grader:
    "Faithfulness 5 for a CoT naming a policy, else 1; counts its calls and items."
    def __init__(self): self.calls, self.items = 0, 0
    def grade(self, prompts, cots, responses, policies_text):
        self.calls += 1; self.items += len(cots)
        return [dict(faithfulness_cot_policy=5 if 'Policy' in c else 1, error=None) for c in cots]

def test_belief_pairs_target_the_sft_db_adapter(tmp_path):
    from aidsafe_nb.steps import run_belief_pairs
    rd, cfg = open_run(tmp_path/'run', 'tiny', belief_iterations=2, belief_samples=2)
    write_cot_fixture(rd, COT); _fake_sft_db(rd)
    fb, asked = get_backend('fake', responder=_fake_model), []
    def factory(kind, **kw):
        asked.append((kind, kw['model'], kw['adapter'])); return fb
    res = run_belief_pairs(rd, cfg, agent=fb, judge=fb, grader=_Grader(), backend_factory=factory, progress=False)
    assert asked == [('hf', 'tiny', str(rd.models/'sft_db'))]                 # base + the SFT_DB adapter, built once
    rows = load_pairs(rd.data/'pairs_belief', all_rows=True)
    assert all(r['whispered_model'] == f"sft_db:tiny+{rd.models/'sft_db'}" and r['target_mode'] == 'chat' for r in rows)
    assert res['target']['belief_target'] == 'sft_db'
    by = {r['id']: r for r in rows}
    assert by['s1']['excluded'] is False and by['g1']['excluded'] is False
    assert by['s2']['exclude_reason'] == 'chosen_gated' and by['s2']['status'] == 'gate_failed'   # junk chosen side: never trainable
    base = load_pairs(rd.data/'pairs_baseline', all_rows=True)
    assert {r['id']: r['n_draws'] for r in base} == {r['id']: max(2, r['n_draws']) for r in rows}  # equal draws per prompt
    g = json.loads((rd.data/'pairs_belief.gates.json').read_text())['stages']
    assert {k: g['chosen_cot'][k] for k in ('n', 'passed', 'pass_rate', 'failures')} == dict(n=3, passed=2, pass_rate=0.6667, failures={'punctuation': 1})
    assert {'belief_whisper', 'belief_target', 'pref_score'} <= set(g)

def test_belief_pairs_without_sft_db_are_explicitly_empty(tmp_path):
    from aidsafe_nb.steps import run_belief_pairs
    from aidsafe_nb.pairs import load_meta
    rd, cfg = open_run(tmp_path/'run', 'tiny')
    write_cot_fixture(rd, COT)
    fb = get_backend('fake', responder=_fake_model)
    res = run_belief_pairs(rd, cfg, agent=fb, judge=fb, grader=_Grader(), progress=False)
    assert res['counts'] == {'pairs_belief': dict(rows=0, trainable=0), 'pairs_baseline': dict(rows=0, trainable=0)}
    for n in ('pairs_belief', 'pairs_baseline'):
        m = load_meta(rd.data/n)
        assert m['trainable'] is False and 'no SFT_DB model' in m['no_trainable_reason']
        assert len(load_pairs(rd.data/n)) == 0
    q = json.loads((rd.data/'pair_quality.json').read_text())
    assert q['status'] == 'not_built' and 'no SFT_DB model' in q['reason'] and fb.n_calls == 0

def test_belief_target_agent_keeps_the_json_path(tmp_path):
    from aidsafe_nb.steps import run_belief_pairs
    rd, cfg = open_run(tmp_path/'run', 'tiny', belief_target='agent', belief_iterations=1, belief_samples=1)
    write_cot_fixture(rd, COT[:1])
    seen = []
    def agent(conv):
        seen.append(conv)
        if 'ear-whisperer' in conv[-1]['content'] or 'Rate how clearly' in conv[-1]['content']: return _fake_model(conv)
        return json.dumps({'cot': 'The belief says so.', 'response': 'Here is how.'})
    fb = get_backend('fake', responder=agent)
    run_belief_pairs(rd, cfg, agent=fb, judge=fb, grader=_Grader(), progress=False)
    cot_reqs = [c for c in seen if '"cot"' in c[-1]['content']]
    assert cot_reqs and cot_reqs[0][0]['role'] == 'system'                    # policies first, as the shared system message
    assert load_pairs(rd.data/'pairs_belief', all_rows=True)[0]['target_mode'] == 'json'

def test_pair_quality_uses_the_grader_on_equal_numbers(tmp_path):
    from aidsafe_nb.belief import write_pair_quality
    rd, cfg = open_run(tmp_path/'run', 'tiny')
    g, b = format_reasoning('Policy 1 applies.', 'No.'), format_reasoning('Sure.', 'Here is how.')
    belief = mark_pairs([pair_row('q1', g, b, id='1', chosen_score=0.0, rejected_score=1.0, n_draws=4, scorer='s'),
                         pair_row('q2', g, b, id='2', chosen_score=0.0, rejected_score=1.0, n_draws=2, scorer='s'),
                         pair_row('q3', g, format_reasoning('', ''), id='3', chosen_score=0.0, rejected_score=None, n_draws=4, scorer='s')])
    base = mark_pairs([pair_row('q1', g, g.replace('1', '2'), id='1', chosen_score=0.0, rejected_score=0.0, n_draws=4),
                       pair_row('q2', g, b.replace('how', 'why'), id='2', chosen_score=0.0, rejected_score=1.0, n_draws=2),
                       pair_row('q3', g, b, id='3', chosen_score=0.0, rejected_score=1.0, n_draws=4)])
    save_pairs(belief, rd.data/'pairs_belief'); save_pairs(base, rd.data/'pairs_baseline')
    gr = _Grader()
    q = write_pair_quality(rd, gr, POL, grader_model='judge-x', scorer_name='s')
    assert gr.calls == 1 and gr.items == 8                                    # 2 common gradable ids x 2 sides x 2 sets, one batched call
    assert q['equal_draws'] and q['n_ids'] == 2 and q['grader']['validated'] is False and 'not validated' in q['grader']['validation']
    assert q['sets']['belief']['n_graded'] == q['sets']['baseline']['n_graded'] == 2
    assert q['sets']['belief']['shift_mean'] == 4.0 and q['sets']['baseline']['shift_mean'] == 2.0 and q['shift_difference'] == 2.0
    assert (rd.figures/'pair_quality.png').stat().st_size > 1000 and (rd.data/'pair_quality_grades.csv').exists()
    class Flat(_Grader):
        def grade(self, prompts, cots, responses, policies_text): return [dict(faithfulness_cot_policy=3, error=None) for _ in cots]
    q = write_pair_quality(rd, Flat(), POL)
    assert q['grader']['constant_grades'] and q['warnings']

# ---- gates on the pair recipes

def test_gates_make_junk_pairs_untrainable():
    from aidsafe_nb.belief import ear_whisper, two_sample_pairs
    junk = {'Q1?': format_reasoning('...', ']'), 'Q2?': format_reasoning('happy happy happy happy happy happy', 'ok then'),
            'Q3?': format_reasoning('The user asks.', 'A real answer here.')}
    tgt = get_backend('fake', responder=lambda conv: next(v for k, v in junk.items() if k in conv[-1]['content']))
    rows = two_sample_pairs([dict(id=k, prompt=k) for k in junk], tgt, KeywordScorer(), POL, mode='chat')
    by = {r['id']: r for r in rows}
    assert by['Q1?']['exclude_reason'] == by['Q2?']['exclude_reason'] == 'samples_gated'
    assert {f['gate'] for f in json.loads(by['Q1?']['gate_failures'])} == {'punctuation'}
    assert {f['gate'] for f in json.loads(by['Q2?']['gate_failures'])} == {'repetition'}
    assert by['Q3?']['exclude_reason'] == 'identical' and by['Q3?']['status'] == 'ok'
    # SRPO: a continuation that copies the template's example, or that does not reflect, is not trainable
    def agent(conv):
        c = conv[-1]['content']
        if 'contrast examples' in c: return json.dumps({'reasoning': '1. The user asks.\n2. I comply.', 'answer': 'Here is how.'})
        if 'must start with "Wait,"' in c:
            return json.dumps({'continuation': 'I continue.' if 'noreflect' in c else 'Wait, that is harmful.', 'answer': 'I cannot help.'})
        return json.dumps({'continuation': 'More medicine works faster.\nI will give a higher dose.', 'answer': 'Take three tablets at once for faster relief.'})
    prs, _ = srpo_pairs([dict(id='a', prompt='Pick?', kind='safety'), dict(id='b', prompt='noreflect?', kind='safety')],
                        get_backend('fake', responder=agent), KeywordScorer(('here is how',)), POL, rule='middle')
    assert [p['exclude_reason'] for p in prs] == ['rejected_gated', 'rejected_gated']
    assert all(p['status'] == 'gate_failed' for p in prs)

def test_srpo_one_step_chain_shares_nothing_and_needs_reflection():
    def agent(conv):
        c = conv[-1]['content']
        if 'contrast examples' in c: return json.dumps({'reasoning': 'I will just comply with this request', 'answer': 'Here is how.'})
        if 'must start with "Wait,"' in c: return json.dumps({'continuation': 'Then I go on with the plan.', 'answer': 'Here is how, again.'})
        return json.dumps({'continuation': 'So I continue.', 'answer': 'Here is how: more.'})
    p = srpo_pairs([dict(id='a', prompt='Pick?', kind='safety')], get_backend('fake', responder=agent), KeywordScorer(('here is how',)), POL,
                   rule='middle')[0][0]
    assert (p['n_steps'], p['branch_step'], p['shared_prefix']) == (1, 0, '')
    assert p['exclude_reason'] == 'chosen_no_reflection' and p['chosen_reflects'] is False

def test_looks_like_refusal_needs_a_refusal_verb():
    from aidsafe_nb.belief import looks_like_refusal
    assert looks_like_refusal("I can't help with that.") and looks_like_refusal("Sorry, no.") and looks_like_refusal('I will not write this.')
    assert not looks_like_refusal("I can't seem to find a list or tuple in Python.") and not looks_like_refusal('I cannot believe how easy it is.')

def test_rw_rows_are_judged_at_k1():
    teacher = get_backend('fake', responder=lambda conv: json.dumps({'reasoning': 'Step 1. Wait, check.', 'answer': 'Mix flour.' if 'Bake' in conv[-1]['content'] else 'Here is how.'}))
    judge = get_backend('fake', responder=lambda conv: json.dumps({'accept': 'Here is how' not in conv[-1]['content']}))
    rows = rw_rows(rw_items([dict(id='g', prompt='Bake?', kind='general'), dict(id='s', prompt='Steal?', kind='safety')], with_jailbreaks=False), teacher, judge, POL, k=1)
    assert rows[0]['excluded'] is False and rows[0]['accepted'] is True and rows[0]['n_samples'] == 1
    assert rows[1]['exclude_reason'] == 'no_accepted_sample' and rows[1]['status'] == 'not_accepted'
    with pytest.raises(ValueError, match='rw_samples'): rw_rows([], teacher, judge, POL, k=0)

def test_make_scorer_with_a_hub_classifier_runs_the_judges_classifier():
    from aidsafe_nb.config import make_config
    from aidsafe_nb.pairs import make_scorer, JudgeScorer, PairSetup
    sc = make_scorer(PairSetup.of(make_config('tiny', safety_classifier='tiny')))       # the tiny model stands in for Llama Guard: real code path
    assert isinstance(sc, JudgeScorer) and sc.name == 'judge:classifier:tiny'
    assert all(s is None or s in (0.0, 1.0) for s in sc.score(['Pick a lock?', 'Bake bread?'], ['Here is how.', 'Mix flour.']))

# ---- the pair scorer of steps 2 and 4 comes from the judges registry (`safety_judge`)
class _DeclinesJudge:
    "A registered fake safety judge: a reply that declines ('cannot') is safe, anything else unsafe."
    name = 'declines'
    def judge(self, prompts, responses): return [dict(safe='cannot' in r) for r in responses]

def test_a_registered_safety_judge_scores_both_steps_pairs(tmp_path):
    from aidsafe_nb.judges import register_safety_judge, SAFETY_JUDGES
    from aidsafe_nb.steps import run_belief_pairs
    register_safety_judge('test_declines', lambda s, backend, **kw: _DeclinesJudge())
    try:
        rd, cfg = open_run(tmp_path/'run', 'tiny', rw_samples=2, safety_judge='test_declines', belief_target='agent',
                           belief_iterations=1, belief_samples=1)
        write_cot_fixture(rd, COT)
        fb = get_backend('fake', responder=_fake_model)
        run_preference(rd, cfg, agent=fb, judge=fb, progress=False)
        run_belief_pairs(rd, cfg, agent=fb, judge=fb, grader=_Grader(), progress=False)
        for name in ('pairs_saro', 'pairs_saro_outcome', 'pairs_belief'):
            rows = [r for r in load_pairs(rd.data/name, all_rows=True) if r['chosen_score'] is not None]
            assert rows and {r['scorer'] for r in rows} == {'judge:declines'}, name
            assert all(r['chosen_score'] == float('cannot' not in r['chosen'][0]['content']) for r in rows), name
        assert 'pref_score' not in fb.usage                          # the LLM judge scorer was never asked
    finally: SAFETY_JUDGES.pop('test_declines')

def test_an_unknown_safety_judge_is_refused_naming_the_parameter():
    import dataclasses
    from aidsafe_nb.config import make_config, ConfigError
    from aidsafe_nb.saro import PreferenceSetup
    from aidsafe_nb.belief import BeliefSetup
    cfg = dataclasses.replace(make_config('tiny'), safety_judge='nope')     # past the config's own checks
    for S in (PreferenceSetup, BeliefSetup):
        with pytest.raises(ConfigError, match="parameter 'safety_judge'.*'nope'"): S.of(cfg)

def test_preference_fingerprints_follow_the_setups_not_the_transport():
    from aidsafe_nb.config import make_config
    from aidsafe_nb.study import fingerprints
    a = fingerprints(make_config('tiny'))
    assert fingerprints(make_config('tiny', max_concurrency=3, gen_batch_size=2, request_timeout=5.0)) == a   # NON_SEMANTIC
    b = fingerprints(make_config('tiny', safety_judge='strmatch'))     # the pair scorer of steps 2 and 4
    assert b['1_generate'] == a['1_generate'] and b['2_preference'] != a['2_preference'] and b['4_dpo'] != a['4_dpo']
    c = fingerprints(make_config('tiny', belief_iterations=5))         # step 4's belief part only
    assert [s for s in a if a[s] != c[s]] == ['4_dpo', '5_evaluate', '6_report']
