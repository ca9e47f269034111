"The DPO reference is the SFT adapter (a frozen copy), not the raw base, and it stays fixed while the policy trains."
import torch
import pytest
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, dpo_dataset, length_filter, load_base, dpo_trainer, DPOSetup
from aidsafe_nb.hardware import hardware_defaults, Hardware
from aidsafe_nb.adapters import load_trained, model_dir
from aidsafe_nb.steps import run_sft

CPU = hardware_defaults(Hardware('cpu', 'cpu', 8.0))


def seq_logps(model, batch):
    "Sum of log-probs of the completion tokens of each row (TRL's DPO convention)."
    with torch.no_grad():
        logits = model(input_ids=batch['input_ids'], attention_mask=batch['attention_mask']).logits.float()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch['input_ids'][:, 1:, None])[..., 0]
    return (logp*batch['completion_mask'][:, 1:]).sum(1)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    # a high learning rate so the SFT adapter moves the model far from the base
    rd, cfg = open_run(tmp_path_factory.mktemp('dporef')/'run', 'tiny', learning_rate=5e-2, dpo_learning_rate=5e-2)
    write_demo_data(rd, n=6)
    run_sft(rd, cfg, names=['sft_db'])
    model, tok = load_base(cfg.target_model, CPU)
    ds, _ = length_filter(dpo_dataset(rd, 'pairs_belief'), tok, cfg.max_seq_len)
    tr = dpo_trainer(model, tok, ds, DPOSetup.of(cfg), CPU, tmp_path_factory.mktemp('work'), model_dir(rd, 'sft_db'))
    batch = next(iter(tr.get_train_dataloader()))
    batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return rd, cfg, tr, batch


def test_reference_is_sft_adapter_not_base(setup):
    rd, cfg, tr, batch = setup
    ref = torch.cat(tr.compute_ref_log_probs(tr.model, batch))
    sft, _ = load_trained(rd, 'sft_db')
    base, _ = load_trained(rd, 'base')
    # the batch is [chosen..., rejected...]; TRL returns (chosen, rejected) halves, concatenated back here
    sft_lp, base_lp = seq_logps(sft, batch), seq_logps(base, batch)
    gap_base = (sft_lp - base_lp).abs().max().item()
    assert gap_base > 0.5, f'the SFT adapter barely differs from the base ({gap_base}); the test would prove nothing'
    torch.testing.assert_close(ref, sft_lp, atol=1e-3, rtol=1e-4)
    assert (ref - base_lp).abs().max().item() > 100*1e-3


def test_reference_frozen_while_policy_moves(setup):
    rd, cfg, tr, batch = setup
    m = tr.accelerator.unwrap_model(tr.model)
    ref_before = {n: p.detach().clone() for n, p in m.named_parameters() if '.ref.' in n}
    assert ref_before and not any(m.get_parameter(n).requires_grad for n in ref_before)
    ref_lp_before = torch.cat(tr.compute_ref_log_probs(tr.model, batch))
    tr.train()
    assert all(torch.equal(ref_before[n], m.get_parameter(n)) for n in ref_before)
    torch.testing.assert_close(torch.cat(tr.compute_ref_log_probs(tr.model, batch)), ref_lp_before)
    # the policy ('default' adapter) did move away from its starting point, the SFT adapter
    moved = [n for n in ref_before if not torch.equal(ref_before[n].to(torch.bfloat16), m.get_parameter(n.replace('.ref.', '.default.')).to(torch.bfloat16))]
    assert moved, 'the DPO policy adapter did not change'
