"""The serving environment (issue 22): vLLM in its own venv (`make setup-vllm`, pins in `constraints-vllm.txt`) installs, imports,
has the LoRA serving flags, and accepts the exact `vllm serve` command the study prints (`evaluate.target_serve_command`).

Slow (each call into that venv imports vLLM: ~20-45 s) and skipped, with the reason, where the venv does not exist: `make test-vllm`
runs it (`VLLM_VENV=/path` for a venv elsewhere). No GPU is needed: the command is parsed and validated by vLLM's own CLI parser
(`tests/vllm_env/cli_check.py`), no engine starts. A CUDA build of vLLM cannot infer a device on a machine without a GPU, so the
CLI runs with VLLM_TARGET_DEVICE=cpu (the parser only); `import vllm` needs nothing."""
import json, os, re, shlex, subprocess
from pathlib import Path
import pytest
from aidsafe_nb.config import make_config, repo_root
from aidsafe_nb.run import RunDir
from aidsafe_nb.models import resolve_model
from aidsafe_nb.evaluate import target_serve_command, VLLM_LORA_RANKS, SYSTEM_NAMES

ROOT = Path(repo_root())
VENV = Path(os.environ.get('VLLM_VENV') or ROOT/'.venv-vllm').expanduser()
PY, VLLM = VENV/'bin'/'python', VENV/'bin'/'vllm'
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (PY.exists() and VLLM.exists()), reason=f'no vLLM serving environment at {VENV} (make setup-vllm, or VLLM_VENV=...)')]
CPU_PARSER = dict(os.environ, VLLM_TARGET_DEVICE='cpu')    # parse only: a CUDA wheel cannot infer a device without a GPU

def pins() -> dict:
    "package -> version pinned in constraints-vllm.txt."
    lines = (ROOT/'constraints-vllm.txt').read_text().splitlines()
    return dict(l.split('==', 1) for l in lines if '==' in l and not l.startswith('#'))

def adapters(tmp_path, ranks: dict) -> dict:
    "{system: adapter folder} with an `adapter_config.json` of the given LoRA rank (all `serve_command` reads)."
    out = {}
    for name, r in ranks.items():
        d = tmp_path/'models'/name; d.mkdir(parents=True)
        (d/'adapter_config.json').write_text(json.dumps({'r': r, 'peft_type': 'LORA'})); out[name] = d
    return out

@pytest.fixture(scope='module')
def study_commands(tmp_path_factory):
    "The serve commands the study prints for a smol run (all six adapters, rank 16, port from target_base_url) and for one rank-32 adapter."
    tmp = tmp_path_factory.mktemp('serve')
    cfg = make_config('smol', target_backend='openai', target_base_url='http://localhost:8001/v1')
    six = {s: a for s, a in adapters(tmp/'six', {s: 16 for s in SYSTEM_NAMES if s != 'base'}).items()}
    return cfg, six, [target_serve_command(RunDir(tmp/'six'), cfg, {'base': None, **six}),
                      target_serve_command(RunDir(tmp/'one'), cfg, {'base': None, **adapters(tmp/'one', {'dpo': 32})})]

@pytest.fixture(scope='module')
def vllm_says(study_commands):
    "What the vLLM venv reports: versions, `vllm serve --help=all`, and its parser's reading of the study's commands and of a bad one."
    cmds = [shlex.split(c)[1:] for c in study_commands[2]] + [['serve', 'x', '--enable-lora', '--max-lora-rank', '24']]
    r = subprocess.run([str(PY), str(ROOT/'tests'/'vllm_env'/'cli_check.py')], input=json.dumps(cmds), capture_output=True, text=True,
                       env=CPU_PARSER, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)

def test_vllm_cli_version_is_the_pinned_one():
    "`vllm --version` (the console script) prints the version constraints-vllm.txt pins."
    r = subprocess.run([str(VLLM), '--version'], capture_output=True, text=True, env=CPU_PARSER, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == pins()['vllm'], (r.stdout[-500:], r.stderr[-2000:])

def test_import_vllm_and_torch_without_a_gpu():
    "`import vllm, torch` works with no GPU and no VLLM_TARGET_DEVICE; versions are the pinned ones (torch a CUDA build, no GPU seen)."
    code = 'import vllm, torch; print(vllm.__version__, torch.__version__, torch.cuda.is_available())'
    r = subprocess.run([str(PY), '-c', code], capture_output=True, text=True, timeout=600, env={k: v for k, v in os.environ.items() if k != 'VLLM_TARGET_DEVICE'})
    assert r.returncode == 0, r.stderr[-2000:]
    v, t, _ = r.stdout.split()[-3:]
    assert (v, t.split('+')[0]) == (pins()['vllm'], pins()['torch']), r.stdout

def test_serve_help_has_the_lora_flags_the_study_uses(vllm_says):
    "`vllm serve --help=all` has every flag `serve_command` writes, and --max-lora-rank's choices are `VLLM_LORA_RANKS`."
    h = vllm_says['serve_help']
    for flag in ('--enable-lora', '--lora-modules', '--max-lora-rank', '--max-loras', '--served-model-name', '--port'): assert flag in h, flag
    choices = re.search(r'--max-lora-rank \{([\d,]+)\}', h)
    assert choices and tuple(int(x) for x in choices.group(1).split(',')) == VLLM_LORA_RANKS, choices

def test_vllm_accepts_the_serve_command_the_study_prints(vllm_says, study_commands):
    "vLLM's own parser reads the study's command as meant: the base under its served name, every adapter by its system name and folder, the rank, the port."
    cfg, six, _ = study_commands
    six_cmd, one_cmd, bad = vllm_says['parsed']
    assert six_cmd['ok'] and one_cmd['ok'], (six_cmd, one_cmd)
    assert (six_cmd['model'], six_cmd['served_model_name'], six_cmd['enable_lora'], six_cmd['port']) == (resolve_model(cfg.target_model), [cfg.target_model], True, 8001)
    assert (six_cmd['max_lora_rank'], six_cmd['max_loras']) == (16, 6)
    assert {m['name']: m['path'] for m in six_cmd['lora_modules']} == {s: str(Path(a).resolve()) for s, a in six.items()}
    assert (one_cmd['max_lora_rank'], one_cmd['max_loras'], [m['name'] for m in one_cmd['lora_modules']]) == (32, 1, ['dpo'])
    assert not bad['ok'] and 'invalid choice: 24' in bad['error'], bad    # the check can fail: a rank vLLM does not serve is refused
