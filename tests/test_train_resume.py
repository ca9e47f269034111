"Training checkpoints on time and on steps, resumes after a kill, and keeps exactly one log row per step."
import json
import pytest
from transformers import TrainerCallback
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, train_sft, train_dpo, read_log, SFTSetup, DPOSetup
from aidsafe_nb.adapters import model_dir, is_trained, train_info


class Crash(TrainerCallback):
    "Simulated kill right after step `at` was logged (before any checkpoint of that step)."
    def __init__(self, at): self.at = at
    def on_log(self, args, state, control, logs=None, **kw):
        if state.global_step == self.at and 'loss' in (logs or {}): raise KeyboardInterrupt(f'simulated kill at step {self.at}')


def test_time_based_checkpoint_resume_keeps_one_row_per_step(tmp_path):
    # save_steps=200 never fires in a 4-step run: only the time-based checkpoint can save
    rd, cfg = open_run(tmp_path/'run', 'tiny', checkpoint_minutes=1e-6)
    write_demo_data(rd, n=4)
    with pytest.raises(KeyboardInterrupt): train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og', callbacks=[Crash(3)])
    work = rd.models/'.sft_og.work'
    assert not is_trained(rd, 'sft_og') and (work/'checkpoint-2').exists()
    assert [r['step'] for r in read_log(work/'train_log.jsonl')] == [1, 2, 3]     # the dead attempt logged step 3
    train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og')
    steps = [r['step'] for r in read_log(model_dir(rd, 'sft_og')/'train_log.jsonl')]
    assert steps == [1, 2, 3, 4], steps          # step 3 of the dead attempt dropped, retrained once after checkpoint-2
    assert train_info(rd, 'sft_og')['resumed_from'] == 'checkpoint-2'
    assert not work.exists()


def test_step_checkpoint_without_timer(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', checkpoint_minutes=600)
    write_demo_data(rd, n=4)
    with pytest.raises(KeyboardInterrupt): train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og', save_steps=2, callbacks=[Crash(3)])
    assert (rd.models/'.sft_og.work'/'checkpoint-2').exists()
    train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og', save_steps=2)
    assert [r['step'] for r in read_log(model_dir(rd, 'sft_og')/'train_log.jsonl')] == [1, 2, 3, 4]


def test_kill_before_any_checkpoint_restarts_clean(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', checkpoint_minutes=600)
    write_demo_data(rd, n=4)
    with pytest.raises(KeyboardInterrupt): train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og', callbacks=[Crash(1)])
    assert not list((rd.models/'.sft_og.work').glob('checkpoint-*'))
    train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_og')
    assert [r['step'] for r in read_log(model_dir(rd, 'sft_og')/'train_log.jsonl')] == [1, 2, 3, 4]


def test_dpo_resumes_with_its_reference(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', checkpoint_minutes=1e-6)
    write_demo_data(rd, n=4)
    train_sft(rd, SFTSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='sft_db')
    with pytest.raises(KeyboardInterrupt): train_dpo(rd, DPOSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='dpo', callbacks=[Crash(3)])
    assert (rd.models/'.dpo.work'/'checkpoint-2').exists()
    train_dpo(rd, DPOSetup.of(cfg), checkpoint_minutes=cfg.checkpoint_minutes, name='dpo')
    log = read_log(model_dir(rd, 'dpo')/'train_log.jsonl')
    assert [r['step'] for r in log] == [1, 2, 3, 4]
    assert train_info(rd, 'dpo')['resumed_from'] == 'checkpoint-2'
    cfgs = json.loads((model_dir(rd, 'dpo')/'adapter_config.json').read_text())
    assert not (model_dir(rd, 'dpo')/'ref').exists() and cfgs['base_model_name_or_path'] == 'tiny'
