"Profiles are YAML files (data/profiles/*.yaml) a researcher copies and edits; their values are those of the Python dicts they replaced."
import json
from aidsafe_nb.config import PROFILES, make_config, profiles_dir

# PROFILES as the Python dicts in config.py held them on main (abcf3c8), before they moved into data/profiles/*.yaml
BEFORE = json.loads('''{"colab_t4": {"agent_model": "Qwen/Qwen2.5-7B-Instruct", "judge_model": "Qwen/Qwen2.5-7B-Instruct", "target_model": "Qwen/Qwen2.5-7B-Instruct", "agent_load_in_4bit": true, "judge_load_in_4bit": true, "safety_classifier_4bit": true, "n_prompts": 60, "belief_iterations": 2, "gen_batch_size": 8, "max_new_tokens": 768, "eval_limit": 25, "mmlu_limit": 285, "grad_accum": 8, "max_seq_len": 1024, "stage_max_tokens": {"intents": 256, "initial_cot": 1024, "deliberation": 1024, "refiner": 1024, "llm_zs": 1024}}, "paper": {"agent_model": "mistralai/Mixtral-8x22B-Instruct-v0.1", "agent_backend": "openai", "agent_base_url": "http://localhost:8000/v1", "judge_model": "mistralai/Mixtral-8x22B-Instruct-v0.1", "judge_backend": "openai", "judge_base_url": "http://localhost:8000/v1", "safety_classifier": "google/shieldgemma-2b", "target_model": "Qwen/Qwen2.5-7B-Instruct", "n_prompts": 10000, "max_new_tokens": 1024, "num_train_epochs": 3.0, "stage_max_tokens": {"intents": 256, "initial_cot": 1024, "deliberation": 1024, "refiner": 1024, "llm_zs": 1024}, "rw_samples": 4, "judge2_model": "meta-llama/Llama-3.3-70B-Instruct", "judge2_base_url": "http://localhost:8002/v1"}, "smol": {"agent_model": "smol", "judge_model": "smol", "target_model": "smol", "safety_source": "smoke", "general_source": "smoke", "policy_set": "aidsafe5_compact", "n_prompts": 8, "max_new_tokens": 192, "gen_batch_size": 16, "max_rounds": 2, "belief_iterations": 1, "belief_samples": 1, "rw_samples": 2, "load_in_4bit": false, "num_train_epochs": 2.0, "grad_accum": 4, "max_seq_len": 768, "learning_rate": 0.0002, "dpo_learning_rate": 5e-05, "benchmarks": ["strongreject", "xstest", "mmlu"], "eval_limit": 8, "mmlu_limit": 32, "mmlu_shots": 0, "eval_temperature": 0.0, "safety_judge": "strmatch", "judge_validation_limit": 10}, "tiny": {"n_prompts": 8, "max_new_tokens": 48, "gen_batch_size": 16, "safety_source": "smoke", "general_source": "smoke", "max_rounds": 2, "belief_iterations": 2, "belief_samples": 2, "rw_samples": 2, "max_steps": 4, "grad_accum": 2, "max_seq_len": 512, "learning_rate": 0.001, "dpo_learning_rate": 0.0001, "eval_limit": 8, "mmlu_limit": 8, "mmlu_shots": 2, "eval_temperature": 0.7, "enforce_gates": false}}''')

def test_profiles_unchanged():
    assert set(PROFILES) == set(BEFORE)
    for name in BEFORE:
        assert PROFILES[name] == BEFORE[name], name
        for k, v in BEFORE[name].items(): assert type(PROFILES[name][k]) is type(v), (name, k)   # 1e-3 must stay a float, not text

def test_profile_files_keep_their_provenance():
    "[R] comments stay in the YAML files (the reconstructed choices say so where they are set)."
    assert all('[R]' in (profiles_dir()/f'{n}.yaml').read_text() for n in ('smol', 'colab_t4', 'paper'))

def test_own_profile_file(tmp_path):
    p = tmp_path/'my.yaml'; p.write_text((profiles_dir()/'smol.yaml').read_text().replace('n_prompts: 8', 'n_prompts: 5'))
    cfg = make_config(str(p))
    assert (cfg.n_prompts, cfg.agent_model, cfg.profile) == (5, 'smol', str(p.resolve()))


def test_profile_file_run_keeps_its_overrides(tmp_path, monkeypatch):
    "Running an existing run again with the same profile file (given relative) keeps the run's saved overrides."
    from aidsafe_nb.study import run_config
    from aidsafe_nb.config import save_config
    monkeypatch.chdir(tmp_path)
    (tmp_path/'my.yaml').write_text((profiles_dir()/'tiny.yaml').read_text())
    cfg, _ = run_config(tmp_path/'run', 'my.yaml', {'max_rounds': 3})
    (tmp_path/'run').mkdir(); save_config(cfg, tmp_path/'run'/'config.yaml')
    again, changes = run_config(tmp_path/'run', 'my.yaml', {})
    assert (again.max_rounds, changes) == (3, {})
