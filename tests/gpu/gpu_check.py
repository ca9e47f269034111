#!/usr/bin/env python
"""The one prepared GPU check (issue 14). On a machine with an NVIDIA GPU it finishes in under 8 minutes:

    .venv/bin/python tests/gpu/gpu_check.py                 # writes outputs/gpu_check/gpu_check.md and .json

1. **Compute dtype**: float16 on GPUs of compute capability < 8.0 (a T4 reports `torch.cuda.is_bf16_supported()` True
   through emulation, so capability decides), bfloat16 from 8.0, float32 on CPU; `aidsafe_nb.hardware.compute_dtype` and
   the dtype `aidsafe_nb.hf.load_model` loads a model in are both checked.
2. **QLoRA SFT and DPO** on a random-weight Qwen2.5-7B-shaped model (`aidsafe_nb.benchtools.QWEN25_7B_DIMS`, 4-bit NF4 + LoRA r16)
   at 1024 tokens: peak memory, tokens/s and MFU, TRL's defaults and this project's tuned settings side by side, each in its own
   process, under an emulated 16 GB card (`--cap-gb`).
3. **4-bit generation tokens/s with and without prefix reuse**: the generation layer's part. The hook calls
   `aidsafe_nb.hf.measure_generation(model_path, prefix_reuse=..., load_in_4bit=True)` when it exists; otherwise a plain timing
   of `get_backend('hf', ..., prefix_reuse=...)` on prompts that share a long system prefix.

Without a GPU the same script runs at toy size on the CPU and says that GPU numbers were NOT measured. Every step is
guarded by the time budget (`--budget`, seconds): what does not fit is reported as not run.
"""
import argparse, importlib, importlib.util, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
T0 = time.time()
NEEDED = ('torch', 'transformers', 'peft', 'accelerate', 'trl', 'datasets', 'bitsandbytes', 'fastcore', 'jsonschema', 'yaml', 'psutil', 'pandas')
RUN = ("import json, sys; from aidsafe_nb.benchtools import measure_training; "
       "print('RESULT ' + json.dumps(measure_training(**json.loads(sys.argv[1]))))")


def left(budget): return budget - (time.time() - T0)


def dtype_checks(hw):
    "Rows (check, expected, got, passed) for the compute dtype on this machine."
    import torch
    from aidsafe_nb.hardware import compute_dtype
    expected = 'float32' if hw.device == 'cpu' else ('bfloat16' if tuple(hw.capability) >= (8, 0) else 'float16')
    rows = [dict(check='aidsafe_nb.hardware.compute_dtype()', expected=expected, got=str(compute_dtype(hw)).replace('torch.', ''))]
    try:
        from aidsafe_nb.hf import load_model
        m, _ = load_model('tiny')
        rows.append(dict(check="aidsafe_nb.hf.load_model('tiny') parameter dtype", expected=expected, got=str(next(m.parameters()).dtype).replace('torch.', '')))
    except Exception as e: rows.append(dict(check='aidsafe_nb.hf.load_model', expected=expected, got=f'error: {type(e).__name__}: {e}'[:200]))
    if hw.device == 'cuda':
        rows.append(dict(check='torch.cuda.is_bf16_supported() (information only: emulated on a T4)', expected='-', got=str(torch.cuda.is_bf16_supported())))
    for r in rows: r['passed'] = r['expected'] == '-' or r['got'] == r['expected']
    return rows


def train_measure(model_path, kind, config, a, budget):
    if left(budget) < 45: return dict(kind=kind, config=config, status='not run: time budget')
    args = dict(model_path=str(model_path), kind=kind, config=config, seq_len=a.seq_len, n_rows=a.n_rows, steps=a.steps, warmup=a.warmup,
                grad_accum=a.grad_accum, memory_cap_gb=a.cap_gb or None)
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'AIDSAFE_TQDM': '0'}
    try: p = subprocess.run([sys.executable, '-c', RUN, json.dumps(args)], capture_output=True, text=True, env=env, timeout=max(30, left(budget) - 10))
    except subprocess.TimeoutExpired: return dict(kind=kind, config=config, status='not finished: time budget')
    line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    return json.loads(line[-1][7:]) if line else dict(kind=kind, config=config, status=f'crashed (exit {p.returncode})', error=p.stderr[-600:])


def generation_hook(model_path, a, budget, on_gpu):
    "4-bit generation tokens/s with and without prefix reuse (the generation layer's measurement when it provides one)."
    llm = importlib.import_module('aidsafe_nb.hf')
    rows = []
    for reuse in (False, True):
        if left(budget) < 40: rows.append(dict(prefix_reuse=reuse, status='not run: time budget')); continue
        try:
            if hasattr(llm, 'measure_generation'):
                r = llm.measure_generation(str(model_path), prefix_reuse=reuse, load_in_4bit=on_gpu); r.setdefault('via', 'aidsafe_nb.hf.measure_generation')
            else:
                be = llm.HFBackend(model=str(model_path), load_in_4bit=on_gpu, batch_size=a.gen_prompts, prefix_reuse=reuse)
                system = ' '.join(['Policy: be helpful, refuse harm, explain the reason.'] * (a.gen_prefix_words // 8))
                convs = [[{'role': 'system', 'content': system}, {'role': 'user', 'content': f'Question number {i}: what should I do?'}] for i in range(a.gen_prompts)]
                t = time.time(); out = be.chat(convs, stage=f'gpu_check_{reuse}_{time.time()}', max_tokens=a.gen_tokens, temperature=0.0)
                wall = time.time() - t; n = sum(c.completion_tokens or 0 for c in out)
                r = dict(via='get_backend(hf) timing', prompts=a.gen_prompts, new_tokens=n, wall_s=round(wall, 2), tokens_per_s=round(n/wall, 1))
                llm.clear_models()
            rows.append(dict(prefix_reuse=reuse, load_in_4bit=on_gpu, status='ok', **r))
        except Exception as e: rows.append(dict(prefix_reuse=reuse, status=f'error: {type(e).__name__}: {e}'[:300]))
    return rows


def md_table(rows, cols):
    return '\n'.join(['| ' + ' | '.join(cols) + ' |', '|' + '---|'*len(cols)] + ['| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |' for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'outputs'/'gpu_check'))
    ap.add_argument('--budget', type=float, default=450, help='seconds for the whole check (default 450: under 8 minutes)')
    ap.add_argument('--size', choices=['auto', '7b', 'toy'], default='auto', help='auto: 7b on a GPU, toy on CPU')
    ap.add_argument('--seq-len', type=int, default=0, help='0: 1024 at 7b, 64 at toy')
    ap.add_argument('--n-rows', type=int, default=16); ap.add_argument('--steps', type=int, default=5); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--grad-accum', type=int, default=2); ap.add_argument('--cap-gb', type=float, default=16.0, help='emulated GPU memory (0 = the whole card)')
    ap.add_argument('--gen-prompts', type=int, default=16); ap.add_argument('--gen-tokens', type=int, default=64); ap.add_argument('--gen-prefix-words', type=int, default=700)
    a = ap.parse_args(argv)
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:   # fail in a second, not after the model is built: on a bare GPU machine these come as carried wheels
        print(f'gpu_check: missing Python packages {missing}; carry their wheels (README: "GPU check") and install them first', file=sys.stderr)
        return 2
    from aidsafe_nb.hardware import detect_hardware, hardware_defaults
    from aidsafe_nb.benchtools import random_model, QWEN25_7B_DIMS, TOY_DIMS
    hw = detect_hardware(); on_gpu = hw.device == 'cuda'
    size = a.size if a.size != 'auto' else ('7b' if on_gpu else 'toy')
    a.seq_len = a.seq_len or (1024 if size == '7b' else 64)
    if size == 'toy': a.n_rows, a.steps, a.warmup, a.gen_prompts, a.gen_tokens, a.gen_prefix_words = min(a.n_rows, 6), 3, 1, 4, 8, 120
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    report = dict(device=hw.name, capability=hw.capability, memory_gb=round(hw.memory_gb, 1), size=size, seq_len=a.seq_len, gpu_measured=on_gpu and size == '7b')
    report['dtype'] = dtype_checks(hw)
    t = time.time(); model_path = random_model(QWEN25_7B_DIMS if size == '7b' else TOY_DIMS); report['model_build_s'] = round(time.time() - t, 1)
    report['training'] = [train_measure(model_path, k, c, a, a.budget) for k in ('sft', 'dpo') for c in ('trl_default', 'tuned')]
    report['generation'] = generation_hook(model_path, a, a.budget, on_gpu)
    report['wall_s'] = round(time.time() - T0, 1)
    lines = [f"# GPU check: {hw.name} ({'compute capability ' + str(hw.capability) if on_gpu else 'CPU'}), {size} model, seq_len {a.seq_len}", '']
    if not report['gpu_measured']:
        lines += ['**GPU numbers were NOT measured: this run had no GPU (or ran at toy size). The figures below only show that the script runs end to end.**', '']
    lines += ['## Compute dtype', '', md_table(report['dtype'], ['check', 'expected', 'got', 'passed']), '',
              f"## QLoRA training ({'7B-shaped, 4-bit NF4' if size == '7b' else 'toy model'}; {a.grad_accum} rows per step, {a.steps} steps, {a.warmup} warm-up; cap {a.cap_gb} GB)", '',
              md_table(report['training'], ['kind', 'config', 'status', 'optim', 'packing', 'gradient_checkpointing', 'peak_allocated_gb', 'peak_reserved_gb',
                                            'peak_rss_gb_process', 'tokens_per_s', 'mfu', 'final_loss']), '',
              '## 4-bit generation with and without prefix reuse', '', md_table(report['generation'], ['prefix_reuse', 'status', 'via', 'prompts', 'new_tokens', 'wall_s', 'tokens_per_s']), '',
              f"Tuned settings on this hardware: {hardware_defaults(hw)['note']}. Model built in {report['model_build_s']} s; whole check {report['wall_s']} s (budget {a.budget:.0f} s)."]
    (out/'gpu_check.md').write_text('\n'.join(lines) + '\n'); (out/'gpu_check.json').write_text(json.dumps(report, indent=1, default=str))
    print('\n'.join(lines))
    bad = [r['check'] for r in report['dtype'] if not r['passed']] + [f"{r['kind']}/{r['config']}: {r['status']}" for r in report['training']
                                                                      if r['status'] not in ('ok', 'OOM') and not r['status'].startswith('not ')]
    if bad: print('FAILED:', bad, file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__': sys.exit(main())
