# DeepSpeed ZeRO-2 for the tiny CPU configs over gloo: no gradient accumulation, small buckets
# and no communication overlap (deepspeed_zero2.py's values are the paper-scale run's).
_base_ = ['./deepspeed_zero2.py']

strategy = dict(
    gradient_accumulation_steps=1,
    zero_optimization=dict(overlap_comm=False, allgather_bucket_size=5e7,
                           reduce_bucket_size=5e7))
