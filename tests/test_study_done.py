"Issue 23 and 22 end to end against a local OpenAI-compatible endpoint: `done` means done (a call that failed for good leaves step 1 incomplete whatever the walkthrough cells do; `accept_failed_calls` finishes it and counts it), and a sweep's second value re-sends only the calls that differ (shared cache). Slow: each run starts notebook kernels."
import http.server, json, sqlite3, threading
from pathlib import Path
import pytest
from conftest import aidsafe_study
from aidsafe_nb.testing import fake_agent_responder

pytestmark = pytest.mark.slow

class Endpoint:
    "An OpenAI-compatible endpoint on loopback answering every AIDSAFE stage (`fake_agent_responder`); the first request that contains `fail_word` fails its first `fail_times` attempts (503, Retry-After 0)."
    def __init__(self, fail_word=None, fail_times=6):
        self.fail_word, self.fail_times, self.attempts, self.lock, self.n, self.failing = fail_word, fail_times, {}, threading.Lock(), 0, None
        owner = self
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            def log_message(self, *a): pass
            def _send(self, status, obj, headers={}):
                body = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in {'Content-Type': 'application/json', 'Content-Length': str(len(body)), **headers}.items(): self.send_header(k, v)
                self.end_headers(); self.wfile.write(body)
            def do_GET(self): self._send(200, {'object': 'list', 'data': [{'id': 'fake', 'object': 'model'}]})
            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))) or b'{}')
                body = json.dumps(req.get('messages'), sort_keys=True)
                with owner.lock:
                    owner.n += 1
                    k = owner.attempts[body] = owner.attempts.get(body, 0) + 1
                    if owner.fail_word and owner.fail_word in body and owner.failing is None: owner.failing = body
                if body == owner.failing and k <= owner.fail_times:
                    return self._send(503, {'error': {'message': 'injected 503', 'type': 'fake'}}, {'Retry-After': '0'})
                text = fake_agent_responder(req['messages'])
                self._send(200, {'id': 'x', 'object': 'chat.completion', 'created': 0, 'model': 'fake',
                                 'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': text}, 'finish_reason': 'stop'}],
                                 'usage': {'prompt_tokens': 10, 'completion_tokens': 5, 'total_tokens': 15}})
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
    @property
    def url(self): return f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'
    def stop(self): self.httpd.shutdown(); self.httpd.server_close()

def _args(run, url, *extra):
    return ['--profile', 'tiny', '--run', run, '--steps', '1', '-p', 'n_prompts', '3', '-p', 'agent_backend', 'openai',
            '-p', 'agent_base_url', url, '-p', 'agent_model', 'fake', *extra]

def _step1(run): return json.loads((Path(run)/'manifest.json').read_text())['steps']['1_generate']

def _walkthrough_calls(run):
    nb = json.loads((Path(run)/'notebooks'/'1_generate.ipynb').read_text())
    cell = next(c for c in nb['cells'] if ''.join(c['source']).strip() == 'calls_table(g.backends)')
    return [l.split() for l in ''.join(cell['outputs'][0]['data']['text/plain']).splitlines()[1:]]

def test_a_call_that_fails_for_good_leaves_the_step_incomplete(tmp_path):
    "The first request about shoplifting (a prompt the walkthrough shows) fails all 6 attempts the step makes; a 7th attempt would be answered. The walkthrough sends nothing, so the step stays incomplete (the old walkthrough re-sent it, got the answer and the step ended `done` on a failed row)."
    ep = Endpoint('shoplift')
    try:
        r = aidsafe_study(*_args(tmp_path/'run', ep.url), check=False)
        assert r.returncode == 1 and 'failed for non-content reasons' in r.stderr, r.stderr[-3000:]
        s = _step1(tmp_path/'run')
        assert s['status'] == 'incomplete' and s['retry_calls'] >= 1, s
        rows = _walkthrough_calls(tmp_path/'run')
        assert all(x[3] == '0' for x in rows) and sum(int(x[5]) for x in rows) >= 1, rows      # nothing sent; the failed requests shown missing
        assert ep.failing and ep.attempts[ep.failing] == 6                                        # no 7th attempt: the walkthrough sent none
        r = aidsafe_study(*_args(tmp_path/'run', ep.url))                                       # a healthy endpoint: exactly those calls again
        assert _step1(tmp_path/'run')['status'] == 'done' and not _step1(tmp_path/'run').get('failed_calls')
        cot = [json.loads(l) for l in (tmp_path/'run'/'data'/'cot.jsonl').read_text().splitlines()]
        assert not any('attempt' in json.dumps(c.get('failures')) for c in cot), cot
    finally: ep.stop()

def test_accept_failed_calls_finishes_the_step_and_counts_them(tmp_path):
    ep = Endpoint('shoplift', fail_times=10**6)
    try:
        r = aidsafe_study(*_args(tmp_path/'run', ep.url, '-p', 'accept_failed_calls', 'true'))
        s = _step1(tmp_path/'run')
        assert s['status'] == 'done' and s['failed_calls'] >= 1, s
        assert 'accepted (accept_failed_calls)' in r.stdout and f"{s['failed_calls']} failed call(s) accepted" in r.stdout, r.stdout[-3000:]
    finally: ep.stop()

def test_sweep_second_value_sends_only_what_differs(tmp_path):
    "Two deliberation budgets share the sweep's call cache: the second run's intents, initial CoT and LLM_ZS requests are the first run's and come from the cache."
    ep = Endpoint()
    try:
        sweep = tmp_path/'sweep.yaml'; sweep.write_text('- {max_rounds: 1}\n- {max_rounds: 2}\n')
        counts = []
        aidsafe_study('--profile', 'tiny', '--run', tmp_path/'sw', '--sweep', sweep, *_args(tmp_path/'unused', ep.url)[4:])
        man = {n: json.loads((tmp_path/'sw'/n/'manifest.json').read_text()) for n in ('max_rounds-1', 'max_rounds-2')}
        sent = {n: sum(u['calls'] for u in m['usage'].values()) for n, m in man.items()}
        second = man['max_rounds-2']['usage']
        assert ep.n == sent['max_rounds-1'] + sent['max_rounds-2'], (ep.n, sent)                  # the endpoint saw exactly the calls counted as sent
        for stage in ('intents', 'initial_cot', 'llm_zs'): assert second[stage]['calls'] == 0 and second[stage]['cached'] == 3, second
        assert second['deliberation']['calls'] > 0 and sent['max_rounds-2'] < sent['max_rounds-1'], sent
        assert (tmp_path/'sw'/'max_rounds-2'/'cache.sqlite').resolve() == (tmp_path/'sw'/'cache.sqlite').resolve()
        print(f"sweep: first value sent {sent['max_rounds-1']}, second sent {sent['max_rounds-2']} "
              f"({sum(u['cached'] for u in second.values())} from the shared cache)")
    finally: ep.stop()
