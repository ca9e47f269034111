"hf backend: PEFT adapters, 4-bit loading, model sharing, bad input."
import pytest, torch
from aidsafe_nb.models import resolve_model
from aidsafe_nb.backends import get_backend
from aidsafe_nb.hf import load_model, _MODELS
from aidsafe_nb.structured import chat_json

CONVS = [[{'role': 'user', 'content': f'Tell me about safety rule {i}'}] for i in range(6)]

@pytest.fixture(scope='module')
def adapter_dir(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = tmp_path_factory.mktemp('adapter')
    base = AutoModelForCausalLM.from_pretrained(resolve_model('tiny'))
    torch.manual_seed(0)
    m = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=['q_proj', 'v_proj', 'o_proj'], init_lora_weights=False))
    m.save_pretrained(path); AutoTokenizer.from_pretrained(resolve_model('tiny')).save_pretrained(path)
    return path

def test_adapter_changes_outputs_and_cache_identity(adapter_dir, tmp_path):
    db = tmp_path/'c.sqlite'
    base = get_backend('hf', model='tiny', cache=db, progress=False)
    tuned = get_backend('hf', model='tiny', adapter=adapter_dir, cache=db, progress=False)
    a = base.chat(CONVS, max_tokens=8, temperature=0)
    b = tuned.chat(CONVS, max_tokens=8, temperature=0)
    assert tuned.usage['default']['calls'] == 6           # not answered from the base model's cache entries
    assert [x.text for x in a] != [x.text for x in b]
    assert tuned.identity['adapter']['sha256'] and type(tuned.model).__name__.startswith('Peft')

def test_model_shared_between_backends():
    a, b = get_backend('hf', model='tiny'), get_backend('hf', model='tiny', batch_size=2)
    assert a.model is b.model and a.tokenizer is b.tokenizer

def test_4bit_loads_and_generates_json():
    try: be = get_backend('hf', model='tiny', load_in_4bit=True, progress=False); be.model
    except Exception as e: pytest.skip(f'bitsandbytes 4-bit not usable here: {type(e).__name__}: {e}')
    assert 'Linear4bit' in {type(m).__name__ for m in be.model.modules()}
    res = chat_json(be, CONVS[:3], {'type': 'object', 'properties': {'ok': {'type': 'boolean'}}, 'required': ['ok']}, max_tokens=8)
    assert all(r.error is None for r in res)

def test_bad_inputs_fail_before_work():
    be = get_backend('hf', model='tiny', progress=False)
    with pytest.raises(TypeError, match='list of conversations'): be.chat('hello')
    with pytest.raises(ValueError, match='conversation 1'): be.chat([CONVS[0], []])
    with pytest.raises(ValueError, match='max_tokens'): be.chat(CONVS, max_tokens=0)
    with pytest.raises(ValueError, match='batch_size'): get_backend('hf', model='tiny', batch_size=0)
    with pytest.raises(FileNotFoundError, match='adapter'): get_backend('hf', model='tiny', adapter='/no/such/adapter').model
