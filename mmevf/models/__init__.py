from .data_preprocessors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .injectors import *  # noqa: F401,F403
from .mm_encoders import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .sam import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .text_encoders import *  # noqa: F401,F403
