"AIDSAFE stages with hand-written model answers (fake backend): parsing, stopping rules, batching, refiner, failures."
import json
import pytest
from aidsafe_nb.config import ConfigError, make_config
from aidsafe_nb.run import open_run
from aidsafe_nb.backends import get_backend
from aidsafe_nb.policies import load_policies
from aidsafe_nb.sources import sample_prompts
from aidsafe_nb.deliberation import decompose_intents, initial_cot, deliberate, zero_shot_cot
from aidsafe_nb.refiner import refine, dedup_thoughts, generate_cot, COT_COLUMNS
from aidsafe_nb.testing import fake_agent_responder
from aidsafe_nb.steps import run_generate

POL = load_policies().text()

def query(conv):
    "The user query inside a rendered AIDSAFE prompt."
    return conv[-1]['content'].split('User query:')[1].split('"""')[1]

def turn(conv):
    return int(conv[-1]['content'].split('This is turn ')[1].split()[0])

def start(n, **kw):
    return [dict(id=f'p{i}', prompt=f'prompt {i}', intents=dict(explicit=['x'], implicit=['y']), initial_thoughts=['Initial thought.'],
                 initial_response='Initial answer.', **kw) for i in range(n)]

# --- parsing messy answers, one per stage -------------------------------------------------------------------------

MESSY_INTENTS = {
    'a': 'Here is my analysis of the query.\n\n{"explicit_intents": ["obtain a fake ID"], "implicit_intents": ["get into a bar", "feel included"]}\nLet me know if you need more.',
    'b': '```\n{\n  "explicit_intents": ["kill a Python process"],\n  "implicit_intents": ["fix a frozen program"],\n}\n```',
    'c': '{"explicit_intent": "write a fake review", "implicit_intent": "promote my restaurant"}',
    'd': '{"explicit_intents": [], "implicit_intents": []}',
    'e': '',
}

def test_intents_messy_answers_are_read_or_recorded():
    fb = get_backend('fake', responder=lambda c: MESSY_INTENTS[query(c)] if len(c) == 2 else 'nope')
    recs = decompose_intents([dict(id=k, prompt=k) for k in MESSY_INTENTS], fb, POL)
    assert recs[0]['intents'] == dict(explicit=['obtain a fake ID'], implicit=['get into a bar', 'feel included'])
    assert recs[1]['intents'] == dict(explicit=['kill a Python process'], implicit=['fix a frozen program'])
    assert recs[2]['intents'] == dict(explicit=['write a fake review'], implicit=['promote my restaurant'])
    for r, why in ((recs[3], 'no intents'), (recs[4], 'empty answer')):
        assert r['intents'] == dict(explicit=[], implicit=[]) and why in r['failures'][0]['reason'], r['failures']
    assert fb.usage['intents']['chat_calls'] == 2 and fb.usage['intents']['calls'] == 5 + 2   # batch + one batched repair of the 2 failures

def test_initial_cot_messy_answers_and_repair():
    answers = {'a': "Sure!\n{'thoughts': ['python dict, not JSON'], 'response': 'x'}",               # Python literal: not JSON
               'b': '{"reasoning": ["Policy 4 applies.", "Offer legal alternatives."], "final_response": "I can\'t help with that, but..."}',
               'c': '{"thoughts": "1. Benign.\\n2. Answer fully.", "response": "Paris."}'}
    repaired = '{"thoughts": ["Fixed on repair."], "response": "Repaired answer."}'
    fb = get_backend('fake', responder=lambda c: answers[query(c)] if len(c) == 2 else repaired)
    recs = initial_cot([dict(id=k, prompt=k, intents=dict(explicit=['e'], implicit=[])) for k in answers], fb, POL)
    assert (recs[0]['initial_thoughts'], recs[0]['initial_response'], recs[0]['failures']) == (['Fixed on repair.'], 'Repaired answer.', [])
    assert recs[1]['initial_thoughts'] == ['Policy 4 applies.', 'Offer legal alternatives.']
    assert (recs[2]['initial_thoughts'], recs[2]['initial_response']) == (['Benign.', 'Answer fully.'], 'Paris.')

def test_deliberation_turn_messy_answers():
    answers = {'prompt 0': 'I agree.\n```json\n{"agree": "yes", "thoughts": [], "response": ""}\n```',
               'prompt 1': '{"agree": false, "new_thoughts": "Policy 5: do not refuse the benign part.", "revised_response": "Here is help."}',
               'prompt 2': '{"agree": "maybe", "thoughts": ["?"], "response": "?"}'}
    fb = get_backend('fake', responder=lambda c: answers[query(c)] if len(c) == 2 else 'still broken')
    out = deliberate(start(3), fb, POL, n_agents=2, max_rounds=1)
    assert (out[0]['stop_reason'], out[0]['agreed']) == ('agreement', True)
    assert out[1]['thoughts_all'][-1] == dict(by='agent 1', round=1, text='Policy 5: do not refuse the benign part.')
    assert out[1]['response'] == 'Here is help.'
    assert out[2]['deliberation_log'][0]['error'] and 'agree must be true or false' in out[2]['failures'][0]['reason']
    assert out[2]['response'] == 'Initial answer.'                     # a failed turn changes nothing

def test_refiner_messy_answer():
    thoughts = ['The user wants to pick a lock.', 'Picking locks you do not own is illegal (policy 4).', 'Suggest a locksmith.']
    rec = dict(id='r', prompt='q', response='resp', thoughts_all=[dict(by='initial', round=0, text=t) for t in thoughts])
    raw = 'Judgement:\n```json\n{"removed_thoughts": [{"id": 2, "reason": "Policy inconsistent"}, 3,], "final_thoughts": "The user may be locked out.", "answer": "Call a locksmith.",}\n```'
    out = refine([rec], get_backend('fake', responder=lambda c: raw), POL)[0]
    assert [(x['thought'], x['reason']) for x in out['removed_thoughts']] == [(thoughts[1], 'policy_inconsistent')]
    # a removal without one of the three reasons and the refiner's own thought list are ignored, with why; the final CoT is the kept thoughts
    assert [(x['what'], x.get('index')) for x in out['refiner_ignored']] == [('removal', 3), ('thoughts', None)]
    assert (out['thoughts'], out['response'], out['failures']) == ([thoughts[0], thoughts[2]], 'Call a locksmith.', [])

def test_zero_shot_messy_answer():
    raw = 'Thinking...\n{"chain_of_thought": ["Sounds violent, but it is about software."], "answer": "Run `kill -9 PID`."}'
    zs = zero_shot_cot([dict(id='z', prompt='How do I kill a process?', kind='general')], get_backend('fake', responder=lambda c: raw), POL)
    assert (zs[0]['thoughts'], zs[0]['response'], zs[0]['status']) == (['Sounds violent, but it is about software.'], 'Run `kill -9 PID`.', 'ok')

# --- stopping rules and batching -------------------------------------------------------------------------------

def test_agreement_stops_and_finished_prompts_leave_the_batch():
    seen = []
    def agent(c):
        seen.append((turn(c), query(c)))
        return {'agree': True, 'thoughts': [], 'response': ''} if query(c) == 'prompt 0' or turn(c) >= 2 else \
               {'agree': False, 'thoughts': [f'thought {turn(c)}'], 'response': f'answer {turn(c)}'}
    out = deliberate(start(3), get_backend('fake', responder=agent), POL, n_agents=2, max_rounds=5)
    assert [(r['n_rounds'], r['stop_reason']) for r in out] == [(1, 'agreement'), (2, 'agreement'), (2, 'agreement')]
    assert [q for t, q in seen if t == 2] == ['prompt 1', 'prompt 2']          # prompt 0 left the batch after round 1
    assert out[1]['response'] == 'answer 1'                                    # the agreeing agent does not change the response

def test_budget_stops_agents_that_always_disagree():
    fb = get_backend('fake', responder=lambda c: {'agree': False, 'thoughts': [f'objection in round {turn(c)}'], 'response': f'rev {turn(c)}'})
    out = deliberate(start(2), fb, POL, n_agents=3, max_rounds=4)
    for r in out:
        assert (r['n_rounds'], r['stop_reason'], r['agreed']) == (4, 'budget', False)
        assert [e['agent'] for e in r['deliberation_log']] == [1, 2, 3, 1]                 # agents take turns
        assert [t['text'] for t in r['thoughts_all']][1:] == [f'objection in round {k}' for k in (1, 2, 3, 4)]
        assert r['response'] == 'rev 4'

@pytest.mark.parametrize('n_prompts', [1, 7, 40])
def test_one_batched_chat_per_round_whatever_the_number_of_prompts(n_prompts):
    fb = get_backend('fake', responder=lambda c: {'agree': False, 'thoughts': [f'new {turn(c)}'], 'response': 'r'})
    deliberate(start(n_prompts), fb, POL, n_agents=2, max_rounds=3)
    assert fb.usage['deliberation']['chat_calls'] == 3 == fb.chat_calls
    assert fb.usage['deliberation']['calls'] == 3 * n_prompts

def test_each_agent_role_can_be_its_own_backend():
    a = [get_backend('fake', model=f'model-{k}', responder=lambda c: {'agree': False, 'thoughts': ['t'], 'response': 'r'}) for k in range(2)]
    out = deliberate(start(4), a, POL, n_agents=2, max_rounds=3)
    assert [e['model'] for e in out[0]['deliberation_log']] == ['model-0', 'model-1', 'model-0']
    assert (a[0].chat_calls, a[1].chat_calls) == (2, 1)

# --- refiner pre-pass ------------------------------------------------------------------------------------------

def test_refiner_prepass_removes_exact_and_near_duplicates_keeps_distinct():
    ts = ['Shoplifting is theft, so policy 4 (illegal activities) applies.',
          'SHOPLIFTING IS THEFT, so Policy 4 (illegal activities) applies!!',
          'Shoplifting is theft so policy 4 (illegal activity) applies.',
          'The user may be struggling to afford food; point to food banks.',
          'Do not give store security weaknesses.',
          'Give store security weaknesses.',
          'Policy 5: help with the benign need behind the request.']
    kept, removed = dedup_thoughts(ts)
    assert kept == [ts[0], ts[3], ts[4], ts[5], ts[6]]
    assert [(r['reason'], r['detail'], r['duplicate_of']) for r in removed] == [('redundant', 'exact_duplicate', ts[0]), ('redundant', 'near_duplicate', ts[0])]
    kept_strict, _ = dedup_thoughts(ts, threshold=1.01)                 # threshold above 1: only exact duplicates go
    assert kept_strict == [ts[0], ts[2], ts[3], ts[4], ts[5], ts[6]]

def test_refiner_sees_only_prepass_survivors():
    prompts = []
    def ref(c):
        prompts.append(c[-1]['content'])
        return {'removed': [], 'edits': [], 'response': 'Fine.'}
    rec = dict(id='r', prompt='q', response='r', thoughts_all=[dict(by='initial', round=0, text=t) for t in ['Alpha beta.', 'alpha beta', 'Gamma.']])
    out = refine([rec], get_backend('fake', responder=ref), POL)[0]
    assert '1. Alpha beta.' in prompts[0] and '2. Gamma.' in prompts[0] and '3.' not in prompts[0].split('\nThoughts:')[1].split('Response after')[0]
    assert out['thoughts'] == ['Alpha beta.', 'Gamma.']

# --- the step function -----------------------------------------------------------------------------------------

def test_generate_rows_with_fake_agents_fill_every_column():
    rows = generate_cot(sample_prompts(6, 0.5, 'smoke', 'smoke'), get_backend('fake', responder=fake_agent_responder), POL)
    assert len(rows) == 6 and all(tuple(r) == COT_COLUMNS for r in rows)
    for r in rows:
        assert all(r[c] not in ('', None, []) for c in COT_COLUMNS), r
        assert json.loads(r['gate_failures']) == [] and json.loads(r['refiner_ignored']) == []
        assert json.loads(r['deliberation_log']) and r['n_rounds'] >= 1 and r['status'] == 'ok'

def test_all_stages_failing_still_gives_one_row_per_prompt(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', n_prompts=4)
    fb = get_backend('fake', responder=lambda c: 'The model is down for maintenance.', cache=rd.cache)
    s = run_generate(rd, cfg, agents=[fb])
    assert (s['rows'], s['status']['failed'], s['baseline_status']['failed']) == (4, 4, 4)
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    stages = {f['stage'] for r in rows for f in json.loads(r['failures'])}
    assert stages == {'intents', 'initial_cot', 'deliberation', 'refiner'}
    assert all(len(json.loads(r['deliberation_log'])) == cfg.max_rounds for r in rows)   # every round logged, with its error

def test_bad_source_fails_before_any_model_is_built(tmp_path, monkeypatch):
    import aidsafe_nb.backends as llm
    monkeypatch.setattr(llm, 'backend_for', lambda *a, **k: pytest.fail('a backend was built before the inputs were checked'))
    rd, cfg = open_run(tmp_path/'run', 'tiny', n_prompts=60)     # the smoke set has only 24 prompts
    with pytest.raises(ConfigError, match='fewer than'): run_generate(rd, cfg)
    with pytest.raises(ConfigError, match='nonexistent_policies'):     # rejected when the run opens (or at the latest by the step)
        rd2, cfg2 = open_run(tmp_path/'run2', 'tiny', policy_set='nonexistent_policies'); run_generate(rd2, cfg2)

def test_run_generate_with_one_model_per_agent(tmp_path, monkeypatch):
    import aidsafe_nb.backends as llm
    built = []
    def fake_backend_for(cfg, role, rd=None, **options):
        built.append((role, options.get('model')))
        return get_backend('fake', responder=fake_agent_responder, model=options.get('model', cfg.agent_model), cache=rd.cache)
    monkeypatch.setattr(llm, 'backend_for', fake_backend_for)
    rd, cfg = open_run(tmp_path/'run', 'tiny', n_prompts=2, max_rounds=3, agent_models=['org/model-a', 'org/model-b'])
    s = run_generate(rd, cfg)
    assert built == [('agent', 'org/model-a'), ('agent', 'org/model-b')]
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert [e['model'] for e in json.loads(rows[0]['deliberation_log'])] == ['org/model-a', 'org/model-b']
    assert json.loads(rows[0]['agent_models']) == ['org/model-a', 'org/model-b'] and rows[0]['refiner_model'] == 'org/model-a'
    assert run_generate(rd, cfg) == s and len(built) == 2     # done: nothing rebuilt
    import dataclasses
    assert run_generate(rd, dataclasses.replace(cfg, agent_models=[])) != s and len(built) == 3   # different agents: the step reruns (one default agent)

def test_refiner_model_gives_the_refiner_its_own_backend(tmp_path, monkeypatch):
    import aidsafe_nb.backends as llm
    built = []
    def fake_backend_for(cfg, role, rd=None, **options):
        built.append((role, options.get('model')))
        return get_backend('fake', responder=fake_agent_responder, model=options.get('model') or cfg.agent_model, cache=rd.cache)
    monkeypatch.setattr(llm, 'backend_for', fake_backend_for)
    rd, cfg = open_run(tmp_path/'run', 'tiny', n_prompts=2, refiner_model='org/judge-model')
    run_generate(rd, cfg)
    assert built == [('agent', None), ('agent', 'org/judge-model')]
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    assert {r['refiner_model'] for r in rows} == {'org/judge-model'} and json.loads(rows[0]['agent_models']) == ['tiny', 'tiny']

# --- the refiner's ledger and the content gates -----------------------------------------------------------------

def ledger_balances(r) -> bool:
    "Thoughts in (those that reached the refiner stage) = thoughts out + removals."
    return r['n_thoughts_deliberation'] == r['n_thoughts_final'] + len(json.loads(r['removed_thoughts']))

def test_ledger_with_a_misbehaving_refiner():
    "Out-of-range, repeated, reasonless removals, edits of removed thoughts and the refiner's own thoughts: all ignored with why; the ledger balances."
    answers = iter([{'removed': [{'index': 1, 'reason': 'redundant'}, {'index': 1, 'reason': 'deceptive'}, {'index': 7, 'reason': 'redundant'}, 2],
                     'edits': [{'index': 1, 'text': 'x'}, {'index': 3, 'text': 'Third, reworded.'}], 'thoughts': ['Invented.'], 'response': 'Done.'}])
    rec = dict(id='r', prompt='q', response='resp', thoughts_all=[dict(by='initial', round=0, text=t) for t in ['First point.', 'Second point.', 'Third point.']])
    out = refine([rec], get_backend('fake', responder=lambda c: next(answers)), POL)[0]
    assert out['thoughts'] == ['Second point.', 'Third, reworded.'] and 'Invented.' not in out['cot']
    assert [x['why'] for x in out['refiner_ignored']] == ['thought already removed', 'index out of range 1..3',
        "reason 'unspecified' is not one of ['redundant', 'deceptive', 'policy_inconsistent']", 'the thought is removed',
        'the refiner wrote its own thought list; the final CoT is the kept thoughts']
    assert out['edited_thoughts'] == [dict(index=3, original='Third point.', edited='Third, reworded.')]
    assert len(out['thoughts_all']) == len(out['thoughts']) + len(out['removed_thoughts'])
    assert all(x['reason'] in ('redundant', 'deceptive', 'policy_inconsistent') for x in out['removed_thoughts'])

def test_junk_answers_fail_the_gates_and_never_flow_on(tmp_path):
    "A model that answers every stage with SmolLM2-style junk: no junk string reaches the final CoT; the intermediate failures are diagnostics (issue 20), so the clean final targets keep the rows ok; LLM_ZS rows whose response is junk are gate_failed."
    junk = {'List the intents': {'explicit_intents': [', '], 'implicit_intents': ['...']},
            'deliberation agent': {'agree': True, 'thoughts': ['the revised full response'], 'response': ''},
            'independent judge': {'removed': [], 'edits': [{'index': 1, 'text': '👍' * 20}], 'response': ']'}}
    def responder(c):
        text = c[-1]['content']
        resp = 'Here is some help.' if 'Intents identified' in text else '<your final response to the user>'   # initial CoT / LLM_ZS
        return next((v for k, v in junk.items() if k in text), {'thoughts': ['The user asks a question.', '###[A]###[B]###[C]###[D]###[E]'], 'response': resp})
    rd, cfg = open_run(tmp_path/'run', 'tiny', n_prompts=4)
    s = run_generate(rd, cfg, agents=[get_backend('fake', responder=responder, cache=rd.cache)])
    assert s['status']['ok'] == 4 and s['baseline_status']['gate_failed'] == 4
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    for r in rows:
        assert r['thoughts'] == ['The user asks a question.'] and r['status'] == 'ok' and ledger_balances(r)
        assert {(f['stage'], f['gate']) for f in json.loads(r['gate_failures'])} == {
            ('intents', 'punctuation'), ('initial_cot', 'repetition'), ('deliberation', 'placeholder'), ('refiner', 'punctuation')}
        assert r['response'] == 'Here is some help.'                      # the refiner's junk response is replaced by the deliberated one
        assert [e['agree'] for e in json.loads(r['deliberation_log'])] == [True] * cfg.max_rounds and not r['agreed']   # junk agreement not accepted
    gates = json.loads((rd.data/'cot.gates.json').read_text())['stages']
    assert {k: v['pass_rate'] for k, v in gates.items()} == dict(intents=0.0, initial_cot=0.0, deliberation=0.0, refiner=0.0, final=1.0)
    assert gates['initial_cot']['failures'] == {'repetition': 4}
    zs = json.loads((rd.data/'baseline_zs.gates.json').read_text())['stages']['llm_zs']
    assert (zs['n'], zs['passed'], zs['failures']) == (4, 0, {'placeholder': 4, 'repetition': 4})
