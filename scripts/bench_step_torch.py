#!/usr/bin/env python3
"""The PyTorch peer of `linkbert bench step`: the same LinkBERT pretraining step (post-LN BERT, sparse MLM
on gathered masked rows with a tied decoder, 3-way DRP on the pooled [CLS], AdamW, clip) on CPU, timed
the same way. Prints one JSON line. Needs Debian's python3-torch (CPU) or a CUDA torch (--device cuda; --bf16 runs
the step under bf16 autocast, as linkbert's mixed precision); never a dependency of linkbert."""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
for k, d in [('layers', 4), ('hidden', 256), ('heads', 4), ('ffn', 1024), ('vocab', 30522), ('seq-len', 128), ('batch-size', 32),
             ('predictions', 20), ('repeats', 5), ('warmup', 1), ('threads', 0)]:
    ap.add_argument('--' + k, type=int, default=d)
ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
ap.add_argument('--bf16', action='store_true')
a = ap.parse_args()
dev = torch.device(a.device)
cuda = a.device == 'cuda'
if cuda:
    torch.backends.cuda.matmul.allow_tf32 = False  # linkbert's fp32 GEMMs are true fp32
if a.threads:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)
H, T, B, P, V = a.hidden, a.seq_len, a.batch_size, a.predictions, a.vocab


class LayerNorm32(nn.LayerNorm):
    # layer norm in f32 under autocast, as linkbert's mixed precision does it (CUDA autocast does this itself;
    # CPU autocast in Debian's torch 1.13 passes bf16 rows with f32 weights and fails)
    def forward(self, x):
        return super().forward(x.float())


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe, self.wtt = nn.Embedding(V, H), nn.Embedding(512, H), nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=1e-12)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(H, a.heads, a.ffn, dropout=0.1, activation='gelu', batch_first=True,
                                                                norm_first=False, layer_norm_eps=1e-12) for _ in range(a.layers)])
        for l in self.layers:
            l.norm1, l.norm2 = LayerNorm32(H, eps=1e-12), LayerNorm32(H, eps=1e-12)
        self.pool, self.transform, self.tln = nn.Linear(H, H), nn.Linear(H, H), LayerNorm32(H, eps=1e-12)
        self.mlm_bias, self.drp = nn.Parameter(torch.zeros(V)), nn.Linear(H, 3)
        self.drop = nn.Dropout(0.1)

    def forward(self, ids, types, pad, mpos, mlab, drp):
        x = self.drop(self.ln(self.wte(ids) + self.wpe(torch.arange(T, device=ids.device)) + self.wtt(types)))
        for l in self.layers:
            x = l(x, src_key_padding_mask=pad)
        pooled = torch.tanh(self.pool(x[:, 0]))
        g = x.reshape(B * T, H)[mpos]
        t = self.tln(F.gelu(self.transform(g)))
        logits = t @ self.wte.weight.t() + self.mlm_bias
        return F.cross_entropy(logits, mlab, ignore_index=-1) + F.cross_entropy(self.drp(pooled), drp)


m = Model().to(dev)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, **({'fused': True} if cuda else {}))
ids = torch.randint(5, V, (B, T)); types = (torch.arange(T) >= T // 2).long().expand(B, T)
pad = torch.zeros(B, T, dtype=torch.bool)
mpos = torch.tensor([(i // P) * T + 1 + ((i % P) * 5) % (T - 1) for i in range(B * P)])
mlab = torch.randint(5, V, (B * P,)); drp = torch.randint(0, 3, (B,))
ids, types, pad, mpos, mlab, drp = (t.to(dev) for t in (ids, types, pad, mpos, mlab, drp))
times = []
for i in range(a.warmup + a.repeats):
    t0 = time.perf_counter()
    with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.bf16):
        loss = m(ids, types, pad, mpos, mlab, drp)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step(); opt.zero_grad(set_to_none=False)
    if cuda:
        torch.cuda.synchronize()
    if i >= a.warmup:
        times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({'median_ms': times[len(times) // 2], 'min_ms': times[0], 'torch': torch.__version__, 'threads': torch.get_num_threads(),
                  'device': torch.cuda.get_device_name() if cuda else 'cpu', 'bf16_autocast': a.bf16,
                  'tokens_per_s': B * T / (times[len(times) // 2] / 1000)}))
