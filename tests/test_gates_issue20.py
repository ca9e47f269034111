"""Issue 20 (audit fidelity-audit-2 N1, N2, N3, N7): gates keep correct text and catch the listed junk; a row's status follows its
training targets only; the labelled gate set holds the stated error rates per category; the `paper` profile's stage budgets fit
helpful answers; cut rates per stage and kind; pair sets count gate failures apart from recipe exclusions.
Every test here fails on the code before issue 20 (commit a20de9f)."""
import csv, json, re
from pathlib import Path
import pytest
from aidsafe_nb.gates import gate_text, gate_summary, cut_warnings, validate_gates, load_gate_set, gate_validation_table, write_gate_summary
from aidsafe_nb.policies import template_source, policies_text
from aidsafe_nb.config import make_config, max_tokens_for, shared_benchmarks_dir
from aidsafe_nb.refiner import STAGE_TOKENS, generate_cot
from aidsafe_nb.testing import FakeBackend

POL = policies_text('aidsafe5')
IC, IN, DL, ZS = (template_source(t) for t in ('aidsafe_initial_cot', 'aidsafe_intents', 'aidsafe_deliberation', 'aidsafe_zs'))

# ---- N1: correct text the old gates rejected (each with its stage's template)
AUDIT_CORRECT = [(IN, 'worried that the partner is hiding something'),
    (IC, "I can't help with tracking your ex's location through her phone; it violates their privacy and is illegal in many places. If you fear for your safety, contact the police."),
    (IC, 'Policy 4 forbids helping with it.'), (IC, 'Policy 5 asks me to help with it.'), (DL, 'Refusing a benign request violates the policies.'),
    (IC, "I can't help with reading someone's emails without their consent."), (ZS, 'String.'), (ZS, 'str'), (ZS, 'Text'),
    (ZS, 'Make sure to drink water. Make sure to sleep well. Make sure to eat vegetables. Make sure to exercise daily.'),
    (ZS, '1. Add 1 cup of flour. 2. Add 1 cup of sugar. 3. Add 1 cup of milk. 4. Add 1 cup of oil.')]

@pytest.mark.parametrize('tpl,text', AUDIT_CORRECT, ids=[t[:30] for _, t in AUDIT_CORRECT])
def test_audit_correct_text_passes(tpl, text):
    assert gate_text(text, template=tpl, policies=POL, finish_reason='stop') is None

# ---- N7: junk the old gates passed
AUDIT_JUNK = [('(none yet)', 'empty'), ('(none)', 'empty'), ('N/A', 'empty'), ('null', 'empty'), ('{"agree": false, "thoughts": [', 'fragment'),
              ('The cat sat on mats. The cat sat on mats. The cat sat on mats.', 'repetition'),
              (POL.split('\n\n')[1], 'policy_copy'), (POL, 'policy_copy')]

@pytest.mark.parametrize('text,gate', AUDIT_JUNK, ids=[t[:20] for t, _ in AUDIT_JUNK])
def test_audit_junk_fails(text, gate):
    assert gate_text(text, template=DL, policies=POL) == gate

def test_quoting_one_rule_is_not_a_policy_copy():
    rule = 'Policy 2 disallows writing phishing messages, scam scripts, fake reviews, forged documents or impersonation of real people or organisations, so I must refuse.'
    assert gate_text(rule, template=IC, policies=POL) is None

# ---- the labelled gate set, held to stated thresholds per category
MAX_FALSE_REJECTION = 0.005        # overall, on correct text ("well under 1%")
MIN_RECALL = {'junk/cut_at_limit': 1.0, 'junk/empty_marker': 1.0, 'junk/json_fragment': 0.9, 'junk/loop': 0.9, 'junk/policy_copy': 1.0,
              'junk/punctuation_or_empty': 1.0, 'junk/smollm2_real': 0.85, 'junk/template_echo': 0.9}   # smollm2_incoherent: no threshold (a judge's job)

@pytest.fixture(scope='module')
def validated(): return validate_gates(load_gate_set())

def test_gate_set_covers_every_beavertails_category(validated):
    topics = {r['topic'] for r in validated if r.get('topic')}
    assert len(topics) == 14 and 'privacy_violation' in topics
    for t in topics:
        kinds = {r['category'] for r in validated if r.get('topic') == t}
        assert kinds == {'correct/refusal', 'correct/intent', 'correct/policy_thought'}, t

def test_gate_set_error_rates(validated):
    table = gate_validation_table(validated)
    print('\n' + table.to_string())
    by = table.set_index('category')
    assert by.loc['all correct text', 'false_rejection'] <= MAX_FALSE_REJECTION
    for cat in by.index[by.label == 'correct']: assert by.loc[cat, 'false_rejection'] <= 0.02, cat   # no correct category loses more than 2%
    for cat, r in MIN_RECALL.items(): assert by.loc[cat, 'recall'] >= r, (cat, by.loc[cat, 'recall'])
    assert by.loc['precision (junk among rejected)', 'recall'] >= 0.98
    assert not [r for r in validated if r.get('topic') and r['gate']]          # no BeaverTails-category refusal, intent or thought rejected

def _xstest_check(limit: int):
    "Real correct text: XSTest's GPT-4 completions labelled full compliance or full refusal, whole and cut into sentences (not committed: SOURCES.md)."
    path = shared_benchmarks_dir()/'xstest'/'human_labeled_completions'/'xstest_v2_completions_gpt4.csv' if shared_benchmarks_dir() else None
    if not path or not path.exists(): pytest.skip('../shared/benchmarks/xstest absent')
    whole = [r['completion'].strip() for r in csv.DictReader(path.open()) if r['final_label'][0] in '12' and r['completion'].strip()][:limit]
    sents = [s for w in whole for s in re.split(r'(?<=[.!?])\s+|\n+', w) if len(s.split()) >= 3]
    bad = [t for t in whole + sents for tpl in (IC, ZS, DL) if gate_text(t, template=tpl, policies=POL, finish_reason='stop')]
    print(f'\nXSTest: {len(whole)} completions, {len(sents)} sentences, {len(bad)} rejected')
    assert len(whole) >= min(limit, 400) and len(bad) <= 0.005 * (len(whole) + len(sents)), bad[:5]

def test_xstest_completions_pass_fast(): _xstest_check(60)

@pytest.mark.slow
def test_xstest_completions_pass_all(): _xstest_check(10_000)      # 441 completions, 2,247 sentences: 0 rejected (before issue 20: see the report)

# ---- N1 end to end: a correct final CoT keeps its row although an intermediate stage failed a gate
def _answer(conv):
    u = conv[-1]['content']
    if 'List the intents' in u: return json.dumps({'explicit_intents': ["read a spouse's messages secretly"], 'implicit_intents': ['worried that the partner is hiding something', 'N/A']})
    if 'deliberation agent' in u: return json.dumps({'agree': True, 'thoughts': [], 'response': ''})
    if 'independent judge' in u: return json.dumps({'removed': [{'index': 3, 'reason': 'redundant'}], 'edits': [], 'response': "I can't help with reading your husband's messages without his knowledge; it invades his privacy. If you suspect he is cheating, an honest talk or a couples counsellor is more likely to get you a real answer."})
    return json.dumps({'thoughts': ["Reading a spouse's messages in secret violates their privacy; Policy 4 forbids helping with it.",
                                    'The worry behind it is benign, and Policy 5 asks me to help with it.', '(none yet)'],
                       'response': "I can't help with reading your husband's messages without his knowledge. If you suspect he is cheating, talking to him or a couples counsellor can help."})

def test_row_status_follows_the_training_targets():
    rows = generate_cot([dict(id='w', prompt="How do I read my husband's WhatsApp without him knowing? I think he is cheating.", kind='safety')],
                        FakeBackend(responder=_answer), POL)
    r = rows[0]
    gf = json.loads(r['gate_failures'])
    assert r['status'] == 'ok', gf                                              # before issue 20: gate_failed (the intent was a 'placeholder')
    assert {(f['stage'], f['gate']) for f in gf} == {('intents', 'empty'), ('initial_cot', 'empty')}   # diagnostics kept
    assert 'worried that the partner is hiding something' in r['intents']

# ---- N2: budgets that fit the answers
def test_paper_budgets_fit_helpful_answers():
    cfg = make_config('paper')
    b = {s: max_tokens_for(cfg, s, d) for s, d in STAGE_TOKENS.items()}
    assert all(b[s] >= 768 for s in ('initial_cot', 'deliberation', 'refiner', 'llm_zs')) and b['intents'] >= 192, b   # before: 256 and 96
    assert cfg.rw_samples > 1                                                   # shortest rejection sampling on

def test_cut_rate_per_stage_and_kind(tmp_path, caplog):
    rows = [dict(kind='general', gate_stages=['initial_cot'], gate_failures=[dict(stage='initial_cot', gate='length_closed')]) for _ in range(3)]
    rows += [dict(kind='safety', gate_stages=['initial_cot'], gate_failures=[]) for _ in range(3)]
    s = gate_summary(rows)
    assert (s['initial_cot']['cut_rate'], s['initial_cot']['cut_rate_by_kind']) == (0.5, {'general': 1.0, 'safety': 0.0})
    class RD: data = tmp_path
    with caplog.at_level('WARNING'): write_gate_summary(RD, 'cot', s)
    g = json.loads((tmp_path/'cot.gates.json').read_text())
    assert g['warnings'] and 'initial_cot' in caplog.text and g['stages']['initial_cot']['cut_rate_by_kind']['general'] == 1.0
    assert (tmp_path/'gate_validation.csv').exists()                            # the gate figures the run relied on

# ---- N3 (pair-set side): gate failures counted apart from recipe exclusions
def test_pair_meta_separates_gate_failures_from_exclusions():
    from aidsafe_nb.pairs import pair_set_meta
    rows = [dict(status='ok', excluded=True, exclude_reason='rejected_not_worse', chosen_score=0.0, rejected_score=0.0) for _ in range(6)]
    rows += [dict(status='ok', excluded=False, exclude_reason='', chosen_score=0.0, rejected_score=1.0) for _ in range(3)]
    rows += [dict(status='gate_failed', excluded=True, exclude_reason='rejected_gated', chosen_score=None, rejected_score=None)]
    m = pair_set_meta(rows, 'pairs_belief')
    assert (m['n_gate_failed'], m['n_excluded_other']) == (1, 6)                 # before: n_gate_failed 7
