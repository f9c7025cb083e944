"""The words of SynthRef and its multi-task twins: the shapes, and every prompt a twin can give
(SynthRef's tokenizer is trained on them too, so that one tokenizer serves the tiny models)."""

SHAPES = ('circle', 'square', 'triangle')
SEMANTIC_CLASSES = SHAPES
HALVES = ('top half', 'bottom half')
PART_CATEGORIES = [f'{shape}:{half}' for shape in SHAPES for half in HALVES]
# ATR raw labels of the stick figures (HumanParsingDataset.ATR_LABELS[k] names raw value k)
ATR = dict(hat=1, upper_clothes=4, right_shoe=9, left_shoe=10, face=11, right_leg=12,
           left_leg=13, right_arm=14, left_arm=15)
ATR_NAMES = ('hat', 'upper clothes', 'right shoe', 'left shoe', 'face', 'right leg', 'left leg',
             'right arm', 'left arm')
# every text a twin can prompt: SynthRef's tokenizer is trained on them too
TWIN_TEXTS = ([f'[semantic] {c}' for c in SEMANTIC_CLASSES]
              + [f'[semantic] {c.replace(":", " ")}' for c in PART_CATEGORIES]
              + [f'[semantic] {n}' for n in ATR_NAMES])
