"Issue 13 against a local fake OpenAI-compatible endpoint: fail-fast probes, transport failures retried on a rerun, hostile answers, no key stored."
import json, os, sqlite3, subprocess
from pathlib import Path
import pytest
from conftest import ROOT, BIN, aidsafe_study
from aidsafe_nb.testing import FakeOpenAIServer
from aidsafe_nb.structured import schema_example

KEY = 'sk-live-TESTKEY-0123456789'

def study(run, url, *extra, key=KEY, model='fake'):
    "Step 1 on the openai backend against `url` (2 prompts, one round)."
    os.environ['AIDSAFE_TEST_API_KEY'] = key
    try:
        return aidsafe_study('--run', run, '--steps', '1', '-p', 'n_prompts', '2', '-p', 'max_rounds', '1', '-p', 'agent_backend', 'openai',
                             '-p', 'agent_base_url', url, '-p', 'agent_model', model, '-p', 'api_key_env', 'AIDSAFE_TEST_API_KEY', *extra, check=False, timeout=600)
    finally: del os.environ['AIDSAFE_TEST_API_KEY']

def no_rows(run): return not (Path(run)/'data').exists() or not any((Path(run)/'data').iterdir())

@pytest.mark.parametrize('case', ['401', '404_url', '404_model'])
def test_misconfigured_endpoint_stops_before_any_row(tmp_path, case):
    with FakeOpenAIServer(latency=0, api_key=KEY, models=['fake']) as srv:
        url = srv.base_url + ('/wrong' if case == '404_url' else '')
        r = study(tmp_path/'run', url, key='sk-wrong-key-999999' if case == '401' else KEY, model='other' if case == '404_model' else 'fake')
        assert srv.n_ok == 0, 'no chat request may succeed'
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert 'agent endpoint' in r.stderr and url in r.stderr, r.stderr
    assert {'401': 'HTTP 401', '404_url': 'HTTP 404', '404_model': 'unknown model'}[case] in r.stderr, r.stderr
    assert 'sk-wrong-key' not in r.stderr and KEY not in r.stderr
    assert no_rows(tmp_path/'run') and '[1_generate] running' not in r.stdout

def _hostile(req):
    "Answers no parser should crash on: 2,000-deep nesting for the intents stage, lone surrogates everywhere else."
    rf = req.get('response_format') or {}
    schema = (rf.get('json_schema') or {}).get('schema')
    if schema and 'explicit_intents' in json.dumps(schema): return '[' * 2000 + ']' * 2000
    if schema: return json.dumps(schema_example(schema, 'bad \ud800 text'), ensure_ascii=False)
    return 'an answer with a lone surrogate \udc80 inside'

def _grep_key(run):
    hits = []
    for p in Path(run).rglob('*'):
        if p.is_file() and KEY.encode() in p.read_bytes(): hits.append(str(p))
    return hits

def test_transport_failures_retried_on_rerun_hostile_answers_recorded_key_never_stored(tmp_path):
    run = tmp_path/'run'
    with FakeOpenAIServer(latency=0, failure_rate=1.0, statuses=(503,), retry_after_rate=1.0, retry_after=0, api_key=KEY, echo_auth=True) as srv:
        # 1. every call answers 503 (quoting the Authorization header) until retries are exhausted: the step is not marked done
        r = study(run, srv.base_url)
        assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-2000:])
        m = json.loads((run/'manifest.json').read_text())['steps']['1_generate']
        assert m['status'] == 'incomplete' and m['retry_calls'] > 0, m
        assert 'failed for non-content reasons' in r.stderr and '[redacted]' in r.stderr
        assert _grep_key(run) == [], 'the API key was stored'
        failed_prompts, n_failed = set(srv.prompts), srv.n_failed
        assert n_failed > 0
        # 2. healthy server, hostile answers: the failed calls are sent again; deep nesting and lone surrogates become recorded failures
        srv.failure_rate, srv.reply = 0.0, _hostile
        srv.reset_counts()
        r = study(run, srv.base_url)
        assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
        assert '[1_generate] changed or incomplete' in r.stdout and srv.n_ok >= m['retry_calls'], (srv.n_ok, m)
        assert json.loads((run/'manifest.json').read_text())['steps']['1_generate']['status'] == 'done'
        rows = [json.loads(l) for l in (run/'data'/'cot.jsonl').read_text(encoding='utf-8').splitlines()]   # strict UTF-8: no lone surrogate
        assert len(rows) == 2 and 'nested 2000 levels' in json.dumps(rows), json.dumps(rows)[:2000]
        assert _grep_key(run) == []
        # 3. forced re-execution from the cache (hostile answers cached): no crash, no new call
        mp = run/'manifest.json'; man = json.loads(mp.read_text()); man['steps']['1_generate']['status'] = 'failed'; mp.write_text(json.dumps(man))
        srv.reset_counts()
        r = study(run, srv.base_url)
        assert r.returncode == 0 and srv.n_requests == 0, (srv.n_requests, r.stderr[-3000:])
    # the calls of a stage can be browsed, with their rendered requests, and hold no key
    calls = lambda *a: subprocess.run([str(BIN/'aidsafe-study'), 'calls', '--run', str(run), *a], capture_output=True, text=True, check=True).stdout
    c = calls('--stage', 'intents', '--limit', '1')
    assert 'ANSWER' in c and 'user:' in c and KEY not in c
    assert 'intents' in calls()
    with sqlite3.connect(run/'cache.sqlite') as con:
        req = json.loads(con.execute("SELECT request FROM calls WHERE stage='intents'").fetchone()[0])
    assert req['messages'][-1]['role'] == 'user' and req['sampling']['max_tokens'] > 0
