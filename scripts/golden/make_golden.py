#!/usr/bin/env python3
"""Golden fixtures for linkbert: a tiny BertForPreTraining + 3-way DRP head built from plain torch ops
(no transformers), with forward outputs, losses and gradients in float64 (reference) and float32,
plus checkpoint files in every format the TS loaders read.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/golden/make_golden.py
Layout and the meaning of every tensor: scripts/golden/README.md.
"""
import argparse
import collections
import json
import math
import os
import struct
import zipfile

import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'golden')

CFG = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
           max_position_embeddings=32, type_vocab_size=2, layer_norm_eps=1e-12, num_drp_labels=3)
B, T, P = 2, 16, 4
SEED = 1234

SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
PAD, UNK, CLS, SEP, MASK = range(5)


def vocab():
    letters = [chr(c) for c in range(ord('a'), ord('z') + 1)]
    words = ['the', 'of', 'and', 'to', 'in', 'is', 'was', 'for', 'on', 'with', 'as', 'by', 'at', 'link',
             'doc', 'wiki', 'bert', 'graph', 'node']
    toks = SPECIAL + letters + ['##' + l for l in letters] + [str(d) for d in range(10)] + \
        list('.,!?\'"-():;') + words
    assert len(toks) == CFG['vocab_size'] and len(set(toks)) == len(toks)
    return toks


def param_shapes():
    """Canonical HF names and shapes, in the order of src/model/param-names.ts."""
    H, I, V = CFG['hidden_size'], CFG['intermediate_size'], CFG['vocab_size']
    s = [('bert.embeddings.word_embeddings.weight', (V, H)),
         ('bert.embeddings.position_embeddings.weight', (CFG['max_position_embeddings'], H)),
         ('bert.embeddings.token_type_embeddings.weight', (CFG['type_vocab_size'], H)),
         ('bert.embeddings.LayerNorm.weight', (H,)), ('bert.embeddings.LayerNorm.bias', (H,))]
    for i in range(CFG['num_hidden_layers']):
        p = f'bert.encoder.layer.{i}'
        for n in ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']:
            s += [(f'{p}.{n}.weight', (H, H)), (f'{p}.{n}.bias', (H,))]
        s += [(f'{p}.attention.output.LayerNorm.weight', (H,)), (f'{p}.attention.output.LayerNorm.bias', (H,))]
        s += [(f'{p}.intermediate.dense.weight', (I, H)), (f'{p}.intermediate.dense.bias', (I,))]
        s += [(f'{p}.output.dense.weight', (H, I)), (f'{p}.output.dense.bias', (H,))]
        s += [(f'{p}.output.LayerNorm.weight', (H,)), (f'{p}.output.LayerNorm.bias', (H,))]
    s += [('bert.pooler.dense.weight', (H, H)), ('bert.pooler.dense.bias', (H,)),
          ('cls.predictions.transform.dense.weight', (H, H)), ('cls.predictions.transform.dense.bias', (H,)),
          ('cls.predictions.transform.LayerNorm.weight', (H,)), ('cls.predictions.transform.LayerNorm.bias', (H,)),
          ('cls.predictions.bias', (V,)),
          ('cls.drp.weight', (CFG['num_drp_labels'], H)), ('cls.drp.bias', (CFG['num_drp_labels'],))]
    return s


def make_params(gen):
    # Not HF's N(0, 0.02) init: larger, non-trivial values everywhere (LayerNorm gains != 1, biases != 0)
    # so a kernel that drops a bias or a gain shows up in the comparison.
    params = collections.OrderedDict()
    for name, shape in param_shapes():
        if 'LayerNorm.weight' in name:
            t = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith('bias'):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif 'embeddings' in name:
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        params[name] = t.float()
    return params


def make_batch():
    """Row 0 fills all 16 positions; row 1 has 11 real tokens then 5 [PAD]. P=4 masked slots per row;
    row 1 uses 3, its last slot is unused (position 0, label -1)."""
    ids = torch.tensor([
        [CLS, 20, 11, 5, 77, 90, 33, 8, SEP, 84, 15, 66, 41, 9, 27, SEP],
        [CLS, 81, 60, 12, 47, SEP, 93, 25, 70, 14, SEP, PAD, PAD, PAD, PAD, PAD],
    ], dtype=torch.int64)
    types = torch.tensor([[0] * 9 + [1] * 7, [0] * 6 + [1] * 5 + [0] * 5], dtype=torch.int64)
    mask = (ids != PAD).to(torch.int64)
    positions = torch.tensor([[2, 4, 10, 13], [1, 7, 9, 0]], dtype=torch.int64)
    labels = ids.gather(1, positions).clone()
    labels[1, 3] = -1
    # BERT-style corruption of the masked inputs: [MASK], [MASK], random token, unchanged.
    ids[0, 2] = MASK
    ids[0, 4] = MASK
    ids[0, 10] = 50
    ids[1, 1] = MASK
    ids[1, 7] = MASK
    drp = torch.tensor([2, 1], dtype=torch.int64)  # 0 contiguous, 1 random, 2 linked
    return dict(input_ids=ids, token_type_ids=types, attention_mask=mask, masked_positions=positions,
                masked_labels=labels, drp_labels=drp)


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, CFG['layer_norm_eps'])


def linear(x, p, name):
    return x @ p[name + '.weight'].t() + p[name + '.bias']


def gelu(x):  # exact erf GELU, as HF "gelu"
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def forward(p, batch):
    """Post-LN BERT exactly as HF BertForPreTraining (dropout off), sparse MLM head, DRP head on pooled."""
    ids, types, mask = batch['input_ids'], batch['token_type_ids'], batch['attention_mask']
    dt = p['bert.embeddings.word_embeddings.weight'].dtype
    H, nh = CFG['hidden_size'], CFG['num_attention_heads']
    d = H // nh
    pos = torch.arange(T)
    x = p['bert.embeddings.word_embeddings.weight'][ids] + p['bert.embeddings.position_embeddings.weight'][pos] + \
        p['bert.embeddings.token_type_embeddings.weight'][types]
    x = layer_norm(x, p['bert.embeddings.LayerNorm.weight'], p['bert.embeddings.LayerNorm.bias'])
    hidden = [x]
    # HF extended attention mask: (1 - mask) * finfo(float32).min added to the scores of masked keys.
    ext = (1.0 - mask.to(dt))[:, None, None, :] * torch.finfo(torch.float32).min
    for i in range(CFG['num_hidden_layers']):
        pre = f'bert.encoder.layer.{i}'

        def heads(t):
            return t.view(B, T, nh, d).permute(0, 2, 1, 3)
        q = heads(linear(x, p, pre + '.attention.self.query'))
        k = heads(linear(x, p, pre + '.attention.self.key'))
        v = heads(linear(x, p, pre + '.attention.self.value'))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        a = layer_norm(linear(ctx, p, pre + '.attention.output.dense') + x,
                       p[pre + '.attention.output.LayerNorm.weight'], p[pre + '.attention.output.LayerNorm.bias'])
        inter = gelu(linear(a, p, pre + '.intermediate.dense'))
        x = layer_norm(linear(inter, p, pre + '.output.dense') + a,
                       p[pre + '.output.LayerNorm.weight'], p[pre + '.output.LayerNorm.bias'])
        hidden.append(x)
    pooled = torch.tanh(linear(x[:, 0], p, 'bert.pooler.dense'))
    # Sparse MLM: gather the masked positions first (all P slots, unused ones too), then the head.
    gathered = x.gather(1, batch['masked_positions'][:, :, None].expand(B, P, H)).reshape(B * P, H)
    t = gelu(linear(gathered, p, 'cls.predictions.transform.dense'))
    t = layer_norm(t, p['cls.predictions.transform.LayerNorm.weight'], p['cls.predictions.transform.LayerNorm.bias'])
    mlm_logits = t @ p['bert.embeddings.word_embeddings.weight'].t() + p['cls.predictions.bias']  # tied decoder
    drp_logits = linear(pooled, p, 'cls.drp')
    mlm_loss = F.cross_entropy(mlm_logits, batch['masked_labels'].reshape(-1), ignore_index=-1)
    drp_loss = F.cross_entropy(drp_logits, batch['drp_labels'])
    loss = mlm_loss + drp_loss
    return dict(sequence_output=x, pooled_output=pooled, mlm_logits=mlm_logits, drp_logits=drp_logits,
                mlm_loss=mlm_loss, drp_loss=drp_loss, loss=loss, hidden=hidden)


def run(params32, batch, dtype):
    p = collections.OrderedDict((k, v.detach().to(dtype).requires_grad_(True)) for k, v in params32.items())
    out = forward(p, batch)
    out['loss'].backward()
    res = collections.OrderedDict()
    for k in ['sequence_output', 'pooled_output', 'mlm_logits', 'drp_logits', 'mlm_loss', 'drp_loss', 'loss']:
        res[k] = out[k].detach()
    for i, h in enumerate(out['hidden']):
        res[f'hidden.{i}'] = h.detach()
    for k, v in p.items():
        res['grad.' + k] = v.grad.detach()
    return res


# --- safetensors, written by hand (the python safetensors module is not a dependency) ---
ST_DTYPE = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16', torch.bfloat16: 'BF16',
            torch.int64: 'I64', torch.int32: 'I32'}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata is None:
        metadata = {'format': 'pt'}
    if metadata:
        header['__metadata__'] = metadata
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_config(architectures):
    return {
        'architectures': architectures, 'model_type': 'bert',
        'attention_probs_dropout_prob': 0.1, 'hidden_act': 'gelu', 'hidden_dropout_prob': 0.1,
        'hidden_size': CFG['hidden_size'], 'initializer_range': 0.02, 'intermediate_size': CFG['intermediate_size'],
        'layer_norm_eps': CFG['layer_norm_eps'], 'max_position_embeddings': CFG['max_position_embeddings'],
        'num_attention_heads': CFG['num_attention_heads'], 'num_hidden_layers': CFG['num_hidden_layers'],
        'pad_token_id': 0, 'position_embedding_type': 'absolute', 'type_vocab_size': CFG['type_vocab_size'],
        'vocab_size': CFG['vocab_size'], 'tie_word_embeddings': True,
    }


def write_tokenizer(d):
    with open(os.path.join(d, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(vocab()) + '\n')
    with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
        json.dump({'tokenizer_class': 'BertTokenizer', 'do_lower_case': True, 'model_max_length': T * 2,
                   'unk_token': '[UNK]', 'sep_token': '[SEP]', 'pad_token': '[PAD]', 'cls_token': '[CLS]',
                   'mask_token': '[MASK]'}, f, indent=2)
        f.write('\n')


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


def state_dict_like(params, dtype=None):
    """What BertForPreTraining.state_dict() holds: HF names, position_ids buffer, the tied decoder weight
    and the decoder bias alias (sharing storage with their originals, as in a real module), _metadata."""
    sd = collections.OrderedDict()
    conv = (lambda t: t.to(dtype)) if dtype is not None else (lambda t: t.clone())
    for k, v in params.items():
        sd[k] = conv(v)
    sd['bert.embeddings.position_ids'] = torch.arange(CFG['max_position_embeddings'], dtype=torch.int64)[None, :]
    sd['cls.predictions.decoder.weight'] = sd['bert.embeddings.word_embeddings.weight']
    sd['cls.predictions.decoder.bias'] = sd['cls.predictions.bias']
    sd._metadata = collections.OrderedDict([('', {'version': 1}), ('bert', {'version': 1}),
                                            ('bert.embeddings', {'version': 1}), ('cls', {'version': 1})])
    return sd


def self_check(params, batch, ref, tiny):
    """Guards against a broken generator: float64 central differences agree with the autograd
    gradients, and torch.load reads back what was written."""
    p64 = collections.OrderedDict((k, v.detach().double()) for k, v in params.items())
    gen = torch.Generator().manual_seed(7)
    for name in ['bert.embeddings.word_embeddings.weight', 'bert.encoder.layer.0.attention.self.key.weight',
                 'bert.encoder.layer.1.output.LayerNorm.bias', 'cls.predictions.transform.dense.weight', 'cls.drp.bias']:
        flat = p64[name].view(-1)
        for i in torch.randint(0, flat.numel(), (3,), generator=gen).tolist():
            eps, orig = 1e-6, flat[i].item()
            flat[i] = orig + eps
            up = forward(p64, batch)['loss'].item()
            flat[i] = orig - eps
            down = forward(p64, batch)['loss'].item()
            flat[i] = orig
            fd, ag = (up - down) / (2 * eps), ref['grad.' + name].view(-1)[i].item()
            assert abs(fd - ag) <= 1e-6 * max(1.0, abs(ag)), f'{name}[{i}]: finite difference {fd} vs autograd {ag}'
    sd = torch.load(os.path.join(tiny, 'pytorch_model.bin'))
    for k, v in params.items():
        assert torch.equal(sd[k], v), k
    print('self-check ok: finite differences match autograd; torch.load round-trips')


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    torch.set_grad_enabled(True)
    gen = torch.Generator().manual_seed(SEED)
    params = make_params(gen)
    batch = make_batch()

    tiny = os.path.join(args.out, 'tiny')
    os.makedirs(tiny, exist_ok=True)
    cfg = hf_config(['BertForPreTraining'])
    cfg['linkbert'] = {'num_drp_labels': CFG['num_drp_labels'], 'drp_head': 'cls.drp'}
    write_json(os.path.join(tiny, 'config.json'), cfg)
    write_tokenizer(tiny)
    # HF-style safetensors: no position_ids buffer (non-persistent in recent transformers), no tied duplicate.
    write_safetensors(os.path.join(tiny, 'model.safetensors'), params)
    torch.save(state_dict_like(params), os.path.join(tiny, 'pytorch_model.bin'))
    torch.save(state_dict_like(params, torch.float16), os.path.join(tiny, 'model_fp16.bin'))
    torch.save(state_dict_like(params, torch.bfloat16), os.path.join(tiny, 'model_bf16.bin'))

    # Golden values: float64 reference from the float32 weights upcast, and the same run in float32.
    ref = run(params, batch, torch.float64)
    f32 = run(params, batch, torch.float32)
    golden = collections.OrderedDict()
    for k, v in batch.items():
        golden[k] = v.to(torch.int32)
    golden.update(ref)
    # float32 forward values and losses (not grads/hidden states: the f64 ones are the reference, and
    # the fixture stays small).
    for k, v in f32.items():
        if not k.startswith(('grad.', 'hidden.')):
            golden['f32.' + k] = v
    write_safetensors(os.path.join(tiny, 'golden.safetensors'), golden,
                      {'format': 'pt', 'generator': 'scripts/golden/make_golden.py', 'torch': torch.__version__,
                       'seed': str(SEED), 'B': str(B), 'T': str(T), 'P': str(P)})
    print(f"loss (f64) = {ref['loss'].item():.12f}  mlm = {ref['mlm_loss'].item():.12f}  drp = {ref['drp_loss'].item():.12f}")
    print(f"loss (f32) = {f32['loss'].item():.8f}")

    # The official LinkBERT release layout: BertModel (encoder + pooler), keys without the "bert." prefix, no heads.
    bm = os.path.join(args.out, 'bertmodel')
    os.makedirs(bm, exist_ok=True)
    write_json(os.path.join(bm, 'config.json'), hf_config(['BertModel']))
    write_tokenizer(bm)
    enc = collections.OrderedDict((k[len('bert.'):], v.clone()) for k, v in params.items() if k.startswith('bert.'))
    enc['embeddings.position_ids'] = torch.arange(CFG['max_position_embeddings'], dtype=torch.int64)[None, :]
    torch.save(enc, os.path.join(bm, 'pytorch_model.bin'))

    # Serialization corner cases for the torch-bin reader (see README).
    fmt = os.path.join(args.out, 'formats')
    os.makedirs(fmt, exist_ok=True)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    shared = torch.arange(10, dtype=torch.float64) / 8
    special = collections.OrderedDict([
        ('f16', torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 2.0 ** -24, 2.0 ** -14, float('inf'), float('-inf'), 0.1],
                             dtype=torch.float16)),
        ('bf16', torch.tensor([0.0, -0.0, 1.0, -2.5, 3.3895313892515355e38, 2.0 ** -133, float('inf'), float('-inf'), 0.1],
                              dtype=torch.bfloat16)),
        ('f64', torch.tensor([[1.0 / 3, -1e300], [5e-324, 2.0]], dtype=torch.float64)),
        ('i32', torch.tensor([-(2 ** 31), -1, 0, 2 ** 31 - 1], dtype=torch.int32)),
        ('i64', torch.tensor([-(2 ** 63), -1, 0, 2 ** 53 + 1, 2 ** 63 - 1], dtype=torch.int64)),
        ('transposed', base.t()),              # non-contiguous strides (1, 6)
        ('column', base[:, 2]),                # storage offset 2, stride 6
        ('slice', base[1:3, 1:5]),             # offset 7, strides (6, 1)
        ('shared_a', shared[2:6]),             # two views of one storage
        ('shared_b', shared.view(2, 5)),
        ('scalar', torch.tensor(7.25)),        # 0-d tensor
        ('empty', torch.zeros(0, 3)),          # zero elements
        ('param', torch.nn.Parameter(torch.tensor([1.5, -1.5]))),  # _rebuild_parameter
    ])
    torch.save(special, os.path.join(fmt, 'specials.bin'))
    # Same archive re-packed with deflate-compressed entries and another top-level folder name.
    with zipfile.ZipFile(os.path.join(fmt, 'specials.bin')) as src, \
            zipfile.ZipFile(os.path.join(fmt, 'specials_deflate.bin'), 'w', zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            # fixed timestamp: regenerating gives the same bytes
            zi = zipfile.ZipInfo('renamed_dir/' + info.filename.split('/', 1)[1], date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, src.read(info.filename))
    # And re-packed as zip64 (zip64 end-of-central-directory record + zip64 extra fields on every entry),
    # which torch writes for archives over 4 GiB; forced here by lowering zipfile's limits.
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = -1, 0
    try:
        with zipfile.ZipFile(os.path.join(fmt, 'specials.bin')) as src, \
                zipfile.ZipFile(os.path.join(fmt, 'specials_zip64.bin'), 'w', zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                with dst.open(info.filename, 'w', force_zip64=True) as w:
                    w.write(src.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    # A non-tensor object a training script might save next to weights: unknown pickle GLOBAL.
    torch.save({'args': argparse.Namespace(lr=0.001)}, os.path.join(fmt, 'unknown_global.bin'))
    # A storage type the readers do not support (bool).
    torch.save({'mask': torch.tensor([True, False])}, os.path.join(fmt, 'bool_storage.bin'))
    # Legacy (pre-1.6, non-zip) serialization.
    torch.save({'w': torch.ones(2)}, os.path.join(fmt, 'legacy.bin'), _use_new_zipfile_serialization=False)
    self_check(params, batch, ref, tiny)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.out) for f in fs)
    print(f'wrote fixtures under {args.out} ({total} bytes)')


if __name__ == '__main__':
    main()
