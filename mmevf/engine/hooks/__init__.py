from .invalid_loss_hook import InvalidLossHook
from .visualization_hook import ReferSegVisualizationHook

__all__ = ['InvalidLossHook', 'ReferSegVisualizationHook']
