"The tiny profile end to end: SFT_OG, SFT_DB, RW, DPO and SRPO on CPU (full-precision base); loading, generation, errors."
import json, math, time
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from peft import PeftModel
from aidsafe_nb.reasoning import format_reasoning
from aidsafe_nb.models import resolve_model
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, train_sft, read_log, TrainSkip, sft_dataset, write_demo_set, SFTSetup
from aidsafe_nb.adapters import train_info, load_trained, backend_kwargs, adapter_path, model_dir, is_trained, skipped_models
from aidsafe_nb.hardware import TrainError, Hardware
from aidsafe_nb.steps import run_sft, run_dpo


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    rd, cfg = open_run(tmp_path_factory.mktemp('tiny')/'run', 'tiny')
    write_demo_data(rd, n=6, long_rows=1)
    t0 = time.time()
    sft = run_sft(rd, cfg)
    dpo = run_dpo(rd, cfg)
    return rd, cfg, sft, dpo, time.time() - t0


def test_all_models_trained_with_finite_losses(trained):
    rd, cfg, sft, dpo, secs = trained
    assert set(sft) == {'sft_og', 'sft_db', 'rw'} and set(dpo) == {'dpo', 'dpo_saro'}
    for name in [*sft, *dpo]:
        log = read_log(model_dir(rd, name)/'train_log.jsonl')
        assert len(log) == cfg.max_steps, name
        assert all(math.isfinite(r['loss']) and math.isfinite(r['grad_norm']) and r['learning_rate'] > 0 for r in log), name
        assert (model_dir(rd, name)/'loss.png').stat().st_size > 1000
        info = train_info(rd, name)
        assert info['load_in_4bit'] is False and info['settings']['optim'] == 'adamw_torch'     # CPU: full-precision base
        assert info['base_precision'].startswith('float32') and backend_kwargs(rd, name)['load_in_4bit'] is False
    assert train_info(rd, 'dpo_saro')['start_adapter'] == 'rw' and train_info(rd, 'dpo')['start_adapter'] == 'sft_db'
    assert secs < 300, f'tiny training took {secs:.0f}s'


def test_overlong_rows_reported_not_truncated(trained):
    rd = trained[0]
    rep = json.loads((model_dir(rd, 'sft_db')/'data_report.json').read_text())
    assert rep['n_too_long'] == 1 and rep['dropped'][0]['id'] == 'demo-6' and 'max_seq_len' in rep['dropped'][0]['reason']
    assert train_info(rd, 'sft_db')['n_train_rows'] == 6


@pytest.mark.parametrize('name', ['sft_og', 'sft_db', 'dpo'])
def test_adapters_load_with_peft_on_tiny_base_and_generate(trained, name):
    rd = trained[0]
    base = AutoModelForCausalLM.from_pretrained(resolve_model('tiny'))
    m = PeftModel.from_pretrained(base, str(adapter_path(rd, name)))
    assert list(m.peft_config) == ['default']
    tok = AutoTokenizer.from_pretrained(adapter_path(rd, name))
    enc = tok.apply_chat_template([{'role': 'user', 'content': 'Hello'}], add_generation_prompt=True, return_tensors='pt', return_dict=True)
    out = m.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > enc['input_ids'].shape[1]
    # the adapter changes the model (it is not an all-zero LoRA)
    with torch.no_grad(), m.disable_adapter(): b = m(**enc).logits
    with torch.no_grad(): a = m(**enc).logits
    assert (a - b).abs().max() > 0


def test_generation_through_llm_backend(trained):
    from aidsafe_nb.backends import get_backend
    be = get_backend('hf', **backend_kwargs(trained[0], 'sft_db'), batch_size=4)
    comps = be.chat([[{'role': 'user', 'content': 'Hi'}], [{'role': 'user', 'content': 'Bye'}]], stage='test', max_tokens=5, temperature=0.0)
    assert len(comps) == 2 and all(c.error is None and c.completion_tokens > 0 for c in comps)


def test_load_trained_and_errors(trained):
    rd = trained[0]
    m, tok = load_trained(rd, 'sft_og')
    assert isinstance(m, PeftModel) and tok.padding_side == 'left'
    with pytest.raises(TrainError, match='not trained'): load_trained(rd, 'nonexistent')


def test_rerun_skips_finished_models(trained):
    rd, cfg = trained[:2]
    before = {n: (model_dir(rd, n)/'train_info.json').stat().st_mtime for n in ('sft_og', 'sft_db', 'dpo')}
    t0 = time.time(); run_sft(rd, cfg); run_dpo(rd, cfg)
    assert time.time() - t0 < 10
    assert before == {n: (model_dir(rd, n)/'train_info.json').stat().st_mtime for n in before}


def test_model_too_big_fails_before_loading(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny')
    write_demo_data(rd, n=2)
    tiny_gpu = Hardware('cuda', 'Tiny GPU', 0.05, (7, 5))
    with pytest.raises(TrainError, match=r'needs about .* GB, more than Tiny GPU'): train_sft(rd, SFTSetup.of(cfg), 'sft_db', hw=tiny_gpu)
    assert not is_trained(rd, 'sft_db')


def test_bad_inputs_named(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny')
    with pytest.raises(TrainError, match="'cot' not found"): run_sft(rd, cfg, names=['sft_db'])
    write_demo_data(rd, n=2)
    with pytest.raises(TrainError, match="starting SFT adapter 'sft_db' is not trained"): run_dpo(rd, cfg, names=['dpo'])
    write_demo_set(rd, 'pairs_belief', [{'prompt': 'text', 'chosen': 'a', 'rejected': 'b'}])
    run_sft(rd, cfg, names=['sft_db'])
    with pytest.raises(TrainError, match="column 'prompt' must be a list"): run_dpo(rd, cfg, names=['dpo'])
    write_demo_set(rd, 'cot', [{'id': 'x', 'prompt': 'p', 'cot': '', 'response': '', 'original_response': '', 'status': 'ok'}])
    assert len(sft_dataset(rd, 'sft_og')[0]) == 0
    with pytest.raises(TrainSkip, match='no trainable rows'): train_sft(rd, SFTSetup.of(cfg), 'sft_og')
    assert 'no trainable rows' in skipped_models(rd)['sft_og']


def test_merge_matches_adapter_on_full_precision_base(trained):
    from aidsafe_nb.adapters import merge_adapter
    rd = trained[0]
    out = merge_adapter(rd, 'sft_db')
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(resolve_model('tiny')), str(adapter_path(rd, 'sft_db'))).eval()
    ids = torch.tensor([[1, 85, 91, 262, 71, 79, 201]])
    with torch.no_grad(): torch.testing.assert_close(merged(ids).logits, peft(ids).logits, atol=1e-4, rtol=1e-4)
    assert AutoTokenizer.from_pretrained(out).eos_token == '<|im_end|>'
