"Issue 23, stages overlap at scale: step 1 row by row (`pipeline_rows`) sends the same requests and builds the same rows as stage by stage."
import hashlib, json, random, sqlite3, threading, time
import pytest
from aidsafe_nb.backends import get_backend
from aidsafe_nb.policies import load_policies
from aidsafe_nb.refiner import generate_rows, can_pipeline
from aidsafe_nb.run import open_run
from aidsafe_nb.sources import sample_prompts
from aidsafe_nb.steps import run_generate
from aidsafe_nb.testing import FakeOpenAIServer, fake_agent_responder

def _h(req, salt='') -> int:
    "A number from the request's messages: the same request always gets the same answer, whatever order the requests come in."
    return int(hashlib.sha256((salt + json.dumps(req['messages'], sort_keys=True)).encode()).hexdigest()[:8], 16)

def varied(req) -> str:
    "Answers that take every path: invalid JSON (repaired), placeholders and loops (gated), agreement in round 1, 2 or never, refiner slips."
    conv, h = req['messages'], _h(req)
    last = conv[-1]['content']
    if 'Reply again with ONLY a JSON' in last: return fake_agent_responder(conv[:-2]) if h % 3 else 'still not json'
    if h % 7 == 0: return 'not json at all'
    if 'deliberation agent' in last:
        rnd = int(last.split('This is turn ')[1].split()[0])
        agree = rnd >= 1 + h % 3
        return json.dumps({'agree': agree, 'thoughts': [] if agree else [f'Point {h % 97} of round {rnd}.', 'the revised full response'][: 1 + h % 2],
                           'response': '' if agree else f'Revised answer {h % 89}.'})
    if 'independent judge' in last:
        return json.dumps({'removed': [{'index': 1 + h % 4, 'reason': ['redundant', 'deceptive', 'weird'][h % 3]}],
                           'edits': [{'index': 2, 'text': f'Edited thought {h % 50}.'}], 'response': f'Final answer {h % 31}.'})
    if 'List the intents' in last:
        return json.dumps({'explicit_intents': [f'get answer {h % 13}'], 'implicit_intents': ['N/A'] if h % 5 == 0 else ['learn something']})
    loop = 'the same words again ' * 6
    return json.dumps({'thoughts': [f'Thought {h % 41}.', loop if h % 4 == 0 else 'No policy forbids it.', 'The intent is benign.'],
                       'response': 'Here is an answer.' if h % 6 else ''})

def undecodable(req):
    "Invalid UTF-8 for some requests (a final failure), fixed by the request."
    return b'\xff\xfe not utf-8' if _h(req, 'u') % 11 == 0 else None

class TailServer(FakeOpenAIServer):
    "FakeOpenAIServer whose latency is drawn per request from a heavy-tailed (log-normal) distribution."
    def __init__(self, median: float = 0.002, sigma: float = 1.5, cap: float = 0.3, **kw):
        self._draw = random.Random(1); self._lk = threading.Lock(); self.median, self.sigma, self.cap = median, sigma, cap
        super().__init__(**kw)
    @property
    def latency(self):
        with self._lk: return min(self.cap, self.median * self._draw.lognormvariate(0, self.sigma))
    @latency.setter
    def latency(self, v): pass

def _cache(path):
    con = sqlite3.connect(path)
    calls = {k: (s, json.loads(r)['messages'], t) for k, s, r, t in con.execute('SELECT key, stage, request, text FROM calls')}
    fails = sorted(con.execute('SELECT key, stage, error, retryable FROM failures'))
    return calls, fails

PROMPTS = sample_prompts(10, 0.5, 'smoke', 'smoke')

@pytest.mark.parametrize('n_agents', [1, 2])
def test_pipelined_rows_equal_stagewise(tmp_path, n_agents):
    "generate_rows with and without pipeline: equal CoT and LLM_ZS rows, the same cache (keys, requests, answers, failures), the same calls per stage."
    pol = load_policies().text()
    prompts = PROMPTS + [dict(PROMPTS[0], id='dup')]          # a repeated prompt text: its requests are sent once either way
    out = {}
    with TailServer(reply=varied, raw_reply=undecodable) as srv:
        for pipe in (False, True):
            srv.reset_counts()
            be = get_backend('openai', model='fake', base_url=srv.base_url, cache=tmp_path/f'{pipe}.sqlite', progress=False, max_concurrency=8)
            rows, zs = generate_rows(prompts, be, pol, n_agents=n_agents, max_rounds=3, stage_tokens=dict(intents=32), pipeline=pipe, workers=8, seed=3)
            out[pipe] = dict(rows=rows, zs=zs, requests=srv.n_requests, max_inflight=srv.max_inflight,
                             calls={s: (u['calls'], u['errors']) for s, u in be.usage.items()}, cache=_cache(tmp_path/f'{pipe}.sqlite'))
    a, b = out[False], out[True]
    assert a['rows'] == b['rows'] and a['zs'] == b['zs']
    assert a['cache'] == b['cache'] and a['calls'] == b['calls'] and a['requests'] == b['requests']
    assert b['max_inflight'] <= 8
    # the responder really took every path (so the comparison covers them)
    gates = {g['gate'] for r in a['rows'] for g in json.loads(r['gate_failures'])}
    fails = ' '.join(f['reason'] for r in a['rows'] for f in json.loads(r['failures']))
    assert {'placeholder', 'repetition'} <= gates, gates
    assert 'after repair' in fails and 'undecodable' in fails, fails[:300]
    assert len({r['n_rounds'] for r in a['rows']}) >= 2 and {r['status'] for r in a['rows']} >= {'ok'}
    assert a['rows'][-1]['prompt'] == a['rows'][0]['prompt'] and a['rows'][-1]['id'] == 'dup'

def test_step1_pipeline_rows_parameter(tmp_path):
    "Step 1 (`run_generate`) with pipeline_rows off, on and auto: the same data files, cache and requests; the setting does not change the fingerprint."
    from aidsafe_nb.config import NON_SEMANTIC
    assert 'pipeline_rows' in NON_SEMANTIC
    res = {}
    with TailServer(reply=varied, raw_reply=undecodable) as srv:
        for pipe in ('off', 'on', 'auto'):
            srv.reset_counts()
            rd, cfg = open_run(tmp_path/f'run{pipe}', 'tiny', agent_backend='openai', agent_base_url=srv.base_url, agent_model='fake',
                               n_prompts=8, max_concurrency=6, pipeline_rows=pipe)
            s = run_generate(rd, cfg)
            data = {f: (rd.data/f).read_text() for f in ('cot.jsonl', 'baseline_zs.jsonl', 'cot.gates.json', 'baseline_zs.gates.json')}
            res[pipe] = (data, _cache(rd.cache), srv.n_requests, s['fingerprint'],
                         {k: (u['calls'], u['cached'], u['errors']) for k, u in s['usage'].items()})
    for mode in ('on', 'auto'):
        assert res[mode][0] == res['off'][0], mode
        assert res[mode][1:] == res['off'][1:], mode

def test_hf_and_fake_backends_stay_stagewise():
    "Only openai backends are pipelined; a per-conversation seed list is not split by row."
    fb = get_backend('fake', responder=fake_agent_responder)
    assert not can_pipeline([fb], dict(seed=0))
    calls = []
    class Counting(type(fb)):
        def _run(self, convs, s, done): calls.append(len(convs)); return super()._run(convs, s, done)
    cb = Counting(responder=fake_agent_responder)
    generate_rows(PROMPTS[:4], cb, load_policies().text(), pipeline=True, workers=4)
    assert max(calls) == 4, calls   # whole stages in one call

def test_row_restarts_after_a_blip_and_stops_when_down(tmp_path):
    "A call that finds the endpoint unreachable while other rows got answers: the row starts again (same rows as stage by stage); down for good: the step raises."
    from aidsafe_nb.openai_compat import OpenAIBackend, EndpointUnavailable
    pol, lock = load_policies().text(), threading.Lock()
    class Blip(OpenAIBackend):
        calls, fail = 0, lambda self, k: k == 9
        def _run(self, convs, s, done):
            with lock: Blip.calls += 1; k = Blip.calls
            if self.fail(k): raise EndpointUnavailable(f'blip at call {k}')
            return super()._run(convs, s, done)
    with FakeOpenAIServer(latency=0, reply=varied) as srv:
        ref = generate_rows(PROMPTS, get_backend('openai', model='fake', base_url=srv.base_url, progress=False), pol, pipeline=False, seed=3)
        be = Blip('fake', base_url=srv.base_url, cache=tmp_path/'b.sqlite', progress=False)
        got = generate_rows(PROMPTS, be, pol, pipeline=True, workers=4, down_wait=0.01, seed=3)
        assert got == ref and Blip.calls > 9
        Blip.calls, Blip.fail = 0, lambda self, k: k > 3           # down after the first answers: restarts run out, the step stops
        down = Blip('fake', base_url=srv.base_url, cache=tmp_path/'d.sqlite', progress=False)
        t0 = time.time()
        with pytest.raises(EndpointUnavailable): generate_rows(PROMPTS, down, pol, pipeline=True, workers=4, down_retries=2, down_wait=0.01, seed=3)
        assert time.time() - t0 < 30

def test_auto_picks_by_who_is_busy(tmp_path, caplog):
    "'auto': a zero-latency endpoint (this process busy) runs the CoT stages stage by stage; a slow endpoint row by row. Same rows either way."
    import logging
    pol, out = load_policies().text(), {}
    for lat, share in ((0, 0.05), (0.2, 0.5)):   # a low threshold for the zero-latency case: this shared machine's load must not flip it
        with FakeOpenAIServer(latency=lat, reply=varied) as srv, caplog.at_level(logging.INFO, logger='aidsafe_nb.refiner'):
            caplog.clear()
            be = get_backend('openai', model='fake', base_url=srv.base_url, cache=tmp_path/f'{lat}.sqlite', progress=False)
            out[lat] = generate_rows(PROMPTS, be, pol, pipeline='auto', workers=4, cpu_share=share, seed=3)
            out[lat, 'log'] = caplog.text
            out[lat, 'chat_calls'] = sum(u['chat_calls'] for u in be.usage.values())
    assert 'stage by stage' in out[0, 'log'] and 'row by row' in out[0.2, 'log'], (out[0, 'log'], out[0.2, 'log'])
    assert out[0] == out[0.2] and out[0, 'chat_calls'] < out[0.2, 'chat_calls']
    with pytest.raises(ValueError, match='pipeline must be'): generate_rows(PROMPTS, be, pol, pipeline='sometimes')
