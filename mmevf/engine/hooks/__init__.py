from .visualization_hook import ReferSegVisualizationHook

__all__ = ['ReferSegVisualizationHook']
