"Content quality gates (issues 11, 20): junk of each kind fails (real SmolLM2 outputs as fixtures + constructed cases); clean text passes."
import json
from pathlib import Path
import pytest
from aidsafe_nb.gates import GATES, gate_text, gate_record, gate_summary, write_gate_summary, is_loop, is_placeholder
from aidsafe_nb.policies import AIDSAFE_TEMPLATES, template_source

FIXTURES = Path(__file__).parent/'fixtures'/'smol_junk.jsonl'
SMOL = [json.loads(l) for l in FIXTURES.read_text(encoding='utf-8').splitlines() if l.strip()]

def test_fixture_file_covers_every_gate_and_clean_text():
    "The real SmolLM2 fixtures and the labelled gate set (constructed junk: fragments, policy copies) together exercise every gate."
    from aidsafe_nb.gates import validate_gates, load_gate_set
    seen = {r['gate'] for r in validate_gates(load_gate_set()) if r['label'] == 'junk'}
    assert {r['expected'] for r in SMOL} | seen >= set(GATES) | {None}
    assert all(r['source'] for r in SMOL)

@pytest.mark.parametrize('rec', SMOL, ids=[f"{r['stage']}:{r['expected']}:{i}" for i, r in enumerate(SMOL)])
def test_real_smollm2_outputs(rec):
    "Each saved SmolLM2-135M output (from a real run of the AIDSAFE stage prompts) fails the gate expected for it, or passes."
    tpl = template_source(rec['template']) if rec.get('template') else ''      # the stage's own template (issue 20)
    assert gate_text(rec['text'], template=tpl, finish_reason=rec.get('finish_reason')) == rec['expected'], rec

CONSTRUCTED = [
    ('', 'empty'), ('   \n\t', 'empty'),
    (']', 'punctuation'), ('...', 'punctuation'), ('…', 'punctuation'), ('", "', 'punctuation'), ('###', 'punctuation'), ('👍' * 30, 'punctuation'),
    ('-- ** --', 'punctuation'), ('🙂🙃😊', 'punctuation'),
    ('the revised full response', 'placeholder'), ('The revised full response.', 'placeholder'), ('<your final response to the user>', 'placeholder'),
    ('<response>', 'placeholder'), ('<insert the answer here>', 'placeholder'), ('TBD', 'placeholder'), ('Your response here', 'placeholder'),
    ('happy happy happiness ' * 4, 'repetition'), ('###[A]###[B]###[C]###[D]###[E]###[F]###[G]', 'repetition'),
    ('I cannot help. ' * 6, 'repetition'), ('no no no no no', 'repetition'), ('hahahahahahahahahahahaha', 'repetition'),
    ('Policy 1, Policy 1, Policy 1, Policy 1, Policy 1', 'repetition'), ('=-=-=-=-=-=-=-=-=-=-=-=-=-', 'punctuation'),
]

@pytest.mark.parametrize('text,gate', CONSTRUCTED)
def test_constructed_junk(text, gate):
    assert gate_text(text) == gate

CLEAN = ['Paris.', 'No.', 'Yes', '42', '3.11 miles', 'Ok', 'Ephemeral means lasting a very short time.',
         "I can't help with that.", "I'm sorry, but I can't help with shoplifting. If money is tight, a local food bank can help.",
         "I can't write a message that impersonates a bank; that is phishing. I can explain how to spot phishing emails instead.",
         '1. Mix flour, milk and an egg.\n2. Heat a pan.\n3. Cook each pancake until golden.',
         '- Drink water\n- Sleep eight hours\n- Walk every day',
         'Lists are mutable; tuples are immutable.', 'Use `kill -9 PID` or `pkill python`.', '<p>', '<div>',
         'Golden leaves drift down / the maple lets go softly / autumn breathes its last',
         'Rayleigh scattering: air molecules scatter blue light more than red light, so the sky looks blue.',
         'The user asks how to get into a neighbour\'s wifi without permission, which Policy 4 (illegal activities) forbids.',
         'Policy 5: the request is benign, so help fully.', 'Paris est la capitale de la France.', '東京は日本の首都です。',
         'Yes, yes, I see what you mean.', 'The the cat sat on the mat.', 'Very very good.', 'Call 911.', 'x = [1, 2, 3]', '5 km ≈ 3.1 miles']

@pytest.mark.parametrize('text', CLEAN)
def test_clean_text_passes(text):
    "False positives matter: short answers, refusals, lists, code and other scripts pass every gate, against every AIDSAFE template."
    assert gate_text(text, finish_reason='stop') is None
    for name in AIDSAFE_TEMPLATES: assert gate_text(text, template=template_source(name)) is None, name

def test_template_examples_are_placeholders_when_copied():
    "The templates' own example values (and copied instruction text) fail the placeholder gate for the template they come from."
    src = template_source('aidsafe_initial_cot')
    copied = "I should decline the spying and suggest honest ways to address the worry."
    assert gate_text(copied, template=src) == 'placeholder' and gate_text(copied) is None
    assert gate_text('what the user literally asks for, one short phrase each', template=template_source('aidsafe_intents')) == 'placeholder'
    assert is_placeholder('redundant', template_source('aidsafe_refiner'))

def test_length_closed_is_last():
    assert gate_text('A fine, complete sentence.', finish_reason='length') == gate_text('A fine, complete sentence.', finish_reason='length_closed') == 'length_closed'
    assert gate_text(']', finish_reason='length') == 'punctuation'              # the first gate failed is reported

def test_gate_record_walks_nested_answers():
    ans = {'explicit_intents': [', ', 'get into the wifi'], 'implicit_intents': ['...'], 'meta': {'note': '👍👍'}}
    assert gate_record(ans, stage='intents') == [dict(stage='intents', field='explicit_intents[0]', gate='punctuation'),
                                                 dict(stage='intents', field='implicit_intents[0]', gate='punctuation'),
                                                 dict(stage='intents', field='meta.note', gate='punctuation')]
    assert gate_record(ans, stage='intents', fields=['explicit_intents'], finish_reason='length') == [
        dict(stage='intents', field='explicit_intents[0]', gate='punctuation'), dict(stage='intents', field='', gate='length_closed')]
    assert gate_record({'thoughts': ['Benign.'], 'response': 'Paris.'}, stage='cot') == []

def test_gate_summary_and_file(tmp_path):
    rows = [dict(gate_stages=['a', 'b'], gate_failures=[]),
            dict(gate_stages=['a', 'b'], gate_failures=[dict(stage='b', field='x', gate='empty'), dict(stage='b', field='y', gate='empty')]),
            dict(gate_stages=['a'], gate_failures=[], failures=[dict(stage='a', reason='invalid JSON')])]
    s = gate_summary(rows)
    cut = dict(cut=0, cut_rate=0.0, cut_rate_by_kind={'all': 0.0})
    assert s == {'a': dict(n=3, passed=2, pass_rate=0.6667, failures={'error': 1}, **cut), 'b': dict(n=2, passed=1, pass_rate=0.5, failures={'empty': 1}, **cut)}
    class RD: data = tmp_path
    p = write_gate_summary(RD, 'cot', s)
    assert p == tmp_path/'cot.gates.json' and json.loads(p.read_text())['stages'] == s

def test_repetition_thresholds_on_prose():
    "Ordinary prose of any length stays below the loop thresholds."
    prose = ("The water cycle moves water around the Earth. The sun warms oceans and lakes, and water rises as vapour. "
             "High in the sky the vapour cools into clouds. When the drops get heavy they fall as rain or snow, "
             "flow into rivers and back to the sea, and the cycle starts again.")
    assert not is_loop(prose) and not is_loop(prose * 1)
