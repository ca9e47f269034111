"""Preference steps on real backends: step 2 (SaRO) on the tiny model, the belief pairs from a real (untrained) LoRA adapter as SFT_DB,
TRL's DPOTrainer on every pair set exactly as saved, and (slow) the same on SmolLM2 with its gate pass rates."""
import json, math
import pytest
from aidsafe_nb.config import data_dir
from aidsafe_nb.models import resolve_model
from aidsafe_nb.run import open_run

def _smoke_rows(n_each: int = 4):
    rows = [json.loads(l) for l in (data_dir()/'smoke'/'prompts.jsonl').read_text().splitlines() if l.strip()]
    rows = [r for r in rows if r['kind'] == 'safety'][:n_each] + [r for r in rows if r['kind'] == 'general'][:n_each]
    return [dict(id=r['id'], prompt=r['prompt'], kind=r['kind'], source='smoke', original_response=r['original_response'],
                 cot='I check the request against the policies first.', response=r['original_response']) for r in rows]

def _lora_as_sft_db(rd, model: str):
    "An untrained LoRA adapter on `model` saved as models/sft_db (the real adapter path, without training)."
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = resolve_model(model)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(path), LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'))
    out = rd.models/'sft_db'; out.mkdir(parents=True, exist_ok=True)
    m.save_pretrained(str(out)); AutoTokenizer.from_pretrained(path).save_pretrained(str(out))
    (out/'train_info.json').write_text(json.dumps(dict(name='sft_db', base_model=model, load_in_4bit=False)))

@pytest.fixture(scope='module')
def pref_run(tmp_path_factory):
    from aidsafe_nb.pairs import write_cot_fixture
    from aidsafe_nb.steps import run_preference
    from aidsafe_nb.steps import run_belief_pairs
    rd, cfg = open_run(tmp_path_factory.mktemp('pref')/'run', 'tiny')
    write_cot_fixture(rd, _smoke_rows())
    res2 = run_preference(rd, cfg, progress=False)
    _lora_as_sft_db(rd, 'tiny')
    res4 = run_belief_pairs(rd, cfg, progress=False)
    return rd, cfg, res2, res4

SARO = ['rw', 'pairs_saro', 'pairs_saro_outcome']
BELIEF = ['pairs_belief', 'pairs_baseline']

def test_tiny_steps_write_every_set_with_meta_and_gates(pref_run):
    rd, cfg, res2, res4 = pref_run
    from aidsafe_nb.pairs import load_pairs, load_meta
    for name in SARO + BELIEF:
        allr, ds, meta = load_pairs(rd.data/name, all_rows=True), load_pairs(rd.data/name), load_meta(rd.data/name)
        assert allr, f'{name}: no rows'
        assert len(ds) == meta['n_trainable'] == sum(not r['excluded'] for r in allr)
        assert meta['trainable'] == (len(ds) > 0) and (meta['trainable'] or meta['no_trainable_reason'])
        assert all(r['status'] == 'ok' for r in allr if not r['excluded']), f'{name}: a trainable row failed a gate'
        stages = json.loads((rd.data/f'{name}.gates.json').read_text())['stages']
        assert stages and all(0 <= s['pass_rate'] <= 1 for s in stages.values())
    usage = json.loads(rd.manifest.read_text())['usage']
    assert usage['belief_whisper']['chat_calls'] <= cfg.belief_iterations        # batched: at most one call per round
    rows = load_pairs(rd.data/'pairs_belief', all_rows=True)
    assert all(r['whispered_model'].startswith('sft_db:tiny+') and r['target_mode'] == 'chat' for r in rows)
    q = json.loads((rd.data/'pair_quality.json').read_text())
    assert q['status'] in ('ok', 'no_pairs') and q['grader']['validated'] is False and (rd.figures/'pair_quality.png').exists()

def test_tiny_steps_rerun_make_no_llm_call(pref_run):
    rd, cfg, res2, res4 = pref_run
    from aidsafe_nb.steps import run_preference
    from aidsafe_nb.steps import run_belief_pairs
    before = json.loads(rd.manifest.read_text())['usage']
    r2, r4 = run_preference(rd, cfg, progress=False), run_belief_pairs(rd, cfg, progress=False)
    m = json.loads(rd.manifest.read_text())
    assert m['usage'] == before and r2['counts'] == res2['counts'] and r4['counts'] == res4['counts']
    assert m['steps']['2_preference']['llm_backends_built'] == [] and m['steps']['belief_pairs']['llm_backends_built'] == []

@pytest.fixture(scope='module')
def fake_sets(tmp_path_factory):
    "Every pair set from hand-written outputs (trainable rows guaranteed), written by the real writers."
    from aidsafe_nb.backends import get_backend
    from aidsafe_nb.pairs import write_cot_fixture
    from aidsafe_nb.steps import run_preference
    from aidsafe_nb.steps import run_belief_pairs
    from test_preference_units import _fake_model, _Grader, _fake_sft_db, COT
    rd, cfg = open_run(tmp_path_factory.mktemp('fake')/'run', 'tiny', rw_samples=2)
    write_cot_fixture(rd, COT); _fake_sft_db(rd)
    fb = get_backend('fake', responder=_fake_model)
    run_preference(rd, cfg, agent=fb, judge=fb, progress=False)
    run_belief_pairs(rd, cfg, agent=fb, judge=fb, grader=_Grader(), backend_factory=lambda kind, **kw: fb, progress=False)
    return rd, cfg

@pytest.mark.parametrize('name', ['pairs_belief', 'pairs_saro', 'pairs_saro_outcome'])
def test_dpo_trainer_accepts_pair_set_as_saved(fake_sets, name, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from aidsafe_nb.pairs import load_pairs
    rd, cfg = fake_sets
    ds = load_pairs(rd.data/name)
    assert len(ds) > 0
    path = resolve_model('tiny')
    args = DPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to='none', save_strategy='no',
                     logging_steps=1, max_length=256, use_cpu=True, beta=cfg.dpo_beta)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, train_dataset=ds, processing_class=AutoTokenizer.from_pretrained(path))
    out = trainer.train()
    assert out.global_step == 1 and math.isfinite(out.training_loss)

@pytest.mark.slow
def test_smol_preference_and_belief_pairs(tmp_path):
    "SmolLM2 as agent, judge and (via an untrained adapter) SFT_DB on 2+2 smoke prompts: the steps finish, junk is gated, nothing gated is trainable."
    from aidsafe_nb.pairs import write_cot_fixture
    from aidsafe_nb.steps import run_preference
    from aidsafe_nb.steps import run_belief_pairs
    from aidsafe_nb.pairs import load_pairs, load_meta
    rd, cfg = open_run(tmp_path/'run', 'tiny', agent_model='smol', judge_model='smol', target_model='smol', belief_iterations=1,
                       belief_samples=2, rw_samples=1, max_new_tokens=96)
    write_cot_fixture(rd, _smoke_rows(2))
    run_preference(rd, cfg, progress=False)
    _lora_as_sft_db(rd, 'smol')
    run_belief_pairs(rd, cfg, progress=False)
    for name in SARO + BELIEF:
        meta = load_meta(rd.data/name)
        assert meta['n_rows'] > 0 and (meta['trainable'] or meta['no_trainable_reason'])
        assert all(r['status'] == 'ok' for r in load_pairs(rd.data/name, all_rows=True) if not r['excluded'])
    assert json.loads((rd.data/'pair_quality.json').read_text())['status'] in ('ok', 'no_pairs')
