# DeepSpeed ZeRO-2 through mmengine's FlexibleRunner: bf16, gradient clipping and accumulation
# live in the strategy (the optim_wrapper's clip_grad / accumulative_counts / AmpOptimWrapper do
# not apply). Values are the paper-scale run's; a config overrides what its size needs.
# Pair it with `optim_wrapper = dict(_delete_=True, type='DeepSpeedOptimWrapper', ...)`.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=1.0,
    gradient_accumulation_steps=2,
    zero_optimization=dict(
        stage=2,
        overlap_comm=True,
        contiguous_gradients=True,
        reduce_scatter=True,
        allgather_bucket_size=2e8,
        reduce_bucket_size=2e8),
    # needs deepspeed>=0.13.2; keeps the frozen SAM image encoder out of the checkpoints
    exclude_frozen_parameters=True)
