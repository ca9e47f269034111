"Issue 23: on the openai path, JSON cut at the token budget (finish_reason=length) is closed and gated `length_closed` as on the hf path, not repaired."
import json
from aidsafe_nb.backends import get_backend
from aidsafe_nb.run import open_run
from aidsafe_nb.steps import run_generate
from aidsafe_nb.structured import chat_json
from aidsafe_nb.testing import FakeOpenAIServer, fake_agent_responder

def _cut_body(text: str, keep: float = 0.6) -> bytes:
    "A chat completion whose content is `text` cut to `keep` of its length, finish_reason=length (a server's token budget)."
    return json.dumps({'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': text[:max(1, int(len(text) * keep))]},
                                    'finish_reason': 'length'}], 'usage': {'prompt_tokens': 5, 'completion_tokens': 7}}).encode()

SCHEMA = {'type': 'object', 'properties': {'thoughts': {'type': 'array', 'items': {'type': 'string'}}, 'response': {'type': 'string'}},
          'required': ['thoughts', 'response']}

def test_cut_json_is_closed_not_repaired():
    full = json.dumps({'thoughts': ['the first thought is complete', 'the second thought is long enough to be cut'], 'response': 'an answer'})
    with FakeOpenAIServer(latency=0, raw_reply=lambda req: _cut_body(full)) as srv:
        be = get_backend('openai', model='fake', base_url=srv.base_url, progress=False)
        res = chat_json(be, [[{'role': 'user', 'content': f'q{i}'}] for i in range(8)], SCHEMA, max_tokens=16)
        assert srv.n_requests == 8, f'{srv.n_requests - 8} repair calls were sent for cut answers'
    r = res[0]
    assert r.error is None and r.finish_reason == 'length_closed' and r.data['thoughts'][0] == 'the first thought is complete', r
    assert r.data['response'] == '' and not r.repaired

def test_step1_cut_answers_gate_length_closed_without_repairs(tmp_path):
    "Step 1 against a server that cuts every answer: the same number of requests as an uncut run (no repair storm), gate length_closed recorded."
    counts = {}
    for cut in (False, True):
        reply = lambda req: fake_agent_responder(req['messages'])
        raw = (lambda req: _cut_body(fake_agent_responder(req['messages']), 0.8)) if cut else None
        with FakeOpenAIServer(latency=0, reply=reply, raw_reply=raw) as srv:
            rd, cfg = open_run(tmp_path/f'run{cut}', 'tiny', agent_backend='openai', agent_base_url=srv.base_url, agent_model='fake',
                               n_prompts=4, max_rounds=1)
            run_generate(rd, cfg)
            counts[cut] = srv.n_requests
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    gates = [g['gate'] for r in rows for g in (json.loads(r['gate_failures']) if isinstance(r['gate_failures'], str) else r['gate_failures'])]
    assert 'length_closed' in gates, gates
    assert counts[True] <= counts[False], counts
