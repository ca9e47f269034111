"Training you can watch (issue 22): progress lines on the terminal, TensorBoard event files by default, report_to as a parameter."
import os, re
import pytest
from aidsafe_nb.config import ConfigError
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, train_sft, reporting, SFTSetup
from aidsafe_nb.adapters import train_info
from aidsafe_nb.hardware import TrainError


def test_training_progress_reaches_the_terminal(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv('AIDSAFE_PROGRESS', '1')                          # as the study driver sets it for its kernels
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=3, report_to='none')
    write_demo_data(rd, n=4)
    train_sft(rd, SFTSetup.of(cfg), 'sft_db', report_to=cfg.report_to)
    err = capfd.readouterr().err                                         # the process's real stderr (fd 2): the terminal
    lines = re.findall(r'  \[train:sft_db\] [^\n\r]*', err)                 # (a tqdm bar may share the line in a test)
    assert lines[0] == '  [train:sft_db] training 3 steps', err[-2000:]
    assert re.fullmatch(r'  \[train:sft_db\] step 3/3 \(100%\) loss [0-9.]+ [0-9.]+ step/s, ETA 0s', lines[-2]), lines
    assert lines[-1].startswith('  [train:sft_db] done: 3 steps in ')


def test_report_to_is_a_checked_parameter(tmp_path):
    with pytest.raises(ConfigError, match='report_to'): open_run(tmp_path/'r0', 'tiny', report_to='mlflow')
    assert reporting('none', tmp_path) == ('none', [], 'none')
    missing = next((t for t in ('wandb', 'trackio') if __import__('importlib').util.find_spec(t) is None), None)
    if missing:                                                          # an explicitly asked tracker that is not installed: clear error
        with pytest.raises(TrainError, match=f'pip install {missing}'): reporting(missing, tmp_path)


def test_tiny_training_writes_tensorboard_events(tmp_path):
    pytest.importorskip('tensorboard', reason='tensorboard is not installed in this environment (it is in the requirements)')
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=2)              # report_to defaults to tensorboard
    assert cfg.report_to == 'tensorboard'
    write_demo_data(rd, n=4)
    train_sft(rd, SFTSetup.of(cfg), 'sft_db', report_to=cfg.report_to)
    events = list((rd.path/'tensorboard'/'sft_db').glob('events.out.tfevents.*'))
    assert events and events[0].stat().st_size > 0 and train_info(rd, 'sft_db')['report_to'].startswith('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(events[0].parent)); acc.Reload()
    assert [e.step for e in acc.Scalars('train/loss')] == [1, 2]
