"Structured output on the tiny random-weight model: every chat_json call must parse and validate."
import json
import pytest
from aidsafe_nb.backends import get_backend
from aidsafe_nb.structured import chat_json, parse_json

SCHEMAS = {
    'intents': {'type': 'object', 'properties': {'explicit': {'type': 'array', 'items': {'type': 'string'}},
                                                 'implicit': {'type': 'array', 'items': {'type': 'string'}}},
                'required': ['explicit', 'implicit']},
    'deliberation': {'type': 'object', 'properties': {'thoughts': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1},
                                                      'response': {'type': 'string'}, 'agree': {'type': 'boolean'}},
                     'required': ['thoughts', 'response', 'agree']},
    'verdict': {'type': 'object', 'properties': {'label': {'enum': ['safe', 'unsafe', 'refusal']},
                                                 'score': {'type': 'integer', 'minimum': 1, 'maximum': 5},
                                                 'reason': {'type': 'string', 'minLength': 3}},
                'required': ['label', 'score', 'reason']},
    'nested': {'type': 'object', 'properties': {'items': {'type': 'array', 'items': {'type': 'object', 'properties': {
        'name': {'type': 'string'}, 'p': {'type': 'number'}}, 'required': ['name', 'p']}}}, 'required': ['items']},
}

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return get_backend('hf', model='tiny', batch_size=16, cache=tmp_path_factory.mktemp('c')/'cache.sqlite', progress=False)

@pytest.mark.parametrize('name', list(SCHEMAS))
def test_tiny_structured_always_parses(tiny, name):
    convs = [[{'role': 'user', 'content': f'Prompt number {i}: ' + 'how do I stay safe? ' * (i % 7)}] for i in range(40)]
    for max_tokens, temperature in ((48, 0.7), (8, 1.0), (1, 0.0)):
        res = chat_json(tiny, convs, SCHEMAS[name], stage=name, max_tokens=max_tokens, temperature=temperature, seed=max_tokens)
        bad = [(r.error, r.raw) for r in res if r.error is not None or r.repaired]
        for r in res: json.loads(r.raw)   # strict JSON text, not just tolerantly parseable
        assert not bad, bad[:3]

def test_json_object_mode(tiny):
    convs = [[{'role': 'user', 'content': 'anything'}]] * 3
    outs = tiny.chat(convs, max_tokens=20, response_format={'type': 'json_object'}, seed=5)
    for o in outs: assert isinstance(parse_json(o.text), dict)

def test_rerun_zero_calls(tmp_path):
    db = tmp_path/'c.sqlite'
    convs = [[{'role': 'user', 'content': f'q{i}'}] for i in range(10)]
    a = get_backend('hf', model='tiny', cache=db, progress=False)
    first = a.chat(convs, stage='s', max_tokens=6)
    b = get_backend('hf', model='tiny', cache=db, progress=False)
    second = b.chat(convs, stage='s', max_tokens=6)
    assert [c.text for c in first] == [c.text for c in second]
    assert b.usage['s']['calls'] == 0 and b.usage['s']['cached'] == 10 and all(c.cached for c in second)
    # a different seed is a different request
    b.chat(convs[:2], stage='s', max_tokens=6, seed=1)
    assert b.usage['s']['calls'] == 2

def test_per_conversation_seeds_give_k_samples(tiny):
    conv = [{'role': 'user', 'content': 'sample me'}]
    outs = tiny.chat([conv] * 4, stage='k', max_tokens=12, temperature=1.0, seed=[0, 1, 2, 3])
    assert tiny.usage['k']['calls'] == 4 and len({o.text for o in outs}) > 1
    same = tiny.chat([conv] * 4, stage='k2', max_tokens=12, temperature=1.0, seed=7)
    assert tiny.usage['k2']['calls'] == 1 and len({o.text for o in same}) == 1   # identical requests are one request

def test_hostile_answers_are_recorded_failures_and_cache_is_clean(tmp_path):
    "2,000-deep nesting, lone surrogates and huge answers never raise; what is cached is valid UTF-8; a crashing cached answer is quarantined."
    import sqlite3
    from aidsafe_nb.cache import Completion
    from aidsafe_nb.structured import _check
    from aidsafe_nb.cache import CallCache
    answers = {'deep': '{"explicit": ' + '[' * 2000 + ']' * 2000 + '}', 'surrogate': '{"explicit": ["a\ud800b"], "implicit": []}',
               'huge': '{"explicit": ["' + 'x' * 1_100_000 + '"], "implicit": []}'}
    fb = get_backend('fake', responder=lambda conv: answers[conv[-1]['content']], cache=tmp_path/'c.sqlite')
    res = chat_json(fb, [[{'role': 'user', 'content': k}] for k in answers], SCHEMAS['intents'], repair=False)
    assert 'nested 2001 levels' in res[0].error and res[2].error and 'over the' in res[2].error
    assert res[1].error is None and res[1].data['explicit'] == ['a\ufffdb']
    with sqlite3.connect(tmp_path/'c.sqlite') as con: texts = [t for (t,) in con.execute('SELECT text FROM calls')]
    assert len(texts) == 3 and all(t.encode('utf-8') for t in texts)
    cc = CallCache(tmp_path/'c.sqlite'); key = next(iter(cc.get_many([r[0] for r in sqlite3.connect(tmp_path/'c.sqlite').execute('SELECT key FROM calls')])))
    cc.quarantine(key, 'test'); assert len(cc) == 2

def test_check_never_raises():
    from aidsafe_nb.cache import Completion
    from aidsafe_nb.structured import _check
    class Evil(str):
        def strip(self): raise RuntimeError('boom')
    r = _check(Completion(Evil('{"explicit": [], "implicit": []}')), SCHEMAS['intents'])
    assert r.data is None and r.error.startswith('unparseable answer'), r
