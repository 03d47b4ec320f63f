#!/usr/bin/python3
"""Writes tiny real torch.save checkpoints into test/fixtures/torch/ together with the values torch
itself reports for them (expected.json), as an independent reference for src/formats/torch-bin.ts.

Run with the system Python that has torch:  /usr/bin/python3 tools/make-torch-fixture.py
"""
import json
import os
import sys

import torch

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'torch')
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

DTYPE = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64', torch.int32: 'I32'}

# A module's state_dict is an OrderedDict carrying `_metadata` (pickled with BUILD), like
# transformers' save_pretrained output.
lin = torch.nn.Linear(3, 2)
sd = lin.state_dict()
base = (torch.arange(20, dtype=torch.float32) * 0.5 - 3.25).reshape(4, 5)
sd['base_f32'] = base
sd['slice_f32'] = base[2:]  # shares base's storage, storage offset 10
sd['w_f16'] = torch.tensor([0.1, -2.5, 65504.0, 1e-5, 3.14159, -0.0], dtype=torch.float16)
sd['w_bf16'] = torch.randn(2, 3).to(torch.bfloat16)
h = torch.randn(4, 4).to(torch.float16)
sd['row_f16'] = h[1:2]  # size [1, 4], storage offset 4
sd['ids_i64'] = torch.tensor([3, -1, 2 ** 40], dtype=torch.int64)
sd['scalar_f32'] = torch.tensor(2.75)
sd['param'] = torch.nn.Parameter(torch.tensor([1.5, -0.5]))  # pickled via _rebuild_parameter
sd['empty_f32'] = torch.zeros(0, 3)

torch.save(sd, os.path.join(out, 'small.bin'))

expected = {}
for name, t in sd.items():
    t = t.detach()
    expected[name] = {
        'dtype': DTYPE[t.dtype],
        'shape': list(t.shape),
        'storage_offset': t.storage_offset(),
        'values': (t.flatten().tolist() if t.dtype in (torch.int64, torch.int32) else t.float().flatten().tolist()),
    }
with open(os.path.join(out, 'small.expected.json'), 'w') as f:
    json.dump({'torch_version': torch.__version__, 'tensors': expected}, f, indent=1)

# A transposed (non-contiguous) tensor, which the reader must refuse clearly.
torch.save({'t': base.t()}, os.path.join(out, 'noncontig.bin'))


# A pickle that would run a shell command if a naive unpickler evaluated it.
class Evil:
    def __reduce__(self):
        return (os.system, ('echo this checkpoint tried to run a command',))


torch.save({'x': Evil()}, os.path.join(out, 'evil.bin'))

# The pre-1.6 non-zip format.
torch.save({'a': torch.ones(2)}, os.path.join(out, 'legacy.bin'), _use_new_zipfile_serialization=False)
print('wrote fixtures to', os.path.normpath(out), 'with torch', torch.__version__, file=sys.stderr)

# The same archive re-zipped with deflate: torch never writes that, and the reader must say so.
import zipfile  # noqa: E402

with zipfile.ZipFile(os.path.join(out, 'small.bin')) as src, zipfile.ZipFile(
        os.path.join(out, 'compressed.bin'), 'w', compression=zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        dst.writestr(info.filename, src.read(info.filename))
