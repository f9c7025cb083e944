# evf-beit3b_sam-b_refcoco.py trained from cached SAM ViT-B image embeddings: SAM's image
# encoder is frozen (the paper's recipe), so its embedding of every training image is computed
# once, instead of at every step (~3.7x fewer FLOPs per step at this size; see
# tools/analysis/benchmark_train.py). First write the cache: one 256 x 64 x 64 embedding per
# training image of RefCLEF and COCO train2014, 4 MiB each in fp32, 2 MiB with --dtype bf16
# (which rounds them; the tool prints the number of images before it starts):
#   python tools/cache_embeddings.py configs/evf_sam/evf-beit3b_sam-b_refcoco_cached.py
# (--out defaults to the cache_dir below). Validation still encodes its images; to cache them
# too, run the tool with --split val and add LoadCachedEmbedding to the val pipeline.
# A cache made with other SAM weights, size or normalisation is refused, never used.
_base_ = ['./evf-beit3b_sam-b_refcoco.py']

embedding_cache = 'data/embedding_cache/sam-vit-b_1024_refer-union'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=1024, mm_size=224),
    # replaces the SAM-branch image by its cached embedding (after checking it is that image's)
    dict(type='LoadCachedEmbedding', cache_dir=embedding_cache),
    dict(type='TokenizeText', tokenizer={{_base_.tokenizer}}, max_length=128),
    dict(type='PackReferInputs'),
]
# the four RefCOCO-family sources of refer_seg_union.py, each with the cached pipeline
train_dataloader = dict(dataset=dict(datasets=[
    dict(source, pipeline=train_pipeline) for source in _base_.train_dataloader.dataset.datasets
]))
