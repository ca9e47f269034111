"The `final` stage's gate summary agrees with the rows' status: a training target the earlier gates emptied fails there as `empty`."
from aidsafe_nb.gates import gate_text
from aidsafe_nb.refiner import final_check, cot_status
from aidsafe_nb.train import gate_stats

def _rec(response, earlier):
    return dict(id='x', thoughts=['Policy 4 forbids helping with it.'], response=response, gate_failures=list(earlier), failures=[])

def test_a_response_the_gates_removed_fails_the_final_stage_and_the_reason_names_it():
    assert gate_text('') == 'empty'
    r = final_check(_rec('', [dict(stage='initial_cot', field='response', gate='length_closed', text='{')]))
    final = [g for g in r['gate_failures'] if g['stage'] == 'final']
    assert [(g['field'], g['gate']) for g in final] == [('response', 'empty')]
    assert cot_status(r['thoughts'][0], r['response'], r['failures'], r['gate_failures']) == 'gate_failed'
    stats = gate_stats([dict(r, status='gate_failed')])
    assert stats['failures'] == {'response:empty': 1}     # the target's failure, not the earlier diagnostics

def test_a_failed_call_is_not_a_gate_failure_and_a_good_row_passes():
    r = final_check(_rec('', []))                          # no answer at all: the call failed, no gate removed anything
    assert not r['gate_failures'] and cot_status(r['thoughts'][0], '', [dict(stage='refiner')], []) == 'failed'
    ok = final_check(_rec('I cannot help with tracking someone without their consent.', [dict(stage='intents', field='x', gate='placeholder')]))
    assert not [g for g in ok['gate_failures'] if g['stage'] == 'final']
    assert cot_status(ok['thoughts'][0], ok['response'], [], ok['gate_failures']) == 'ok'
