# evf-tiny-frozen-sam_synthref.py trained from cached SAM image embeddings: the frozen encoder
# does not run in training (validation still encodes its images). Write the cache first, with
# the weights the training starts from (the config's seed makes the same random encoder):
#   python tools/cache_embeddings.py configs/evf_sam/evf-tiny-frozen-sam_synthref_cached.py
# (--out defaults to the cache_dir below). A stale cache (other weights, size, normalisation,
# images) is refused. The tiny model of `make demo` (evf-tiny_synthref.py) trains its SAM
# encoder, so it cannot use a cache.
_base_ = ['./evf-tiny-frozen-sam_synthref.py']

embedding_cache = 'data/embedding_cache/evf-tiny-frozen-sam_synthref'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=256, mm_size=64),
    # replaces the SAM-branch image by its cached embedding (after checking it is that image's)
    dict(type='LoadCachedEmbedding', cache_dir=embedding_cache),
    dict(type='TokenizeText', tokenizer={{_base_.tokenizer}}, max_length=32),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
