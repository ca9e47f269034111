"hf backend: shared-prefix reuse + continuous batching gives the static path's greedy answers token for token (tiny, SmolLM2)."
import pytest, torch
from aidsafe_nb.models import resolve_model
from aidsafe_nb.hf import HFBackend, common_prefix

SCHEMA = {'type': 'object', 'properties': {'intents': {'type': 'array', 'items': {'type': 'string'}, 'maxItems': 3}}, 'required': ['intents']}
SYSTEM = 'Follow these rules. ' + ' '.join(f'Rule {i}: be careful about topic {i}.' for i in range(20))
CONVS = [[{'role': 'system', 'content': SYSTEM}, {'role': 'user', 'content': f'Question {i}: ' + 'why is the sky blue ' * (i % 4 + 1)}]
         for i in range(10)]

@pytest.fixture(scope='module')
def lively(tmp_path_factory):
    "The tiny architecture with larger random weights: unlike `tiny`, its greedy answers differ by prompt, in content and length."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = tmp_path_factory.mktemp('lively')
    m, tok = AutoModelForCausalLM.from_pretrained(resolve_model('tiny')), AutoTokenizer.from_pretrained(resolve_model('tiny'))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2: p.copy_(torch.randn(p.shape, generator=g) * 2 / p.shape[1] ** 0.5)
        m.lm_head.weight[tok.eos_token_id] *= 3          # EOS often enough that answers end at different lengths
    m.save_pretrained(path); tok.save_pretrained(path)
    return str(path)


def intent_conversations(n: int) -> list:
    "The conversations AIDSAFE's intent stage sends for `n` smoke prompts (captured from `decompose_intents`, so rendered by the project's templates)."
    from aidsafe_nb.deliberation import decompose_intents
    from aidsafe_nb.testing import FakeBackend
    from aidsafe_nb.policies import load_policies
    from aidsafe_nb.sources import load_source
    got, policies = [], load_policies('aidsafe5').text()
    def reply(conv): got.append(conv); return {'explicit_intents': ['x'], 'implicit_intents': []}
    decompose_intents(load_source('smoke')[:n], FakeBackend(reply), policies)
    return got

def answers(be, convs, **kw): return [(c.text, c.completion_tokens, c.finish_reason, c.prompt_tokens) for c in be.chat(convs, **kw)]

@pytest.mark.parametrize('schema', [None, SCHEMA], ids=['plain', 'json'])
def test_greedy_identical_to_static_batches(lively, schema):
    new = HFBackend(lively, batch_size=3, progress=False)
    old = HFBackend(lively, batch_size=3, progress=False, prefix_reuse=False)
    a = answers(new, CONVS, max_tokens=24, temperature=0, response_format=schema)
    assert a == answers(old, CONVS, max_tokens=24, temperature=0, response_format=schema)
    assert len({x[0] for x in a}) >= 4                     # the answers differ by prompt ...
    if schema is None: assert len({x[1] for x in a}) >= 2  # ... and end at different lengths, so slots were refilled mid-run
    assert len(new._prefix[0]) > 100                       # the shared system message was computed once

def test_greedy_identical_across_batch_sizes_and_stop(lively):
    ref = answers(HFBackend(lively, batch_size=1, progress=False, prefix_reuse=False), CONVS[:6], max_tokens=16, temperature=0, stop=['e'])
    for bs in (1, 4, 16):
        assert answers(HFBackend(lively, batch_size=bs, progress=False), CONVS[:6], max_tokens=16, temperature=0, stop=['e']) == ref

def test_prefix_carried_to_next_call(lively):
    be = HFBackend(lively, batch_size=4, progress=False)
    be.chat(CONVS[:3], max_tokens=4, temperature=0)
    first = be._prefix[1]
    other = [[CONVS[0][0], {'role': 'user', 'content': 'A different stage asks this.'}], [CONVS[0][0], {'role': 'user', 'content': 'And this.'}]]
    got = answers(be, other, max_tokens=12, temperature=0)
    assert got == answers(HFBackend(lively, batch_size=4, progress=False, prefix_reuse=False), other, max_tokens=12, temperature=0)
    assert be._prefix[1] is not first and len(be._prefix[0]) > 100

def test_sampling_depends_on_own_seed_only(lively):
    be = HFBackend(lively, batch_size=3, progress=False)
    seeds = list(range(len(CONVS)))
    together = [c.text for c in be.chat(CONVS, max_tokens=12, temperature=1.0, seed=seeds)]
    alone = [be.chat([c], max_tokens=12, temperature=1.0, seed=s)[0].text for c, s in zip(CONVS[:4], seeds)]
    assert together[:4] == alone
    assert be.chat([CONVS[0]], max_tokens=12, temperature=1.0, seed=99)[0].text != alone[0]

def test_no_common_prefix_and_single_prompt(lively):
    convs = [[{'role': 'user', 'content': 'x'}], [{'role': 'system', 'content': 'y'}, {'role': 'user', 'content': 'z'}]]
    be = HFBackend(lively, progress=False)
    assert answers(be, convs, max_tokens=8, temperature=0) == answers(HFBackend(lively, progress=False, prefix_reuse=False), convs, max_tokens=8, temperature=0)
    assert common_prefix([[1, 2], [3, 4]]) == 0

@pytest.mark.slow
@pytest.mark.parametrize('schema', ['intents', None], ids=['json', 'plain'])
def test_smol_intent_prompts_identical(schema):
    "SmolLM2 on the real AIDSAFE intent-stage prompts: greedy answers identical with and without the reuse."
    from aidsafe_nb.policies import template_schema
    convs = intent_conversations(6)
    sch = template_schema('aidsafe_intents') if schema else None
    new, old = HFBackend('smol', batch_size=4, progress=False), HFBackend('smol', batch_size=4, progress=False, prefix_reuse=False)
    a = answers(new, convs, max_tokens=32, temperature=0, response_format=sch)
    assert a == answers(old, convs, max_tokens=32, temperature=0, response_format=sch)
    assert len(new._prefix[0]) > 500                       # the policy block was shared
