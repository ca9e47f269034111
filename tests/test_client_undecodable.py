"Issue 23: an answer the client receives but cannot decode (invalid UTF-8, a body that is not JSON, an over-long body) is a failed row with its reason, final in the cache; only transport failures stay retryable."
import hashlib, json, shutil
import pytest
from conftest import aidsafe_study
from aidsafe_nb.backends import get_backend
from aidsafe_nb.cache import CallCache
from aidsafe_nb.run import open_run
from aidsafe_nb.steps import run_generate
from aidsafe_nb.testing import FakeOpenAIServer, fake_agent_responder
from aidsafe_nb import openai_compat

def _bad(req):
    "Broken bodies for about a third of the requests, chosen by the request's content (the same request is broken again on a rerun)."
    h = int(hashlib.sha256(json.dumps(req.get('messages'), sort_keys=True).encode()).hexdigest(), 16)
    if h % 3: return None
    return [b'{"choices": [{"message": {"content": "caf\xe9 \xff\xfe"}}]}', b'<html><body>502 Bad Gateway</body></html>'][h // 3 % 2]

def _server(): return FakeOpenAIServer(latency=0, reply=lambda req: fake_agent_responder(req['messages']), raw_reply=_bad)

def test_chat_undecodable_is_final_and_cached(tmp_path):
    convs = [[{'role': 'user', 'content': f'q{i}'}] for i in range(30)]
    with _server() as srv:
        be = get_backend('openai', model='fake', base_url=srv.base_url, cache=tmp_path/'c.sqlite', progress=False)
        outs = be.chat(convs, stage='s')
        first = srv.n_requests
        assert first == 30, 'an undecodable answer is not retried (one request each)'
        bad = [o for o in outs if o.error]
        assert 5 <= len(bad) <= 20 and all('undecodable answer' in o.error and not o.retryable for o in bad), [o.error for o in bad]
        assert {('UTF-8' in o.error) for o in bad} == {True, False}, 'both kinds of broken body were seen'
        assert CallCache(tmp_path/'c.sqlite').retryable_failures() == [], 'nothing left for a rerun to send'
        again = be.chat(convs, stage='s')
        assert srv.n_requests == first, 'a rerun sends nothing new'
        assert [(o.text, o.error) for o in again] == [(o.text, o.error) for o in outs] and all(o.cached for o in again)

def test_over_long_body_is_final(tmp_path, monkeypatch):
    monkeypatch.setattr(openai_compat, 'MAX_BODY_BYTES', 2000)
    with FakeOpenAIServer(latency=0, reply=lambda req: 'x' * 5000) as srv:
        be = get_backend('openai', model='fake', base_url=srv.base_url, progress=False)
        out, = be.chat([[{'role': 'user', 'content': 'long'}]])
        assert srv.n_requests == 1 and 'over the 2,000-byte limit' in out.error and not out.retryable, out

def test_step1_finishes_with_failed_rows_and_rerun_sends_nothing(tmp_path):
    with _server() as srv:
        rd, cfg = open_run(tmp_path/'run', 'tiny', agent_backend='openai', agent_base_url=srv.base_url, agent_model='fake', n_prompts=4, max_rounds=1)
        s = run_generate(rd, cfg)
        sent = srv.n_requests
        rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
        zs = [json.loads(l) for l in (rd.data/'baseline_zs.jsonl').read_text().splitlines()]
        reasons = json.dumps(rows + zs)
        assert len(rows) == 4 and len(zs) == 4, 'every prompt has its row'
        assert 'undecodable answer' in reasons and ('not valid UTF-8' in reasons or 'not JSON' in reasons), reasons[:2000]
        assert CallCache(rd.cache).retryable_failures() == [], 'the step has no unanswered transport failure: it is finished'
        shutil.rmtree(rd.data); rd.data.mkdir()        # the step's outputs gone, its cache kept: a rerun rebuilds them
        s2 = run_generate(rd, cfg)
        assert srv.n_requests == sent, f'the rerun sent {srv.n_requests - sent} requests'
        assert [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()] == rows

@pytest.mark.slow
def test_study_step1_done_with_undecodable_answers(tmp_path):
    "The same through `aidsafe-study`: exit 0, step `done`, and a second run sends nothing."
    with _server() as srv:
        args = ('--run', tmp_path/'run', '--steps', '1', '-p', 'n_prompts', '4', '-p', 'max_rounds', '1', '-p', 'agent_backend', 'openai',
                '-p', 'agent_base_url', srv.base_url, '-p', 'agent_model', 'fake')
        r = aidsafe_study(*args, check=False, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        man = json.loads((tmp_path/'run'/'manifest.json').read_text())
        assert man['steps']['1_generate']['status'] == 'done' and not man['steps']['1_generate'].get('retry_calls')
        assert 'undecodable answer' in (tmp_path/'run'/'data'/'cot.jsonl').read_text() + (tmp_path/'run'/'data'/'baseline_zs.jsonl').read_text()
        sent = srv.n_requests
        r = aidsafe_study(*args, check=False, timeout=600)
        assert r.returncode == 0 and srv.n_requests == sent, (srv.n_requests - sent, r.stderr[-2000:])
