"""RefCOCO / RefCOCO+ / RefCOCOg / RefCLEF (and SynthRef) in the refer toolkit's layout."""
import os.path as osp
import random
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import mmengine
from mmdet.datasets import RefCocoDataset

from mmevf.registry import DATASETS
from .utils import load_refs_pickle


@DATASETS.register_module()
class ReferSegDataset(RefCocoDataset):
    """Referring segmentation on a refer-format folder, built on mmdet's ``RefCocoDataset``.

    Like mmdet's dataset, one item is one image holding the expressions of all its refs (so
    one SAM image-encoder pass serves them all), with one instance mask per expression; the
    on-disk layout and the ``text_mode`` names are mmdet's. Differences:

    - ``text_mode='original'`` (evaluation, the default) scores every sentence of every ref.
    - ``text_mode='random'`` draws fresh sentences **each time the item is read** (mmdet fixes
      its random choice once at start-up): ``num_sentences`` per ref (``None``: all of them),
      then at most ``max_expressions`` per image, without replacement. EVF-SAM's training
      draws 3 from all sentences of the image: ``num_sentences=None, max_expressions=3``.
    - The refs pickle is read with a loader that accepts only containers and scalars.
    - Sentences come from ``text_key`` (``'sent'``, the normalised sentence used by EVF-SAM,
      or ``'raw'`` as mmdet), stripped and lower-cased.
    - Two refs on the same annotation keep their own sentences (mmdet keeps the last ref's).
    - A missing file, a ref whose annotation or image is absent, or a ref without sentences
      raises an error naming the file and the id.

    What a ref is (its file, its target mask, the fields of an expression) is in
    ``load_refs``, ``parse_ref`` and ``pack_expressions``, which :class:`GReferSegDataset`
    (several or no objects per ref) overrides.

    Args:
        data_root, ann_file, split_file, data_prefix, split: as in ``RefCocoDataset``.
        text_mode: ``'original'``, ``'random'``, ``'select_first'`` or ``'concat'``.
        num_sentences: sentences drawn per ref in ``'random'`` mode (``None``: all).
        max_expressions: cap on the expressions of one image in ``'random'`` mode.
        text_key: ``'sent'`` or ``'raw'``.
        check_files: verify at start-up that every image file exists (local paths).
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 split_file: str,
                 data_prefix: Dict,
                 split: str = 'train',
                 text_mode: str = 'original',
                 num_sentences: Optional[int] = 1,
                 max_expressions: Optional[int] = None,
                 text_key: str = 'sent',
                 check_files: bool = True,
                 **kwargs) -> None:
        if text_key not in ('sent', 'raw'):
            raise ValueError(f"text_key must be 'sent' or 'raw', got {text_key!r}")
        self.num_sentences = num_sentences
        self.max_expressions = max_expressions
        self.text_key = text_key
        self.check_files = check_files
        super().__init__(data_root=data_root, ann_file=ann_file, split_file=split_file,
                         data_prefix=data_prefix, split=split, text_mode=text_mode, **kwargs)

    def _sentences(self, ref: dict) -> List[str]:
        sentences = [s[self.text_key].strip().lower() for s in ref.get('sentences', [])]
        sentences = [s for s in sentences if s]
        if not sentences:
            raise ValueError(f'{self.split_file}: ref {ref["ref_id"]} has no sentence')
        return sentences

    def _fixed_expressions(self, refs: List[dict]) -> Dict[str, list]:
        """Texts and their masks for the deterministic text modes."""
        pool = []
        for ref in refs:
            sentences = ref['sentences']
            if self.text_mode == 'select_first':
                sentences = sentences[:1]
            elif self.text_mode == 'concat':
                sentences = [''.join(sentences)]
            pool += [(ref, sentence) for sentence in sentences]
        return self.pack_expressions(pool)

    def sample_expressions(self, refs: List[dict]) -> Dict[str, list]:
        """A fresh draw of texts and their masks for ``text_mode='random'``."""
        pool = []
        for ref in refs:
            sentences = ref['sentences']
            if self.num_sentences is not None and len(sentences) > self.num_sentences:
                sentences = random.sample(sentences, self.num_sentences)
            pool += [(ref, sentence) for sentence in sentences]
        if self.max_expressions is not None and len(pool) > self.max_expressions:
            pool = random.sample(pool, self.max_expressions)
        return self.pack_expressions(pool)

    def pack_expressions(self, pool: List[Tuple[dict, str]]) -> Dict[str, list]:
        """The item fields of (ref, sentence) pairs: ``text`` and ``instances`` (one mask
        each, as mmdet's ``LoadAnnotations`` reads them), in the order of ``pool``."""
        return dict(text=[sentence for _, sentence in pool],
                    instances=[dict(mask=ref['mask'], ignore_flag=0) for ref, _ in pool])

    def load_refs(self) -> List[dict]:
        """Every ref of ``split_file`` (all splits)."""
        return load_refs_pickle(self.split_file)

    def parse_ref(self, ref: dict, anns: Dict[int, dict], image: dict) -> dict:
        """What an item keeps of ``ref`` (on ``image``, an entry of the COCO ``images``): its
        ids, its target ``mask`` (a COCO segmentation) and its ``sentences``."""
        ann = anns.get(ref['ann_id'])
        if ann is None:
            raise ValueError(f'{self.split_file}: ref {ref["ref_id"]} points to annotation '
                             f'{ref["ann_id"]}, which {self.ann_file} does not have')
        return dict(ref_id=ref['ref_id'], ann_id=ref['ann_id'], mask=ann['segmentation'],
                    sentences=self._sentences(ref))

    def load_data_list(self) -> List[dict]:
        for path in (self.ann_file, self.split_file):
            if not osp.isfile(path):
                raise FileNotFoundError(f'annotation file {path} does not exist')
        refs = self.load_refs()
        coco = mmengine.load(self.ann_file, file_format='json')
        anns = {ann['id']: ann for ann in coco['annotations']}
        images = {image['id']: image for image in coco['images']}

        refs_by_image: Dict[int, List[dict]] = OrderedDict()
        for ref in refs:
            if ref['split'] != self.split:
                continue
            image_id = ref['image_id']
            if image_id not in images:  # checked first: a ref's masks may need the image size
                raise ValueError(f'{self.split_file}: ref {ref["ref_id"]} is on image {image_id}, '
                                 f'which is not in {self.ann_file}')
            refs_by_image.setdefault(image_id, []).append(
                self.parse_ref(ref, anns, images[image_id]))
        if not refs_by_image:
            raise ValueError(f'no ref of split "{self.split}" in {self.split_file}')

        join_path = mmengine.fileio.get_file_backend(self.data_prefix['img_path']).join_path
        data_list = []
        for image_id, image_refs in refs_by_image.items():
            img_path = join_path(self.data_prefix['img_path'], images[image_id]['file_name'])
            if self.check_files and '://' not in img_path and not osp.isfile(img_path):
                raise FileNotFoundError(f'image {img_path} (image id {image_id}) does not exist')
            info = dict(img_path=img_path, img_id=image_id, height=images[image_id]['height'],
                        width=images[image_id]['width'])
            if self.text_mode == 'random':
                info['refs'] = image_refs
            else:
                info.update(self._fixed_expressions(image_refs))
            data_list.append(info)
        return data_list

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if self.text_mode == 'random':
            info.update(self.sample_expressions(info['refs']))
        return self.pipeline(info)

    @property
    def num_expressions(self) -> int:
        """Expressions scored by an evaluation (``'original'``: every sentence)."""
        return sum(len(self.get_data_info(i)['text']) for i in range(len(self)))
